"""Readable views of a recorded stack: a summary for the terminal and a Mermaid diagram."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from typing import Any

from pulumi.runtime.rpc import UNKNOWN

from components.network.network import TIER_TAG, ZONE_TAG
from offline.gate import GateResult
from offline.program import StackRecord
from policies.common import contract, environments

#: Types drawn as their own node in the diagram; others are counted per group.
_DRAWN = {
    "aws:ec2/vpc:Vpc": "VPC",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/natGateway:NatGateway": "NAT gateway",
    "aws:ec2/internetGateway:InternetGateway": "internet gateway",
    "aws:ec2/flowLog:FlowLog": "flow log",
}


class StackView:
    """Indexes over a record: parents, children, zones, components."""

    def __init__(self, record: StackRecord):
        self.record = record
        self.by_urn = {r["urn"]: r for r in record.resources}
        self.children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for r in record.resources:
            self.children[r["parent"]].append(r)

    def zone(self, r: dict[str, Any] | None) -> str | None:
        while r is not None:
            inputs = r["inputs"]
            # Tags are a mapping on AWS resources; other providers use the name for other things
            # (a RabbitMQ user's tags are a list of roles).
            tags = inputs.get("tags")
            zone = inputs.get("availabilityZone") or (tags.get(ZONE_TAG) if isinstance(tags, dict) else None)
            if zone and zone != UNKNOWN:
                return zone
            r = self.by_urn.get(r["parent"] or "")
        return None

    def component(self, r: dict[str, Any]) -> dict[str, Any] | None:
        parent = self.by_urn.get(r["parent"] or "")
        while parent is not None and (parent["custom"] or parent["type"] == "pulumi:pulumi:Stack"):
            parent = self.by_urn.get(parent["parent"] or "")
        return parent if parent is not None and parent["type"] != "pulumi:pulumi:Stack" else None

    def zones(self) -> list[str]:
        listed = self.record.outputs.get("availabilityZones")
        if isinstance(listed, list):
            return listed
        return sorted({z for r in self.record.resources if (z := self.zone(r))})


def summary(record: StackRecord, gate: GateResult | None) -> str:
    view = StackView(record)
    custom = [r for r in record.resources if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    lines = [
        f"Stack {record.stack} ({record.mode} mode), region {record.config.get('aws:region', '?')}: "
        f"{len(record.resources)} registrations, {len(custom)} cloud resources",
        f"Zones: {', '.join(view.zones())}",
        "",
        "Resources by component:",
    ]

    def walk(parent: str | None, depth: int) -> None:
        for r in sorted(view.children.get(parent, []), key=lambda r: (r["type"], r["name"])):
            flags = [f for f, on in (("protect", r["protect"]), ("retainOnDelete", r["retainOnDelete"])) if on]
            zone = view.zone(r) if r["custom"] else None
            extra = "".join(f" [{f}]" for f in flags) + (f" ({zone})" if zone else "")
            lines.append(f"{'  ' * depth}{r['type']} {r['name']}{extra}")
            walk(r["urn"], depth + 1)

    walk(None, 1)
    lines += ["", "Counts by type:"]
    for type_, count in sorted(Counter(r["type"] for r in custom).items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {count:4d}  {type_}")
    lines += ["", "Counts by zone:"]
    columns = ["public", "private", "isolated", "pods", "NAT", "route tables", "all"]
    table: dict[str, Counter] = defaultdict(Counter)
    for r in custom:
        zone = view.zone(r)
        if zone is None:
            continue
        table[zone]["all"] += 1
        if r["type"] == "aws:ec2/subnet:Subnet":
            tags = r["inputs"].get("tags")
            table[zone][tags.get(TIER_TAG, "other") if isinstance(tags, dict) else "other"] += 1
        elif r["type"] == "aws:ec2/natGateway:NatGateway":
            table[zone]["NAT"] += 1
        elif r["type"] == "aws:ec2/routeTable:RouteTable":
            table[zone]["route tables"] += 1
    regional = sum(1 for r in custom if view.zone(r) is None)
    lines.append("  " + f"{'zone':<16}" + "".join(f"{c:>14}" for c in columns))
    for zone in view.zones():
        lines.append("  " + f"{zone:<16}" + "".join(f"{table[zone][c]:>14}" for c in columns))
    lines.append(f"  regional (no zone): {regional}")
    lines += workloads(record)
    lines += messaging(record)
    lines += database_and_cache(record)
    lines += data_secrets(record)
    lines += monitoring(record)
    lines += drills(record)
    if gate is not None:
        lines += gate_lines(record, gate)
    return "\n".join(lines)


def monitoring(record: StackRecord) -> list[str]:
    """The alarms by tier and by zone, the composites, who is told, and the cost alerts."""
    alarms = _of_type(record, "aws:cloudwatch/metricAlarm:MetricAlarm")
    if not alarms:
        return []
    tags: list[dict[str, Any]] = [a["tags"] if isinstance(a.get("tags"), dict) else {} for a in alarms]
    tiers = Counter(t.get(contract.TIER_TAG, "?") for t in tags)
    zones = Counter(t.get(contract.ZONE_TAG) or "no zone" for t in tags)
    severities = Counter(t.get(contract.SEVERITY_TAG, "?") for t in tags)
    composites = sorted(
        str(c.get("alarmName")) for c in _of_type(record, "aws:cloudwatch/compositeAlarm:CompositeAlarm")
    )
    lines = [
        "",
        f"Monitoring: {len(alarms)} alarms ({', '.join(f'{n} {s}' for s, n in sorted(severities.items()))}), "
        f"{len(composites)} composites",
        "  by tier: " + ", ".join(f"{t} {n}" for t, n in sorted(tiers.items())),
        "  by zone: "
        + ", ".join(f"{z} {n}" for z, n in sorted(zones.items(), key=lambda kv: (kv[0] == "no zone", kv[0]))),
        "  composites: " + ", ".join(composites),
    ]
    view = StackView(record)
    subscriptions: dict[str, list[str]] = defaultdict(list)
    for r in record.resources:
        if r["type"] == "aws:sns/topicSubscription:TopicSubscription":
            topic = view.by_urn.get(r["parent"] or "", {}).get("inputs", {}).get("name", "?")
            subscriptions[str(topic)].append(f"{r['inputs'].get('protocol')}:{r['inputs'].get('endpoint')}")
    topics = sorted(str(t.get("name")) for t in _of_type(record, "aws:sns/topic:Topic"))
    for topic in topics:
        lines.append(f"  topic {topic}: " + (", ".join(sorted(subscriptions[topic])) or "no subscription"))
    for budget in _of_type(record, "aws:budgets/budget:Budget"):
        lines.append(
            f"  budget {budget.get('name')}: {budget.get('limitAmount')} {budget.get('limitUnit')} "
            f"{str(budget.get('timeUnit')).lower()}, {len(budget.get('notifications') or [])} notifications"
        )
    functions = [f for f in _of_type(record, "aws:lambda/function:Function") if "queue-metrics" in str(f.get("name"))]
    if functions:
        lines.append(
            f"  queue-metrics publishers: {len(functions)} ({', '.join(sorted(str(f['name']) for f in functions))})"
        )
    return lines


def drills(record: StackRecord) -> list[str]:
    """Each zone's drill: its actions, by tier, and when it stops."""
    templates = [r for r in record.resources if r["type"] == "aws:fis/experimentTemplate:ExperimentTemplate"]
    if not templates:
        return []
    lines = ["", "Zone drills (FIS experiment templates; python -m drill plan --zone <zone> for the detail):"]
    for template in sorted(templates, key=lambda r: str((r["inputs"].get("tags") or {}).get(contract.ZONE_TAG))):
        inputs = template["inputs"]
        zone = (inputs.get("tags") or {}).get(contract.ZONE_TAG, "?")
        actions = ", ".join(str(a.get("name")) for a in inputs.get("actions") or [])
        stops = [c for c in inputs.get("stopConditions") or [] if c.get("source") == "aws:cloudwatch:alarm"]
        lines.append(f"  {zone}: {actions}")
        lines.append(
            f"      stops on {len(stops)} alarm(s)" if stops else "      no stop condition (a drill of the alerting)"
        )
    shifts = [
        r
        for r in record.resources
        if r["type"] == "aws:arczonalshift/zonalAutoshiftConfiguration:ZonalAutoshiftConfiguration"
    ]
    for shift in shifts:
        windows = ", ".join(shift["inputs"].get("allowedWindows") or []) or "any time"
        lines.append(f"  zonal autoshift {shift['name']}: practice runs {windows} UTC")
    return lines


