"""Reading a stack the way the policy packs need it, on the first preview as on an update.

Ids are unknown during a first preview, so resources are tied together through the engine's
property dependencies (URNs), and zones come from inputs known at preview (a subnet's
`availabilityZone`). Once ids are known (an update), the values are read too: an id can come
from a lookup, from config or from an `apply` that hides where it came from, so a rule that
trusted the dependency list alone would pass a route to the wrong NAT gateway. Where both are
known, a resource must be right by both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError

import contract

#: What a validator reports with. The SDK's `ReportViolation` alias makes the URN a required
#: argument; at run time it is optional (omitted, the diagnostic names the resource analysed).
Report = Callable[..., None]

#: What the components declare and the rules read (one definition, both sides import it).
TIER_TAG = contract.TIER_TAG
ZONE_TAG = contract.ZONE_TAG

NETWORK = contract.NETWORK_TYPE
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"

#: Types more than one pack reads.
EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
DB_INSTANCE = "aws:rds/instance:Instance"
DB_CLUSTER = "aws:rds/cluster:Cluster"
BROKER = "aws:mq/broker:Broker"
CACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
BUCKET = "aws:s3/bucket:Bucket"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def whole(value: Any) -> Any:
    """Numbers arrive in wire form as floats (3.0): give integral ones back as ints, so rules
    compare and messages print them as the user wrote them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def known(resource: PolicyResource, key: str, default: Any = None) -> Any:
    """A property's value, or `default` when it is absent or unknown during preview."""
    try:
        value = resource.props.get(key, default)
        return default if value is None else whole(value)
    except UnknownValueError:
        return default


def present(props: Any, key: str) -> bool:
    """Whether a property is set at all, even to a value unknown during preview (a key ARN)."""
    try:
        return key in list(props) and props.get(key, None) is not None
    except UnknownValueError:
        return True


def setting(args: Any, key: str, default: Any) -> Any:
    """A policy's configured value (its schema default is merged in by the engine), or `default`."""
    value = (args.get_config() or {}).get(key, default)
    return default if value is None else whole(value)


def plain(value: Any) -> Any:
    """A property as plain data, each part that is unknown (a first preview) as None."""
    try:
        if hasattr(value, "keys"):
            keys = list(value.keys())
            out: Any = {}
            for key in keys:
                try:
                    out[key] = plain(value[key])
                except UnknownValueError:
                    out[key] = None
            return out
        if isinstance(value, str) or not hasattr(value, "__len__"):
            return value
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(None)
        return items
    except UnknownValueError:
        return None


#: What `path` returns, when asked to, for a value unknown during preview.
UNKNOWN = object()


def path(props: Any, dotted: str, default: Any = None, unknown: Any = None) -> Any:
    """A nested value (`vpcConfig.publicAccessCidrs`): `default` when absent, `unknown` when it
    (or an object on the way to it) is unknown during preview. Rules that must not mistake an
    unknown for a default pass `unknown=UNKNOWN` and skip the check on it."""
    value = props
    try:
        for part in dotted.split("."):
            if not hasattr(value, "get"):
                return default
            value = value.get(part, None)
            if value is None:
                return default
        return whole(value)
    except UnknownValueError:
        return default if unknown is None else unknown


def tag(resource: PolicyResource, key: str) -> str | None:
    tags = known(resource, "tags", {}) or {}
    try:
        return tags.get(key)
    except UnknownValueError:
        return None


def short(resource: PolicyResource) -> str:
    return f"{resource.resource_type.split(':')[-1]} '{resource.name}'"


