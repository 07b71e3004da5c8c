"""All-AZ placement rules for workloads in the cluster: replicated Deployments spread over every
zone and guarded by a disruption budget, load balancers in a subnet of every zone."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from environments import KEYS
from stack_graph import (
    DEPLOYMENT,
    INGRESS,
    SUBNET,
    UNKNOWN,
    Report,
    StackGraph,
    known,
    path,
    setting,
    stack_zones,
    subnet_zones,
)

BUDGET = "kubernetes:policy/v1:PodDisruptionBudget"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SERVICE = "kubernetes:core/v1:Service"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
ZONE_KEYS = ("topology.kubernetes.io/zone", "topology.k8s.aws/zone-id")
ALB_SUBNETS = "alb.ingress.kubernetes.io/subnets"
NLB_SUBNETS = "service.beta.kubernetes.io/aws-load-balancer-subnets"


def _name(resource: PolicyResource) -> str:
    namespace = path(resource.props, "metadata.namespace", "default")
    return f"'{namespace}/{path(resource.props, 'metadata.name', resource.name)}'"


def _selects(selector: Any, labels: dict) -> bool:
    """Whether a label selector's matchLabels all hold on `labels` (matchExpressions are not read)."""
    wanted = path(selector, "matchLabels", {}) or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in dict(wanted).items())


def _targets(scaler: PolicyResource, deployment: PolicyResource, ref: str) -> bool:
    same_namespace = path(scaler.props, "metadata.namespace", "default") == path(
        deployment.props, "metadata.namespace", "default"
    )
    return (
        same_namespace
        and path(scaler.props, f"spec.{ref}.kind", "Deployment") == "Deployment"
        and path(scaler.props, f"spec.{ref}.name") == path(deployment.props, "metadata.name")
    )


def most_replicas(graph: StackGraph, deployment: PolicyResource) -> int | None:
    """The most replicas a Deployment may run: its own count, or its autoscaler's maximum."""
    counts = [path(deployment.props, "spec.replicas", 1, unknown=UNKNOWN)]
    counts += [
        path(s.props, "spec.maxReplicaCount", 100, unknown=UNKNOWN)
        for s in graph.of_type(SCALED_OBJECT)
        if _targets(s, deployment, "scaleTargetRef")
    ]
    counts += [
        path(h.props, "spec.maxReplicas", 1, unknown=UNKNOWN)
        for h in graph.of_type(HPA)
        if _targets(h, deployment, "scaleTargetRef")
    ]
    if any(c is UNKNOWN for c in counts):
        return None
    return int(max(counts))


def least_replicas(graph: StackGraph, deployment: PolicyResource) -> int | None:
    """The fewest replicas a Deployment runs: its autoscaler's minimum, or its own count."""
    floors = [
        path(s.props, "spec.minReplicaCount", 0, unknown=UNKNOWN)
        for s in graph.of_type(SCALED_OBJECT)
        if _targets(s, deployment, "scaleTargetRef")
    ]
    floors += [
        path(h.props, "spec.minReplicas", 1, unknown=UNKNOWN)
        for h in graph.of_type(HPA)
        if _targets(h, deployment, "scaleTargetRef")
    ]
    if not floors:
        floors = [path(deployment.props, "spec.replicas", 1, unknown=UNKNOWN)]
    if any(f is UNKNOWN for f in floors):
        return None
    return int(min(floors))


def _blocks_eviction(budget: PolicyResource, replicas: int | None) -> bool:
    """Whether a budget leaves no pod evictable (at the given replica count, when it is known)."""
    max_unavailable = path(budget.props, "spec.maxUnavailable")
    if max_unavailable is not None:
        return str(max_unavailable) in ("0", "0.0", "0%")
    min_available = path(budget.props, "spec.minAvailable")
    if min_available is None:
        return False
    text = str(min_available)
    if text.endswith("%"):
        return float(text[:-1]) >= 100
    return replicas is not None and float(text) >= replicas


