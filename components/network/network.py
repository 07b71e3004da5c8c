"""HA network: a VPC with public, private and isolated subnets in every zone of the stack.

Highly available by default: a NAT gateway per zone with each zone's private route table on
its own zone's NAT, gateway and interface VPC endpoints so image pulls and AWS API calls stay
off the NAT, and flow logs. The CIDR plan comes from `network_plan` and is stable per zone.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext
from components.network import plan as network_plan
from components.network.plan import NatMode, SubnetPlan
from policies.common import contract

#: Tags the placement pack reads: a subnet's or route table's tier, and the zone of a per-zone
#: resource without a zone property (route tables). Shared with the packs (policies/common/contract.py).
TIER_TAG = contract.TIER_TAG
ZONE_TAG = contract.ZONE_TAG


@dataclass(frozen=True)
class NetworkArgs:
    stack: StackContext
    """The stack's region (endpoint names), account (the flow-log role's confused-deputy
    condition), zones (each gets every tier), name prefix (Name tags) and cluster name (Karpenter
    discovers the private subnets by it)."""
    vpc_cidr: ipaddress.IPv4Network
    """Primary CIDR."""
    subnet_prefixes: dict[str, int]
    """Prefix length per tier (private, public, isolated)."""
    pod_cidr: ipaddress.IPv4Network | None
    """Secondary CIDR for pod subnets (one per zone); none: pods share the private subnets."""
    nat_mode: NatMode
    """NAT strategy: a NAT gateway per zone, one regional NAT gateway, or a single one."""
    interface_endpoints: tuple[str, ...]
    """Interface endpoint services in every private subnet."""
    flow_log_retention_days: int
    """Flow-log retention in days."""


class Network(pulumi.ComponentResource):
    """VPC, subnets, routing, NAT, endpoints and flow logs across every zone."""

    vpc_id: pulumi.Output[str]
    subnet_ids: dict[str, dict[str, pulumi.Output[str]]]
    """Tier -> zone -> subnet id (tiers: public, private, isolated and pods when set)."""
    subnet_arns: dict[str, dict[str, pulumi.Output[str]]]
    """Tier -> zone -> subnet ARN (the zone drill's targets)."""
    subnet_names: dict[str, dict[str, str]]
    """Tier -> zone -> the subnet's Name tag (known before the subnet exists)."""
    endpoint_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            contract.NETWORK_TYPE,
            name,
            {
                contract.NETWORK_ZONES_INPUT: list(args.stack.zones),
                contract.NETWORK_NAT_MODE_INPUT: args.nat_mode,
                "vpcCidr": str(args.vpc_cidr),
                "podCidr": str(args.pod_cidr) if args.pod_cidr else None,
            },
            opts,
        )
        zones = list(args.stack.zones)
        plan = network_plan.plan_subnets(args.vpc_cidr, zones, args.stack.region, args.subnet_prefixes, args.pod_cidr)
        child = pulumi.ResourceOptions(parent=self)

        def tags(label: str, **extra: str) -> dict[str, str]:
            return {"Name": f"{args.stack.name_prefix}-{label}", **extra}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(args.vpc_cidr),
            enable_dns_support=True,  # both required for private DNS on interface endpoints
            enable_dns_hostnames=True,
            tags=tags("vpc"),
            opts=child,
        )
        # Strip every rule from the default security group so nothing lands in it by accident.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags=tags("default-deny"), opts=child)
        pod_cidr_association = None
        if args.pod_cidr is not None:
            pod_cidr_association = aws.ec2.VpcIpv4CidrBlockAssociation(
                f"{name}-pod-cidr", vpc_id=vpc.id, cidr_block=str(args.pod_cidr), opts=child
            )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=child)

        self.subnet_ids = {}
        self.subnet_arns = {}
        self.subnet_names = {}
        subnets: dict[tuple[str, str], aws.ec2.Subnet] = {}
        for subnet in plan:
            subnets[(subnet.tier, subnet.zone)] = self._subnet(name, args, vpc, subnet, tags, pod_cidr_association)
            self.subnet_ids.setdefault(subnet.tier, {})[subnet.zone] = subnets[(subnet.tier, subnet.zone)].id
            self.subnet_arns.setdefault(subnet.tier, {})[subnet.zone] = subnets[(subnet.tier, subnet.zone)].arn
            self.subnet_names.setdefault(subnet.tier, {})[subnet.zone] = tags(f"{subnet.tier}-{subnet.zone}")["Name"]

        # One route table per zone and tier, so losing or changing one zone touches no other.
        route_tables: dict[tuple[str, str], aws.ec2.RouteTable] = {}
        for tier in network_plan.TIERS:
            for zone in zones:
                table = aws.ec2.RouteTable(
                    f"{name}-{tier}-rt-{zone}",
                    vpc_id=vpc.id,
                    tags=tags(f"{tier}-{zone}", **{TIER_TAG: tier, ZONE_TAG: zone}),
                    opts=child,
                )
                route_tables[(tier, zone)] = table
        for (subnet_tier, zone), subnet_resource in subnets.items():
            table_tier = "private" if subnet_tier == "pods" else subnet_tier  # pods egress like their nodes
            aws.ec2.RouteTableAssociation(
                f"{name}-{subnet_tier}-rta-{zone}",
                subnet_id=subnet_resource.id,
                route_table_id=route_tables[(table_tier, zone)].id,
                opts=pulumi.ResourceOptions(parent=subnet_resource),
            )
        for zone in zones:
            aws.ec2.Route(
                f"{name}-public-default-{zone}",
                route_table_id=route_tables[("public", zone)].id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=igw.id,
                opts=pulumi.ResourceOptions(parent=route_tables[("public", zone)]),
            )

        nat_ids = nat_gateways(self, name, args, vpc, igw, subnets, route_tables, tags)
        self.nat_gateway_ids = nat_ids

        endpoint_tables = [route_tables[(tier, zone)].id for tier in network_plan.s3_endpoint_tiers() for zone in zones]
        s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.stack.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=endpoint_tables,
            tags=tags("s3"),
            opts=child,
        )

        endpoint_sources = [str(args.vpc_cidr)] + ([str(args.pod_cidr)] if args.pod_cidr else [])
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="HTTPS from the VPC to interface VPC endpoints",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=endpoint_sources,
                    description="HTTPS from VPC and pod CIDRs",
                )
            ],
            tags=tags("endpoints"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pod_cidr_association] if pod_cidr_association else []),
        )
        private_subnet_ids = [s.id for (tier, _), s in subnets.items() if tier == "private"]
        for service in args.interface_endpoints:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.stack.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=private_subnet_ids,
                security_group_ids=[endpoint_sg.id],
                tags=tags(f"endpoint-{service}"),
                opts=child,
            )

        flow_logs(self, name, args, vpc, tags)

        self.vpc_id = vpc.id
        self.endpoint_security_group_id = endpoint_sg.id
        self.s3_endpoint_id = s3_endpoint.id
        self.register_outputs(
            {
                contract.NETWORK_ZONES_INPUT: zones,
                contract.NETWORK_NAT_MODE_INPUT: args.nat_mode,
                "vpcId": vpc.id,
                "subnetIds": self.subnet_ids,
                "natGatewayIds": nat_ids,
                "endpointSecurityGroupId": endpoint_sg.id,
                "s3EndpointId": s3_endpoint.id,
            }
        )

    def _subnet(self, name, args: NetworkArgs, vpc, subnet: SubnetPlan, tags, pod_cidr_association):
        role_tags: dict[str, str] = {TIER_TAG: subnet.tier}
        if subnet.tier == "public":
            role_tags["kubernetes.io/role/elb"] = "1"
        elif subnet.tier == "private":
            role_tags["kubernetes.io/role/internal-elb"] = "1"
            role_tags["karpenter.sh/discovery"] = args.stack.cluster_name
        depends = [pod_cidr_association] if subnet.tier == "pods" and pod_cidr_association else []
        return aws.ec2.Subnet(
            f"{name}-{subnet.tier}-{subnet.zone}",
            vpc_id=vpc.id,
            cidr_block=str(subnet.cidr),
            availability_zone=subnet.zone,
            # Nothing gets a public address by default; NAT and load balancers bring their own.
            map_public_ip_on_launch=False,
            tags=tags(f"{subnet.tier}-{subnet.zone}", **role_tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )


def nat_gateways(
    owner: Network, name, args: NetworkArgs, vpc, igw, subnets, route_tables, tags
) -> dict[str, pulumi.Output[str]]:
    zones = list(args.stack.zones)
    targets = network_plan.nat_zones(zones, args.nat_mode)
    gateways: dict[str, aws.ec2.NatGateway] = {}
    if args.nat_mode == "regional":
        # One regional NAT gateway: AWS spreads it over the zones that have workloads.
        gateways["regional"] = aws.ec2.NatGateway(
            f"{name}-nat-regional",
            vpc_id=vpc.id,
            availability_mode="regional",
            connectivity_type="public",
            tags=tags("nat-regional"),
            opts=pulumi.ResourceOptions(parent=owner, depends_on=[igw]),
        )
    else:
        for zone in sorted({z for z in targets.values() if z is not None}, key=zones.index):
            public_subnet = subnets[("public", zone)]
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{zone}",
                domain="vpc",
                tags=tags(f"nat-{zone}"),
                opts=pulumi.ResourceOptions(parent=public_subnet),
            )
            gateways[zone] = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=eip.allocation_id,
                subnet_id=public_subnet.id,
                connectivity_type="public",
                tags=tags(f"nat-{zone}"),
                opts=pulumi.ResourceOptions(parent=public_subnet, depends_on=[igw]),
            )
    for zone in zones:
        table = route_tables[("private", zone)]
        gateway = gateways[targets[zone] or "regional"]
        aws.ec2.Route(
            f"{name}-private-default-{zone}",
            route_table_id=table.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=gateway.id,
            opts=pulumi.ResourceOptions(parent=table),
        )
    return {key: gateway.id for key, gateway in gateways.items()}


