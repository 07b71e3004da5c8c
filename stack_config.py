"""The stack configuration: one typed model, read once, validated before any resource exists.

Keys live in the project namespace (`scanner:<key>`) plus the provider's `aws:region`, and
are declared with their types in `Pulumi.yaml`. Every rule failure becomes a `ConfigError`:
one line that names the key and the rule, reported by Pulumi without a traceback.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any, Literal, Mapping

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

import catalogue
from components.common import versions
from components.eks import karpenter_plan
from components.network import plan as network_plan
from components.common import peak_window
from components.network.plan import NatMode, PlanError
from components.common.peak_window import PeakWindow
from policies.common import environments

PROJECT = "scanner"


def _catalogue_note() -> str:
    return f"AWS catalogue of {catalogue.GENERATED}; `make catalogue` refreshes it"


#: Retention periods CloudWatch Logs accepts (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)

#: Range AWS allows beside any primary VPC CIDR and EKS recommends for pod custom networking.
POD_CIDR_RANGE = ipaddress.IPv4Network("100.64.0.0/10")

DEFAULT_INTERFACE_ENDPOINTS = (
    "ecr.api", "ecr.dkr", "sts", "logs", "ec2", "sqs", "secretsmanager",
    "elasticloadbalancing", "ssm", "eks", "eks-auth",
)

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
_ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


DatabaseDeployment = Literal["multi-az-instance", "multi-az-cluster"]

#: Instance families a Multi-AZ DB cluster runs on (local NVMe for the write-ahead log).
_CLUSTER_CLASS = re.compile(r"^db\.(m5d|r5d|m6gd|r6gd|c6gd|m6id|r6id|x2iedn)\.[a-z0-9]+$")
#: Families RDS offers for Multi-AZ DB clusters only (Supported DB engines for DB instance classes).
_CLUSTER_ONLY = ("db.c6gd.",)
_DB_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")


class ConfigError(pulumi.RunError):
    """Bad stack configuration. Pulumi prints a RunError's message without a traceback."""


_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SERVICE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_CRON_DAYS = re.compile(r"^[0-6](-[0-6])?(,[0-6](-[0-6])?)*$")


DataStore = Literal["postgres", "rabbitmq", "redis"]
#: Same values as components.services.Rollout (a test keeps them equal).
ServicesRollout = Literal["await", "first-deploy"]


def _pinned_tag(value: str) -> str:
    if not _IMAGE_TAG.match(value) or value == "latest":
        raise ValueError(f"{value!r} is not a pinned image tag (letters, digits, '_', '.', '-'; not 'latest')")
    return value


