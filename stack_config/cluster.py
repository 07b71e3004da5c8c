"""The cluster tier's settings: the EKS control plane, its access, the system nodes and the
Karpenter pools' limits."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import Field, PositiveInt, field_validator

import catalogue
from components.common import versions
from components.eks import karpenter_plan
from stack_config.base import POD_CIDR_RANGE, KeyedError, Section, networks, no_duplicates, offered, retention

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")


class ClusterSection(Section):
    cluster_name: str | None = None
    """EKS cluster name used in discovery tags. Default `scanner-<stack>`."""
    control_plane_log_retention_days: PositiveInt = 90
    """Retention of the EKS control-plane log group; a value CloudWatch Logs accepts. Default 90."""
    kubernetes_version: str = versions.DEFAULT_KUBERNETES_VERSION
    """EKS Kubernetes version; one with pinned add-on versions in components/common/versions.py."""
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

    @field_validator("control_plane_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return retention(value)

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
            raise ValueError(
                f"{value!r} has no pinned add-on versions (supported: {', '.join(versions.ADDON_VERSIONS)})"
            )
        return value

    @field_validator("cluster_public_access_cidrs")
    @classmethod
    def _public_access(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr, network in networks(value):
            if network.prefixlen < 8:
                raise ValueError(
                    f"{cidr} opens the Kubernetes API to a large part of the internet; "
                    "list your own egress ranges (/8 or longer)"
                )
            if not network.is_global:
                raise ValueError(f"{cidr} is not a public range; private clients reach the private endpoint")
        return no_duplicates(value)

    @field_validator("cluster_api_access_cidrs")
    @classmethod
    def _api_access(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr, network in networks(value):
            if not (network.is_private or network.subnet_of(POD_CIDR_RANGE)) or network.prefixlen < 16:
                raise ValueError(
                    f"{cidr} is not a private range of /16 or longer; list the deploy runners' own "
                    "subnets (public ranges go in clusterPublicAccessCidrs)"
                )
        return no_duplicates(value)

    @field_validator("cluster_admin_role_arns")
    @classmethod
    def _admin_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not _ROLE_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return no_duplicates(value)

    @field_validator("system_node_instance_types")
    @classmethod
    def _instance_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one instance type")
        for name in value:
            # A name not shaped like an instance type is not looked up (and gets no did-you-mean).
            offered(
                name,
                catalogue.instance_types() if _INSTANCE_TYPE.match(name) else (),
                "an EC2 instance type AWS offers",
            )
        return no_duplicates(value)

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

    def problems(self) -> Iterator[KeyedError]:
        if not self.cluster_public_access_cidrs and not self.cluster_api_access_cidrs:
            yield KeyedError(
                "clusterApiAccessCidrs",
                "the cluster API is private (no clusterPublicAccessCidrs) and "
                "no deploy runner is admitted to it, so no `pulumi up` could reach it; list the "
                "runners' private CIDRs (README, deploying for real)",
            )

    @property
    def scan_pool_limits(self) -> karpenter_plan.PoolLimits:
        return karpenter_plan.PoolLimits(self.scan_pool_cpu_limit, self.scan_pool_memory_gib)

    @property
    def services_pool_limits(self) -> karpenter_plan.PoolLimits:
        return karpenter_plan.PoolLimits(self.services_pool_cpu_limit, self.services_pool_memory_gib)