def gate_lines(record: StackRecord, gate: GateResult) -> list[str]:
    """The verdict: each pack's counts, then each policy's diagnostics grouped under it, each
    naming the resource by type, name and URN."""
    name, rules = environments.rules_for(record.config.get(environments.KEYS["environment"]))
    lines = ["", f"Policy gate (environment {name}: {rules.describe()}):"]
    for pack in gate.packs:
        found = [d for d in gate.diagnostics if d.pack == pack.name]
        lines.append(
            f"  {pack.name} {pack.version}: {len(pack.policies)} policies, "
            f"{sum(d.mandatory for d in found)} mandatory violation(s), "
            f"{sum(not d.mandatory for d in found)} advisory"
        )
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for d in gate.diagnostics:
        groups[(d.level, d.policy)].append(d)
    for (level, policy), found in sorted(groups.items(), key=lambda kv: (kv[0][0] != "mandatory", kv[0][1])):
        messages = {d.message.splitlines()[-1] for d in found}
        count = f"{len(found)} resource{'s' if len(found) != 1 else ''}"
        shared = messages.pop() if len(messages) == 1 else None
        lines.append(f"  [{level}] {policy}: {count}" + (f": {shared}" if shared else ""))
        for d in sorted(found, key=lambda d: d.urn):
            lines.append(f"      {d.resource_name}  {d.urn}" if d.urn else "      the stack")
            if shared is None:
                lines.append(f"        {d.message.splitlines()[-1]}")
    lines += [
        "",
        "Result: "
        + (
            "PASS"
            if gate.passed
            else f"FAIL ({len(gate.violations)} mandatory violation(s): "
            + ", ".join(sorted({d.policy for d in gate.violations}))
            + ")"
        ),
    ]
    return lines


