"""What each environment demands: one table, read by the stack config and by the policy packs.

The stack config refuses a stack that breaks its environment's rules before any resource is
declared; the packs check the same rules on what the program actually declares (a code change
can break them while the config stays good). Both read this module, so they cannot drift apart,
and a new stack is judged by its `scanner:environment`, never by its name.

Plain Python with no imports beyond the standard library: the packs load it from
`policies/common` beside their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Environment = Literal["production", "staging", "development"]

#: The stack keys the rules (and other policies) are about: what a user edits when one is
#: broken. Policy messages name them; a test checks each is a key of the stack config model.
KEYS = {
    "environment": "scanner:environment",
    "zones": "scanner:availabilityZones",
    "nat": "scanner:natMode",
    "protect": "scanner:protectStatefulResources",
    "database_backups": "scanner:databaseBackupRetentionDays",
    "cache_snapshots": "scanner:cacheSnapshotRetentionDays",
    "copy_region": "scanner:backupCopyRegion",
    "dashboard_domain": "scanner:dashboardDomain",
    "api_access": "scanner:clusterApiAccessCidrs",
    "public_api": "scanner:clusterPublicAccessCidrs",
    "rollout": "scanner:servicesRollout",
    "nodes_per_zone": "scanner:systemNodesPerZone",
    "scan_jobs": "scanner:scanMaxParallelJobs",
    "scan_cpu": "scanner:scanPoolCpuLimit",
}


@dataclass(frozen=True)
class EnvironmentRules:
    minimum_zones: int
    """Zones every tier must span: two survive the loss of one; three keep a majority for
    quorum queues and the database's standby and replica."""
    nat_modes: tuple[str, ...]
    """NAT modes allowed (`single` is one NAT gateway: a zone's outage cuts every zone's egress)."""
    protect_stateful_resources: bool
    """Whether databases, brokers, caches, keys, secrets and vaults must be protected."""
    minimum_database_backup_days: int
    """Shortest automated-backup retention (the point-in-time recovery window)."""
    minimum_cache_snapshot_days: int
    """Shortest ElastiCache snapshot retention."""
    backup_copy_region: bool
    """Whether backups must be copied to a second region."""
    custom_dashboard_domain: bool
    """Whether the dashboard must be served on its own domain: CloudFront's default
    `*.cloudfront.net` certificate always accepts TLS 1.0, only a custom certificate shuts it out."""

    def describe(self) -> str:
        parts = [
            f"{self.minimum_zones}+ zones",
            f"NAT {'|'.join(self.nat_modes)}",
            "protection required" if self.protect_stateful_resources else "protection optional",
            f"database backups >= {self.minimum_database_backup_days} d",
            f"cache snapshots >= {self.minimum_cache_snapshot_days} d",
        ]
        if self.backup_copy_region:
            parts.append("backup copies in a second region")
        if self.custom_dashboard_domain:
            parts.append("dashboard on its own domain")
        return ", ".join(parts)


RULES: dict[str, EnvironmentRules] = {
    "production": EnvironmentRules(
        minimum_zones=3,
        nat_modes=("per-az", "regional"),
        protect_stateful_resources=True,
        minimum_database_backup_days=7,
        minimum_cache_snapshot_days=1,
        backup_copy_region=True,
        custom_dashboard_domain=True,
    ),
    "staging": EnvironmentRules(
        minimum_zones=3,
        nat_modes=("per-az", "regional"),
        protect_stateful_resources=True,
        minimum_database_backup_days=7,
        minimum_cache_snapshot_days=1,
        backup_copy_region=False,
        custom_dashboard_domain=False,
    ),
    # Throwaway stacks: still in every zone of two or more (the drill must have a zone to lose),
    # but one NAT gateway, destroyable data and short retention are allowed.
    "development": EnvironmentRules(
        minimum_zones=2,
        nat_modes=("per-az", "regional", "single"),
        protect_stateful_resources=False,
        minimum_database_backup_days=1,
        minimum_cache_snapshot_days=1,
        backup_copy_region=False,
        custom_dashboard_domain=False,
    ),
}

#: What a stack whose environment cannot be read is held to.
STRICTEST = "production"


def rules_for(environment: object) -> tuple[str, EnvironmentRules]:
    """The environment's name and rules; an unknown or missing environment gets the strictest."""
    name = environment if isinstance(environment, str) and environment in RULES else STRICTEST
    return name, RULES[name]


def stack_config() -> dict:
    """Inside a policy pack: the analysed stack's config (`ns:key` -> value) as the engine hands
    it to the pack (PULUMI_CONFIG), or {} when there is none."""
    import json
    import os

    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except json.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


def stack_environment() -> tuple[str, EnvironmentRules]:
    """Inside a policy pack: the analysed stack's environment, or the strictest when the stack
    config does not say."""
    return rules_for(stack_config().get(KEYS["environment"]))
