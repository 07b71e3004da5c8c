"""The whole stack configuration: who owns the stack, its environment and account guards, one
section per tier, and the rules that join tiers (an environment's minimums, one tier's demand
against another's capacity)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import Field, field_validator

import catalogue
from components.network import plan as network_plan
from components.network.plan import PlanError
from policies.common import environments
from stack_config.base import PROJECT, ConfigError, KeyedError, Section, catalogue_note, no_duplicates, offered
from stack_config.cluster import ClusterSection
from stack_config.dashboard import DashboardSection
from stack_config.data import DataSection
from stack_config.drill import DrillSection
from stack_config.monitoring import MonitoringSection
from stack_config.network import NetworkSection
from stack_config.scans import ScansSection
from stack_config.services import ServicesSection

#: The sections, by attribute name; their keys stay flat in the stack file.
SECTIONS: dict[str, type[Section]] = {
    "network": NetworkSection,
    "cluster": ClusterSection,
    "data": DataSection,
    "scans": ScansSection,
    "services": ServicesSection,
    "dashboard": DashboardSection,
    "monitoring": MonitoringSection,
    "drill": DrillSection,
}


class StackConfig(Section):
    """Typed view of the stack's `scanner:*` config (camelCase keys) and its `aws:` keys."""

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
    environment: Literal["production", "staging", "development"] = Field(alias="environment")
    """Required. Chooses the rules of policies/common/environments.py."""
    owner: str = Field(alias="owner", min_length=1)
    """Required. Team that owns the stack; becomes the `owner` default tag."""
    cost_center: str = Field(alias="costCenter", min_length=1)
    """Required. Cost centre for billing; becomes the `cost-center` default tag."""
    protect_stateful_resources: bool = Field(default=True, alias="protectStatefulResources")
    """Deletion protection, Pulumi `protect` and `retainOnDelete` on databases, brokers, caches,
    their keys and secrets, and backup vaults. Opt out only explicitly (development). Default true."""

    network: NetworkSection = Field(default_factory=NetworkSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    data: DataSection = Field(default_factory=DataSection)
    scans: ScansSection = Field(default_factory=ScansSection)
    services: ServicesSection = Field(default_factory=ServicesSection)
    dashboard: DashboardSection = Field(default_factory=DashboardSection)
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)
    drill: DrillSection = Field(default_factory=DrillSection)

    @field_validator("allowed_account_ids", "forbidden_account_ids")
    @classmethod
    def _account_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for account in value:
            if not re.fullmatch(r"\d{12}", account):
                raise ValueError(f"{account!r} is not a 12-digit AWS account id")
        return no_duplicates(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return offered(value, catalogue.regions(), "an AWS region")

    def problems(self) -> Iterator[KeyedError]:
        """Rules that join tiers; each section has checked its own by now."""
        if self.network.availability_zones is not None:
            yield from self.zone_problems(self.network.availability_zones)
        yield from self._environment_problems()
        data, scans, services, cluster = self.data, self.scans, self.services, self.cluster
        if data.backup_copy_region == self.region:
            yield KeyedError("backupCopyRegion", f"must be another region than the stack's own ({self.region})")
        for key, enabled in (
            ("repoCacheReplication", scans.repo_cache_replication),
            ("registryReplication", scans.registry_replication),
        ):
            if enabled and data.backup_copy_region is None:
                yield KeyedError(key, "replicates to backupCopyRegion, which is not set")
        wanted = scans.scan_max_parallel_jobs * scans.scan_job_cpu * len(scans.scan_engines)
        if wanted > cluster.scan_pool_cpu_limit:
            yield KeyedError(
                "scanMaxParallelJobs",
                f"{len(scans.scan_engines)} engines x {scans.scan_max_parallel_jobs} Jobs x "
                f"{scans.scan_job_cpu} vCPU = {wanted} vCPU, more than scanPoolCpuLimit "
                f"{cluster.scan_pool_cpu_limit}; Jobs beyond the limit would wait for capacity "
                "Karpenter may not launch",
            )
        for index, service in enumerate(services.services):
            if service.name in scans.images:
                yield KeyedError(
                    f"services[{index}].name",
                    f"{service.name!r} is already an image of the scan Jobs; choose another name",
                )
        cpu, memory = services.pool_demand
        if cpu > cluster.services_pool_cpu_limit:
            yield KeyedError(
                "services",
                f"the services at maxReplicas request {cpu:g} vCPU, more than "
                f"servicesPoolCpuLimit {cluster.services_pool_cpu_limit}; lower maxReplicas or raise the limit",
            )
        if memory > cluster.services_pool_memory_gib:
            yield KeyedError(
                "services",
                f"the services at maxReplicas request {memory:g} GiB of memory, more than "
                f"servicesPoolMemoryGib {cluster.services_pool_memory_gib}; lower maxReplicas or raise the limit",
            )
        certificate = services.api_certificate_arn
        if certificate and certificate.split(":")[3] != self.region:
            yield KeyedError(
                "apiCertificateArn",
                f"is in {certificate.split(':')[3]}; a load balancer takes a "
                f"certificate from its own region ({self.region})",
            )

    def _environment_problems(self) -> Iterator[KeyedError]:
        """The rules of the stack's environment (policies/common/environments.py), which the
        policy packs apply to the declared resources as well."""
        rules = environments.RULES[self.environment]
        env = f"a {self.environment} stack"
        if self.network.nat_mode not in rules.nat_modes:
            yield KeyedError(
                "natMode",
                f"{self.network.nat_mode!r} is a single point of failure; {env} needs "
                f"{' or '.join(repr(m) for m in rules.nat_modes)}",
            )
        if rules.protect_stateful_resources and not self.protect_stateful_resources:
            yield KeyedError(
                "protectStatefulResources",
                f"{env} keeps its data protected (deletion protection, "
                "protect, retainOnDelete); only development stacks may turn it off",
            )
        if self.data.database_backup_retention_days < rules.minimum_database_backup_days:
            yield KeyedError(
                "databaseBackupRetentionDays",
                f"{self.data.database_backup_retention_days} days is "
                f"below the {rules.minimum_database_backup_days} {env} needs",
            )
        if self.data.cache_snapshot_retention_days < rules.minimum_cache_snapshot_days:
            yield KeyedError(
                "cacheSnapshotRetentionDays",
                f"{self.data.cache_snapshot_retention_days} days is "
                f"below the {rules.minimum_cache_snapshot_days} {env} needs",
            )
        if rules.backup_copy_region and self.data.backup_copy_region is None:
            yield KeyedError(
                "backupCopyRegion", f"{env} needs a second region for backup copies (region-level recovery)"
            )
        if rules.custom_dashboard_domain and self.dashboard.dashboard_domain is None:
            yield KeyedError(
                "dashboardDomain",
                f"{env} serves the dashboard on its own domain: CloudFront's default "
                "*.cloudfront.net certificate always accepts TLS 1.0; set dashboardDomain and "
                "dashboardHostedZoneId (TLS 1.2 or newer)",
            )

    def zone_problems(self, zones) -> Iterator[KeyedError]:
        """Names of this region, each with a CIDR slot, no more than the region has, and enough
        for the environment. Which names exist is the account's own view (names map to zones
        differently per account): the zone look-up checks those before any resource exists."""
        pattern = network_plan.zone_letter_pattern(self.region)
        for zone in zones:
            if not pattern.match(zone):
                yield KeyedError("availabilityZones", f"{zone!r} is not a zone of region {self.region}")
                continue
            try:
                network_plan.zone_slot(zone, self.region)
            except PlanError as exc:
                yield KeyedError("availabilityZones", str(exc))
        standard = len(catalogue.standard_zones(self.region))
        if standard and len(zones) > standard:
            yield KeyedError(
                "availabilityZones",
                f"lists {len(zones)} zones; {self.region} has {standard} standard zones ({catalogue_note()})",
            )
        minimum = environments.RULES[self.environment].minimum_zones
        if len(zones) < minimum:
            yield KeyedError(
                "availabilityZones",
                f"a {self.environment} stack needs at least {minimum} zones "
                f"(to survive the loss of one), got {len(zones)}",
            )

    # ----- derived values ----------------------------------------------------------------

    @property
    def eks_cluster_name(self) -> str:
        return self.cluster.cluster_name or f"{PROJECT}-{self.stack}"

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
        from stack_config.loading import full_key

        zones, problems = self._resolve_zones(available)
        if not problems:
            problems = list(self._zonal_problems(zones, dict(zone_ids or {})))
        if problems:
            raise ConfigError("\n".join(f"{full_key(p.key)}: {p}" for p in problems))
        return zones

    def _resolve_zones(self, available: list[str]) -> tuple[list[str], list[KeyedError]]:
        configured = self.network.availability_zones
        if configured is None:
            zones = sorted(available)
            if not zones:
                return zones, [KeyedError("region", f"region {self.region} reports no standard availability zones")]
            return zones, list(self.zone_problems(zones))
        missing = [z for z in configured if z not in available]
        if missing:
            return [], [
                KeyedError(
                    "availabilityZones",
                    f"{', '.join(missing)} is not an available standard zone of "
                    f"{self.region} (available: {', '.join(sorted(available))})",
                )
            ]
        return list(configured), []

    def _zonal_problems(self, zones: list[str], zone_ids: dict[str, str]) -> Iterator[KeyedError]:
        for index, service in enumerate(self.services.services):
            if service.min_replicas < len(zones):
                yield KeyedError(
                    f"services[{index}].minReplicas",
                    f"{service.min_replicas} is fewer than one replica "
                    f"per zone ({len(zones)} zones); {service.name} would be missing from a zone",
                )
        # The system node group spans every zone: a type offered in only some of them leaves
        # those zones without system nodes whenever it is the one chosen. Offerings are per zone
        # id (names map to zones differently in every account); zones the catalogue has no data
        # for are left to AWS.
        recorded = catalogue.region_zone_ids(self.region)
        checked = {zone: zone_ids[zone] for zone in zones if zone_ids.get(zone) in recorded}
        for name in self.cluster.system_node_instance_types:
            offered_in = catalogue.instance_type_zone_ids(self.region, name)
            missing = [f"{zone} ({zone_id})" for zone, zone_id in checked.items() if zone_id not in offered_in]
            if missing:
                yield KeyedError(
                    "systemNodeInstanceTypes",
                    f"{name} is not offered in {', '.join(missing)} "
                    f"({catalogue_note()}); list types every zone of the stack offers",
                )
