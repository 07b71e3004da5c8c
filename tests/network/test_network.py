"""The network component as the program declares it, under the offline mocks."""

import ipaddress
import json
from collections import Counter

import pytest
from conftest import UNKNOWN, by_urn, of_type, run

from stack_config import ConfigError

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
NAT = "aws:ec2/natGateway:NatGateway"
RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
TIER = "scanner.io/tier"


def zone_of_table(record, table_urn):
    resources = by_urn(record)
    zones = {
        resources[s]["inputs"]["availabilityZone"]
        for a in of_type(record, RTA)
        if table_urn in a["propertyDependencies"]["routeTableId"]
        for s in a["propertyDependencies"]["subnetId"]
    }
    assert len(zones) == 1, (table_urn, zones)
    return zones.pop()


def private_default_routes(record):
    """(zone of the private route table, zone of the NAT it uses) for each private default route."""
    resources = by_urn(record)
    pairs = []
    for route in of_type(record, ROUTE):
        table = resources[route["propertyDependencies"]["routeTableId"][0]]
        if table["inputs"]["tags"][TIER] != "private":
            continue
        assert route["inputs"]["destinationCidrBlock"] == "0.0.0.0/0"
        nat = resources[route["propertyDependencies"]["natGatewayId"][0]]
        nat_subnet = nat["propertyDependencies"].get("subnetId")
        nat_zone = resources[nat_subnet[0]]["inputs"]["availabilityZone"] if nat_subnet else "regional"
        pairs.append((zone_of_table(record, table["urn"]), nat_zone))
    return sorted(pairs)


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_prod_has_three_tiers_in_each_of_three_zones(mode, prod_preview, prod_update):
    record = prod_preview if mode == "preview" else prod_update
    tiers = Counter((s["inputs"]["availabilityZone"], s["inputs"]["tags"][TIER]) for s in of_type(record, SUBNET))
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert tiers == Counter({(z, t): 1 for z in zones for t in ("public", "private", "isolated")})
    assert record.outputs["availabilityZones"] == zones


