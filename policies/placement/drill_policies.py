"""The zone drill: in production, every zone has an AWS FIS experiment template that takes it out
of every tier the stack has, and stops when the outage spreads, unless the stack says explicitly
that the drill tests the alerting (`scanner:drillStopConditions: none`).

A template covers a tier with an action on it: the network with a connectivity disruption whose
targets hold every subnet of the zone (by dependency on a first preview, by ARN once known); the
cluster by stopping the zone's instances and refusing launches there; the database with a forced
failover of the form its deployment takes; the cache with its power interruption of the zone; the
services with a zonal shift away from it.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

import contract
from environments import stack_config, stack_environment
from stack_graph import (
    CACHE_GROUP,
    DB_CLUSTER,
    DB_INSTANCE,
    EKS_CLUSTER,
    SUBNET,
    Report,
    StackGraph,
    known,
    plain,
    stack_zones,
    tag,
)

TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
STOP_KEY = "scanner:drillStopConditions"


def _actions(template: PolicyResource) -> list[dict[str, Any]]:
    actions = plain(known(template, "actions")) or []
    return [a for a in actions if isinstance(a, dict)]


def _parameters(action: dict[str, Any]) -> dict[str, Any]:
    return {str(p.get("key")): p.get("value") for p in action.get("parameters") or [] if isinstance(p, dict)}


def _target_arns(template: PolicyResource, target_name: str) -> list[str] | None:
    """The known ARNs of a target, None while they are unknown."""
    try:
        targets = list(known(template, "targets") or [])
    except UnknownValueError:
        return None
    for target in targets:
        try:
            if target.get("name") != target_name:
                continue
            arns = [str(a) for a in target.get("resourceArns") or []]
        except UnknownValueError:
            return None
        return arns
    return []


def _covers_subnets(template: PolicyResource, action: dict[str, Any], subnets: list[PolicyResource]) -> bool:
    name = (action.get("target") or {}).get("value")
    depends = template.property_dependencies.get("targets", [])
    arns = _target_arns(template, name) if isinstance(name, str) else []
    for subnet in subnets:
        subnet_arn, subnet_id = known(subnet, "arn"), known(subnet, "id")
        by_value = (
            arns is not None
            and isinstance(subnet_id, str)
            and subnet_id
            and any(a.endswith(f"/{subnet_id}") for a in arns)
        )
        by_value = by_value or (arns is not None and isinstance(subnet_arn, str) and subnet_arn in arns)
        if arns is None or not subnet_id:
            if subnet not in depends:
                return False
        elif not by_value:
            return False
    return True


def _missing(graph: StackGraph, template: PolicyResource, zone: str) -> list[str]:
    """What of the zone the template does not take out."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for action in _actions(template):
        by_id.setdefault(str(action.get("actionId")), []).append(action)
    missing = []
    subnets = [s for s in graph.of_type(SUBNET) if known(s, "availabilityZone") == zone]
    disrupts = [a for a in by_id.get("aws:network:disrupt-connectivity", []) if _parameters(a).get("scope") == "all"]
    if subnets and not any(_covers_subnets(template, a, subnets) for a in disrupts):
        missing.append(f"the network (a connectivity disruption, scope all, of all {len(subnets)} subnets of the zone)")
    if graph.of_type(EKS_CLUSTER):
        if "aws:ec2:stop-instances" not in by_id:
            missing.append("the cluster's nodes (aws:ec2:stop-instances)")
        if "aws:ec2:api-insufficient-instance-capacity-error" not in by_id:
            missing.append("launches into the zone (aws:ec2:api-insufficient-instance-capacity-error)")
        if "aws:arc:start-zonal-autoshift" not in by_id:
            missing.append("the services' traffic (aws:arc:start-zonal-autoshift)")
    primaries = [d for d in graph.of_type(DB_INSTANCE) if known(d, "replicateSourceDb") is None]
    if primaries and not any(
        str(_parameters(a).get("forceFailover")).lower() == "true" for a in by_id.get("aws:rds:reboot-db-instances", [])
    ):
        missing.append("the database (aws:rds:reboot-db-instances with forceFailover)")
    if graph.of_type(DB_CLUSTER) and "aws:rds:failover-db-cluster" not in by_id:
        missing.append("the database cluster (aws:rds:failover-db-cluster)")
    if graph.of_type(CACHE_GROUP) and "aws:elasticache:replicationgroup-interrupt-az-power" not in by_id:
        missing.append("the cache (aws:elasticache:replicationgroup-interrupt-az-power)")
    return missing


def _stops(template: PolicyResource) -> bool:
    conditions = plain(known(template, "stopConditions")) or []
    return any(isinstance(c, dict) and c.get("source") == "aws:cloudwatch:alarm" for c in conditions)


def drill_every_zone(args: StackValidationArgs, report: Report) -> None:
    environment, _ = stack_environment()
    if environment != "production":
        return
    graph = StackGraph(args.resources)
    templates: dict[str, list[PolicyResource]] = {}
    for template in graph.of_type(TEMPLATE):
        if zone := tag(template, contract.ZONE_TAG):
            templates.setdefault(zone, []).append(template)
    alerting_test = stack_config().get(STOP_KEY) == "none"
    for zone in stack_zones(graph):
        if zone not in templates:
            report(
                f"zone {zone} has no zone-drill experiment template (an aws:fis ExperimentTemplate tagged "
                f"{contract.ZONE_TAG}={zone}): a production stack practises the loss of each of its zones."
            )
            continue
        for template in templates[zone]:
            missing = _missing(graph, template, zone)
            if missing:
                report(
                    f"the zone drill of {zone} leaves out {'; '.join(missing)}: the drill would not show "
                    "that the stack survives the loss of the zone.",
                    template.urn,
                )
            if not _stops(template) and not alerting_test:
                report(
                    f"the zone drill of {zone} has no alarm as a stop condition: an outage that spreads beyond "
                    f"the zone would run its course. Set {STOP_KEY}: none only for a drill that tests the alerting.",
                    template.urn,
                )


POLICIES = [
    StackValidationPolicy(
        name="drill-every-zone",
        description="In production, every zone has a drill that takes it out of every tier, with stop conditions.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=drill_every_zone,
    ),
]
