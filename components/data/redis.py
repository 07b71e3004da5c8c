"""Redis for hot reads: an ElastiCache replication group with a node in every zone.

One primary and a replica in each other zone; with automatic failover and Multi-AZ on,
ElastiCache promotes a replica and repoints the primary endpoint when the primary's zone goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.common.context import StackContext
from components.common.sg_rules import allow_in

PORT = 6379
#: The only non-alphanumeric characters an ElastiCache AUTH token may contain.
TOKEN_SPECIALS = "!&#$^<>-"
#: ElastiCache allows at most six nodes (a primary and five replicas) in a non-cluster group.
MAX_NODES = 6


@dataclass(frozen=True)
class RedisArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    """Zone -> isolated subnet id."""
    client_security_group_id: pulumi.Input[str]
    """Security group of the clients (the EKS nodes); the only source admitted."""
    node_type: str
    engine_version: str
    """Redis OSS version."""
    snapshot_retention_days: int
    """Days ElastiCache keeps daily snapshots."""


class Redis(pulumi.ComponentResource):
    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:data:Redis", name, {"availabilityZones": list(args.stack.zones)}, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)
        zones = [z for z in args.stack.zones if z in args.subnet_ids][:MAX_NODES]

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.stack.name_prefix} ElastiCache data, snapshots and token",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=[args.subnet_ids[z] for z in zones],
            description="Redis in the isolated subnet of every zone",
            opts=child,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-cache", vpc_id=args.vpc_id, description="Redis from the cluster nodes", opts=child
        )
        allow_in(
            f"{name}-cache-from-nodes",
            security_group.id,
            PORT,
            from_group=args.client_security_group_id,
            description="Redis (TLS) from EKS nodes",
            parent=security_group,
        )
        token = random.RandomPassword(
            f"{name}-token", length=64, special=True, override_special=TOKEN_SPECIALS, opts=child
        )
        snapshot_suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=child)
        slow_log = aws.cloudwatch.LogGroup(f"{name}-slow-log", retention_in_days=30, opts=child)
        group = aws.elasticache.ReplicationGroup(
            f"{name}-group",
            replication_group_id=f"{args.stack.name_prefix}-redis",
            description=f"{args.stack.name_prefix} hot-read cache",
            engine="redis",
            engine_version=args.engine_version,
            node_type=args.node_type,
            port=PORT,
            # A node in every zone, the primary in the first; any replica can take over.
            num_cache_clusters=len(zones),
            preferred_cache_cluster_azs=zones,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            subnet_group_name=subnet_group.name,
            security_group_ids=[security_group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token.result,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window="02:00-03:00",
            maintenance_window="sun:05:00-sun:06:00",
            final_snapshot_identifier=snapshot_suffix.hex.apply(lambda h: f"{args.stack.name_prefix}-redis-final-{h}"),
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=slow_log.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                )
            ],
            opts=keep,
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-token",
            description=f"{args.stack.name_prefix} Redis AUTH token",
            kms_key_id=key.arn,
            recovery_window_in_days=30,
            opts=keep,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-token",
            secret_id=secret.id,
            secret_string=pulumi.Output.all(token.result, group.primary_endpoint_address).apply(
                lambda v: json.dumps({"authToken": v[0], "host": v[1], "port": PORT, "tls": True})
            ),
            opts=pulumi.ResourceOptions(parent=secret),
        )

        self.primary_endpoint = group.primary_endpoint_address
        self.reader_endpoint = group.reader_endpoint_address
        self.secret_arn = secret.arn
        self.kms_key_arn = key.arn
        self.register_outputs(
            {
                "primaryEndpoint": group.primary_endpoint_address,
                "readerEndpoint": group.reader_endpoint_address,
                "secretArn": secret.arn,
            }
        )
