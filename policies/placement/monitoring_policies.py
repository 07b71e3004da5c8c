"""Monitoring coverage: what the zone drill and zonal autoshift stand on.

- every database, file system, broker, cache, NAT gateway and load balancer of the stack (those
  declared, and the ones the AWS Load Balancer Controller makes for an Ingress that names its
  load balancer) has an alarm that watches it and acts;
- every zone of the stack has its "zone impaired" composite alarm (the drill's stop conditions
  and autoshift's outcome alarms are these ARNs);
- every alarm acts (it has alarm actions, and they are on), and only on SNS topics of this stack.

An alarm watches a resource when one of its dimensions depends on it (all a first preview knows,
the program passing the resource's own output) or, once values are known, names it: the
resource's id or identifier, or a cache node of the replication group (`<group>-001`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

import contract
from environments import stack_config
from stack_graph import (
    BROKER,
    CACHE_GROUP,
    DB_CLUSTER,
    DB_INSTANCE,
    FILE_SYSTEM,
    INGRESS,
    NAT_GATEWAY,
    Report,
    StackGraph,
    known,
    path,
    short,
    stack_zones,
    tag,
)

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
TOPIC = "aws:sns/topic:Topic"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
#: What must be watched, and the properties that name it in a dimension.
WATCHED = {
    DB_INSTANCE: ("identifier", "id"),
    DB_CLUSTER: ("clusterIdentifier", "id"),
    FILE_SYSTEM: ("id",),
    BROKER: ("brokerName", "id"),
    CACHE_GROUP: ("replicationGroupId", "id"),
    NAT_GATEWAY: ("id",),
    LOAD_BALANCER: ("arnSuffix", "name"),
}
ACTIONS = ("alarmActions", "okActions", "insufficientDataActions")
#: The annotation naming the load balancer the AWS Load Balancer Controller makes for an Ingress.
ALB_NAME = "alb.ingress.kubernetes.io/load-balancer-name"


def _alarms(graph: StackGraph) -> list[PolicyResource]:
    return graph.of_type(METRIC_ALARM) + graph.of_type(COMPOSITE_ALARM)


def _dimension_values(alarm: PolicyResource) -> list[str]:
    """The known dimension values of an alarm's metric and of its metric math inputs, and its
    queries' expressions (a Metrics Insights query names what it selects in its WHERE)."""
    values: list[Any] = []
    try:
        values += list((alarm.props.get("dimensions") or {}).values())
        for query in alarm.props.get("metricQueries") or []:
            values += list(((query.get("metric") or {}).get("dimensions") or {}).values())
            values.append(query.get("expression"))
    except (UnknownValueError, AttributeError):
        pass
    out = []
    for value in values:
        try:
            if isinstance(value, str):
                out.append(value)
        except UnknownValueError:
            continue
    return out


def _load_balancer_name(ingress: PolicyResource) -> str | None:
    name = path(ingress.props, "metadata.annotations", {}, unknown={}).get(ALB_NAME)
    return name if isinstance(name, str) and name else None


def _unknown_load_balancer(alarm: PolicyResource) -> bool:
    """The alarm's LoadBalancer dimension is not known yet: a first preview, before the
    controller has made the load balancer the program looks up."""
    try:
        dimensions = alarm.props.get("dimensions") or {}
        dimensions.get("LoadBalancer")
        return False
    except UnknownValueError:
        return True
    except AttributeError:
        return False


def _watches(alarm: PolicyResource, resource: PolicyResource) -> bool:
    for prop in ("dimensions", "metricQueries"):
        if resource in alarm.property_dependencies.get(prop, []):
            return True
    if resource.resource_type == INGRESS:
        name = _load_balancer_name(resource)
        return any(f"app/{name}/" in v for v in _dimension_values(alarm)) or _unknown_load_balancer(alarm)
    names = {v for p in WATCHED[resource.resource_type] if isinstance(v := known(resource, p), str) and v}
    for value in _dimension_values(alarm):
        if value in names:
            return True
        if resource.resource_type == CACHE_GROUP and any(value.startswith(f"{n}-") for n in names):
            return True
    return False


def _acts(alarm: PolicyResource) -> bool:
    actions = known(alarm, "alarmActions")
    return bool(actions) and known(alarm, "actionsEnabled", True) is not False


