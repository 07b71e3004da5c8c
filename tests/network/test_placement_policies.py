"""The placement pack, run through the gRPC gate as the engine runs it, on the real program's
registrations: the good stacks pass; each deliberate fault is refused by name."""

import json

import pytest
from conftest import gate, run

from components.network import plan as network_plan
from offline.gate import PolicyConfigError

MODES = ["preview", "update"]


def violations(result):
    return sorted({(d.policy, d.level) for d in result.diagnostics if d.level == "mandatory"})


@pytest.mark.parametrize("mode", MODES)
def test_prod_passes_and_every_policy_decides(mode):
    result = gate(run("prod", mode))
    assert result.passed, result.diagnostics
    # Nothing skipped as "can't run during preview": the rules decide on unknown ids too.
    assert result.diagnostics == []
    [pack] = result.packs
    assert (pack.name, pack.version) == ("scanner-placement", "0.7.1")
    assert set(pack.policies) == {
        "network-subnet-tiers-every-az",
        "network-nat-per-az",
        "network-s3-endpoint-every-route-table",
        "eks-cluster-subnets-every-az",
        "eks-node-group-every-az",
        "karpenter-node-pool-every-az",
        "karpenter-scan-pool-offers-spot",
        "rds-multi-az",
        "data-subnet-groups-every-az",
        "rds-replica-other-az",
        "mq-cluster-multi-az",
        "elasticache-failover-multi-az",
        "efs-mount-target-every-az",
        "efs-not-one-zone",
        "deployment-spread-over-zones",
        "deployment-has-disruption-budget",
        "load-balancer-every-az",
        "deployment-rollout-awaited",
        "monitoring-resources-alarmed",
        "monitoring-zone-composites",
        "alarms-act-on-stack-topics",
        "drill-every-zone",
    }


def drop_private_subnet_in_b(original):
    def plan(*args, **kwargs):
        return [s for s in original(*args, **kwargs) if not (s.tier == "private" and s.zone.endswith("b"))]

    return plan


def nat_of_next_zone(original):
    def nat_zones(zones, mode):
        return {zone: zones[(i + 1) % len(zones)] for i, zone in enumerate(zones)}

    return nat_zones


FAULTS = {
    "missing-subnet": (
        "plan_subnets",
        drop_private_subnet_in_b,
        "network-subnet-tiers-every-az",
        "zone us-east-1b of Network 'network' has no private subnet",
    ),
    "cross-zone-nat": (
        "nat_zones",
        nat_of_next_zone,
        "network-nat-per-az",
        "sends 0.0.0.0/0 to NatGateway 'network-nat-us-east-1b' in zone us-east-1b",
    ),
    "no-s3-endpoint": (
        "s3_endpoint_tiers",
        lambda original: lambda: ("private",),
        "network-s3-endpoint-every-route-table",
        "isolated RouteTable 'network-isolated-rt-us-east-1a' is not attached to an S3 gateway endpoint",
    ),
}


#: A zone without a private subnet also leaves the cluster, its nodes, the broker and the
#: repository cache a zone short.
ALSO_REFUSED = {
    "missing-subnet": {
        "eks-cluster-subnets-every-az",
        "eks-node-group-every-az",
        "mq-cluster-multi-az",
        "efs-mount-target-every-az",
        # the API load balancer sits in the private subnets
        "load-balancer-every-az",
    }
}


#: Faults that can share a run: a zone without its private subnet changes the very route
#: tables the other two faults act on, so it runs apart from them.
GROUPS = {"missing-subnet": ["missing-subnet"], "routing": ["cross-zone-nat", "no-s3-endpoint"]}
#: The group judged with the other tiers' faults (`representative_faults`).
WITH_THE_OTHER_TIERS = "routing"


