"""The CIDR plan and NAT placement, as pure functions."""

import ipaddress
import itertools

import pytest

from components.network import plan as network_plan
from components.network.plan import PlanError, nat_zones, plan_subnets, zone_slot

VPC = ipaddress.IPv4Network("10.40.0.0/16")
PREFIXES = {"private": 20, "public": 24, "isolated": 24}
REGION = "us-east-1"


def cidrs(plan):
    return {(s.zone, s.tier): s.cidr for s in plan}


def test_every_zone_gets_every_tier_inside_the_vpc_without_overlap():
    zones = [f"{REGION}{c}" for c in "abcdef"]
    plan = plan_subnets(VPC, zones, REGION, PREFIXES)
    assert {(s.zone, s.tier) for s in plan} == set(itertools.product(zones, network_plan.TIERS))
    for subnet in plan:
        assert subnet.cidr.subnet_of(VPC), subnet
    for a, b in itertools.combinations(plan, 2):
        assert not a.cidr.overlaps(b.cidr), (a, b)


def test_adding_a_zone_never_renumbers_existing_subnets():
    before = cidrs(plan_subnets(VPC, ["us-east-1a", "us-east-1c"], REGION, PREFIXES))
    after = cidrs(plan_subnets(VPC, ["us-east-1a", "us-east-1b", "us-east-1c"], REGION, PREFIXES))
    assert {k: after[k] for k in before} == before


def test_zone_order_in_the_list_does_not_matter():
    assert cidrs(plan_subnets(VPC, ["us-east-1c", "us-east-1a"], REGION, PREFIXES)) == cidrs(
        plan_subnets(VPC, ["us-east-1a", "us-east-1c"], REGION, PREFIXES)
    )


def test_appending_a_tier_never_renumbers_existing_tiers(monkeypatch):
    zones = ["us-east-1a", "us-east-1b"]
    before = cidrs(plan_subnets(VPC, zones, REGION, PREFIXES))
    monkeypatch.setattr(network_plan, "TIERS", network_plan.TIERS + ("transit",))
    after = cidrs(plan_subnets(VPC, zones, REGION, {**PREFIXES, "transit": 26}))
    assert {k: after[k] for k in before} == before
    assert ("us-east-1a", "transit") in after
    assert not any(after[("us-east-1a", "transit")].overlaps(c) for c in before.values())


def test_pod_cidr_gives_each_zone_its_slot():
    plan = plan_subnets(VPC, ["us-east-1a", "us-east-1c"], REGION, PREFIXES, ipaddress.IPv4Network("100.64.0.0/16"))
    pods = {s.zone: s.cidr for s in plan if s.tier == "pods"}
    assert pods == {
        "us-east-1a": ipaddress.IPv4Network("100.64.0.0/19"),
        "us-east-1c": ipaddress.IPv4Network("100.64.64.0/19"),
    }
    assert network_plan.pod_addresses_per_zone(plan) == {"us-east-1a": 8187, "us-east-1c": 8187}


def test_without_pod_cidr_pods_share_the_private_subnet():
    plan = plan_subnets(VPC, ["us-east-1a"], REGION, PREFIXES)
    assert network_plan.pod_addresses_per_zone(plan) == {"us-east-1a": 4096 - 5}


@pytest.mark.parametrize("zone", ["us-east-1-bos-1a", "us-west-2a", "us-east-1"])
def test_non_standard_zone_names_are_refused(zone):
    with pytest.raises(PlanError, match="is not a standard zone name of region us-east-1"):
        zone_slot(zone, REGION)


def test_zone_letters_beyond_the_slots_are_refused():
    with pytest.raises(PlanError, match="slots for zones a..h only"):
        zone_slot("us-east-1i", REGION)


def test_a_vpc_too_small_for_the_tiers_is_refused():
    with pytest.raises(PlanError, match="cannot hold the private /20"):
        network_plan.check_layout(ipaddress.IPv4Network("10.0.0.0/20"), PREFIXES)


def test_nat_modes():
    zones = ["a", "b", "c"]
    assert nat_zones(zones, "per-az") == {"a": "a", "b": "b", "c": "c"}
    assert nat_zones(zones, "single") == {"a": "a", "b": "a", "c": "a"}
    assert nat_zones(zones, "regional") == {"a": None, "b": None, "c": None}
