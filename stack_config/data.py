"""The data tier's settings: PostgreSQL, AWS Backup, RabbitMQ and Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field, field_validator

import catalogue
from stack_config.base import KeyedError, Section, catalogue_note, offered

DatabaseDeployment = Literal["multi-az-instance", "multi-az-cluster"]

#: Instance families a Multi-AZ DB cluster runs on (local NVMe for the write-ahead log).
_CLUSTER_CLASS = re.compile(r"^db\.(m5d|r5d|m6gd|r6gd|c6gd|m6id|r6id|x2iedn)\.[a-z0-9]+$")
#: Families RDS offers for Multi-AZ DB clusters only (Supported DB engines for DB instance classes).
_CLUSTER_ONLY = ("db.c6gd.",)
_DB_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")


class DataSection(Section):
    database_deployment: DatabaseDeployment = "multi-az-instance"
    """`multi-az-instance` (primary + standby, plus a read replica) or `multi-az-cluster` (two readable standbys)."""
    database_engine_version: str = "17"
    """PostgreSQL major version (minor versions arrive by automatic minor upgrade), or major.minor. Default 17."""
    database_instance_class: str | None = None
    """DB instance class. Default db.m7g.large (instance) or db.m6gd.large (cluster, which needs local NVMe)."""
    database_allocated_storage_gib: int = Field(default=100, ge=20, le=65536)
    """Initial storage (GiB). Default 100."""
    database_max_allocated_storage_gib: int = Field(default=1000, ge=20, le=65536)
    """Ceiling of storage autoscaling (GiB); instance deployment only. Default 1000."""
    database_backup_retention_days: int = Field(default=14, ge=1, le=35)
    """Automated backup retention (days, point-in-time recovery window); at least the environment's
    minimum. Default 14."""
    database_read_replica: bool = True
    """A read replica in another zone than the primary (instance deployment). Default true."""
    backup_copy_region: str | None = None
    """Second region that AWS Backup copies snapshots to; required in production. Default none."""
    backup_frequency_hours: int = Field(default=4, ge=1, le=24)
    """Hours between AWS Backup snapshots. Default 4."""
    backup_retention_days: int = Field(default=35, ge=7, le=3650)
    """Days AWS Backup keeps each snapshot and each copy. Default 35."""
    broker_instance_type: str = "mq.m7g.large"
    """Amazon MQ instance size, one the catalogue lists for brokerEngineVersion. Default mq.m7g.large."""
    broker_engine_version: str = "4.2"
    """RabbitMQ engine version on Amazon MQ (4.x). Default 4.2."""
    cache_node_type: str = "cache.m7g.large"
    """ElastiCache node type. Default cache.m7g.large."""
    cache_engine_version: str = "7.1"
    """Redis OSS engine version. Default 7.1."""
    cache_snapshot_retention_days: int = Field(default=7, ge=1, le=35)
    """Days ElastiCache keeps daily snapshots. Default 7."""

    @field_validator("database_engine_version")
    @classmethod
    def _engine_version(cls, value: str) -> str:
        if not re.match(r"^(1[4-9])(\.\d+)?$", value):
            raise ValueError(f"{value!r} is not a PostgreSQL version from 14 on, such as '17' or '17.7'")
        return value

    @field_validator("database_instance_class")
    @classmethod
    def _db_class(cls, value: str | None) -> str | None:
        if value is not None:
            offered(
                value,
                catalogue.rds_instance_classes("postgres") if _DB_CLASS.match(value) else (),
                "a DB instance class RDS for PostgreSQL offers",
            )
        return value

    @field_validator("backup_copy_region")
    @classmethod
    def _copy_region(cls, value: str | None) -> str | None:
        return None if value is None else offered(value, catalogue.regions(), "an AWS region")

    @field_validator("backup_frequency_hours")
    @classmethod
    def _frequency(cls, value: int) -> int:
        if 24 % value:
            raise ValueError(f"{value} does not divide the day; use 1, 2, 3, 4, 6, 8, 12 or 24")
        return value

    @field_validator("broker_engine_version")
    @classmethod
    def _broker_version(cls, value: str) -> str:
        if not re.match(r"^4\.\d+$", value):
            raise ValueError(f"{value!r} is not a RabbitMQ 4 version such as '4.2'")
        return value

    @field_validator("cache_node_type")
    @classmethod
    def _cache_type(cls, value: str) -> str:
        return offered(value, catalogue.cache_node_types(), "an ElastiCache node type")

    @field_validator("cache_engine_version")
    @classmethod
    def _cache_version(cls, value: str) -> str:
        if not re.match(r"^7\.\d+$", value):
            raise ValueError(
                f"{value!r} is not a Redis OSS 7 version such as '7.1' (the cache users' access strings "
                "take subcommand rules, which ElastiCache accepts from 7.0)"
            )
        return value

    def problems(self) -> Iterator[KeyedError]:
        if self.database_deployment == "multi-az-cluster":
            if self.backup_copy_region is not None:
                yield KeyedError(
                    "databaseDeployment",
                    "multi-az-cluster cannot have its backups copied to "
                    "backupCopyRegion (AWS Backup does not copy Multi-AZ DB cluster snapshots); use "
                    "multi-az-instance where region-level recovery is required",
                )
            if self.database_instance_class and not _CLUSTER_CLASS.match(self.database_instance_class):
                yield KeyedError(
                    "databaseInstanceClass",
                    f"{self.database_instance_class} cannot run a Multi-AZ DB cluster; use a class with local "
                    "NVMe storage such as db.m6gd.large or db.r6gd.large",
                )
        elif self.database_instance_class and self.database_instance_class.startswith(_CLUSTER_ONLY):
            yield KeyedError(
                "databaseInstanceClass",
                f"{self.database_instance_class} runs Multi-AZ DB clusters only (databaseDeployment multi-az-cluster)",
            )
        if self.database_max_allocated_storage_gib < self.database_allocated_storage_gib:
            yield KeyedError(
                "databaseMaxAllocatedStorageGib",
                f"{self.database_max_allocated_storage_gib} is below databaseAllocatedStorageGib "
                f"{self.database_allocated_storage_gib}",
            )
        broker_types = catalogue.mq_instance_types("RabbitMQ", self.broker_engine_version)
        if not broker_types:
            yield KeyedError(
                "brokerEngineVersion",
                f"{self.broker_engine_version!r} is not a RabbitMQ version Amazon MQ "
                f"offers ({', '.join(catalogue.mq_engine_versions('RabbitMQ'))}; {catalogue_note()})",
            )
        elif self.broker_instance_type not in broker_types:
            yield KeyedError(
                "brokerInstanceType",
                f"{self.broker_instance_type!r} is not offered for RabbitMQ "
                f"{self.broker_engine_version} ({', '.join(sorted(broker_types))})",
            )

    @property
    def instance_class(self) -> str:
        """The class the database runs on: the configured one, or the deployment's default."""
        if self.database_instance_class:
            return self.database_instance_class
        return "db.m6gd.large" if self.database_deployment == "multi-az-cluster" else "db.m7g.large"