def quiet(text: str) -> str:
    """The stack line, then only the gate's section (counts, violations, verdict)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Policy gate")), len(lines))
    return "\n".join([lines[0], *lines[start:]])


def _of_type(record: StackRecord, type_: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in record.resources if r["type"] == type_]


def _name(inputs: dict[str, Any]) -> str:
    return (inputs.get("metadata") or {}).get("name", "?")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def workloads(record: StackRecord) -> list[str]:
    """What runs in the cluster and when it scales: Helm releases, the scan ScaledJobs, each
    Deployment's spread, budget, autoscaler and route, and the NodePools' scheduled budgets."""
    lines = ["", "Workloads and schedules:"]
    for release in sorted(_of_type(record, "kubernetes:helm.sh/v3:Release"), key=lambda r: str(r.get("name"))):
        lines.append(
            f"  Helm {release.get('name')} {release.get('chart')} {release.get('version')} "
            f"(namespace {release.get('namespace')})"
        )
    for job in sorted(_of_type(record, "kubernetes:keda.sh/v1alpha1:ScaledJob"), key=_name):
        spec = job.get("spec") or {}
        queues = ", ".join(str((t.get("metadata") or {}).get("queueName")) for t in spec.get("triggers") or [])
        lines.append(
            f"  ScaledJob {_name(job)}: queue {queues}, {_number(spec.get('minReplicaCount'))}-"
            f"{_number(spec.get('maxReplicaCount'))} Jobs, strategy "
            f"{(spec.get('scalingStrategy') or {}).get('strategy')}"
        )
    budgets = {_name(b): (b.get("spec") or {}) for b in _of_type(record, "kubernetes:policy/v1:PodDisruptionBudget")}
    scalers = {
        ((s.get("spec") or {}).get("scaleTargetRef") or {}).get("name"): (s.get("spec") or {})
        for s in _of_type(record, "kubernetes:keda.sh/v1alpha1:ScaledObject")
    }
    routes = {}
    for ingress in _of_type(record, "kubernetes:networking.k8s.io/v1:Ingress"):
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        for rule in (ingress.get("spec") or {}).get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                routes[path["backend"]["service"]["name"]] = (
                    f"{annotations.get('alb.ingress.kubernetes.io/scheme')} ALB {path['path']} in "
                    f"{annotations.get('alb.ingress.kubernetes.io/subnets')}"
                )
    for deployment in sorted(_of_type(record, "kubernetes:apps/v1:Deployment"), key=_name):
        name = _name(deployment)
        pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        zone = [
            c
            for c in pod.get("topologySpreadConstraints") or []
            if c.get("topologyKey") == "topology.kubernetes.io/zone"
        ]
        spread = (
            f"zone spread minDomains {_number(zone[0].get('minDomains'))} {zone[0].get('whenUnsatisfiable')}"
            if zone
            else "no zone spread"
        )
        budget = budgets.get(name)
        scaler = scalers.get(name)
        parts = [spread, f"PDB maxUnavailable {_number(budget.get('maxUnavailable'))}" if budget else "no PDB"]
        if scaler:
            cron = [t for t in scaler.get("triggers") or [] if t.get("type") == "cron"]
            peak = (
                (
                    f", {cron[0]['metadata']['desiredReplicas']} from '{cron[0]['metadata']['start']}' to "
                    f"'{cron[0]['metadata']['end']}' {cron[0]['metadata']['timezone']}"
                )
                if cron
                else ""
            )
            parts.append(
                f"autoscaler {_number(scaler.get('minReplicaCount'))}-{_number(scaler.get('maxReplicaCount'))}{peak}"
            )
        parts.append(routes.get(name, "in-cluster only"))
        lines.append(f"  Deployment {name}: " + "; ".join(parts))
    for pool in sorted(_of_type(record, "kubernetes:karpenter.sh/v1:NodePool"), key=_name):
        for budget in ((pool.get("spec") or {}).get("disruption") or {}).get("budgets") or []:
            if budget.get("schedule"):
                lines.append(
                    f"  NodePool {_name(pool)}: {budget['nodes']} node(s) for "
                    f"{', '.join(budget.get('reasons') or ['all reasons'])} from '{budget['schedule']}' "
                    f"for {budget['duration']} (UTC)"
                )
    return lines if len(lines) > 2 else []


def messaging(record: StackRecord) -> list[str]:
    """The broker's topology and its users: each queue's type and limits, each user's tags and
    permission patterns (configure / write / read)."""
    lines = []
    for vhost in _of_type(record, "rabbitmq:index/vHost:VHost"):
        lines += ["", f"Broker vhost {vhost.get('name')}:"]
        for queue in sorted(_of_type(record, "rabbitmq:index/queue:Queue"), key=lambda q: str(q.get("name"))):
            arguments = (queue.get("settings") or {}).get("argumentsJson")
            a = json.loads(arguments) if isinstance(arguments, str) else {}
            parts = [str(a.get("x-queue-type", "classic"))]
            if "x-delivery-limit" in a:
                parts.append(f"delivery limit {a['x-delivery-limit']}")
            if "x-dead-letter-exchange" in a:
                parts.append(f"dead letters via {a['x-dead-letter-exchange']}")
            if "x-max-length" in a:
                parts.append(f"max {a['x-max-length']} ({a.get('x-overflow', 'drop-head')})")
            lines.append(f"  queue {queue.get('name')}: " + ", ".join(parts))
        grants = {
            p.get("user"): p.get("permissions") or {}
            for p in _of_type(record, "rabbitmq:index/permissions:Permissions")
        }
        for user in sorted(_of_type(record, "rabbitmq:index/user:User"), key=lambda u: str(u.get("name"))):
            grant = grants.get(user.get("name"), {})
            tags = ",".join(user.get("tags") or []) or "no tags"
            lines.append(
                f"  user {user.get('name')} ({tags}): configure {grant.get('configure')} "
                f"write {grant.get('write')} read {grant.get('read')}"
            )
    return lines


def database_and_cache(record: StackRecord) -> list[str]:
    """The database's roles with their grants, and the cache's users with their access strings."""
    lines = []
    roles = sorted(_of_type(record, "postgresql:index/role:Role"), key=lambda r: str(r.get("name")))
    if roles:
        grants: dict[str, list[str]] = defaultdict(list)
        for g in _of_type(record, "postgresql:index/grant:Grant"):
            privileges = ", ".join(g.get("privileges") or []) or "nothing"
            kind = str(g.get("objectType"))
            where = (
                f"{kind}s in schema {g.get('schema')}"
                if kind in ("table", "sequence")
                else f"{kind} {g.get('schema') or g.get('database')}"
            )
            grants[str(g.get("role"))].append(f"{privileges} on {where}")
        owned = {str(s.get("owner")): str(s.get("name")) for s in _of_type(record, "postgresql:index/schema:Schema")}
        lines += ["", "Database roles:"]
        for role in roles:
            name = str(role.get("name"))
            rights = ([f"owns schema {owned[name]}"] if name in owned else []) + grants.get(name, [])
            lines.append(f"  role {name}: " + "; ".join(rights or ["no grant"]))
        if "public" in grants:
            lines.append("  PUBLIC: " + "; ".join(grants["public"]))
    users = sorted(_of_type(record, "aws:elasticache/user:User"), key=lambda u: str(u.get("userName")))
    if users:
        lines += ["", "Cache users (one user group, every node):"]
        lines += [f"  user {u.get('userName')}: {u.get('accessString')}" for u in users]
    return lines


def data_secrets(record: StackRecord) -> list[str]:
    """Each data-tier secret and the clients that may read it (the security pack checks the roles)."""
    rows = []
    for secret in _of_type(record, "aws:secretsmanager/secret:Secret"):
        tags = secret.get("tags") or {}
        if isinstance(tags, dict) and contract.DATA_SECRET_TAG in tags:
            rows.append(f"  {tags[contract.DATA_SECRET_TAG]}: read by {tags.get(contract.SECRET_READERS_TAG)}")
    return ["", "Data secrets and their readers:", *sorted(rows)] if rows else []


def _node_id(urn: str) -> str:
    return "n" + re.sub(r"[^A-Za-z0-9]", "_", urn.split("::")[-1])


def _label(r: dict[str, Any]) -> str:
    kind = _DRAWN.get(r["type"], r["type"].split(":")[-1])
    inputs = r["inputs"]
    if r["type"] == "aws:ec2/subnet:Subnet":
        return f"{(inputs.get('tags') or {}).get(TIER_TAG, 'subnet')} subnet<br/>{inputs.get('cidrBlock')}"
    if r["type"] == "aws:ec2/vpc:Vpc":
        return f"VPC<br/>{inputs.get('cidrBlock')}"
    if r["type"] == "aws:ec2/natGateway:NatGateway" and inputs.get("availabilityMode") == "regional":
        return "regional NAT gateway"
    return kind


def diagram(record: StackRecord) -> str:
    """Mermaid flowchart: one box per component, one box per zone inside it, default routes as edges."""
    view = StackView(record)
    custom = [r for r in record.resources if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    groups: dict[tuple[str | None, str | None], list[dict[str, Any]]] = defaultdict(list)
    for r in custom:
        component = view.component(r)
        groups[(component["urn"] if component else None, view.zone(r))].append(r)
    out = [
        f"# Stack `{record.stack}`: resources by component and zone",
        "",
        "Generated by `python -m offline.preview`; default routes drawn as arrows.",
        "",
        "```mermaid",
        "flowchart TB",
    ]
    components = sorted({c for c, _ in groups}, key=lambda c: c or "")
    for component_urn in components:
        component = view.by_urn.get(component_urn or "")
        title = f"{component['type'].split(':')[-1]} {component['name']}" if component else "stack"
        out.append(f'  subgraph {_node_id(component_urn or "stack")}["{title}"]')
        zones = sorted({z for c, z in groups if c == component_urn}, key=lambda z: z or "")
        for zone in zones:
            members = groups[(component_urn, zone)]
            indent = "    "
            if zone:
                out.append(f'    subgraph {_node_id((component_urn or "stack") + zone)}["{zone}"]')
                indent = "      "
            drawn = sorted((r for r in members if r["type"] in _DRAWN), key=lambda r: (r["type"], r["name"]))
            for r in drawn:
                out.append(f'{indent}{_node_id(r["urn"])}["{_label(r)}"]')
            rest = Counter(r["type"].split(":")[-1] for r in members if r["type"] not in _DRAWN)
            if rest:
                text = "<br/>".join(f"{n} × {t}" for t, n in sorted(rest.items()))
                out.append(f'{indent}{_node_id((component_urn or "stack") + (zone or "") + "rest")}["{text}"]')
            if zone:
                out.append("    end")
        out.append("  end")
    for edge in _route_edges(view):
        out.append(f"  {edge}")
    out.append("```")
    return "\n".join(out) + "\n"


def _route_edges(view: StackView) -> list[str]:
    edges = []
    associations = [
        r for r in view.record.resources if r["type"] == "aws:ec2/routeTableAssociation:RouteTableAssociation"
    ]
    for route in view.record.resources:
        if route["type"] != "aws:ec2/route:Route":
            continue
        deps = route["propertyDependencies"]
        tables = set(deps.get("routeTableId", []))
        targets = deps.get("natGatewayId", []) + deps.get("gatewayId", [])
        for association in associations:
            if tables & set(association["propertyDependencies"].get("routeTableId", [])):
                for subnet in association["propertyDependencies"].get("subnetId", []):
                    for target in targets:
                        edges.append(f"{_node_id(subnet)} --> {_node_id(target)}")
    return sorted(set(edges))
