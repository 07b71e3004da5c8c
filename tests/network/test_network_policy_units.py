"""Unit layer for the network placement policies: one policy, in process, on the recorded prod stack
with one hand-made edit; the whole-program faults stay in test_*_policies.py.

Each case edits a clean record the way a plausible bug or a careless config would, and the policy
must refuse it with its own message, on a first preview (ids unknown) and on an update (ids known).
"""

import json
from typing import Any

import pytest
from conftest import DELETE, UNKNOWN, assert_refused, drop, named, run, set_value, unit_cases, verdict

SUBNET = "aws:ec2/subnet:Subnet"
NETWORK = "scanner:network:Network"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE = "aws:ec2/route:Route"
TABLE = "aws:ec2/routeTable:RouteTable"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
TIER = "scanner.io/tier"
MODES = ["preview", "update"]


# ----- edits the conftest helpers do not cover: tag keys with dots, property dependencies ----------


def retag(record, type_, name, key, value):
    """Set (DELETE: remove) one tag, in inputs and outputs."""
    for resource in named(record, type_, name):
        for side in ("inputs", "outputs"):
            tags = resource[side].setdefault("tags", {})
            if value is DELETE:
                tags.pop(key, None)
            else:
                tags[key] = value


def id_of(record, type_, name):
    """A resource's id: known on an update, unknown during a first preview."""
    [resource] = named(record, type_, name)
    return resource["outputs"].get("id", UNKNOWN)


def detach(record, *tables):
    """Take route tables off the S3 endpoint: out of its dependencies and (once known) its ids."""
    [endpoint] = named(record, ENDPOINT, "network-s3")
    for table in tables:
        [found] = named(record, TABLE, table)
        endpoint["propertyDependencies"]["routeTableIds"].remove(found["urn"])
        for side in ("inputs", "outputs"):
            endpoint[side]["routeTableIds"].remove(id_of(record, TABLE, table))
    return record


def environment(name):
    """The stack's `scanner:environment` set to `name` (None: not set at all)."""

    def edit(record):
        record.config = {k: v for k, v in record.config.items() if k != "scanner:environment"}
        if name is not None:
            record.config["scanner:environment"] = name

    return edit


def two_zones(record):
    """The network shrunk to us-east-1a and us-east-1b, every us-east-1c subnet gone with it."""
    set_value(record, NETWORK, "network", "availabilityZones", ["us-east-1a", "us-east-1b"])
    for tier in ("public", "private", "isolated"):
        drop(record, SUBNET, f"network-{tier}-us-east-1c")


def both(*edits):
    def edit(record):
        for one_edit in edits:
            one_edit(record)

    return edit


def table_swapped_by_value(record):
    """The endpoint's ids name a public table where its dependency says the private one."""
    private_c, public_c = (id_of(record, TABLE, f"network-{tier}-rt-us-east-1c") for tier in ("private", "public"))
    for side in ("inputs", "outputs"):
        listed = named(record, ENDPOINT, "network-s3")[0][side]["routeTableIds"]
        listed[listed.index(private_c)] = public_c


def nat_by_value_in_other_zone(record):
    """The route's dependency says its own zone's NAT, its value (an `apply`) another zone's."""
    nat = id_of(record, NAT, "network-nat-us-east-1a")
    set_value(record, ROUTE, "network-private-default-us-east-1b", "natGatewayId", nat)


# ----- faults: policy -> [(label, edit, message fragment[, the only mode it applies to])] ---------------

#: (label, edit, message) or, for a case of one mode only, (label, edit, message, mode).
CASES: dict[str, list[tuple[Any, ...]]] = {
    "network-subnet-tiers-every-az": [
        (
            "isolated subnet missing in one zone",
            lambda r: drop(r, SUBNET, "network-isolated-us-east-1c"),
            "zone us-east-1c of Network 'network' has no isolated subnet",
        ),
        (
            "public subnet tagged as another tier",
            lambda r: retag(r, SUBNET, "network-public-us-east-1b", TIER, "pods"),
            "zone us-east-1b of Network 'network' has no public subnet",
        ),
        (
            "subnet in a zone the network does not declare",
            lambda r: set_value(r, SUBNET, "network-private-us-east-1c", "availabilityZone", "us-east-1d"),
            "Subnet 'network-private-us-east-1c' is in zone us-east-1d, which is not one of the zones",
        ),
    ],
    "network-nat-per-az": [
        (
            "NAT gateway missing in one zone",
            lambda r: drop(r, NAT, "network-nat-us-east-1c"),
            "zone us-east-1c of Network 'network' has no NAT gateway of its own",
        ),
        (
            "regional mode declared over zonal NAT gateways",
            lambda r: set_value(r, NETWORK, "network", "natMode", "regional"),
            "routes through zonal NatGateway 'network-nat-us-east-1a' although the network uses a regional",
        ),
        (
            # Update only: the fault is in the value alone, an id unknown during a first preview
            # (the dependency, all a preview has, is right).
            "route's NAT id is another zone's, its dependency right",
            nat_by_value_in_other_zone,
            "private RouteTable 'network-private-rt-us-east-1b' in zone us-east-1b sends 0.0.0.0/0 to NatGateway "
            "'network-nat-us-east-1a' in zone us-east-1a",
            "update",
        ),
    ],
    "network-s3-endpoint-every-route-table": [
        (
            "endpoint declared as an interface endpoint",
            lambda r: set_value(r, ENDPOINT, "network-s3", "vpcEndpointType", "Interface"),
            "isolated RouteTable 'network-isolated-rt-us-east-1a' is not attached",
        ),
        (
            "untagged table detached: its tier still comes from its subnet",
            both(
                lambda r: retag(r, TABLE, "network-isolated-rt-us-east-1b", TIER, DELETE),
                lambda r: detach(r, "network-isolated-rt-us-east-1b"),
            ),
            "isolated RouteTable 'network-isolated-rt-us-east-1b' is not attached",
        ),
        (
            # Update only: the fault is in the endpoint's ids alone, unknown during a first preview.
            "endpoint's ids name the wrong table, its dependencies right",
            table_swapped_by_value,
            "private RouteTable 'network-private-rt-us-east-1c' is not attached",
            "update",
        ),
    ],
}