def _replicated(graph: StackGraph) -> list[tuple[PolicyResource, dict, dict, int]]:
    """Deployments that may run more than one replica: (deployment, pod labels, own selector, most replicas)."""
    found = []
    for deployment in graph.of_type(DEPLOYMENT):
        labels = path(deployment.props, "spec.template.metadata.labels", {}, unknown=UNKNOWN)
        selector = path(deployment.props, "spec.selector.matchLabels", {}, unknown=UNKNOWN)
        replicas = most_replicas(graph, deployment)
        if labels is UNKNOWN or selector is UNKNOWN or replicas is None or replicas <= 1:
            continue
        found.append((deployment, dict(labels or {}), dict(selector or {}), replicas))
    return found


def _counts_own_pods(selector: Any, labels: dict, own: dict) -> bool:
    """A spread selector that picks this Deployment's pods and no wider set (all its own
    selector's labels), so each Deployment is spread by itself."""
    wanted = dict(path(selector, "matchLabels", {}) or {})
    return _selects(selector, labels) and own.items() <= wanted.items()


def deployments_spread_over_zones(args: StackValidationArgs, report: Report) -> None:
    """A replicated Deployment must be spread over zones with a hard constraint that counts
    every zone of the stack (`minDomains`): without it the scheduler packs replicas into the
    zones that happen to have nodes, and one zone outage can take all of them."""
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    if not zones:
        return
    for deployment, labels, own, replicas in _replicated(graph):
        constraints = path(deployment.props, "spec.template.spec.topologySpreadConstraints", [], unknown=UNKNOWN)
        if constraints is UNKNOWN:
            continue
        good = [
            c
            for c in constraints or []
            if path(c, "topologyKey") in ZONE_KEYS
            and path(c, "whenUnsatisfiable") == "DoNotSchedule"
            and path(c, "maxSkew") == 1
            and path(c, "minDomains", 0) == len(zones)
            and _counts_own_pods(path(c, "labelSelector", {}), labels, own)
        ]
        if not good:
            report(
                f"Deployment {_name(deployment)} runs up to {replicas} replicas but is not spread over the zones: "
                f"add a topologySpreadConstraint on topology.kubernetes.io/zone with maxSkew: 1, whenUnsatisfiable: "
                f"DoNotSchedule, minDomains: {len(zones)} (the stack's zones) and a labelSelector of its own pods.",
                deployment.urn,
            )


def deployments_have_disruption_budgets(args: StackValidationArgs, report: Report) -> None:
    """A replicated Deployment needs a PodDisruptionBudget that selects its pods and still lets
    one go: without one, a node drain may evict every replica in a zone at once; with one that
    allows nothing, drains (and Karpenter's consolidation and upgrades) hang on it."""
    graph = StackGraph(args.resources)
    budgets = graph.of_type(BUDGET)
    for deployment, labels, _, replicas in _replicated(graph):
        namespace = path(deployment.props, "metadata.namespace", "default")
        mine = [
            b
            for b in budgets
            if path(b.props, "metadata.namespace", "default") == namespace
            and _selects(path(b.props, "spec.selector", {}), labels)
        ]
        if not mine:
            report(
                f"Deployment {_name(deployment)} runs up to {replicas} replicas with no PodDisruptionBudget "
                "selecting its pods; add one with maxUnavailable: 1.",
                deployment.urn,
            )
            continue
        if len(mine) > 1:
            report(
                f"Deployment {_name(deployment)}'s pods are selected by {len(mine)} PodDisruptionBudgets; the API "
                "refuses every eviction of a pod with more than one, so drains would hang. Keep one.",
                deployment.urn,
            )
        floor = least_replicas(graph, deployment)
        for budget in mine:
            if _blocks_eviction(budget, floor):
                report(
                    f"PodDisruptionBudget {_name(budget)} allows no eviction at {floor} replica(s): node drains "
                    "and consolidation would never finish; allow at least one (maxUnavailable: 1).",
                    budget.urn,
                )


def _named_subnet_zones(graph: StackGraph, entries: list[str]) -> tuple[set[str], list[str]]:
    """Zones of the subnets an annotation names, by `Name` tag or (once known) id; and the
    entries that name no subnet of this stack."""
    zone_of = {}
    for subnet in graph.of_type(SUBNET):
        tags = known(subnet, "tags", {}) or {}
        for key in (tags.get("Name"), known(subnet, "id")):
            if key:
                zone_of[key] = graph.subnet_zone(subnet)
    zones, unplaced = set(), []
    for entry in entries:
        if zone := zone_of.get(entry):
            zones.add(zone)
        else:
            unplaced.append(entry)
    return zones, unplaced


