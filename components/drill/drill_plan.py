"""The zone drill, planned without Pulumi: for each zone, the FIS experiment that takes that zone
out of every tier, and what each tier loses and keeps.

The experiment follows AWS FIS's "AZ Availability: Power Interruption" scenario, each action on
the stack's own resources (a target per action, at most five ARNs each, the provider's limits):

- `disrupt-network`: every subnet of the zone, of every tier (public ones included: otherwise the
  zone's NAT gateway and load balancer nodes keep working), `aws:network:disrupt-connectivity`
  with scope `all`. It is also the only way to take Amazon MQ's node, EFS's mount target and the
  ALB's nodes in the zone out: FIS has no action for them;
- `stop-system-nodes`, `stop-services-nodes`, `stop-scan-fallback-nodes`: the cluster's running
  on-demand instances in the zone (the managed node group's carry `eks:cluster-name`,
  Karpenter's `eks:eks-cluster-name` and `karpenter.sh/nodepool`; a target's tags must all
  match), started again after the outage, and the action complete if their launcher terminated
  them instead (Karpenter replaces a stopped node; the node group's repair does too);
- `interrupt-scan-spot-nodes`: the scan pool's spot instances in the zone get the two-minute
  interruption notice (`aws:ec2:send-spot-instance-interruptions`) and are reclaimed, as a
  zone's loss reclaims them. EC2 refuses to stop a spot instance of a one-time request, which is
  what Karpenter's CreateFleet launches: a stop action over them would fail the experiment;
- `no-launch-capacity`: insufficient-capacity errors in the zone for Karpenter's controller role,
  and `no-node-group-capacity` for the node group's Auto Scaling group, or they would relaunch
  into it at once (Karpenter's CreateFleet requests over several zones are not covered by the
  action; Karpenter honours the cluster's zonal shift, `settings.enableZonalShift`, so it keeps
  out of the zone once `shift-away` is in place);
- `fail-over-database`: a forced failover of the Multi-AZ primary (`reboot-db-instances` with
  `forceFailover`) or of the Multi-AZ DB cluster (`failover-db-cluster`), only when its writer is
  in the zone: failing over from another zone would move it into the dead one;
- `interrupt-cache`: ElastiCache's power interruption of the zone's node;
- `shift-away`: zonal autoshift of the cluster and the API load balancer away from the zone.

Resource ARNs known only to the deployed stack are `{ref}` placeholders the component fills in:
`{subnet:<tier>}`, `{launcher:<role>}`, `{managed:<name>}`. The database and the cache are found
by the drill tag the program puts on them (`scanner.io/drill-target`): FIS takes no ARN for a
replication group, nor ARNs with the zone parameters these targets need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.eks.karpenter_plan import SCAN_FALLBACK_POOL, SERVICES_POOL
from policies.common import contract

#: How Karpenter tags the instances of a pool.
NODEPOOL_TAG = "karpenter.sh/nodepool"

#: The tag the program puts on what a drill finds by tag (the database, the cache).
DRILL_TAG = contract.DRILL_TARGET_TAG
#: FIS takes at most five resource ARNs per target.
MAX_ARNS = 5
#: The EC2 filter FIS applies to instances (DescribeInstances' zone name).
ZONE_FILTER = "Placement.AvailabilityZone"


@dataclass(frozen=True)
class Drilled:
    """What the stack has that a zone drill takes out, by the names the program gives it."""

    zones: tuple[str, ...]
    name_prefix: str
    subnet_tiers: tuple[str, ...]
    """Subnet tiers with a subnet in every zone (public, private, isolated, pods)."""
    cluster_name: str
    launchers: tuple[str, ...]
    """Names of the roles that launch nodes themselves (`karpenter`)."""
    node_group: bool
    database: Literal["multi-az-instance", "multi-az-cluster"] | None
    cache: bool
    managed_resources: tuple[str, ...]
    """Zonal-shift managed resources (`cluster`, `api-load-balancer`)."""
    minutes: int = 30
    """The outage's length."""
    replica_zone: str | None = None
    """The zone the read replica is pinned to, if any."""
    autoshift_status: Literal["ENABLED", "ANY"] = "ENABLED"
    """Which managed resources the shift takes: those with zonal autoshift on, or any."""
    single_nat_zone: str | None = None
    """The zone of the stack's only NAT gateway (natMode single), if so."""


def drill_tag(prefix: str, what: str) -> str:
    """The value of the drill tag on what a drill finds by tag (`scanner-prod-database`)."""
    return f"{prefix}-{what}"