UNIT_FAULTS = unit_cases(CASES)


@pytest.mark.parametrize("policy,edit,message,mode", UNIT_FAULTS)
def test_fault_is_refused(policy, edit, message, mode):
    record = run("prod", mode)
    edit(record)
    assert_refused(record, policy, message)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("policy", sorted(CASES))
def test_clean_stack_passes(policy, stack, mode):
    assert verdict(run(stack, mode), policy) == []


# ----- what a setting or the stack's environment decides: the same edit judged both ways --------------
#: label -> (policy, edit, setting, message before, message after); a setting is an edit of the stack
#: config (the environment) or a policy config; None for a message means the policy passes.
SETTINGS = {
    "two zones: production needs 3, development 2": (
        "network-subnet-tiers-every-az",
        two_zones,
        environment("development"),
        "Network 'network' spans 2 zone(s) (us-east-1a, us-east-1b); a production stack needs at least 3",
        None,
    ),
    "minimumZones above the zones declared": (
        "network-subnet-tiers-every-az",
        lambda r: None,
        {"minimumZones": 4},
        None,
        "spans 3 zone(s)",
    ),
    "requiredTiers without isolated": (
        "network-subnet-tiers-every-az",
        lambda r: drop(r, SUBNET, "network-isolated-us-east-1a"),
        {"requiredTiers": ["public", "private"]},
        "zone us-east-1a of Network 'network' has no isolated subnet",
        None,
    ),
    "one NAT: refused in production, allowed in development": (
        "network-nat-per-az",
        lambda r: set_value(r, NETWORK, "network", "natMode", "single"),
        environment("development"),
        "uses natMode 'single'",
        None,
    ),
    "one NAT, environment not set: the strictest rules": (
        "network-nat-per-az",
        both(environment("development"), lambda r: set_value(r, NETWORK, "network", "natMode", "single")),
        environment(None),
        None,
        "a production stack needs 'per-az' or 'regional'",
    ),
    "routeTableTiers without isolated": (
        "network-s3-endpoint-every-route-table",
        lambda r: detach(r, "network-isolated-rt-us-east-1a"),
        {"routeTableTiers": ["private"]},
        "isolated RouteTable 'network-isolated-rt-us-east-1a' is not attached",
        None,
    ),
    "routeTableTiers with public": (
        "network-s3-endpoint-every-route-table",
        lambda r: None,
        {"routeTableTiers": ["private", "isolated", "public"]},
        None,
        "public RouteTable 'network-public-rt-us-east-1a' is not attached",
    ),
}


def expect(found, message):
    if message is None:
        assert found == [], [(d.level, d.message) for d in found]
    else:
        assert found and {d.level for d in found} == {"mandatory"}, [(d.level, d.message) for d in found]
        assert any(message in d.message for d in found), [d.message for d in found]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("label", sorted(SETTINGS))
def test_setting_decides(label, mode, tmp_path):
    policy, edit, setting, before, after = SETTINGS[label]
    record = run("prod", mode)
    edit(record)
    expect(verdict(record, policy), before)
    config = None
    if callable(setting):
        setting(record)
    else:
        config = tmp_path / "policy-config.json"
        config.write_text(json.dumps({policy: setting}))
    expect(verdict(record, policy, config), after)


# ----- a stack with no network: nothing to spread, but a VPC declared outside the component is judged


def unwrap(record):
    """The network's children declared at the stack's top level, the component gone."""
    [network] = named(record, NETWORK, "network")
    root = next(r for r in record.resources if r["type"] == "pulumi:pulumi:Stack")["urn"]
    for resource in record.resources:
        if resource["parent"] == network["urn"]:
            resource["parent"] = root
    record.resources.remove(network)
    return record


@pytest.mark.parametrize("mode", MODES)
def test_subnets_outside_a_network_component_are_still_judged(mode):
    record = drop(unwrap(run("prod", mode)), SUBNET, "network-isolated-us-east-1c")
    messages = [d.message for d in verdict(record, "network-subnet-tiers-every-az")]
    assert any("zone us-east-1c of the stack has no isolated subnet" in m for m in messages), messages


@pytest.mark.parametrize("mode", MODES)
def test_a_stack_that_declares_no_network_has_no_tiers_to_spread(mode):
    from conftest import ROOT, _run_program, stack_config

    bootstrap = ROOT / "bootstrap"
    record = _run_program("prod", mode, bootstrap, stack_config("prod", bootstrap))
    assert not [r for r in record.resources if r["type"] in (SUBNET, "aws:ec2/vpc:Vpc", NETWORK)]
    assert verdict(record, "network-subnet-tiers-every-az") == []