def _program_fault(name: str) -> tuple:
    """A fault of the table in the shape the whole-program helpers take: (inject, policies,
    message, also refused); the message must come from the fault's own policy."""
    function, make, policy, message = FAULTS[name]

    def inject(monkeypatch):
        monkeypatch.setattr(network_plan, function, make(getattr(network_plan, function)))

    return inject, {policy}, message, frozenset(ALSO_REFUSED.get(name, ()))


def representative_faults() -> dict:
    """The routing faults, judged with the other tiers' in one run of the program through the pack
    processes, in both modes (tests/packs/test_gate_of_record.py)."""
    return {name: _program_fault(name) for name in GROUPS[WITH_THE_OTHER_TIERS]}


def apart_faults() -> dict:
    """The missing subnet, which changes the very route tables the routing faults act on: judged
    with the other tiers' faults that run apart (tests/packs/test_gate_of_record.py)."""
    return {name: _program_fault(name) for name in GROUPS["missing-subnet"]}


def test_single_nat_is_refused_unless_the_environment_allows_it():
    record = run("dev", "preview")
    assert gate(record).diagnostics == []  # development allows one NAT gateway
    record.config = dict(record.config, **{"scanner:environment": "staging"})
    assert violations(gate(record)) == [("network-nat-per-az", "mandatory")]


def test_policy_config_property_is_applied(tmp_path):
    config = tmp_path / "placement.json"
    config.write_text(json.dumps({"network-subnet-tiers-every-az": {"minimumZones": 4}}))
    result = gate(run("prod", "preview"), policy_config=config)
    assert violations(result) == [("network-subnet-tiers-every-az", "mandatory")]
    assert "spans 3 zone(s)" in result.diagnostics[0].message


def test_all_key_lowers_every_level(tmp_path, monkeypatch):
    monkeypatch.setattr(network_plan, "s3_endpoint_tiers", lambda: ("private",))
    config = tmp_path / "placement.json"
    config.write_text(json.dumps({"all": "advisory"}))
    result = gate(run("prod", "preview"), policy_config=config)
    assert result.passed and {d.level for d in result.diagnostics} == {"advisory"}


@pytest.mark.parametrize(
    "content,message",
    [
        (
            {"network-nat-per-zone": "advisory"},
            "'network-nat-per-zone' is not a policy of pack scanner-placement (policies: alarms-act-on-stack-topics, "
            "data-subnet-groups-every-az, deployment-has-disruption-budget, deployment-rollout-awaited, "
            "deployment-spread-over-zones, drill-every-zone, "
            "efs-mount-target-every-az, efs-not-one-zone, "
            "eks-cluster-subnets-every-az, eks-node-group-every-az, elasticache-failover-multi-az, karpenter-node-pool-every-az, "
            "karpenter-scan-pool-offers-spot, "
            "load-balancer-every-az, monitoring-resources-alarmed, monitoring-zone-composites, mq-cluster-multi-az, "
            "network-nat-per-az, network-s3-endpoint-every-route-table, "
            "network-subnet-tiers-every-az, rds-multi-az, rds-replica-other-az)",
        ),
        (
            {"network-nat-per-az": "loud"},
            "network-nat-per-az: enforcement level 'loud' is not one of advisory, mandatory, disabled, remediate",
        ),
        (
            {"network-subnet-tiers-every-az": {"minimumZones": "three"}},
            "network-subnet-tiers-every-az.minimumZones: 'three' is not of type 'integer'",
        ),
        (
            {"network-subnet-tiers-every-az": {"minZones": 2}},
            "network-subnet-tiers-every-az: Additional properties are not allowed ('minZones' was unexpected)",
        ),
    ],
)
def test_bad_policy_config_is_one_line_naming_the_key(tmp_path, content, message):
    config = tmp_path / "placement.json"
    config.write_text(json.dumps(content))
    with pytest.raises(PolicyConfigError) as caught:
        gate(run("prod", "preview"), policy_config=config)
    assert str(caught.value) == f"{config}: {message}"
