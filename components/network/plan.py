"""Pure planning for the HA network: zone slots, the subnet CIDR plan, NAT placement.

Nothing here touches the Pulumi runtime, so the rules are tested fast and the component
(`components/network/network.py`) only declares resources from the plan.

The CIDR plan is keyed on the zone *letter*, not on a zone's position in a list: zone
`us-east-1c` always gets slot 2 of the VPC, whatever other zones the stack uses. Adding
or removing a zone therefore never renumbers the subnets of another, and tiers are laid
out inside a zone's slot in a fixed order, so a new tier appended to `TIERS` lands in free
space without moving the existing ones.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

Tier = Literal["private", "public", "isolated"]

#: Subnet tiers in allocation order. Append new tiers at the end: earlier tiers keep their CIDRs.
TIERS: tuple[Tier, ...] = ("private", "public", "isolated")

#: What each tier is for (used in tags, summaries and docs).
TIER_PURPOSE: dict[str, str] = {
    "private": "EKS nodes and pods; egress through NAT",
    "public": "NAT gateways and internet-facing load balancers",
    "isolated": "databases, brokers and caches; no route to the internet",
    "pods": "pod addresses from the secondary pod CIDR (VPC CNI custom networking)",
}

#: The VPC is cut into this many equal zone slots, one per zone letter a..h. AWS regions
#: have at most six standard zones today; eight leaves room without renumbering.
ZONE_SLOTS = 8
SLOT_BITS = 3  # 2**3 == ZONE_SLOTS

#: Addresses AWS reserves in every subnet (network, router, DNS, future use, broadcast).
AWS_RESERVED_PER_SUBNET = 5

NatMode = Literal["per-az", "single", "regional"]


class PlanError(ValueError):
    """A plan that cannot be laid out; the message says which input and why."""


@dataclass(frozen=True)
class SubnetPlan:
    zone: str
    tier: str
    cidr: ipaddress.IPv4Network

    @property
    def usable_addresses(self) -> int:
        return usable_addresses(self.cidr)


def usable_addresses(cidr: ipaddress.IPv4Network) -> int:
    return cidr.num_addresses - AWS_RESERVED_PER_SUBNET


def zone_letter_pattern(region: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(region)}([a-z])$")


def zone_slot(zone: str, region: str) -> int:
    """The fixed slot of a standard zone: its letter's position (a=0, b=1, ...)."""
    match = zone_letter_pattern(region).match(zone)
    if match is None:
        raise PlanError(f"{zone!r} is not a standard zone name of region {region}")
    slot = ord(match.group(1)) - ord("a")
    if slot >= ZONE_SLOTS:
        raise PlanError(f"zone {zone} has no CIDR slot: the plan has slots for zones a..h only")
    return slot


def _layout(block: ipaddress.IPv4Network, prefixes: dict[str, int]) -> dict[str, ipaddress.IPv4Network]:
    """Place each tier, in TIERS order, at the next offset aligned to its own size."""
    cursor = int(block.network_address)
    end = cursor + block.num_addresses
    placed: dict[str, ipaddress.IPv4Network] = {}
    for tier in TIERS:
        size = 2 ** (32 - prefixes[tier])
        cursor = -(-cursor // size) * size  # round up to the tier's alignment
        if cursor + size > end:
            raise PlanError(
                f"a zone slot of /{block.prefixlen} cannot hold " + ", ".join(f"the {t} /{prefixes[t]}" for t in TIERS)
            )
        placed[tier] = ipaddress.IPv4Network((cursor, prefixes[tier]))
        cursor += size
    return placed


def zone_block(cidr: ipaddress.IPv4Network, slot: int) -> ipaddress.IPv4Network:
    if cidr.prefixlen + SLOT_BITS > 32:
        raise PlanError(f"{cidr} is too small to split into {ZONE_SLOTS} zone slots")
    return list(cidr.subnets(prefixlen_diff=SLOT_BITS))[slot]


def check_layout(vpc_cidr: ipaddress.IPv4Network, prefixes: dict[str, int]) -> dict[str, ipaddress.IPv4Network]:
    """Lay out slot 0 to prove every zone slot holds every tier (all slots are alike)."""
    for tier in TIERS:
        if prefixes[tier] > 28:
            raise PlanError(f"the {tier} prefix /{prefixes[tier]} is smaller than the /28 AWS allows")
    return _layout(zone_block(vpc_cidr, 0), prefixes)


def plan_subnets(
    vpc_cidr: ipaddress.IPv4Network,
    zones: list[str],
    region: str,
    prefixes: dict[str, int],
    pod_cidr: ipaddress.IPv4Network | None = None,
) -> list[SubnetPlan]:
    """Every subnet of the network: each tier in each zone, plus a pod subnet per zone when
    a secondary pod CIDR is set (that zone's whole slot of the pod CIDR)."""
    plan: list[SubnetPlan] = []
    for zone in zones:
        slot = zone_slot(zone, region)
        for tier, cidr in _layout(zone_block(vpc_cidr, slot), prefixes).items():
            plan.append(SubnetPlan(zone, tier, cidr))
        if pod_cidr is not None:
            plan.append(SubnetPlan(zone, "pods", zone_block(pod_cidr, slot)))
    return plan


def pod_addresses_per_zone(plan: list[SubnetPlan]) -> dict[str, int]:
    """Addresses each zone offers to pods: the pod subnet when there is one (custom
    networking), otherwise the private subnet, which pods then share with the nodes."""
    by_zone: dict[str, int] = {}
    for subnet in plan:
        if subnet.tier == "pods":
            by_zone[subnet.zone] = subnet.usable_addresses
        elif subnet.tier == "private":
            by_zone.setdefault(subnet.zone, subnet.usable_addresses)
    return by_zone


def nat_zones(zones: list[str], mode: NatMode) -> dict[str, str | None]:
    """Which zone's NAT gateway each zone's private route table uses.

    per-az: its own (an AZ outage cuts no other AZ off); single: the first zone's (cheap, a
    single point of failure); regional: None, one regional NAT gateway serves every zone.
    """
    if mode == "per-az":
        return {zone: zone for zone in zones}
    if mode == "single":
        return {zone: zones[0] for zone in zones}
    return {zone: None for zone in zones}


def s3_endpoint_tiers() -> tuple[str, ...]:
    """Route-table tiers the S3 gateway endpoint is attached to."""
    return ("private", "isolated")