def test_subnet_cidrs_inside_vpc_and_disjoint(prod_update):
    vpc = ipaddress.IPv4Network(of_type(prod_update, "aws:ec2/vpc:Vpc")[0]["inputs"]["cidrBlock"])
    cidrs = [ipaddress.IPv4Network(s["inputs"]["cidrBlock"]) for s in of_type(prod_update, SUBNET)]
    assert all(c.subnet_of(vpc) for c in cidrs)
    assert len({c for c in cidrs}) == len(cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_per_az_nat_each_zone_uses_its_own(mode, prod_preview, prod_update):
    record = prod_preview if mode == "preview" else prod_update
    assert len(of_type(record, NAT)) == 3
    assert private_default_routes(record) == [(z, z) for z in ("us-east-1a", "us-east-1b", "us-east-1c")]
    for nat in of_type(record, NAT):
        assert nat["inputs"]["connectivityType"] == "public"
        assert nat["parent"].endswith("network-public-" + nat["name"].split("nat-")[1])


def test_single_nat_mode_routes_every_zone_through_the_first():
    record = run("dev", "update")
    assert len(of_type(record, NAT)) == 1
    assert private_default_routes(record) == [(z, "eu-west-1a") for z in ("eu-west-1a", "eu-west-1b", "eu-west-1c")]


def test_regional_nat_mode_uses_one_regional_gateway():
    record = run("prod", "update", **{"scanner:natMode": "regional"})
    nats = of_type(record, NAT)
    assert len(nats) == 1
    assert nats[0]["inputs"]["availabilityMode"] == "regional"
    assert "subnetId" not in nats[0]["inputs"] and nats[0]["inputs"]["vpcId"].startswith("vpc-")
    assert not of_type(record, "aws:ec2/eip:Eip")
    assert [nat for _, nat in private_default_routes(record)] == ["regional"] * 3


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_s3_gateway_endpoint_on_every_private_and_isolated_table(mode, prod_preview, prod_update):
    record = prod_preview if mode == "preview" else prod_update
    [s3] = [e for e in of_type(record, ENDPOINT) if e["inputs"]["serviceName"] == "com.amazonaws.us-east-1.s3"]
    assert s3["inputs"]["vpcEndpointType"] == "Gateway"
    tables = {
        t["urn"]
        for t in of_type(record, "aws:ec2/routeTable:RouteTable")
        if t["inputs"]["tags"][TIER] in ("private", "isolated")
    }
    assert len(tables) == 6
    assert set(s3["propertyDependencies"]["routeTableIds"]) == tables
    if mode == "update":
        resources = by_urn(record)
        ids = {resources[u]["id"] for u in tables}
        assert set(s3["inputs"]["routeTableIds"]) == ids


def test_interface_endpoints_in_every_private_subnet_with_private_dns(prod_update):
    resources = by_urn(prod_update)
    interface = [e for e in of_type(prod_update, ENDPOINT) if e["inputs"]["vpcEndpointType"] == "Interface"]
    services = {e["inputs"]["serviceName"].removeprefix("com.amazonaws.us-east-1.") for e in interface}
    assert services >= {"ecr.api", "ecr.dkr", "sts", "logs", "ec2", "sqs", "secretsmanager", "elasticloadbalancing"}
    private = {s["id"] for s in of_type(prod_update, SUBNET) if s["inputs"]["tags"][TIER] == "private"}
    [sg] = [r for r in of_type(prod_update, "aws:ec2/securityGroup:SecurityGroup") if r["name"] == "network-endpoints"]
    for endpoint in interface:
        assert endpoint["inputs"]["privateDnsEnabled"] is True
        assert set(endpoint["inputs"]["subnetIds"]) == private
        assert endpoint["inputs"]["securityGroupIds"] == [sg["id"]]
    [rule] = sg["inputs"]["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (443, 443, "tcp")
    assert rule["cidrBlocks"] == ["10.40.0.0/16"]
    assert resources[sg["parent"]]["type"] == "scanner:network:Network"


def test_flow_logs_capture_all_traffic_to_a_retained_log_group(prod_update):
    [flow] = of_type(prod_update, "aws:ec2/flowLog:FlowLog")
    [group] = [g for g in of_type(prod_update, "aws:cloudwatch/logGroup:LogGroup") if g["name"].startswith("network-")]
    [role] = [r for r in of_type(prod_update, "aws:iam/role:Role") if r["name"].startswith("network-")]
    assert flow["inputs"]["trafficType"] == "ALL"
    assert flow["inputs"]["logDestination"] == group["outputs"]["arn"]
    assert flow["inputs"]["iamRoleArn"] == role["outputs"]["arn"]
    assert group["inputs"]["retentionInDays"] == 365
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_subnet_tags_for_load_balancers_and_karpenter(prod_update):
    for subnet in of_type(prod_update, SUBNET):
        tags = subnet["inputs"]["tags"]
        assert subnet["inputs"]["mapPublicIpOnLaunch"] is False
        if tags[TIER] == "public":
            assert tags["kubernetes.io/role/elb"] == "1" and "karpenter.sh/discovery" not in tags
        elif tags[TIER] == "private":
            assert tags["kubernetes.io/role/internal-elb"] == "1"
            assert tags["karpenter.sh/discovery"] == "scanner-prod"
        else:
            assert not {"kubernetes.io/role/elb", "kubernetes.io/role/internal-elb", "karpenter.sh/discovery"} & set(
                tags
            )


def test_default_tags_reach_every_aws_resource_through_one_provider(prod_update):
    [provider] = of_type(prod_update, "pulumi:providers:aws")
    tags = json.loads(provider["inputs"]["defaultTags"])["tags"]
    assert tags == {
        "project": "scanner",
        "stack": "prod",
        "environment": "production",
        "owner": "platform-team",
        "cost-center": "cc-1042-scanning",
        "managed-by": "pulumi",
    }
    assert provider["inputs"]["region"] == "us-east-1"
    aws_resources = [r for r in prod_update.resources if r["type"].startswith("aws:")]
    assert aws_resources and all(r["provider"] == provider["urn"] for r in aws_resources)


def test_default_zone_lookup_skips_local_zones():
    # us-east-1 in the mocks lists Local Zones first, as the real look-up has done.
    from offline.program import load_stack_config, run_program

    config = load_stack_config("prod")
    config.pop("scanner:availabilityZones")
    # Six zones: the services' floor of one replica per zone follows.
    services = json.loads(config["scanner:services"])
    config["scanner:services"] = json.dumps([{**s, "minReplicas": 6, "peakMinReplicas": 6} for s in services])
    # The default system node types are not offered in us-east-1e (use1-az3 in this account):
    # refused before anything is declared.
    with pytest.raises(
        ConfigError, match=r"^scanner:systemNodeInstanceTypes: m7i.large is not offered in us-east-1e \(use1-az3\)"
    ):
        run_program("prod", "preview", config=config)
    config["scanner:systemNodeInstanceTypes"] = '["m4.large"]'  # offered in every zone
    record = run_program("prod", "preview", config=config)
    zones = sorted({s["inputs"]["availabilityZone"] for s in of_type(record, SUBNET)})
    assert zones == [f"us-east-1{c}" for c in "abcdef"]


def test_pod_cidr_adds_a_pod_subnet_per_zone_routed_like_the_nodes():
    record = run("prod", "update", **{"scanner:podCidr": "100.64.0.0/16", "scanner:targetPodsPerZone": "8000"})
    resources = by_urn(record)
    [association] = of_type(record, "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation")
    assert association["inputs"]["cidrBlock"] == "100.64.0.0/16"
    pods = [s for s in of_type(record, SUBNET) if s["inputs"]["tags"][TIER] == "pods"]
    assert sorted(s["inputs"]["cidrBlock"] for s in pods) == ["100.64.0.0/19", "100.64.32.0/19", "100.64.64.0/19"]
    for subnet in pods:
        assert association["urn"] in subnet["dependencies"]
        [rta] = [a for a in of_type(record, RTA) if subnet["urn"] in a["propertyDependencies"]["subnetId"]]
        table = resources[rta["propertyDependencies"]["routeTableId"][0]]
        assert table["inputs"]["tags"][TIER] == "private"
        assert table["inputs"]["tags"]["scanner.io/zone"] == subnet["inputs"]["availabilityZone"]
    assert record.outputs["podAddressesPerZone"] == 8187


def test_preview_mode_leaves_ids_unknown_and_autonames_known(prod_preview):
    [sg] = [r for r in of_type(prod_preview, "aws:ec2/securityGroup:SecurityGroup") if r["name"] == "network-endpoints"]
    assert sg["id"] is None
    assert sg["outputs"]["name"].startswith("network-endpoints-")
    subnet = of_type(prod_preview, SUBNET)[0]
    assert subnet["inputs"]["vpcId"] == UNKNOWN
    assert subnet["inputs"]["availabilityZone"].startswith("us-east-1")


def test_update_mode_ids_and_arns_look_like_aws(prod_update):
    [vpc] = of_type(prod_update, "aws:ec2/vpc:Vpc")
    assert vpc["id"].startswith("vpc-") and len(vpc["id"]) == 21
    assert vpc["outputs"]["arn"] == f"arn:aws:ec2:us-east-1:123456789012:vpc/{vpc['id']}"
    for subnet in of_type(prod_update, SUBNET):
        assert subnet["inputs"]["vpcId"] == vpc["id"]
        assert subnet["outputs"]["availabilityZoneId"].startswith("use1-az")