def load_balancers_every_zone(args: StackValidationArgs, report: Report) -> None:
    """Every load balancer has a subnet in every zone of the stack: ALB Ingresses and NLB Services
    name their subnets (the controller's auto-discovery picks whatever is tagged, and may miss a
    zone), and load balancers declared directly list one subnet per zone."""
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    if not zones:
        return
    alb_class = setting(args, "ingressClass", "alb")
    checks: list[tuple[PolicyResource, str, str]] = []
    for ingress in graph.of_type(INGRESS):
        annotations = path(ingress.props, "metadata.annotations", {}) or {}
        if (
            path(ingress.props, "spec.ingressClassName") == alb_class
            or annotations.get("kubernetes.io/ingress.class") == alb_class
        ):
            checks.append((ingress, ALB_SUBNETS, f"Ingress {_name(ingress)}"))
    for service in graph.of_type(SERVICE):
        if path(service.props, "spec.type") == "LoadBalancer":
            checks.append((service, NLB_SUBNETS, f"Service {_name(service)}"))
    for resource, key, label in checks:
        annotations = path(resource.props, "metadata.annotations", {}, unknown=UNKNOWN)
        if annotations is UNKNOWN:
            continue
        value = (annotations or {}).get(key)
        if not value:
            report(
                f"{label} leaves its load balancer's subnets to auto-discovery; set {key} to one subnet of "
                f"each zone ({', '.join(zones)}).",
                resource.urn,
            )
            continue
        named_zones, unplaced = _named_subnet_zones(graph, [n.strip() for n in str(value).split(",") if n.strip()])
        if unplaced:
            report(
                f"{label}: {key} names {', '.join(unplaced)}, not a subnet of this stack (by Name tag or id); "
                "its zone cannot be checked.",
                resource.urn,
            )
        elif set(zones) - named_zones:
            report(
                f"{label}'s load balancer has no subnet in {', '.join(sorted(set(zones) - named_zones))}; "
                f"{key} must name one subnet of every zone.",
                resource.urn,
            )
    for balancer in graph.of_type(LOAD_BALANCER):
        covered = subnet_zones(graph, balancer, "subnets", "subnetMappings")
        if covered is not None and set(zones) - covered:
            report(
                f"load balancer '{balancer.name}' has no subnet in {', '.join(sorted(set(zones) - covered))}.",
                balancer.urn,
            )


SKIP_AWAIT = "pulumi.com/skipAwait"


def rollout_awaited(args: ResourceValidationArgs, report: Report) -> None:
    """A Deployment `pulumi up` does not wait for can be broken without anyone noticing: right
    for the first deploy (no image pushed yet), wrong once the images exist."""
    if args.resource_type != DEPLOYMENT:
        return
    annotations = path(args.props, "metadata.annotations", {}, unknown={}) or {}
    if str(annotations.get(SKIP_AWAIT, "")).lower() == "true":
        report(
            f"`pulumi up` does not wait for this Deployment to become ready ({SKIP_AWAIT}); right for the first "
            f"deploy only: once its image is pushed, set {KEYS['rollout']} back to await."
        )


POLICIES = [
    ResourceValidationPolicy(
        name="deployment-rollout-awaited",
        description="Advises when `pulumi up` would not wait for a Deployment to become ready.",
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=rollout_awaited,
    ),
    StackValidationPolicy(
        name="deployment-spread-over-zones",
        description="Requires every Deployment that runs more than one replica to spread its own pods over the "
        "zones with maxSkew 1, DoNotSchedule and minDomains equal to the stack's zone count.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=deployments_spread_over_zones,
    ),
    StackValidationPolicy(
        name="deployment-has-disruption-budget",
        description="Requires every Deployment that runs more than one replica to have exactly one "
        "PodDisruptionBudget selecting its pods, which allows at least one eviction.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=deployments_have_disruption_budgets,
    ),
    StackValidationPolicy(
        name="load-balancer-every-az",
        description="Requires every load balancer (ALB Ingress, NLB Service, aws:lb) to have a subnet in every zone.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=load_balancers_every_zone,
        config_schema=PolicyConfigSchema(
            properties={
                "ingressClass": {"type": "string", "default": "alb"},
            }
        ),
    ),
]