def resources_alarmed(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    alarms = [a for a in graph.of_type(METRIC_ALARM) if _acts(a)]
    watched = [r for t in WATCHED for r in graph.of_type(t)]
    # The load balancers the controller makes: Ingresses that name theirs.
    watched += [i for i in graph.of_type(INGRESS) if _load_balancer_name(i)]
    for resource in watched:
        if not any(_watches(a, resource) for a in alarms):
            report(
                f"{short(resource)}: no alarm with an action watches it, so its failure pages nobody and "
                "the zone drill has no stop condition for it. Declare its alarms (components/monitoring: "
                "the alarm plan and the Alarms component) with a dimension that names it.",
                resource.urn,
            )


def _names_a_zone_alarm(composite: PolicyResource, zone: str, graph: StackGraph) -> bool:
    """The composite's rule names an alarm of the zone (undecided, so true, while unknown)."""
    rule = known(composite, "alarmRule")
    if not isinstance(rule, str):
        return True
    zonal = {
        n
        for a in graph.of_type(METRIC_ALARM)
        if tag(a, contract.ZONE_TAG) == zone and isinstance(n := known(a, "name"), str)
    }
    return any(f'ALARM("{n}")' in rule or f"ALARM({n})" in rule for n in zonal)


def zone_composites(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    composites: dict[str, list[PolicyResource]] = {}
    for c in graph.of_type(COMPOSITE_ALARM):
        if tag(c, contract.COMPOSITE_TAG) == "zone" and (zone := tag(c, contract.ZONE_TAG)):
            composites.setdefault(zone, []).append(c)
    for zone in stack_zones(graph):
        if zone not in composites:
            report(
                f"zone {zone} has no zone-impaired composite alarm (tags {contract.COMPOSITE_TAG}=zone, "
                f"{contract.ZONE_TAG}={zone}): the zone drill's stop conditions and zonal autoshift's outcome "
                "alarm are these composites, one per zone."
            )
        elif not any(_names_a_zone_alarm(c, zone, graph) for c in composites[zone]):
            report(
                f"zone {zone}'s composite alarm names none of the zone's alarms: it could never go into alarm, "
                "and a drill or a zonal shift watching it would see nothing.",
                composites[zone][0].urn,
            )


def _action_problems(alarm: PolicyResource, topics: list[PolicyResource]) -> Iterator[str]:
    try:
        actions = alarm.props.get("alarmActions")
    except UnknownValueError:
        actions = None
    if actions is not None and len(actions) == 0:
        yield "has no alarm action: it would go into alarm and tell nobody"
        return
    if known(alarm, "actionsEnabled", True) is False:
        yield (
            "has its actions disabled in the program: muting is an operation (python -m ops.alarms mute), "
            "not a state the stack declares"
        )
    names = {n for t in topics if isinstance(n := known(t, "name"), str)}
    arns = {a for t in topics if isinstance(a := known(t, "arn"), str)}
    region = known(alarm, "region") or stack_config().get("aws:region")
    for prop in ACTIONS:
        try:
            values = alarm.props.get(prop) or []
            listed = [v for v in values if isinstance(v, str)]
        except UnknownValueError:
            continue
        for arn in listed:
            if not (arn in arns or (":sns:" in arn and arn.rsplit(":", 1)[-1] in names)):
                yield f"acts on {arn} ({prop}), which is no SNS topic of this stack"
                continue
            parts = arn.split(":")
            if isinstance(region, str) and len(parts) > 3 and parts[3] != region:
                yield (
                    f"acts on {arn} ({prop}), a topic in {parts[3]}: CloudWatch alarms act only on topics of "
                    f"their own region ({region})"
                )


def alarms_act_on_stack_topics(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    topics = graph.of_type(TOPIC)
    for alarm in _alarms(graph):
        for problem in _action_problems(alarm, topics):
            report(
                f"{short(alarm)} {problem}. Every alarm acts on the stack's page or ticket topic "
                "(components/monitoring/alerting.py), which the subscriptions and the drill's muting rely on.",
                alarm.urn,
            )


POLICIES = [
    StackValidationPolicy(
        name="monitoring-resources-alarmed",
        description="Every database, file system, broker, cache, NAT gateway and load balancer has an alarm that acts.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=resources_alarmed,
    ),
    StackValidationPolicy(
        name="monitoring-zone-composites",
        description="Every zone of the stack has its zone-impaired composite alarm.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=zone_composites,
    ),
    StackValidationPolicy(
        name="alarms-act-on-stack-topics",
        description="Every alarm has actions, enabled, on SNS topics of this stack only.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=alarms_act_on_stack_topics,
    ),
]
