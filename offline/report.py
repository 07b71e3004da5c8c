"""Readable views of a recorded stack: a summary for the terminal and a Mermaid diagram."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

from pulumi.runtime.rpc import UNKNOWN

from components.network import TIER_TAG, ZONE_TAG
from offline.gate import GateResult
from offline.program import StackRecord

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
            zone = inputs.get("availabilityZone") or (inputs.get("tags") or {}).get(ZONE_TAG)
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
            table[zone][(r["inputs"].get("tags") or {}).get(TIER_TAG, "other")] += 1
        elif r["type"] == "aws:ec2/natGateway:NatGateway":
            table[zone]["NAT"] += 1
        elif r["type"] == "aws:ec2/routeTable:RouteTable":
            table[zone]["route tables"] += 1
    regional = sum(1 for r in custom if view.zone(r) is None)
    lines.append("  " + f"{'zone':<16}" + "".join(f"{c:>14}" for c in columns))
    for zone in view.zones():
        lines.append("  " + f"{zone:<16}" + "".join(f"{table[zone][c]:>14}" for c in columns))
    lines.append(f"  regional (no zone): {regional}")
    if gate is not None:
        lines += ["", "Policy gate:"]
        for pack in gate.packs:
            found = [d for d in gate.diagnostics if d.pack == pack.name]
            lines.append(f"  {pack.name} {pack.version}: {len(pack.policies)} policies, "
                         f"{sum(d.mandatory for d in found)} mandatory violation(s), "
                         f"{sum(not d.mandatory for d in found)} advisory")
        for d in gate.diagnostics:
            message = d.message.splitlines()[-1]
            lines.append(f"  [{d.level}] {d.policy}: {message}")
            if d.urn:
                lines.append(f"      at {d.urn}")
        lines += ["", "Result: " + ("PASS" if gate.passed else
                                     f"FAIL ({len(gate.violations)} mandatory violation(s): "
                                     + ", ".join(sorted({d.policy for d in gate.violations})) + ")")]
    return "\n".join(lines)


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
    out = [f"# Stack `{record.stack}`: resources by component and zone", "",
           "Generated by `python -m offline.preview`; default routes drawn as arrows.", "",
           "```mermaid", "flowchart TB"]
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
    associations = [r for r in view.record.resources
                    if r["type"] == "aws:ec2/routeTableAssociation:RouteTableAssociation"]
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