def flow_logs(owner: Network, name, args: NetworkArgs, vpc, tags) -> None:
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-flow-logs",
        name=f"/aws/vpc/{args.stack.name_prefix}/flow-logs",
        retention_in_days=args.flow_log_retention_days,
        tags=tags("flow-logs"),
        opts=pulumi.ResourceOptions(parent=owner),
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                # Confused-deputy guard: only flow logs of this account may use the role.
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": args.stack.account_id},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:aws:ec2:{args.stack.region}:{args.stack.account_id}:vpc-flow-log/*"
                    },
                },
            }
        ],
    }
    role = aws.iam.Role(
        f"{name}-flow-logs",
        assume_role_policy=json.dumps(trust),
        description="Delivers VPC flow logs to CloudWatch Logs",
        tags=tags("flow-logs"),
        opts=pulumi.ResourceOptions(parent=owner),
    )
    aws.iam.RolePolicy(
        f"{name}-flow-logs",
        role=role.id,
        policy=log_group.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogGroups",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [arn, f"{arn}:*"],
                        }
                    ],
                }
            )
        ),
        opts=pulumi.ResourceOptions(parent=role),
    )
    aws.ec2.FlowLog(
        f"{name}-flow-log",
        vpc_id=vpc.id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=log_group.arn,
        iam_role_arn=role.arn,
        max_aggregation_interval=60,
        tags=tags("flow-log"),
        opts=pulumi.ResourceOptions(parent=owner),
    )
