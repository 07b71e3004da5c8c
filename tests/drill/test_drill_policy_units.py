"""Policy unit layer for the zone drill: one policy, in process, on the recorded stacks with one
hand-made edit; the whole-program faults stay in test_drill_policies.py."""

import pytest
from conftest import assert_refused, drop, named, run, unit_cases, verdict

TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
MODES = ["preview", "update"]


def without_action(zone: str, action: str):
    def apply(record):
        for resource in named(record, TEMPLATE, f"drill-{zone}"):
            for side in ("inputs", "outputs"):
                resource[side]["actions"] = [a for a in resource[side]["actions"] if a["name"] != action]

    return apply


def with_parameter(zone: str, action: str, key: str, value: str):
    def apply(record):
        for resource in named(record, TEMPLATE, f"drill-{zone}"):
            for side in ("inputs", "outputs"):
                for a in resource[side]["actions"]:
                    if a["name"] == action:
                        a["parameters"] = [p for p in a["parameters"] if p["key"] != key] + [
                            {"key": key, "value": value}
                        ]

    return apply


def subnets_of_another_zone(record):
    """us-east-1b's drill disrupts us-east-1a's subnets (ARNs and dependencies alike)."""
    [a] = named(record, TEMPLATE, "drill-us-east-1a")
    [b] = named(record, TEMPLATE, "drill-us-east-1b")
    for side in ("inputs", "outputs"):
        first = next(t for t in a[side]["targets"] if t["name"] == "disrupt-network")
        for t in b[side]["targets"]:
            if t["name"] == "disrupt-network":
                t["resourceArns"] = list(first["resourceArns"])
    subnets = {r["urn"] for r in record.resources if r["type"] == "aws:ec2/subnet:Subnet"}
    zone_b = {
        r["urn"] for r in record.resources if r["urn"] in subnets and r["inputs"]["availabilityZone"] == "us-east-1b"
    }
    b["propertyDependencies"]["targets"] = [u for u in b["propertyDependencies"]["targets"] if u not in zone_b]


CASES = {
    "drill-every-zone": [
        ("zone-drill-dropped", lambda r: drop(r, TEMPLATE, "drill-us-east-1c"), "zone us-east-1c has no zone-drill"),
        (
            "nodes-spared",
            lambda r: [
                without_action("us-east-1a", a)(r)
                for a in ("stop-system-nodes", "stop-services-nodes", "stop-scan-fallback-nodes")
            ],
            "leaves out the cluster's nodes",
        ),
        ("launches-allowed", without_action("us-east-1a", "no-launch-capacity"), "launches into the zone"),
        ("cache-spared", without_action("us-east-1b", "interrupt-cache"), "leaves out the cache"),
        ("no-shift", without_action("us-east-1b", "shift-away"), "the services' traffic"),
        (
            "reboot-without-failover",
            with_parameter("us-east-1c", "fail-over-database", "forceFailover", "false"),
            "leaves out the database",
        ),
        (
            "network-cut-in-one-vpc-only",
            with_parameter("us-east-1a", "disrupt-network", "scope", "vpc"),
            "leaves out the network",
        ),
        ("another-zone-s-subnets", subnets_of_another_zone, "the zone drill of us-east-1b leaves out the network"),
    ],
}


@pytest.mark.parametrize("policy, change, message, mode", unit_cases(CASES))
def test_fault_is_refused(policy, change, message, mode):
    record = run("prod", mode)
    change(record)
    assert_refused(record, policy, message)


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("mode", MODES)
def test_clean_stack_passes(mode, stack):
    assert verdict(run(stack, mode), "drill-every-zone") == []


@pytest.mark.parametrize("mode", MODES)
def test_only_production_must_drill_and_an_alerting_drill_is_explicit(mode):
    """dev may drop a zone's drill; prod may run without stop conditions only when it says so."""
    dev = run("dev", mode)
    drop(dev, TEMPLATE, "drill-eu-west-1a")
    assert verdict(dev, "drill-every-zone") == []
    alerting = run("prod", mode, **{"scanner:drillStopConditions": "none"})
    assert verdict(alerting, "drill-every-zone") == []
    stops = {
        r["name"]: [c["source"] for c in r["inputs"]["stopConditions"]] for r in named(alerting, TEMPLATE, "drill-*")
    }
    assert set(map(tuple, stops.values())) == {("none",)}