class ServiceSpec(BaseModel):
    """One long-running service (an API service or the storage API), an item of `scanner:services`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    name: str
    """DNS label, 1-40 characters: the Deployment, Service and ECR repository `scanner/<name>`."""
    image_tag: str
    """Immutable tag of the service's image in its ECR repository."""
    port: int = Field(ge=1024, le=65535)
    """Container port the service listens on (unprivileged: the pods run as non-root)."""
    cpu_millicores: int = Field(default=500, ge=50, le=16000)
    """CPU request and limit per pod, millicores. Default 500."""
    memory_mib: int = Field(default=1024, ge=64, le=65536)
    """Memory request and limit per pod, MiB. Default 1024."""
    min_replicas: PositiveInt
    """Replica floor off-peak and at weekends; at least one per zone."""
    peak_min_replicas: PositiveInt | None = None
    """Replica floor during the weekday peak window. Default minReplicas."""
    max_replicas: PositiveInt
    """Most replicas the autoscaler runs."""
    target_cpu_percent: int = Field(default=70, ge=10, le=95)
    """Average CPU use (of the request) the autoscaler aims for. Default 70."""
    health_path: str = "/healthz"
    """HTTP path of the readiness and liveness probes (and the load balancer's health check)."""
    ingress_path: str | None = None
    """Path prefix routed to the service by the API load balancer. Default none: in-cluster only."""
    data_access: tuple[DataStore, ...] = ()
    """Data stores whose credentials the service's own identity may read (postgres, rabbitmq, redis). Default none."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SERVICE_NAME.match(value):
            raise ValueError(f"{value!r} is not a service name: 1-40 lower-case letters, digits or '-', starting with a letter")
        return value

    @field_validator("image_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return _pinned_tag(value)

    @field_validator("health_path", "ingress_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_PATH.match(value):
            raise ValueError(f"{value!r} is not an absolute HTTP path such as '/healthz'")
        return value

    @field_validator("data_access")
    @classmethod
    def _stores(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _no_duplicates(value)

    @model_validator(mode="after")
    def _replica_range(self) -> "ServiceSpec":
        if self.peak_floor < self.min_replicas:
            raise _KeyedError("peakMinReplicas", f"{self.peak_floor} is below minReplicas {self.min_replicas}")
        if self.max_replicas < self.peak_floor:
            raise _KeyedError("maxReplicas", f"{self.max_replicas} is below the replica floor {self.peak_floor}")
        return self

    @property
    def peak_floor(self) -> int:
        return self.peak_min_replicas if self.peak_min_replicas is not None else self.min_replicas


class StackConfig(BaseModel):
    """Typed view of `scanner:*` stack config (camelCase keys) and `aws:region`."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    region: str = Field(alias="region")
    """AWS region (`aws:region`). Required."""
    stack: str = Field(alias="stack")
    """Stack name, set by the loader, not by config."""
    aws_profile: str | None = Field(default=None, alias="awsProfile", min_length=1)
    """`aws:profile`: the shared-config profile the AWS provider and the look-ups use. Default none
    (the usual credential chain: AWS_PROFILE, environment, instance role)."""
    allowed_account_ids: tuple[str, ...] = Field(default=(), alias="awsAllowedAccountIds")
    """`aws:allowedAccountIds`: the only accounts the stack may be deployed into. Default any."""
    forbidden_account_ids: tuple[str, ...] = Field(default=(), alias="awsForbiddenAccountIds")
    """`aws:forbiddenAccountIds`: accounts the stack must never be deployed into. Default none."""

    environment: Literal["production", "staging", "development"]
    """Required. `production` demands at least 3 zones and a zone-resilient NAT mode."""
    owner: str = Field(min_length=1)
    """Required. Team that owns the stack; becomes the `owner` default tag."""
    cost_center: str = Field(min_length=1)
    """Required. Cost centre for billing; becomes the `cost-center` default tag."""

    availability_zones: tuple[str, ...] | None = None
    """Zones to use. Default: every standard zone of the region (opt-in-not-required)."""
    vpc_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.0.0.0/16")
    """Primary VPC CIDR, /16 to /28, private range. Default 10.0.0.0/16."""
    private_subnet_prefix: PositiveInt = 20
    """Prefix length of each zone's private (nodes and pods) subnet. Default 20."""
    public_subnet_prefix: PositiveInt = 24
    """Prefix length of each zone's public subnet. Default 24."""
    isolated_subnet_prefix: PositiveInt = 24
    """Prefix length of each zone's isolated (data) subnet. Default 24."""
    pod_cidr: ipaddress.IPv4Network | None = None
    """Secondary CIDR inside 100.64.0.0/10 for pod addresses; each zone gets 1/8 of it. Default none."""
    target_pods_per_zone: PositiveInt = 2000
    """Pods each zone must be able to address; checked against the plan. Default 2000."""
    nat_mode: NatMode = "per-az"
    """`per-az` (default), `single` (one NAT, not for production) or `regional`."""
    interface_endpoints: tuple[str, ...] = DEFAULT_INTERFACE_ENDPOINTS
    """Interface VPC endpoint services (short names such as `ecr.api`)."""
    flow_log_retention_days: PositiveInt = 365
    """Retention of the VPC flow log group; a value CloudWatch Logs accepts. Default 365."""
    cluster_name: str | None = None
    """EKS cluster name used in discovery tags. Default `scanner-<stack>`."""
    control_plane_log_retention_days: PositiveInt = 90
    """Retention of the EKS control-plane log group; a value CloudWatch Logs accepts. Default 90."""
    kubernetes_version: str = versions.DEFAULT_KUBERNETES_VERSION
    """EKS Kubernetes version; one with pinned add-on versions in components/versions.py."""
    cluster_public_access_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to reach the public API endpoint. Default none: the endpoint is private only."""
    cluster_api_access_cidrs: tuple[str, ...] = ()
    """Private CIDRs of deploy runners (in the VPC or a peered network) admitted on 443 to the
    private API endpoint. Needed unless clusterPublicAccessCidrs is set. Default none."""
    cluster_admin_role_arns: tuple[str, ...] = ()
    """IAM roles given cluster-admin access entries (the deploying identity always is). Default none."""
    system_node_instance_types: tuple[str, ...] = ("m7i.large", "m6i.large", "m5.large")
    """Instance types of the on-demand system node group, in order of preference."""
    system_nodes_per_zone: PositiveInt = 1
    """System nodes per zone; the node group's minimum is this times the zone count. Default 1."""
    scan_pool_cpu_limit: PositiveInt = 1000
    """vCPUs the spot scan pool may hold at once. Default 1000."""
    scan_pool_memory_gib: PositiveInt = 4000
    """Memory (GiB) the spot scan pool may hold at once. Default 4000."""
    scan_on_demand_fallback_percent: int = Field(default=25, ge=0, le=100)
    """Share of the scan limits the on-demand fallback pool may use when spot runs dry; 0 turns it off. Default 25."""
    scan_pool_consolidate_after: str = "1m"
    """How long a scan node stays empty or underused before Karpenter removes it. Default 1m."""
    services_pool_cpu_limit: PositiveInt = 128
    """vCPUs the on-demand services pool may hold. Default 128."""
    services_pool_memory_gib: PositiveInt = 512
    """Memory (GiB) the on-demand services pool may hold. Default 512."""

    protect_stateful_resources: bool = True
    """Deletion protection, Pulumi `protect` and `retainOnDelete` on databases, brokers, caches,
    their keys and secrets, and backup vaults. Opt out only explicitly (throwaway stacks). Default true."""
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
    """Automated backup retention (days, point-in-time recovery window); production needs at least 7. Default 14."""
    database_read_replica: bool = True
    """A read replica in another zone than the primary (instance deployment). Default true."""
    backup_copy_region: str | None = None
    """Second region that AWS Backup copies snapshots to; required in production. Default none."""
    backup_frequency_hours: int = Field(default=4, ge=1, le=24)
    """Hours between AWS Backup snapshots. Default 4."""
    backup_retention_days: int = Field(default=35, ge=7, le=3650)
    """Days AWS Backup keeps each snapshot and each copy. Default 35."""
    broker_instance_type: str = "mq.m7g.large"
    """Amazon MQ instance size; RabbitMQ 4 runs on mq.m7g only. Default mq.m7g.large."""
    broker_engine_version: str = "4.2"
    """RabbitMQ engine version on Amazon MQ (4.x). Default 4.2."""
    cache_node_type: str = "cache.m7g.large"
    """ElastiCache node type. Default cache.m7g.large."""
    cache_engine_version: str = "7.1"
    """Redis OSS engine version. Default 7.1."""
    cache_snapshot_retention_days: int = Field(default=7, ge=1, le=35)
    """Days ElastiCache keeps daily snapshots. Default 7."""

    scan_max_parallel_jobs: PositiveInt = 100
    """Most Jobs one engine's ScaledJob runs at once. Default 100."""
    scan_job_cpu: PositiveInt = 2
    """vCPUs a scan Job requests. Default 2."""
    scan_job_memory_gib: PositiveInt = 4
    """Memory (GiB) a scan Job requests and is limited to. Default 4."""
    scan_image_tag: str = "1.0.0"
    """Immutable tag of the engine and git-fetch images the scan Jobs run. Default 1.0.0."""
    scan_queue_prefix: str = "scans"
    """Prefix of the engines' queues (`<prefix>.<engine>`). Default scans."""
    scan_engines: tuple[str, ...] = ("sast", "secrets")
    """Scan engines; each gets an ECR repository (and, with the scaler, a queue-driven job). Default sast, secrets."""
    repo_cache_replication: bool = False
    """Replicate the repository cache file system to backupCopyRegion. Default false (the cache refills from GitHub)."""
    registry_replication: bool = False
    """Replicate the scan engine images to backupCopyRegion. Default false."""
    services: tuple[ServiceSpec, ...] = ()
    """Long-running services (API services, storage API) on the services pool, spread over every zone. Default none."""
    services_rollout: ServicesRollout = "await"
    """`await` (default): `pulumi up` waits until every service is ready. `first-deploy`: services
    are declared without waiting, for the first `up`, before their images are pushed."""
    api_ingress_scheme: Literal["internal", "internet-facing"] = "internal"
    """Scheme of the API load balancer: `internal` (default, reachable from the VPC) or `internet-facing` (needs apiCertificateArn)."""
    api_certificate_arn: str | None = None
    """ACM certificate of the API load balancer's HTTPS listener (same region). Default none: HTTP inside the VPC."""
    peak_days: str = "1-5"
    """Days of the weekday peak, as a cron day-of-week field (0 = Sunday). Default 1-5 (Monday to Friday)."""
    peak_start_hour_utc: int = Field(default=7, ge=0, le=22)
    """Hour (UTC) the peak window opens. Default 7."""
    peak_end_hour_utc: int = Field(default=19, ge=1, le=23)
    """Hour (UTC) the peak window closes. Default 19."""
    dashboard_price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    """CloudFront price class of the dashboard. Default PriceClass_100 (North America and Europe)."""
    dashboard_domain: str | None = None
    """Custom domain of the dashboard (an ACM certificate in us-east-1 is created for it). Default none."""
    dashboard_hosted_zone_id: str | None = None
    """Route 53 zone of dashboardDomain, for DNS validation and the alias records. Default none."""
    dashboard_web_acl_arn: str | None = None
    """WAFv2 web ACL (CLOUDFRONT scope, us-east-1) for the dashboard. Default none."""

    # ----- field rules -------------------------------------------------------------------

    @field_validator("allowed_account_ids", "forbidden_account_ids")
    @classmethod
    def _account_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for account in value:
            if not re.fullmatch(r"\d{12}", account):
                raise ValueError(f"{account!r} is not a 12-digit AWS account id")
        return _no_duplicates(value)

    @field_validator("region", "backup_copy_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value not in catalogue.regions():
            close = catalogue.closest(value, catalogue.regions())
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"{value!r} is not an AWS region ({_catalogue_note()}){hint}")
        return value

    @field_validator("vpc_cidr", "pod_cidr", mode="before")
    @classmethod
    def _strict_network(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid IPv4 network CIDR ({exc})") from None
        return value

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr_range(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not 16 <= value.prefixlen <= 28:
            raise ValueError(f"{value} must have a prefix between /16 and /28 (AWS VPC limits)")
        if not (value.is_private or value.subnet_of(POD_CIDR_RANGE)):
            raise ValueError(f"{value} is not a private (RFC 1918) or shared (100.64.0.0/10) address range")
        return value

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr_range(cls, value: ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
        if value is None:
            return value
        if not value.subnet_of(POD_CIDR_RANGE):
            raise ValueError(f"{value} must lie inside {POD_CIDR_RANGE}")
        if not 16 <= value.prefixlen <= 25:
            raise ValueError(f"{value} must have a prefix between /16 and /25 so each of 8 zone slots is at least a /28")
        return value

    @field_validator("private_subnet_prefix", "public_subnet_prefix", "isolated_subnet_prefix")
    @classmethod
    def _subnet_prefix(cls, value: int) -> int:
        if not 16 <= value <= 28:
            raise ValueError(f"/{value} is outside the /16 to /28 AWS allows for a subnet")
        return value

    @field_validator("availability_zones")
    @classmethod
    def _zones_unique(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must list at least one zone, or be left out to use every zone")
        return _no_duplicates(value)

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _ENDPOINT_NAME.match(name):
                raise ValueError(f"{name!r} is not a service short name such as 'ecr.api'")
            if name == "s3":
                raise ValueError("'s3' is served by the gateway endpoint the network always creates")
        return _no_duplicates(value)

    @field_validator("flow_log_retention_days", "control_plane_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a retention CloudWatch Logs accepts ({', '.join(map(str, LOG_RETENTION_DAYS))})")
        return value

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str | None) -> str | None:
        if value is not None and not _CLUSTER_NAME.match(value):
            raise ValueError(f"{value!r} must be 1-100 letters, digits, '-' or '_', starting with a letter or digit")
        return value

    @field_validator("kubernetes_version")
    @classmethod
    def _kubernetes_version(cls, value: str) -> str:
        if value not in versions.ADDON_VERSIONS:
            raise ValueError(f"{value!r} has no pinned add-on versions (supported: {', '.join(versions.ADDON_VERSIONS)})")
        return value

    @field_validator("cluster_public_access_cidrs")
    @classmethod
    def _public_access(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr, network in _networks(value):
            if network.prefixlen < 8:
                raise ValueError(f"{cidr} opens the Kubernetes API to a large part of the internet; list your own egress ranges (/8 or longer)")
            if not network.is_global:
                raise ValueError(f"{cidr} is not a public range; private clients reach the private endpoint")
        return _no_duplicates(value)

    @field_validator("cluster_api_access_cidrs")
    @classmethod
    def _api_access(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr, network in _networks(value):
            if not (network.is_private or network.subnet_of(POD_CIDR_RANGE)) or network.prefixlen < 16:
                raise ValueError(f"{cidr} is not a private range of /16 or longer; list the deploy runners' own "
                                 "subnets (public ranges go in clusterPublicAccessCidrs)")
        return _no_duplicates(value)

    @field_validator("cluster_admin_role_arns")
    @classmethod
    def _admin_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not _ROLE_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return _no_duplicates(value)

    @field_validator("system_node_instance_types")
    @classmethod
    def _instance_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one instance type")
        for name in value:
            if not _INSTANCE_TYPE.match(name) or not catalogue.instance_type_known(name):
                close = catalogue.closest(name, catalogue.instance_types())
                hint = f"; did you mean {close}?" if close else ""
                raise ValueError(f"{name!r} is not an EC2 instance type AWS offers ({_catalogue_note()}){hint}")
        return _no_duplicates(value)

    @field_validator("system_nodes_per_zone")
    @classmethod
    def _nodes_per_zone(cls, value: int) -> int:
        if value > 10:
            raise ValueError(f"{value} system nodes per zone is more than the 10 this node group is sized for")
        return value

    @field_validator("scan_pool_consolidate_after")
    @classmethod
    def _consolidate_after(cls, value: str) -> str:
        return karpenter_plan.check_duration(value)

    @field_validator("database_engine_version")
    @classmethod
    def _engine_version(cls, value: str) -> str:
        if not re.match(r"^(1[4-9])(\.\d+)?$", value):
            raise ValueError(f"{value!r} is not a PostgreSQL version from 14 on, such as '17' or '17.7'")
        return value

    @field_validator("database_instance_class")
    @classmethod
    def _db_class(cls, value: str | None) -> str | None:
        offered = catalogue.rds_instance_classes("postgres")
        if value is not None and (not _DB_CLASS.match(value) or value not in offered):
            close = catalogue.closest(value, offered)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"{value!r} is not a DB instance class RDS for PostgreSQL offers ({_catalogue_note()}){hint}")
        return value

    @field_validator("backup_frequency_hours")
    @classmethod
    def _frequency(cls, value: int) -> int:
        if 24 % value:
            raise ValueError(f"{value} does not divide the day; use 1, 2, 3, 4, 6, 8, 12 or 24")
        return value

    @field_validator("scan_engines")
    @classmethod
    def _engines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one scan engine")
        for engine in value:
            if not re.match(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$", engine) or engine == "git-fetch":
                raise ValueError(f"{engine!r} is not an engine name: 2-32 lower-case letters, digits or '-' "
                                 "(and not 'git-fetch', the fetch step's image)")
        return _no_duplicates(value)

    @field_validator("scan_image_tag")
    @classmethod
    def _image_tag(cls, value: str) -> str:
        return _pinned_tag(value)

    @field_validator("peak_days")
    @classmethod
    def _peak_days(cls, value: str) -> str:
        if not _CRON_DAYS.match(value):
            raise ValueError(f"{value!r} is not a cron day-of-week field of digits 0-6 such as '1-5' or '1,3,5'")
        peak_window.day_numbers(value)
        return value

    @field_validator("api_certificate_arn")
    @classmethod
    def _certificate(cls, value: str | None) -> str | None:
        if value is not None and not _CERTIFICATE_ARN.match(value):
            raise ValueError(f"{value!r} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)")
        return value

    @field_validator("scan_queue_prefix")
    @classmethod
    def _queue_prefix(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_.-]{0,100}$", value):
            raise ValueError(f"{value!r} is not a queue name prefix (lower-case letters, digits, '_', '.', '-')")
        return value

    @field_validator("dashboard_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", value):
            raise ValueError(f"{value!r} is not a lower-case DNS name such as 'dashboard.example.com'")
        return value

    @field_validator("dashboard_hosted_zone_id")
    @classmethod
    def _zone_id(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^Z[A-Z0-9]{1,31}$", value):
            raise ValueError(f"{value!r} is not a Route 53 hosted zone id such as 'Z0123456789ABCDEFGHIJ'")
        return value

    @field_validator("dashboard_web_acl_arn")
    @classmethod
    def _web_acl(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/.+$", value):
            raise ValueError(f"{value!r} is not a CLOUDFRONT-scope WAFv2 web ACL ARN "
                             "(arn:aws:wafv2:us-east-1:<account>:global/webacl/...)")
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
        offered = catalogue.cache_node_types()
        if value not in offered:
            close = catalogue.closest(value, offered)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"{value!r} is not an ElastiCache node type ({_catalogue_note()}){hint}")
        return value

    @field_validator("cache_engine_version")
    @classmethod
    def _cache_version(cls, value: str) -> str:
        if not re.match(r"^[67]\.\d+$", value):
            raise ValueError(f"{value!r} is not a Redis OSS 6 or 7 version such as '7.1'")
        return value

    # ----- cross-field rules -------------------------------------------------------------
    # Each rule yields its problems instead of raising, so one run reports every one of them.

    @model_validator(mode="after")
    def _cross_checks(self) -> "StackConfig":
        problems = [*self._network_problems(), *self._environment_problems(), *self._data_tier_problems(),
                    *self._service_problems(), *self._catalogue_problems()]
        if problems:
            raise _KeyedErrors(problems)
        return self

    def _network_problems(self) -> Iterator[_KeyedError]:
        if self.availability_zones is not None:
            yield from self._zone_problems(self.availability_zones)
        try:
            network_plan.check_layout(self.vpc_cidr, self.subnet_prefixes)
        except PlanError as exc:
            yield _KeyedError("vpcCidr", f"{self.vpc_cidr} is too small for the subnet plan: {exc}")
        if self.pod_cidr is not None and self.pod_cidr.overlaps(self.vpc_cidr):
            yield _KeyedError("podCidr", f"{self.pod_cidr} overlaps vpcCidr {self.vpc_cidr}")
        capacity = self.pod_addresses_per_zone
        if self.target_pods_per_zone > capacity:
            where = "the pod subnet" if self.pod_cidr else f"the private /{self.private_subnet_prefix}"
            yield _KeyedError(
                "targetPodsPerZone",
                f"{self.target_pods_per_zone} pods do not fit {where} of a zone ({capacity} addresses); "
                "set podCidr (a secondary CIDR in 100.64.0.0/10) or a shorter privateSubnetPrefix",
            )
        if "secretsmanager" not in self.interface_endpoints:
            yield _KeyedError("interfaceEndpoints", "must include secretsmanager: the RDS Proxy reads its login from "
                              "Secrets Manager from the isolated subnets, which have no other way out")
        if not self.cluster_public_access_cidrs and not self.cluster_api_access_cidrs:
            yield _KeyedError("clusterApiAccessCidrs", "the cluster API is private (no clusterPublicAccessCidrs) and "
                              "no deploy runner is admitted to it, so no `pulumi up` could reach it; list the "
                              "runners' private CIDRs (README, deploying for real)")

    def _environment_problems(self) -> Iterator[_KeyedError]:
        """The rules of the stack's environment (policies/common/environments.py), which the
        policy packs apply to the declared resources as well."""
        rules = environments.RULES[self.environment]
        env = f"a {self.environment} stack"
        if self.nat_mode not in rules.nat_modes:
            yield _KeyedError("natMode", f"{self.nat_mode!r} is a single point of failure; {env} needs "
                              f"{' or '.join(repr(m) for m in rules.nat_modes)}")
        if rules.protect_stateful_resources and not self.protect_stateful_resources:
            yield _KeyedError("protectStatefulResources", f"{env} keeps its data protected (deletion protection, "
                              "protect, retainOnDelete); only development stacks may turn it off")
        if self.database_backup_retention_days < rules.minimum_database_backup_days:
            yield _KeyedError("databaseBackupRetentionDays", f"{self.database_backup_retention_days} days is below "
                              f"the {rules.minimum_database_backup_days} {env} needs")
        if self.cache_snapshot_retention_days < rules.minimum_cache_snapshot_days:
            yield _KeyedError("cacheSnapshotRetentionDays", f"{self.cache_snapshot_retention_days} days is below "
                              f"the {rules.minimum_cache_snapshot_days} {env} needs")
        if rules.backup_copy_region and self.backup_copy_region is None:
            yield _KeyedError("backupCopyRegion", f"{env} needs a second region for backup copies (region-level recovery)")
        if rules.custom_dashboard_domain and self.dashboard_domain is None:
            yield _KeyedError("dashboardDomain", f"{env} serves the dashboard on its own domain: CloudFront's default "
                              "*.cloudfront.net certificate always accepts TLS 1.0; set dashboardDomain and "
                              "dashboardHostedZoneId (TLS 1.2 or newer)")

    def _data_tier_problems(self) -> Iterator[_KeyedError]:
        for key, enabled in (("repoCacheReplication", self.repo_cache_replication),
                             ("registryReplication", self.registry_replication)):
            if enabled and self.backup_copy_region is None:
                yield _KeyedError(key, "replicates to backupCopyRegion, which is not set")
        wanted = self.scan_max_parallel_jobs * self.scan_job_cpu * len(self.scan_engines)
        if wanted > self.scan_pool_cpu_limit:
            yield _KeyedError("scanMaxParallelJobs",
                              f"{len(self.scan_engines)} engines x {self.scan_max_parallel_jobs} Jobs x {self.scan_job_cpu} "
                              f"vCPU = {wanted} vCPU, more than scanPoolCpuLimit {self.scan_pool_cpu_limit}; Jobs "
                              "beyond the limit would wait for capacity Karpenter may not launch")
        if self.dashboard_hosted_zone_id and not self.dashboard_domain:
            yield _KeyedError("dashboardHostedZoneId", "is only used with dashboardDomain, which is not set")
        if self.dashboard_domain and not self.dashboard_hosted_zone_id:
            yield _KeyedError("dashboardDomain", "needs dashboardHostedZoneId: CloudFront takes only an issued "
                              "certificate, and the program validates it through that zone")
        if self.backup_copy_region == self.region:
            yield _KeyedError("backupCopyRegion", f"must be another region than the stack's own ({self.region})")
        if self.database_deployment == "multi-az-cluster":
            if self.backup_copy_region is not None:
                yield _KeyedError("databaseDeployment", "multi-az-cluster cannot have its backups copied to "
                                  "backupCopyRegion (AWS Backup does not copy Multi-AZ DB cluster snapshots); use "
                                  "multi-az-instance where region-level recovery is required")
            if self.database_instance_class and not _CLUSTER_CLASS.match(self.database_instance_class):
                yield _KeyedError("databaseInstanceClass",
                                  f"{self.database_instance_class} cannot run a Multi-AZ DB cluster; use a class with local "
                                  "NVMe storage such as db.m6gd.large or db.r6gd.large")
        elif self.database_instance_class and self.database_instance_class.startswith(_CLUSTER_ONLY):
            yield _KeyedError("databaseInstanceClass", f"{self.database_instance_class} runs Multi-AZ DB clusters only "
                              "(databaseDeployment multi-az-cluster)")
        if self.database_max_allocated_storage_gib < self.database_allocated_storage_gib:
            yield _KeyedError("databaseMaxAllocatedStorageGib",
                              f"{self.database_max_allocated_storage_gib} is below databaseAllocatedStorageGib "
                              f"{self.database_allocated_storage_gib}")

    def _service_problems(self) -> Iterator[_KeyedError]:
        if self.peak_end_hour_utc <= self.peak_start_hour_utc:
            yield _KeyedError("peakEndHourUtc", f"{self.peak_end_hour_utc} is not after peakStartHourUtc "
                              f"{self.peak_start_hour_utc} (the window is one stretch of a day, UTC)")
        images = {*self.scan_engines, "git-fetch"}
        seen: set[str] = set()
        for index, service in enumerate(self.services):
            key = f"services[{index}]"
            if service.name in images:
                yield _KeyedError(f"{key}.name", f"{service.name!r} is already an image of the scan Jobs; choose another name")
            if service.name in seen:
                yield _KeyedError(f"{key}.name", f"{service.name!r} is listed more than once")
            seen.add(service.name)
            if service.ingress_path is not None:
                clash = [s.name for s in self.services[:index] if s.ingress_path == service.ingress_path]
                if clash:
                    yield _KeyedError(f"{key}.ingressPath", f"{service.ingress_path} is already routed to {clash[0]}")
        wanted = sum(s.max_replicas * s.cpu_millicores for s in self.services) / 1000
        if wanted > self.services_pool_cpu_limit:
            yield _KeyedError("services", f"the services at maxReplicas request {wanted:g} vCPU, more than "
                              f"servicesPoolCpuLimit {self.services_pool_cpu_limit}; lower maxReplicas or raise the limit")
        memory = sum(s.max_replicas * s.memory_mib for s in self.services) / 1024
        if memory > self.services_pool_memory_gib:
            yield _KeyedError("services", f"the services at maxReplicas request {memory:g} GiB of memory, more than "
                              f"servicesPoolMemoryGib {self.services_pool_memory_gib}; lower maxReplicas or raise the limit")
        if self.api_certificate_arn and self.api_certificate_arn.split(":")[3] != self.region:
            yield _KeyedError("apiCertificateArn", f"is in {self.api_certificate_arn.split(':')[3]}; a load balancer "
                              f"takes a certificate from its own region ({self.region})")
        if self.api_ingress_scheme == "internet-facing" and self.api_certificate_arn is None:
            yield _KeyedError("apiIngressScheme", "internet-facing needs apiCertificateArn: the API never listens "
                              "in plain HTTP on the internet")

    def _catalogue_problems(self) -> Iterator[_KeyedError]:
        """What AWS offers (catalogue/aws.json) and needs the region or another key to decide."""
        offered = catalogue.mq_instance_types("RabbitMQ", self.broker_engine_version)
        if not offered:
            yield _KeyedError("brokerEngineVersion", f"{self.broker_engine_version!r} is not a RabbitMQ version Amazon MQ "
                              f"offers ({', '.join(catalogue.mq_engine_versions('RabbitMQ'))}; {_catalogue_note()})")
        elif self.broker_instance_type not in offered:
            yield _KeyedError("brokerInstanceType", f"{self.broker_instance_type!r} is not offered for RabbitMQ "
                              f"{self.broker_engine_version} ({', '.join(sorted(offered))})")

    def _zone_problems(self, zones) -> Iterator[_KeyedError]:
        """Names of this region, each with a CIDR slot, no more than the region has, and enough
        for the environment. Which names exist is the account's own view (names map to zones
        differently per account): the zone look-up checks those before any resource exists."""
        pattern = network_plan.zone_letter_pattern(self.region)
        for zone in zones:
            if not pattern.match(zone):
                yield _KeyedError("availabilityZones", f"{zone!r} is not a zone of region {self.region}")
                continue
            try:
                network_plan.zone_slot(zone, self.region)
            except PlanError as exc:
                yield _KeyedError("availabilityZones", str(exc))
        standard = len(catalogue.standard_zones(self.region))
        if standard and len(zones) > standard:
            yield _KeyedError("availabilityZones", f"lists {len(zones)} zones; {self.region} has {standard} "
                              f"standard zones ({_catalogue_note()})")
        minimum = environments.RULES[self.environment].minimum_zones
        if len(zones) < minimum:
            yield _KeyedError("availabilityZones", f"a {self.environment} stack needs at least {minimum} zones "
                              f"(to survive the loss of one), got {len(zones)}")

    # ----- derived values ----------------------------------------------------------------

    @property
    def subnet_prefixes(self) -> dict[str, int]:
        return {
            "private": self.private_subnet_prefix,
            "public": self.public_subnet_prefix,
            "isolated": self.isolated_subnet_prefix,
        }

    @property
    def pod_addresses_per_zone(self) -> int:
        if self.pod_cidr is not None:
            return network_plan.usable_addresses(network_plan.zone_block(self.pod_cidr, 0))
        return 2 ** (32 - self.private_subnet_prefix) - network_plan.AWS_RESERVED_PER_SUBNET

    @property
    def eks_cluster_name(self) -> str:
        return self.cluster_name or f"{PROJECT}-{self.stack}"

    @property
    def db_instance_class(self) -> str:
        if self.database_instance_class:
            return self.database_instance_class
        return "db.m6gd.large" if self.database_deployment == "multi-az-cluster" else "db.m7g.large"

    @property
    def scan_pool_limits(self) -> karpenter_plan.PoolLimits:
        return karpenter_plan.PoolLimits(self.scan_pool_cpu_limit, self.scan_pool_memory_gib)

    @property
    def services_pool_limits(self) -> karpenter_plan.PoolLimits:
        return karpenter_plan.PoolLimits(self.services_pool_cpu_limit, self.services_pool_memory_gib)

    @property
    def peak_window(self) -> PeakWindow:
        return PeakWindow(self.peak_days, self.peak_start_hour_utc, self.peak_end_hour_utc)

    def default_tags(self) -> dict[str, str]:
        return {
            "project": PROJECT,
            "stack": self.stack,
            "environment": self.environment,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
        }

    def resolve_zones(self, available: list[str], zone_ids: Mapping[str, str] | None = None) -> list[str]:
        """The zones every component uses: the configured list checked against the region's
        standard zones (the account's own view, from the look-up), or all of them, and what needs
        them known. `zone_ids` maps the account's zone names to zone ids (the same physical zone
        in every account). Raises ConfigError (every problem, one line each) before any resource
        exists."""
        zones, problems = self._resolve_zones(available)
        if not problems:
            problems = list(self._zonal_problems(zones, dict(zone_ids or {})))
        if problems:
            raise ConfigError("\n".join(f"{_full_key(p.key)}: {p}" for p in problems))
        return zones

    def _resolve_zones(self, available: list[str]) -> tuple[list[str], list[_KeyedError]]:
        if self.availability_zones is None:
            zones = sorted(available)
            if not zones:
                return zones, [_KeyedError("region", f"region {self.region} reports no standard availability zones")]
            return zones, list(self._zone_problems(zones))
        missing = [z for z in self.availability_zones if z not in available]
        if missing:
            return [], [_KeyedError("availabilityZones", f"{', '.join(missing)} is not an available standard zone of "
                                    f"{self.region} (available: {', '.join(sorted(available))})")]
        return list(self.availability_zones), []

    def _zonal_problems(self, zones: list[str], zone_ids: dict[str, str]) -> Iterator[_KeyedError]:
        for index, service in enumerate(self.services):
            if service.min_replicas < len(zones):
                yield _KeyedError(f"services[{index}].minReplicas", f"{service.min_replicas} is fewer than one replica "
                                  f"per zone ({len(zones)} zones); {service.name} would be missing from a zone")
        # The system node group spans every zone: a type offered in only some of them leaves
        # those zones without system nodes whenever it is the one chosen. Offerings are per zone
        # id (names map to zones differently in every account); zones the catalogue has no data
        # for are left to AWS.
        recorded = catalogue.region_zone_ids(self.region)
        checked = {zone: zone_ids[zone] for zone in zones if zone_ids.get(zone) in recorded}
        for name in self.system_node_instance_types:
            offered = catalogue.instance_type_zone_ids(self.region, name)
            missing = [f"{zone} ({zone_id})" for zone, zone_id in checked.items() if zone_id not in offered]
            if missing:
                yield _KeyedError("systemNodeInstanceTypes", f"{name} is not offered in {', '.join(missing)} "
                                  f"({_catalogue_note()}); list types every zone of the stack offers")


def _networks(cidrs: tuple[str, ...]) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    """Each CIDR with its network, strictly parsed (no host bits)."""
    for cidr in cidrs:
        try:
            yield cidr, ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"{cidr!r} is not a valid IPv4 network CIDR ({exc})") from None


def _no_duplicates(values: tuple[str, ...]) -> tuple[str, ...]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"lists {', '.join(duplicates)} more than once")
    return values


class _KeyedError(ValueError):
    """One broken rule, with the key (relative to its model, camelCase) a user edits."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class _KeyedErrors(ValueError):
    """Every broken cross-field rule of one model."""

    def __init__(self, errors: list[_KeyedError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


#: Keys whose values are lists (Pulumi hands them to programs JSON-encoded).
_LIST_KEYS = {field.alias for field in StackConfig.model_fields.values() if "tuple" in str(field.annotation)}
#: The `aws:` keys the program reads (key -> model alias). Its resources go through one explicit
#: provider, which reads no `aws:` config of its own: these are handed to it, and the default
#: provider that answers the zone and account look-ups reads them from the config, so both see
#: the same account. Any other `aws:` setting would reach the look-ups only, so it is refused.
_AWS_KEYS = {"region": "region", "profile": "awsProfile", "allowedAccountIds": "awsAllowedAccountIds",
             "forbiddenAccountIds": "awsForbiddenAccountIds"}
_KNOWN_KEYS = {field.alias for name, field in StackConfig.model_fields.items()
               if name != "stack" and field.alias not in _AWS_KEYS.values()}
#: Namespaces of the engine's own settings (`pulumi:tags`, ...), which the program does not read.
_ENGINE_NAMESPACES = {"pulumi"}


def _full_key(key: str) -> str:
    for aws_key, alias in _AWS_KEYS.items():
        if key == alias:
            return f"aws:{aws_key}"
    return f"{PROJECT}:{key}"


def _decode(key: str, raw: Any) -> Any:
    """Pulumi hands config to programs as strings; lists arrive JSON-encoded."""
    if key in _LIST_KEYS and isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise _KeyedError(key, f"must be a list, got {raw!r}") from None
        if not isinstance(value, list):
            raise _KeyedError(key, f"must be a list, got {raw!r}")
        return value
    return raw


def _unknown_key(full_key: str) -> str | None:
    """The problem with a key the program does not read, or None when it reads it."""
    namespace, _, key = full_key.partition(":")
    if namespace == PROJECT:
        known, prefix = _KNOWN_KEYS, f"{PROJECT}:"
    elif namespace == "aws":
        known, prefix = _AWS_KEYS, "aws:"
    elif namespace in _ENGINE_NAMESPACES:
        return None
    else:
        close = difflib.get_close_matches(namespace, [PROJECT, "aws"], n=1)
        hint = f"; did you mean {close[0]}:{key}?" if close else ""
        return (f"{full_key}: the program reads no '{namespace}' namespace (only {PROJECT}: and aws: keys)"
                f"{hint}")
    if key in known:
        return None
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
    if namespace == "aws":
        return (f"{full_key}: unknown key{hint}; the program reads {', '.join('aws:' + k for k in _AWS_KEYS)} "
                "(each handed to its explicit AWS provider too): another aws: setting would reach the look-ups "
                "but not the resources")
    return f"{full_key}: unknown key{hint}"


def parse(raw_config: Mapping[str, Any], stack: str) -> StackConfig:
    """Build the model from flat Pulumi config (`ns:key` -> value). Raises ConfigError naming
    every problem, one line each."""
    values: dict[str, Any] = {"stack": stack}
    problems: list[str] = []
    for full_key, raw in sorted(raw_config.items()):
        problem = _unknown_key(full_key)
        if problem:
            problems.append(problem)
            continue
        namespace, _, key = full_key.partition(":")
        if namespace == "aws":
            key = _AWS_KEYS[key]
        elif namespace != PROJECT:
            continue
        try:
            values[key] = _decode(key, raw)
        except _KeyedError as exc:
            problems.append(f"{_full_key(exc.key)}: {exc}")
    try:
        model = StackConfig.model_validate(values)
    except ValidationError as exc:
        problems += _errors(exc)
    else:
        if not problems:
            return model
    raise ConfigError("\n".join(problems))


def _errors(exc: ValidationError) -> list[str]:
    """One line per problem, each naming its key."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        cause = error.get("ctx", {}).get("error")
        keyed = cause.errors if isinstance(cause, _KeyedErrors) else [cause] if isinstance(cause, _KeyedError) else []
        for item in keyed:
            nested = f"{_location(error['loc'])}.{item.key}" if error["loc"] else item.key
            lines.append(f"{_full_key(nested)}: {item}")
        if keyed:
            continue
        key = _location(error["loc"]) if error["loc"] else "config"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{_full_key(key)}: {message}")
    return lines


def _location(loc: tuple) -> str:
    """`('services', 0, 'port')` -> `services[0].port`."""
    text = str(loc[0])
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def load_from_pulumi() -> StackConfig:
    """Read the running stack's whole config (every namespace) and parse it."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse(raw, pulumi.get_stack())