@dataclass(frozen=True)
class Action:
    name: str
    action_id: str
    tier: str
    target_key: str
    resource_type: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    resource_arns: tuple[str, ...] = ()
    resource_tags: Mapping[str, str] = field(default_factory=dict)
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    target_parameters: Mapping[str, str] = field(default_factory=dict)
    loses: str = ""
    """What the zone's loss of this does, in words for the plan."""


@dataclass(frozen=True)
class ZonePlan:
    zone: str
    actions: tuple[Action, ...]
    keeps: tuple[str, ...]
    """What must keep serving from the other zones."""

    def action(self, name: str) -> Action:
        return next(a for a in self.actions if a.name == name)


def duration(minutes: int) -> str:
    """ISO 8601, as FIS takes it."""
    return f"PT{minutes}M"


def plan_zone(stack: Drilled, zone: str) -> ZonePlan:
    if zone not in stack.zones:
        raise ValueError(f"{zone} is not a zone of the stack ({', '.join(stack.zones)})")
    others = [z for z in stack.zones if z != zone]
    outage = duration(stack.minutes)
    actions = [
        Action(
            "disrupt-network",
            "aws:network:disrupt-connectivity",
            "network",
            "Subnets",
            "aws:ec2:subnet",
            parameters={"scope": "all", "duration": outage},
            resource_arns=tuple(f"{{subnet:{tier}}}" for tier in stack.subnet_tiers),
            loses=f"every subnet of {zone} ({', '.join(stack.subnet_tiers)}): its NAT gateway, endpoint "
            "interfaces, the broker's node, the cache's mount target and the load balancer's nodes there",
        ),
        Action(
            "stop-system-nodes",
            "aws:ec2:stop-instances",
            "cluster",
            "Instances",
            "aws:ec2:instance",
            parameters={"startInstancesAfterDuration": outage, "completeIfInstancesTerminated": "true"},
            resource_tags={"eks:cluster-name": stack.cluster_name},
            filters={ZONE_FILTER: (zone,), "State.Name": ("running",)},
            loses=f"the system nodes in {zone} with their pods (the controllers reschedule elsewhere)",
        ),
        *(
            Action(
                f"stop-{what}-nodes",
                "aws:ec2:stop-instances",
                "cluster",
                "Instances",
                "aws:ec2:instance",
                parameters={"startInstancesAfterDuration": outage, "completeIfInstancesTerminated": "true"},
                resource_tags={"eks:eks-cluster-name": stack.cluster_name, NODEPOOL_TAG: pool},
                filters={ZONE_FILTER: (zone,), "State.Name": ("running",)},
                loses=f"Karpenter's {pool} nodes in {zone} (on demand), with their pods",
            )
            for what, pool in (("services", SERVICES_POOL), ("scan-fallback", SCAN_FALLBACK_POOL))
        ),
        Action(
            "interrupt-scan-spot-nodes",
            "aws:ec2:send-spot-instance-interruptions",
            "cluster",
            "SpotInstances",
            "aws:ec2:spot-instance",
            parameters={"durationBeforeInterruption": "PT2M"},
            resource_tags={"eks:eks-cluster-name": stack.cluster_name, NODEPOOL_TAG: contract.SCAN_POOL},
            filters={ZONE_FILTER: (zone,), "State.Name": ("running",)},
            loses=f"the scan pool's spot nodes in {zone}, reclaimed after the two-minute notice (their scans "
            "restart elsewhere)",
        ),
        Action(
            "no-launch-capacity",
            "aws:ec2:api-insufficient-instance-capacity-error",
            "cluster",
            "Roles",
            "aws:iam:role",
            parameters={"availabilityZoneIdentifiers": zone, "percentage": "100", "duration": outage},
            resource_arns=tuple(f"{{launcher:{name}}}" for name in stack.launchers),
            loses=f"new nodes in {zone} from {' and '.join(stack.launchers)}: they launch in the other zones",
        ),
    ]
    if stack.node_group:
        actions.append(
            Action(
                "no-node-group-capacity",
                "aws:ec2:asg-insufficient-instance-capacity-error",
                "cluster",
                "AutoScalingGroups",
                "aws:ec2:autoscaling-group",
                parameters={"availabilityZoneIdentifiers": zone, "percentage": "100", "duration": outage},
                resource_tags={"eks:cluster-name": stack.cluster_name},
                loses=f"new system nodes in {zone}: the node group launches in the other zones",
            )
        )
    if stack.database == "multi-az-instance":
        actions.append(
            Action(
                "fail-over-database",
                "aws:rds:reboot-db-instances",
                "data",
                "DBInstances",
                "aws:rds:db",
                parameters={"forceFailover": "true"},
                resource_tags={DRILL_TAG: drill_tag(stack.name_prefix, "database")},
                target_parameters={"availabilityZoneIdentifiers": zone},
                loses="the primary, if it is in the zone: its standby in another zone takes over (60-120 s, the "
                "proxy keeps clients)",
            )
        )
    elif stack.database == "multi-az-cluster":
        actions.append(
            Action(
                "fail-over-database",
                "aws:rds:failover-db-cluster",
                "data",
                "Clusters",
                "aws:rds:cluster",
                resource_tags={DRILL_TAG: drill_tag(stack.name_prefix, "database")},
                target_parameters={"writerAvailabilityZoneIdentifiers": zone},
                loses="the writer, if it is in the zone: a reader in another zone takes over (under 35 s)",
            )
        )
    if stack.cache:
        actions.append(
            Action(
                "interrupt-cache",
                "aws:elasticache:replicationgroup-interrupt-az-power",
                "data",
                "ReplicationGroups",
                "aws:elasticache:replicationgroup",
                parameters={"duration": outage},
                resource_tags={DRILL_TAG: drill_tag(stack.name_prefix, "cache")},
                target_parameters={"availabilityZoneIdentifier": zone},
                loses=f"the cache's node in {zone}; a replica elsewhere is promoted if it was the primary",
            )
        )
    if stack.managed_resources:
        actions.append(
            Action(
                "shift-away",
                "aws:arc:start-zonal-autoshift",
                "services",
                "ManagedResources",
                "aws:arc:zonal-shift-managed-resource",
                parameters={
                    "availabilityZoneIdentifier": zone,
                    "duration": outage,
                    "zonalAutoshiftStatus": stack.autoshift_status,
                },
                resource_arns=tuple(f"{{managed:{name}}}" for name in stack.managed_resources),
                loses=f"traffic to {zone}: the load balancer and the cluster's endpoints drop the zone",
            )
        )
    for action in actions:
        if len(action.resource_arns) > MAX_ARNS:
            raise ValueError(f"{action.name}: {len(action.resource_arns)} ARNs, FIS takes at most {MAX_ARNS}")
    keeps = [
        f"the services' pods in {', '.join(others)} behind the load balancer",
        "the database primary (or its standby, now primary) outside the zone, through the proxy",
        "the broker's quorum queues on the two other nodes (a majority)",
        f"the cache's primary in {', '.join(others)}",
        f"the repository cache through the mount targets in {', '.join(others)}",
        "scan Jobs on Karpenter's nodes in the other zones",
    ]
    if stack.single_nat_zone == zone:
        keeps.append(
            f"NOT the internet: the stack's only NAT gateway is in {zone} (natMode single), so every zone "
            "loses egress beyond the VPC's endpoints for the drill"
        )
    if stack.replica_zone == zone:
        keeps.append(
            "NOT the read replica: it sits in this zone and its readers (postgres-read clients) lose reads "
            "for the drill; their endpoint does not fall back to the primary"
        )
    elif stack.replica_zone:
        keeps.append(f"the read replica in {stack.replica_zone}")
    return ZonePlan(zone, tuple(actions), tuple(keeps))


