"""All-AZ placement rules for the network tier."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    StackValidationArgs,
    StackValidationPolicy,
)

import contract
from environments import KEYS, stack_environment
from stack_graph import (
    NAT_GATEWAY,
    ROUTE_TABLE,
    SUBNET,
    TIER_TAG,
    VPC_ENDPOINT,
    Report,
    StackGraph,
    known,
    network_zones,
    property_ids,
    scopes,
    setting,
    short,
    tag,
)

VPC = "aws:ec2/vpc:Vpc"


def subnet_tiers_every_az(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    tiers = setting(args, "requiredTiers", ["public", "private", "isolated"])
    environment, rules = stack_environment()
    minimum = setting(args, "minimumZones", rules.minimum_zones)
    if not graph.networks() and not graph.of_type(VPC) and not graph.of_type(SUBNET):
        return  # a stack that declares no network (the bootstrap program) has no tiers to spread
    for network in scopes(graph):
        where = short(network) if network else "the stack"
        zones = network_zones(graph, network)
        urn = network.urn if network else None
        if len(zones) < minimum:
            report(
                f"{where} spans {len(zones)} zone(s) ({', '.join(zones) or 'none'}); a {environment} stack "
                f"needs at least {minimum} so it survives the loss of one ({KEYS['zones']}).",
                urn,
            )
        present: dict[str, set[str]] = {zone: set() for zone in zones}
        for subnet in graph.of_type(SUBNET, network):
            zone, tier = graph.subnet_zone(subnet), tag(subnet, TIER_TAG)
            if zone not in present:
                report(
                    f"{short(subnet)} is in zone {zone}, which is not one of the zones of {where} "
                    f"({', '.join(zones)}); move it or add the zone.",
                    subnet.urn,
                )
                continue
            if tier:
                present[zone].add(tier)
        for zone in zones:
            for tier in tiers:
                if tier not in present[zone]:
                    report(
                        f"zone {zone} of {where} has no {tier} subnet; every zone needs a "
                        f"{', '.join(tiers)} subnet so losing one zone leaves the others whole.",
                        urn,
                    )


def nat_per_az(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    environment, rules = stack_environment()
    for network in scopes(graph):
        where = short(network) if network else "the stack"
        mode = known(network, contract.NETWORK_NAT_MODE_INPUT, "per-az") if network else "per-az"
        zones = network_zones(graph, network)
        nats = graph.of_type(NAT_GATEWAY, network)
        if mode == "single":
            if "single" not in rules.nat_modes:
                report(
                    f"{where} uses natMode 'single': every zone's egress depends on one NAT gateway; a "
                    f"{environment} stack needs {' or '.join(repr(m) for m in rules.nat_modes)} ({KEYS['nat']}).",
                    network.urn if network else None,
                )
            continue
        if mode == "per-az":
            nat_zones = {graph.nat_zone(n) for n in nats}
            for zone in zones:
                if zone not in nat_zones:
                    report(
                        f"zone {zone} of {where} has no NAT gateway of its own; add one in its public subnet.",
                        network.urn if network else None,
                    )
        for table in graph.of_type(ROUTE_TABLE, network):
            if graph.route_table_tier(table) != "private":
                continue
            table_zones = graph.route_table_zones(table)
            targets, strangers = graph.default_route_targets(table)
            for nat_id in strangers:
                report(
                    f"private {short(table)} sends 0.0.0.0/0 to {nat_id}, which is no NAT gateway of this stack; "
                    "its zone cannot be checked. Route through the zone's own NAT gateway.",
                    table.urn,
                )
            if not targets and not strangers:
                report(f"private {short(table)} has no default route through a NAT gateway.", table.urn)
                continue
            for nat in targets:
                if mode == "regional":
                    if known(nat, "availabilityMode", "zonal") != "regional":
                        report(
                            f"private {short(table)} routes through zonal {short(nat)} although the network "
                            "uses a regional NAT gateway.",
                            table.urn,
                        )
                    continue
                nat_zone = graph.nat_zone(nat)
                if nat_zone not in table_zones:
                    report(
                        f"private {short(table)} in zone {', '.join(sorted(table_zones)) or 'unknown'} sends "
                        f"0.0.0.0/0 to {short(nat)} in zone {nat_zone}; route each zone through its own "
                        "zone's NAT so one zone's outage cuts no other off.",
                        table.urn,
                    )


def s3_endpoint_every_route_table(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    tiers = setting(args, "routeTableTiers", ["private", "isolated"])
    for network in scopes(graph):
        endpoints = [
            e
            for e in graph.of_type(VPC_ENDPOINT, network)
            if str(known(e, "serviceName", "")).endswith(".s3") and known(e, "vpcEndpointType", "Gateway") == "Gateway"
        ]
        # Attached by dependency, and (once ids are known) by value: both must hold.
        attached = {t.urn for e in endpoints for t in e.property_dependencies.get("routeTableIds", [])}
        listed: set[str] | None = None
        for endpoint in endpoints:
            ids = property_ids(endpoint, "routeTableIds", "rtb-")
            if ids is not None:
                listed = (listed or set()) | set(ids)
        for table in graph.of_type(ROUTE_TABLE, network):
            tier = graph.route_table_tier(table)
            table_id = known(table, "id")
            by_value = listed is None or table_id is None or table_id in listed
            if tier in tiers and (table.urn not in attached or not by_value):
                report(
                    f"{tier} {short(table)} is not attached to an S3 gateway endpoint; image layers and "
                    "repository archives would go through NAT. Add it to the endpoint's routeTableIds.",
                    table.urn,
                )


POLICIES = [
    StackValidationPolicy(
        name="network-subnet-tiers-every-az",
        description="Requires a public, a private and an isolated subnet in every zone of the network.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=subnet_tiers_every_az,
        config_schema=PolicyConfigSchema(
            properties={
                # No default: the stack's environment decides (policies/common/environments.py).
                "minimumZones": {"type": "integer", "minimum": 1},
                "requiredTiers": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": ["public", "private", "isolated"],
                },
            }
        ),
    ),
    StackValidationPolicy(
        name="network-nat-per-az",
        description="Requires private egress that survives a zone loss: a NAT per zone used by that zone's "
        "private route table, or a regional NAT gateway (one NAT only where the environment allows it).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=nat_per_az,
    ),
    StackValidationPolicy(
        name="network-s3-endpoint-every-route-table",
        description="Requires the S3 gateway endpoint on every private and isolated route table.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=s3_endpoint_every_route_table,
        config_schema=PolicyConfigSchema(
            properties={
                "routeTableTiers": {"type": "array", "items": {"type": "string"}, "default": ["private", "isolated"]},
            }
        ),
    ),
]
