"""The network tier's settings: zones, CIDR plan, NAT and endpoints."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from pydantic import PositiveInt, field_validator

from components.network import plan as network_plan
from components.network.plan import NatMode, PlanError
from stack_config.base import POD_CIDR_RANGE, KeyedError, Section, no_duplicates, retention

DEFAULT_INTERFACE_ENDPOINTS = (
    "ecr.api",
    "ecr.dkr",
    "sts",
    "logs",
    "ec2",
    "sqs",
    "secretsmanager",
    "elasticloadbalancing",
    "ssm",
    "eks",
    "eks-auth",
)
_ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


class NetworkSection(Section):
    availability_zones: tuple[str, ...] | None = None
    """Zones to use. Default: every standard zone of the region (opt-in-not-required)."""
    vpc_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.0.0.0/16")
    """Primary VPC CIDR, /16 to /28, private range. Default 10.0.0.0/16."""
    private_subnet_prefix: PositiveInt = 20
    """Prefix length of each zone's private (nodes and pods) subnet. Default 20."""
    public_subnet_prefix: PositiveInt = 24
    """Prefix length of each zone's public subnet. Default 24."""
    isolated_subnet_prefix: PositiveInt = 24
    """Prefix length of each zone's isolated (data) subnet. Default 24."""
    pod_cidr: ipaddress.IPv4Network | None = None
    """Secondary CIDR inside 100.64.0.0/10 for pod addresses; each zone gets 1/8 of it. Default none."""
    target_pods_per_zone: PositiveInt = 2000
    """Pods each zone must be able to address; checked against the plan. Default 2000."""
    nat_mode: NatMode = "per-az"
    """`per-az` (default), `single` (one NAT, development only) or `regional`."""
    interface_endpoints: tuple[str, ...] = DEFAULT_INTERFACE_ENDPOINTS
    """Interface VPC endpoint services (short names such as `ecr.api`)."""
    flow_log_retention_days: PositiveInt = 365
    """Retention of the VPC flow log group; a value CloudWatch Logs accepts. Default 365."""

    @field_validator("vpc_cidr", "pod_cidr", mode="before")
    @classmethod
    def _strict_network(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid IPv4 network CIDR ({exc})") from None
        return value

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr_range(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not 16 <= value.prefixlen <= 28:
            raise ValueError(f"{value} must have a prefix between /16 and /28 (AWS VPC limits)")
        if not (value.is_private or value.subnet_of(POD_CIDR_RANGE)):
            raise ValueError(f"{value} is not a private (RFC 1918) or shared (100.64.0.0/10) address range")
        return value

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr_range(cls, value: ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
        if value is None:
            return value
        if not value.subnet_of(POD_CIDR_RANGE):
            raise ValueError(f"{value} must lie inside {POD_CIDR_RANGE}")
        if not 16 <= value.prefixlen <= 25:
            raise ValueError(
                f"{value} must have a prefix between /16 and /25 so each of 8 zone slots is at least a /28"
            )
        return value

    @field_validator("private_subnet_prefix", "public_subnet_prefix", "isolated_subnet_prefix")
    @classmethod
    def _subnet_prefix(cls, value: int) -> int:
        if not 16 <= value <= 28:
            raise ValueError(f"/{value} is outside the /16 to /28 AWS allows for a subnet")
        return value

    @field_validator("availability_zones")
    @classmethod
    def _zones_unique(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must list at least one zone, or be left out to use every zone")
        return no_duplicates(value)

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _ENDPOINT_NAME.match(name):
                raise ValueError(f"{name!r} is not a service short name such as 'ecr.api'")
            if name == "s3":
                raise ValueError("'s3' is served by the gateway endpoint the network always creates")
        return no_duplicates(value)

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return retention(value)

    def problems(self) -> Iterator[KeyedError]:
        try:
            network_plan.check_layout(self.vpc_cidr, self.subnet_prefixes)
        except PlanError as exc:
            yield KeyedError("vpcCidr", f"{self.vpc_cidr} is too small for the subnet plan: {exc}")
        if self.pod_cidr is not None and self.pod_cidr.overlaps(self.vpc_cidr):
            yield KeyedError("podCidr", f"{self.pod_cidr} overlaps vpcCidr {self.vpc_cidr}")
        capacity = self.pod_addresses_per_zone
        if self.target_pods_per_zone > capacity:
            where = "the pod subnet" if self.pod_cidr else f"the private /{self.private_subnet_prefix}"
            yield KeyedError(
                "targetPodsPerZone",
                f"{self.target_pods_per_zone} pods do not fit {where} of a zone ({capacity} addresses); "
                "set podCidr (a secondary CIDR in 100.64.0.0/10) or a shorter privateSubnetPrefix",
            )
        if "secretsmanager" not in self.interface_endpoints:
            yield KeyedError(
                "interfaceEndpoints",
                "must include secretsmanager: the RDS Proxy reads its login from "
                "Secrets Manager from the isolated subnets, which have no other way out",
            )

    @property
    def subnet_prefixes(self) -> dict[str, int]:
        return {
            "private": self.private_subnet_prefix,
            "public": self.public_subnet_prefix,
            "isolated": self.isolated_subnet_prefix,
        }

    @property
    def pod_addresses_per_zone(self) -> int:
        if self.pod_cidr is not None:
            return network_plan.usable_addresses(network_plan.zone_block(self.pod_cidr, 0))
        return 2 ** (32 - self.private_subnet_prefix) - network_plan.AWS_RESERVED_PER_SUBNET