def plan(stack: Drilled) -> list[ZonePlan]:
    return [plan_zone(stack, zone) for zone in stack.zones]


def describe(zone_plan: ZonePlan) -> list[str]:
    """The plan of one zone, as lines for a terminal."""
    lines = [f"Zone {zone_plan.zone}: {len(zone_plan.actions)} actions"]
    for a in zone_plan.actions:
        params = ", ".join(f"{k}={v}" for k, v in sorted(a.parameters.items()))
        lines.append(f"  [{a.tier}] {a.name} ({a.action_id}{'; ' + params if params else ''})")
        lines.append(f"      loses {a.loses}")
    lines.append("  keeps serving:")
    lines += [f"      {k}" for k in zone_plan.keeps]
    return lines


def resource_name(placeholder: str) -> str:
    """A target's placeholder in words (`{subnet:public}`: the zone's public subnet)."""
    kind, _, which = placeholder.strip("{}").partition(":")
    return {
        "subnet": f"the zone's {which} subnet",
        "launcher": f"{which}'s launching role",
        "managed": f"the {which}",
    }.get(kind, placeholder)


def as_dict(zone_plan: ZonePlan) -> dict[str, Any]:
    return {
        "zone": zone_plan.zone,
        "actions": [
            {
                "name": a.name,
                "actionId": a.action_id,
                "tier": a.tier,
                "parameters": dict(a.parameters),
                "loses": a.loses,
                "resources": [resource_name(p) for p in a.resource_arns],
            }
            for a in zone_plan.actions
        ],
        "keeps": list(zone_plan.keeps),
    }
