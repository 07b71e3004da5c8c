"""All-AZ placement rules for the EKS tier: control plane, node groups and Karpenter node pools."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    StackValidationArgs,
    StackValidationPolicy,
)

import contract
from environments import KEYS
from stack_graph import (
    EKS_CLUSTER,
    EKS_COMPONENT,
    NODE_GROUP,
    NODE_POOL,
    Report,
    StackGraph,
    known,
    path,
    setting,
    short,
    stack_zones,
    subnet_zones,
)

ZONE_KEY = "topology.kubernetes.io/zone"
CAPACITY_KEY = "karpenter.sh/capacity-type"


def _missing(zones: list[str], covered: set[str]) -> list[str]:
    return [z for z in zones if z not in covered]


def cluster_subnets_every_az(args: StackValidationArgs, report: Report) -> None:
    """The control plane's network interfaces go in the cluster's subnets: one zone short and the
    API loses a leg when that zone goes. Checks the `aws:eks/cluster:Cluster` the engine shows
    under pulumi-eks, and the component's own inputs where no such child is visible."""
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    if not zones:
        return
    children = graph.of_type(EKS_CLUSTER)
    checked_parents = {c.parent.urn for c in children if c.parent is not None}
    targets: list[tuple[PolicyResource, tuple[str, ...]]] = [(c, ("vpcConfig",)) for c in children]
    targets += [
        (c, ("subnetIds", "privateSubnetIds", "publicSubnetIds"))
        for c in graph.of_type(EKS_COMPONENT)
        if c.urn not in checked_parents
    ]
    for cluster, props in targets:
        covered = subnet_zones(graph, cluster, *props)
        if covered is None:
            continue  # subnet ids the stack does not declare; nothing to place them by
        missing = _missing(zones, covered)
        if missing:
            report(
                f"{short(cluster)} has subnets in {', '.join(sorted(covered)) or 'no zone'} but not in "
                f"{', '.join(missing)}; give the control plane a subnet in every zone of the stack.",
                cluster.urn,
            )


def node_groups_every_az(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    if not zones:
        return
    per_zone = setting(args, "minimumNodesPerZone", 1)
    for group in graph.of_type(NODE_GROUP):
        covered = subnet_zones(graph, group, "subnetIds")
        if covered is not None:
            missing = _missing(zones, covered)
            if missing:
                report(
                    f"{short(group)} has subnets in {', '.join(sorted(covered)) or 'no zone'} but not in "
                    f"{', '.join(missing)}; list a subnet of every zone so its nodes survive a zone loss.",
                    group.urn,
                )
        minimum = path(group.props, "scalingConfig.minSize")
        if minimum is not None and minimum < per_zone * len(zones):
            report(
                f"{short(group)} has minSize {minimum} for {len(zones)} zones; set it to at least "
                f"{per_zone * len(zones)} so every zone keeps {per_zone} node(s) (the program sets it from "
                f"{KEYS['nodes_per_zone']}).",
                group.urn,
            )


def _requirements(pool) -> list:
    return list(path(pool.props, "spec.template.spec.requirements", []) or [])


def node_pools_every_az(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    if not zones:
        return
    for pool in graph.of_type(NODE_POOL):
        name = path(pool.props, "metadata.name", pool.name)
        for requirement in _requirements(pool):
            if requirement.get("key") != ZONE_KEY:
                continue
            operator, values = requirement.get("operator"), list(requirement.get("values") or [])
            if operator == "In":
                dropped = _missing(zones, set(values))
            elif operator == "NotIn":
                dropped = [z for z in zones if z in values]
            elif operator == "DoesNotExist":
                dropped = list(zones)
            else:
                dropped = []
            if dropped:
                report(
                    f"NodePool '{name}' requires {ZONE_KEY} {operator} {values}, which leaves out "
                    f"{', '.join(dropped)}; allow every zone of the stack ({', '.join(zones)}).",
                    pool.urn,
                )


def scan_pool_offers_spot(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    pools = graph.of_type(NODE_POOL)
    if not pools:
        return
    label_key = setting(args, "scanPoolLabel", contract.POOL_LABEL)
    label_value = setting(args, "scanPoolLabelValue", contract.SCAN_POOL)
    scan = [
        p for p in pools if (path(p.props, "spec.template.metadata.labels", {}) or {}).get(label_key) == label_value
    ]
    if not scan:
        report(f"no NodePool carries the label {label_key}={label_value}; scan jobs would have no spot pool.", None)
        return
    first = max(scan, key=lambda p: known(p, "spec", {}).get("weight", 0) or 0)
    capacity = next((r for r in _requirements(first) if r.get("key") == CAPACITY_KEY), None)
    offers_spot = capacity is not None and (
        (capacity.get("operator") == "In" and "spot" in (capacity.get("values") or []))
        or (capacity.get("operator") == "NotIn" and "spot" not in (capacity.get("values") or []))
        or capacity.get("operator") == "Exists"
    )
    if not offers_spot:
        name = path(first.props, "metadata.name", first.name)
        report(
            f"NodePool '{name}', the first choice for scan jobs (highest weight), does not offer spot "
            f"capacity; require {CAPACITY_KEY} In [spot] and keep on-demand in a lower-weight pool.",
            first.urn,
        )


POLICIES = [
    StackValidationPolicy(
        name="eks-cluster-subnets-every-az",
        description="Requires the EKS control plane to have a subnet in every zone of the stack.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=cluster_subnets_every_az,
    ),
    StackValidationPolicy(
        name="eks-node-group-every-az",
        description="Requires every managed node group to span every zone, with a minimum size of at least "
        "one node per zone.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=node_groups_every_az,
        config_schema=PolicyConfigSchema(
            properties={
                "minimumNodesPerZone": {"type": "integer", "minimum": 1, "default": 1},
            }
        ),
    ),
    StackValidationPolicy(
        name="karpenter-node-pool-every-az",
        description="Requires every Karpenter NodePool to allow every zone of the stack.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=node_pools_every_az,
    ),
    StackValidationPolicy(
        name="karpenter-scan-pool-offers-spot",
        description="Requires the first-choice NodePool for scan jobs to offer spot capacity.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=scan_pool_offers_spot,
        config_schema=PolicyConfigSchema(
            properties={
                "scanPoolLabel": {"type": "string", "default": contract.POOL_LABEL},
                "scanPoolLabelValue": {"type": "string", "default": contract.SCAN_POOL},
            }
        ),
    ),
]
