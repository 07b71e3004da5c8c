"""The zone drill's plan (components/drill/drill_plan.py), pure: each zone's experiment takes the
zone out of every tier, in the form the stack's shape needs, within FIS's limits."""

import dataclasses

import pytest

from components.drill import drill_plan
from components.drill.drill_plan import Drilled

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
PROD = Drilled(
    zones=ZONES,
    name_prefix="scanner-prod",
    subnet_tiers=("public", "private", "isolated"),
    cluster_name="scanner-prod",
    launchers=("karpenter",),
    node_group=True,
    database="multi-az-instance",
    cache=True,
    managed_resources=("cluster", "api-load-balancer"),
    replica_zone="us-east-1c",
)
EVERY_TIER = [
    "disrupt-network",
    "stop-system-nodes",
    "stop-services-nodes",
    "stop-scan-fallback-nodes",
    "interrupt-scan-spot-nodes",
    "no-launch-capacity",
    "no-node-group-capacity",
    "fail-over-database",
    "interrupt-cache",
    "shift-away",
]


def test_every_zone_gets_every_tier_s_action():
    for zone_plan in drill_plan.plan(PROD):
        assert [a.name for a in zone_plan.actions] == EVERY_TIER
        assert {a.tier for a in zone_plan.actions} == {"network", "cluster", "data", "services"}


def test_the_zone_is_named_where_fis_needs_it():
    b = drill_plan.plan_zone(PROD, "us-east-1b")
    for stop in ("stop-system-nodes", "stop-services-nodes", "stop-scan-fallback-nodes"):
        assert b.action(stop).filters["Placement.AvailabilityZone"] == ("us-east-1b",)
        # Karpenter and the node group's repair replace a stopped node: that completes the action.
        assert b.action(stop).parameters["completeIfInstancesTerminated"] == "true"
    assert b.action("stop-system-nodes").resource_tags == {"eks:cluster-name": "scanner-prod"}
    # Only on-demand pools are stopped: EC2 refuses to stop the one-time spot instances Karpenter
    # launches, which would fail the whole experiment; the spot pool is interrupted instead.
    assert b.action("stop-services-nodes").resource_tags == {
        "eks:eks-cluster-name": "scanner-prod",
        "karpenter.sh/nodepool": "services",
    }
    assert b.action("stop-scan-fallback-nodes").resource_tags["karpenter.sh/nodepool"] == "scan-jobs-on-demand"
    spot = b.action("interrupt-scan-spot-nodes")
    assert (spot.action_id, spot.target_key, spot.resource_type) == (
        "aws:ec2:send-spot-instance-interruptions",
        "SpotInstances",
        "aws:ec2:spot-instance",
    )
    assert spot.resource_tags["karpenter.sh/nodepool"] == "scan-jobs" and spot.filters[
        "Placement.AvailabilityZone"
    ] == ("us-east-1b",)
    assert spot.parameters == {"durationBeforeInterruption": "PT2M"}
    assert b.action("no-launch-capacity").parameters["availabilityZoneIdentifiers"] == "us-east-1b"
    assert b.action("no-launch-capacity").resource_arns == ("{launcher:karpenter}",)
    assert b.action("no-node-group-capacity").parameters["availabilityZoneIdentifiers"] == "us-east-1b"
    assert b.action("no-node-group-capacity").target_key == "AutoScalingGroups"
    # FIS takes no ARN for a replication group: found by the drill tag.
    cache = b.action("interrupt-cache")
    assert cache.target_parameters == {"availabilityZoneIdentifier": "us-east-1b"} and cache.resource_arns == ()
    assert cache.resource_tags == {"scanner.io/drill-target": "scanner-prod-cache"}
    # The primary fails over only when it is in the zone: never into the dead zone.
    assert b.action("fail-over-database").target_parameters == {"availabilityZoneIdentifiers": "us-east-1b"}
    assert b.action("shift-away").parameters["availabilityZoneIdentifier"] == "us-east-1b"
    assert b.action("disrupt-network").resource_arns == ("{subnet:public}", "{subnet:private}", "{subnet:isolated}")
    assert b.action("disrupt-network").parameters == {"scope": "all", "duration": "PT30M"}


def test_the_database_fails_over_in_the_form_of_its_deployment():
    instance = drill_plan.plan_zone(PROD, "us-east-1a").action("fail-over-database")
    assert (instance.action_id, instance.parameters, instance.target_key) == (
        "aws:rds:reboot-db-instances",
        {"forceFailover": "true"},
        "DBInstances",
    )
    cluster = drill_plan.plan_zone(dataclasses.replace(PROD, database="multi-az-cluster"), "us-east-1a")
    action = cluster.action("fail-over-database")
    assert (action.action_id, action.resource_type, action.target_key) == (
        "aws:rds:failover-db-cluster",
        "aws:rds:cluster",
        "Clusters",
    )
    assert action.target_parameters == {"writerAvailabilityZoneIdentifiers": "us-east-1a"}
    bare = drill_plan.plan_zone(
        dataclasses.replace(PROD, database=None, cache=False, managed_resources=(), node_group=False), "us-east-1a"
    )
    assert [a.name for a in bare.actions] == EVERY_TIER[:6]


def test_durations_come_from_the_setting_and_the_replica_s_zone_is_said():
    longer = drill_plan.plan_zone(dataclasses.replace(PROD, minutes=45), "us-east-1c")
    assert {a.parameters.get("duration") for a in longer.actions} - {None} == {"PT45M"}
    assert longer.action("stop-services-nodes").parameters["startInstancesAfterDuration"] == "PT45M"
    assert any(k.startswith("NOT the read replica: it sits in this zone") for k in longer.keeps)
    assert any("read replica in us-east-1c" in k for k in drill_plan.plan_zone(PROD, "us-east-1a").keeps)


def test_fis_limits_and_unknown_zones_are_refused():
    with pytest.raises(ValueError, match="us-west-2a is not a zone of the stack"):
        drill_plan.plan_zone(PROD, "us-west-2a")
    with pytest.raises(ValueError, match="FIS takes at most 5"):
        drill_plan.plan_zone(dataclasses.replace(PROD, subnet_tiers=("a", "b", "c", "d", "e", "f")), "us-east-1a")


def test_any_managed_resource_is_shifted_when_autoshift_is_off():
    off = drill_plan.plan_zone(dataclasses.replace(PROD, autoshift_status="ANY"), "us-east-1a")
    assert off.action("shift-away").parameters["zonalAutoshiftStatus"] == "ANY"


def test_a_single_nat_gateway_s_zone_says_every_zone_loses_egress():
    single = dataclasses.replace(PROD, single_nat_zone="us-east-1a")
    assert any(k.startswith("NOT the internet") for k in drill_plan.plan_zone(single, "us-east-1a").keeps)
    assert not any(k.startswith("NOT the internet") for k in drill_plan.plan_zone(single, "us-east-1b").keeps)