class StackGraph:
    def __init__(self, resources: Iterable[PolicyResource]):
        self.resources = list(resources)
        self._by_id: dict[str, PolicyResource] | None = None

    def by_id(self, value: Any) -> PolicyResource | None:
        """The resource of this stack whose id is `value` (ids are known on an update)."""
        if self._by_id is None:
            self._by_id = {}
            for resource in self.resources:
                rid = known(resource, "id")
                if isinstance(rid, str) and rid:
                    self._by_id.setdefault(rid, resource)
        return self._by_id.get(value) if isinstance(value, str) else None

    def of_type(self, type_: str, within: PolicyResource | None = None) -> list[PolicyResource]:
        return [r for r in self.resources if r.resource_type == type_ and (within is None or is_descendant(r, within))]

    def networks(self) -> list[PolicyResource]:
        return self.of_type(NETWORK)

    def referencing(self, type_: str, prop: str, target: PolicyResource) -> list[PolicyResource]:
        """Resources of `type_` whose `prop` depends on `target`."""
        return [r for r in self.of_type(type_) if target in r.property_dependencies.get(prop, [])]

    def subnet_zone(self, subnet: PolicyResource) -> str | None:
        return known(subnet, "availabilityZone")

    def route_table_subnets(self, table: PolicyResource) -> list[PolicyResource]:
        subnets: list[PolicyResource] = []
        for association in self.referencing(ASSOCIATION, "routeTableId", table):
            subnets += [d for d in association.property_dependencies.get("subnetId", []) if d.resource_type == SUBNET]
        return subnets

    def route_table_zones(self, table: PolicyResource) -> set[str]:
        zones = {z for z in (self.subnet_zone(s) for s in self.route_table_subnets(table)) if z}
        if not zones and (own := tag(table, ZONE_TAG)):
            zones = {own}
        return zones

    def route_table_tier(self, table: PolicyResource) -> str | None:
        tier = tag(table, TIER_TAG)
        if tier:
            return tier
        tiers = {tag(s, TIER_TAG) for s in self.route_table_subnets(table)} - {None}
        return tiers.pop() if len(tiers) == 1 else None

    def nat_zone(self, nat: PolicyResource) -> str | None:
        zones = subnet_zones(self, nat, "subnetId")
        return next(iter(sorted(zones))) if zones and len(zones) == 1 else None

    def routes_of(self, table: PolicyResource) -> list[PolicyResource]:
        """Routes whose table is `table`, by dependency or by id."""
        table_id = known(table, "id")
        return [
            r
            for r in self.of_type(ROUTE)
            if table in r.property_dependencies.get("routeTableId", [])
            or (table_id and known(r, "routeTableId") == table_id)
        ]

    def default_route_targets(self, table: PolicyResource) -> tuple[list[PolicyResource], list[str]]:
        """NAT gateways a route table's default route (0.0.0.0/0) points at, by dependency and
        by id; and the ids it names that are no NAT gateway of this stack."""
        targets: list[PolicyResource] = []
        strangers: list[str] = []
        for route in self.routes_of(table):
            if known(route, "destinationCidrBlock") != "0.0.0.0/0":
                continue
            targets += [
                d for d in route.property_dependencies.get("natGatewayId", []) if d.resource_type == NAT_GATEWAY
            ]
            value = known(route, "natGatewayId")
            if isinstance(value, str) and value:
                nat = self.by_id(value)
                if nat is not None and nat.resource_type == NAT_GATEWAY:
                    targets.append(nat)
                else:
                    strangers.append(value)
        # Inline routes on the table itself.
        targets += [d for d in table.property_dependencies.get("routes", []) if d.resource_type == NAT_GATEWAY]
        unique: dict[str, PolicyResource] = {t.urn: t for t in targets}
        return list(unique.values()), strangers


def is_descendant(resource: PolicyResource, ancestor: PolicyResource) -> bool:
    parent = resource.parent
    while parent is not None:
        if parent.urn == ancestor.urn:
            return True
        parent = parent.parent
    return False


def stack_zones(graph: StackGraph) -> list[str]:
    """Every zone the stack's networks declare (or, without a network component, every zone a
    subnet is in): what each tier must cover."""
    zones: set[str] = set()
    for network in scopes(graph):
        zones.update(network_zones(graph, network))
    return sorted(zones)


def ids_in(value: Any, prefix: str) -> list[str] | None:
    """The ids starting with `prefix` anywhere in a property value; None when it is unknown."""
    found: list[str] = []
    try:
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if item.startswith(prefix):
                    found.append(item)
            elif isinstance(item, Mapping):
                stack += [item[k] for k in list(item)]
            elif isinstance(item, Sequence):
                stack += list(item)
    except UnknownValueError:
        return None
    return found


def property_ids(resource: PolicyResource, prop: str, prefix: str) -> list[str] | None:
    """The ids with `prefix` a property names; None when it is absent or unknown (a preview)."""
    try:
        raw = resource.props.get(prop, None)
    except UnknownValueError:
        return None
    return None if raw is None else ids_in(raw, prefix)


def subnet_zones(graph: StackGraph, resource: PolicyResource, *props: str) -> set[str] | None:
    """Zones of the subnets a resource's properties name, by dependency and, once ids are known,
    by value. Where both are known a zone counts only if both place the resource there, so a
    fault in either shows. None when neither names a subnet of this stack (literal ids of
    subnets the stack does not declare cannot be placed)."""
    by_dependency = [d for p in props for d in resource.property_dependencies.get(p, []) if d.resource_type == SUBNET]
    by_value: list[PolicyResource] | None = None
    for prop in props:
        ids = property_ids(resource, prop, "subnet-")
        if ids:
            by_value = (by_value or []) + [s for s in (graph.by_id(i) for i in ids) if s is not None]
    if not by_dependency and not by_value:
        return None
    zones_of = lambda subnets: {z for z in (graph.subnet_zone(s) for s in subnets) if z}  # noqa: E731
    if not by_dependency:
        return zones_of(by_value or [])
    if by_value is None:
        return zones_of(by_dependency)
    return zones_of(by_dependency) & zones_of(by_value)


def network_zones(graph: StackGraph, network: PolicyResource | None) -> list[str]:
    """The zones a network must cover: those it declares, else every zone its subnets use."""
    if network is not None:
        declared = known(network, contract.NETWORK_ZONES_INPUT)
        if declared:
            return list(declared)
    return sorted({z for z in (graph.subnet_zone(s) for s in graph.of_type(SUBNET, network)) if z})


def scopes(graph: StackGraph) -> list[PolicyResource | None]:
    """Each network component, or the whole stack (None) when there is none."""
    found: list[PolicyResource | None] = list(graph.networks())
    return found or [None]
