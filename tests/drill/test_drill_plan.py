"""The zone drill's plan (components/drill/drill_plan.py), pure: each zone's experiment takes the
zone out of every tier, in the form the stack's shape needs, within FIS's limits."""

import dataclasses

import pytest

from components.drill import drill_plan
from components.drill.drill_plan import Drilled

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
PROD = Drilled(
    zones=ZONES,
    subnet_tiers=("public", "private", "isolated"),
    cluster_name="scanner-prod",
    launchers=("karpenter", "node-group"),
    database="multi-az-instance",
    cache=True,
    managed_resources=("cluster", "api-load-balancer"),
    replica_zone="us-east-1c",
)


def test_every_zone_gets_every_tier_s_action():
    for zone_plan in drill_plan.plan(PROD):
        assert [a.name for a in zone_plan.actions] == [
            "disrupt-network",
            "stop-nodes",
            "no-launch-capacity",
            "fail-over-database",
            "interrupt-cache",
            "shift-away",
        ]
        assert {a.tier for a in zone_plan.actions} == {"network", "cluster", "data", "services"}


def test_the_zone_is_named_where_fis_needs_it_and_nowhere_else_s():
    b = drill_plan.plan_zone(PROD, "us-east-1b")
    assert b.action("stop-nodes").filters["Placement.AvailabilityZone"] == ("us-east-1b",)
    assert b.action("no-launch-capacity").parameters["availabilityZoneIdentifiers"] == "us-east-1b"
    assert b.action("interrupt-cache").target_parameters == {"availabilityZoneIdentifier": "us-east-1b"}
    assert b.action("shift-away").parameters["availabilityZoneIdentifier"] == "us-east-1b"
    assert b.action("disrupt-network").resource_arns == ("{subnet:public}", "{subnet:private}", "{subnet:isolated}")
    assert b.action("disrupt-network").parameters == {"scope": "all", "duration": "PT30M"}
    assert b.action("stop-nodes").resource_tags == {"kubernetes.io/cluster/scanner-prod": "owned"}


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
    bare = drill_plan.plan_zone(
        dataclasses.replace(PROD, database=None, cache=False, managed_resources=()), "us-east-1a"
    )
    assert [a.name for a in bare.actions] == ["disrupt-network", "stop-nodes", "no-launch-capacity"]


def test_durations_come_from_the_setting_and_the_replica_s_zone_is_said():
    longer = drill_plan.plan_zone(dataclasses.replace(PROD, minutes=45), "us-east-1c")
    assert {a.parameters.get("duration") for a in longer.actions} - {None} == {"PT45M"}
    assert longer.action("stop-nodes").parameters == {"startInstancesAfterDuration": "PT45M"}
    assert any("read replica sits in this zone" in k for k in longer.keeps)
    assert any("read replica in us-east-1c" in k for k in drill_plan.plan_zone(PROD, "us-east-1a").keeps)


def test_fis_limits_and_unknown_zones_are_refused():
    with pytest.raises(ValueError, match="us-west-2a is not a zone of the stack"):
        drill_plan.plan_zone(PROD, "us-west-2a")
    with pytest.raises(ValueError, match="FIS takes at most 5"):
        drill_plan.plan_zone(dataclasses.replace(PROD, subnet_tiers=("a", "b", "c", "d", "e", "f")), "us-east-1a")


def test_any_managed_resource_is_shifted_when_autoshift_is_off():
    off = drill_plan.plan_zone(dataclasses.replace(PROD, autoshift_status="ANY"), "us-east-1a")
    assert off.action("shift-away").parameters["zonalAutoshiftStatus"] == "ANY"
