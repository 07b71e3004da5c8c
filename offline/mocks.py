"""Mocks that stand in for the Pulumi engine and the AWS provider offline.

`ScannerMocks` answers resource registrations with ids, ARNs and computed outputs shaped like
the provider's (a VPC id is `vpc-` and 17 hex digits, a role's ARN is an IAM ARN), fills in
auto-names as the provider's Check would, and answers the zone, account, region and partition
look-ups from the stack's region. In preview mode it behaves like a first `pulumi preview`:
ids and computed outputs are unknown, inputs and auto-names are known.

`RecordingMonitor` keeps every registration exactly as the SDK sent it (wire form), with the
parent, provider, dependencies and the `protect` / `retainOnDelete` options.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import mocks

import catalogue
from offline import remote

ACCOUNT_ID = "123456789012"
#: Opt-in Local Zones per region: the look-up lists them unless filtered out, so the program's
#: opt-in filter is exercised.
_LOCAL_ZONES = json.loads((Path(__file__).with_name("local_zones.json")).read_text())


class UnmockedInvokeError(Exception):
    pass


def region_zones(region: str) -> list[dict[str, str]]:
    """Zones of a region as the look-up lists them: the standard zones the AWS catalogue records
    (catalogue/aws.json, names and zone ids), then opt-in Local Zones (local_zones.json). A region
    the catalogue does not know has none."""
    standard = catalogue.standard_zones(region)
    zones = [
        {"name": name, "zoneId": zone_id, "optInStatus": "opt-in-not-required", "groupName": region}
        for name, zone_id in sorted(standard.items())
    ]
    prefix = _zone_id_prefix(region) if region.count("-") == 2 else region
    local = [
        {
            "name": name,
            "zoneId": f"{prefix}-{name.split('-')[-2]}-az1",
            "optInStatus": "opted-in",
            "groupName": name[:-1],
        }
        for name in _LOCAL_ZONES.get(region, [])
    ]
    # The real look-up has been seen to return a Local Zone first: keep that order here.
    return local + zones


_DIRECTIONS = {
    "east": "e",
    "west": "w",
    "north": "n",
    "south": "s",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


def _zone_id_prefix(region: str) -> str:
    """us-east-1 -> use1, ap-southeast-2 -> apse2, as AWS zone ids are spelled."""
    area, direction, number = region.split("-")
    return f"{area}{_DIRECTIONS.get(direction, direction[:1])}{number}"


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


# type token -> (id prefix, ARN resource path or None, auto-named property or None)
_SHAPES: dict[str, tuple[str, str | None, str | None]] = {
    "aws:ec2/vpc:Vpc": ("vpc-", "vpc/{id}", None),
    "aws:ec2/subnet:Subnet": ("subnet-", "subnet/{id}", None),
    "aws:ec2/routeTable:RouteTable": ("rtb-", "route-table/{id}", None),
    "aws:ec2/route:Route": ("r-rtb-", None, None),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("rtbassoc-", None, None),
    "aws:ec2/internetGateway:InternetGateway": ("igw-", "internet-gateway/{id}", None),
    "aws:ec2/eip:Eip": ("eipalloc-", "elastic-ip/{id}", None),
    "aws:ec2/natGateway:NatGateway": ("nat-", "natgateway/{id}", None),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce-", "vpc-endpoint/{id}", None),
    "aws:ec2/securityGroup:SecurityGroup": ("sg-", "security-group/{id}", "name"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg-", "security-group/{id}", None),
    "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation": ("vpc-cidr-assoc-", None, None),
    "aws:ec2/flowLog:FlowLog": ("fl-", "vpc-flow-log/{id}", None),
    "aws:iam/role:Role": ("", None, "name"),
    "aws:iam/rolePolicy:RolePolicy": ("", None, "name"),
    "aws:cloudwatch/logGroup:LogGroup": ("", None, "name"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("lt-", "launch-template/{id}", "name"),
    "aws:iam/policy:Policy": ("", None, "name"),
    "aws:sqs/queue:Queue": ("", None, "name"),
    "aws:cloudwatch/eventRule:EventRule": ("", None, "name"),
    "aws:kms/key:Key": ("", None, None),
    "aws:rds/instance:Instance": ("", None, "identifier"),
    "aws:rds/cluster:Cluster": ("", None, "clusterIdentifier"),
    "aws:rds/subnetGroup:SubnetGroup": ("", None, "name"),
    "aws:rds/parameterGroup:ParameterGroup": ("", None, "name"),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": ("", None, "name"),
    "aws:rds/proxy:Proxy": ("", None, "name"),
    "aws:elasticache/subnetGroup:SubnetGroup": ("", None, "name"),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("", None, "replicationGroupId"),
    "aws:mq/broker:Broker": ("b-", None, "brokerName"),
    "aws:secretsmanager/secret:Secret": ("", None, "name"),
    "aws:backup/vault:Vault": ("", None, "name"),
    "aws:backup/plan:Plan": ("", None, None),
    "random:index/randomPassword:RandomPassword": ("", None, None),
    "random:index/randomId:RandomId": ("", None, None),
    "aws:efs/fileSystem:FileSystem": ("fs-", None, None),
    "aws:efs/accessPoint:AccessPoint": ("fsap-", None, None),
    "aws:efs/mountTarget:MountTarget": ("fsmt-", None, None),
    "aws:s3/bucket:Bucket": ("", None, "bucket"),
    "aws:ecr/repository:Repository": ("", None, "name"),
    "aws:cloudfront/distribution:Distribution": ("E", None, None),
    "aws:cloudfront/originAccessControl:OriginAccessControl": ("E", None, None),
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": ("", None, None),
}


STACK_REFERENCE = "pulumi:pulumi:StackReference"


def referenced_outputs(name: str) -> dict[str, Any]:
    """The outputs a stack reference reads from a main stack (`org/scanner/<stack>`): the ones a
    reader of them takes (the VPC and its subnets per tier and zone), shaped as `__main__.py`
    exports them, for the zones its stack file names (else its region's catalogued ones)."""
    from offline.program import StackFileError, load_stack_config

    stack = name.rsplit("/", 1)[-1]
    try:
        config = load_stack_config(stack)
    except StackFileError:
        return {}
    zones = json.loads(config.get("scanner:availabilityZones", "null")) or [
        z["name"] for z in region_zones(config.get("aws:region", "us-east-1")) if z["optInStatus"] != "opted-in"
    ]
    tiers = ("private", "public", "isolated")
    return {
        "availabilityZones": zones,
        "vpcId": "vpc-" + _hex(f"{name}::vpc", 17),
        "subnetIds": {
            tier: {zone: "subnet-" + _hex(f"{name}::{tier}::{zone}", 17) for zone in zones} for tier in tiers
        },
    }


class ScannerMocks(mocks.Mocks):
    def __init__(self, region: str, preview: bool):
        self.region = region
        self.preview = preview
        #: Every invoke the program made, by token (the preview role is written from them).
        self.invoked: set[str] = set()
        #: The emulated child of the remote component being registered (see offline/remote.py).
        self.pending_child: dict[str, Any] | None = None

    # ----- invokes -------------------------------------------------------------------------

    def call(self, args: mocks.MockCallArgs):
        token, a = args.token, args.args
        self.invoked.add(token)
        region = a.get("region") or self.region
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = region_zones(region)
            for flt in a.get("filters") or []:
                if flt["name"] == "opt-in-status":
                    zones = [z for z in zones if z["optInStatus"] in flt["values"]]
            if not a.get("allAvailabilityZones"):
                zones = [z for z in zones if z["optInStatus"] != "not-opted-in"]
            return {
                "id": region,
                "region": region,
                "names": [z["name"] for z in zones],
                "zoneIds": [z["zoneId"] for z in zones],
                "groupNames": sorted({z["groupName"] for z in zones}),
                "state": a.get("state"),
            }
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "id": ACCOUNT_ID,
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deployer/offline",
                "userId": "AROAOFFLINEDEPLOYER:offline",
            }
        if token == "aws:index/getRegion:getRegion":
            return {
                "id": region,
                "name": region,
                "region": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region,
            }
        if token == "aws:lb/getLoadBalancer:getLoadBalancer":
            # The load balancer the controller made for the Ingress, found by its name.
            name = a["name"]
            suffix = f"app/{name}/{_hex(name, 16)}"
            return {
                "id": f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT_ID}:loadbalancer/{suffix}",
                "arn": f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT_ID}:loadbalancer/{suffix}",
                "arnSuffix": suffix,
                "name": name,
                "loadBalancerType": "application",
            }
        if token == "aws:index/getPartition:getPartition":
            return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}
        raise UnmockedInvokeError(f"the offline mocks do not answer the invoke {token}; add it to offline/mocks.py")

    # ----- resources -----------------------------------------------------------------------

    def new_resource(self, args: mocks.MockResourceArgs):
        if args.typ == STACK_REFERENCE:
            # A read, answered in preview too (the engine reads the referenced stack's outputs).
            name = args.inputs.get("name") or args.name
            return name, {"name": name, "outputs": referenced_outputs(name), "secretOutputNames": []}
        if args.typ == remote.EKS_CLUSTER:
            return "", remote.eks_cluster_outputs(self.pending_child, self.preview)
        if not args.custom:
            return "", {}  # components have no id; their outputs are what they register
        state = dict(args.inputs)
        shape = _SHAPES.get(args.typ)
        seed = f"{args.typ}::{args.name}"
        if shape and shape[2] and not state.get(shape[2]):
            # Auto-naming happens in the provider's Check, so it is known during preview too.
            state[shape[2]] = f"{args.name}-{_hex(seed, 7)}"
        if args.typ.startswith("pulumi:providers:"):
            return ("" if self.preview else _uuid(seed)), state
        if self.preview:
            return "", state
        resource_id = self._id(args.typ, seed, state, shape)
        state.update(self._computed(args.typ, resource_id, seed, state, shape))
        return resource_id, state

    def _id(self, typ: str, seed: str, state: dict[str, Any], shape) -> str:
        if typ in ("aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup", "aws:cloudwatch/eventRule:EventRule"):
            return state["name"]
        if typ in ("aws:kms/key:Key", "aws:backup/plan:Plan", "aws:mq/broker:Broker"):
            return _uuid(seed) if typ != "aws:mq/broker:Broker" else "b-" + _uuid(seed)
        if typ in (
            "aws:rds/instance:Instance",
            "aws:rds/cluster:Cluster",
            "aws:rds/subnetGroup:SubnetGroup",
            "aws:rds/parameterGroup:ParameterGroup",
            "aws:rds/clusterParameterGroup:ClusterParameterGroup",
            "aws:rds/proxy:Proxy",
            "aws:elasticache/subnetGroup:SubnetGroup",
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "aws:backup/vault:Vault",
        ):
            return state[shape[2]]
        if typ in ("aws:s3/bucket:Bucket", "aws:ecr/repository:Repository"):
            return state[shape[2]]
        if typ in (
            "aws:efs/fileSystem:FileSystem",
            "aws:efs/accessPoint:AccessPoint",
            "aws:efs/mountTarget:MountTarget",
        ):
            return f"{shape[0]}{_hex(seed, 17)}"
        if typ in (
            "aws:cloudfront/distribution:Distribution",
            "aws:cloudfront/originAccessControl:OriginAccessControl",
        ):
            return "E" + _hex(seed, 13).upper()
        if typ == "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy":
            return _uuid(seed)
        if typ == "aws:secretsmanager/secret:Secret":
            return f"arn:aws:secretsmanager:{self.region}:{ACCOUNT_ID}:secret:{state['name']}-{_hex(seed, 6)}"
        if typ in ("random:index/randomPassword:RandomPassword", "random:index/randomId:RandomId"):
            return "none" if typ.endswith("RandomPassword") else _hex(seed, 8)
        if typ == "aws:sqs/queue:Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{state['name']}"
        if typ == "aws:eks/cluster:Cluster":
            return state["name"]
        if typ.startswith("kubernetes:"):
            metadata = state.get("metadata") or {}
            return "/".join(p for p in (metadata.get("namespace"), metadata.get("name") or state.get("name")) if p)
        if typ == "aws:iam/rolePolicy:RolePolicy":
            return f"{state.get('role', 'role')}:{state['name']}"
        prefix = shape[0] if shape else ""
        return f"{prefix}{_hex(seed, 17)}" if shape else f"{seed.split('::')[-1]}-{_hex(seed, 8)}"

    def _computed(self, typ: str, rid: str, seed: str, state: dict[str, Any], shape) -> dict[str, Any]:
        service = typ.split(":")[1].split("/")[0]
        region = state.get("region") or self.region  # pulumi-aws 7 places a resource in its own region when asked
        out: dict[str, Any] = {}
        data = data_tier_outputs(typ, rid, seed, state, region)
        if data is not None:
            return data
        if shape and shape[1]:
            out["arn"] = f"arn:aws:ec2:{self.region}:{ACCOUNT_ID}:{shape[1].format(id=rid)}"
        elif typ == "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{rid}"
            out["uniqueId"] = "AROA" + _hex(seed, 17).upper()
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            out["arn"] = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{rid}"
        elif typ == "aws:iam/policy:Policy":
            out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:policy/{state['name']}"
        elif typ == "aws:sqs/queue:Queue":
            out.update(arn=f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{state['name']}", url=rid)
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            out["arn"] = f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{rid}"
        elif typ == "aws:eks/cluster:Cluster":
            out.update(remote.eks_cluster_computed(self.region, ACCOUNT_ID, rid, seed))
        elif typ.startswith("kubernetes:"):
            pass
        elif typ == "aws:cloudwatch/dashboard:Dashboard":
            out["dashboardArn"] = f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{state.get('dashboardName') or rid}"
        elif typ == "aws:sns/topic:Topic":
            out["arn"] = f"arn:aws:sns:{region}:{ACCOUNT_ID}:{state.get('name') or rid}"
        elif typ in ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm"):
            name = state.get("name") or state.get("alarmName") or rid
            out["arn"] = f"arn:aws:cloudwatch:{region}:{ACCOUNT_ID}:alarm:{name}"
        elif not shape:
            out["arn"] = f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{rid}"
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            out.update(latestVersion=1, defaultVersion=1)
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            out.update(nodeGroupName=state.get("nodeGroupName") or rid, status="ACTIVE")
        if typ == "aws:ec2/vpc:Vpc":
            out.update(
                defaultSecurityGroupId="sg-" + _hex(seed + "sg", 17),
                defaultRouteTableId="rtb-" + _hex(seed + "rtb", 17),
                mainRouteTableId="rtb-" + _hex(seed + "rtb", 17),
                defaultNetworkAclId="acl-" + _hex(seed + "acl", 17),
                ownerId=ACCOUNT_ID,
            )
        elif typ == "aws:ec2/subnet:Subnet":
            zones = {z["name"]: z["zoneId"] for z in region_zones(self.region)}
            out.update(availabilityZoneId=zones.get(state.get("availabilityZone", ""), ""), ownerId=ACCOUNT_ID)
        elif typ == "aws:ec2/eip:Eip":
            out.update(allocationId=rid, publicIp=_documentation_ip(seed), domain="vpc")
        elif typ == "aws:ec2/natGateway:NatGateway":
            out.update(publicIp=_documentation_ip(seed), networkInterfaceId="eni-" + _hex(seed, 17))
        elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and state.get("vpcEndpointType") == "Gateway":
            out.update(prefixListId="pl-" + _hex(seed, 8), state="available")
        elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            service_name = state.get("serviceName", "")
            out.update(
                state="available",
                networkInterfaceIds=["eni-" + _hex(seed + s, 17) for s in state.get("subnetIds", [])],
                dnsEntries=[
                    {
                        "dnsName": f"{rid}.{service_name.split('.', 3)[-1]}.{self.region}.vpce.amazonaws.com",
                        "hostedZoneId": "Z7HUB22UULQXV",
                    }
                ],
            )
        elif typ in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
            out.update(ownerId=ACCOUNT_ID)
        return out


def data_tier_outputs(typ: str, rid: str, seed: str, state: dict[str, Any], region: str) -> dict[str, Any] | None:
    """Computed outputs of the data-tier resources, shaped as AWS returns them."""
    host = f"{rid}.c{_hex(seed, 12)}.{region}.rds.amazonaws.com"
    if typ == "aws:rds/instance:Instance":
        return {
            "arn": f"arn:aws:rds:{region}:{ACCOUNT_ID}:db:{rid}",
            "address": host,
            "endpoint": f"{host}:5432",
            "port": 5432,
            "resourceId": "db-" + _hex(seed, 26).upper(),
            "status": "available",
            "identifier": rid,
        }
    if typ == "aws:rds/cluster:Cluster":
        return {
            "arn": f"arn:aws:rds:{region}:{ACCOUNT_ID}:cluster:{rid}",
            "endpoint": host,
            "readerEndpoint": host.replace(f"{rid}.", f"{rid}.cluster-ro-"),
            "port": 5432,
            "clusterIdentifier": rid,
            "clusterResourceId": "cluster-" + _hex(seed, 26).upper(),
        }
    if typ == "aws:rds/proxy:Proxy":
        return {
            "arn": f"arn:aws:rds:{region}:{ACCOUNT_ID}:db-proxy:prx-{_hex(seed, 17)}",
            "endpoint": f"{rid}.proxy-c{_hex(seed, 12)}.{region}.rds.amazonaws.com",
        }
    if typ in (
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
    ):
        kind = {"aws:rds/subnetGroup:SubnetGroup": "subgrp", "aws:rds/parameterGroup:ParameterGroup": "pg"}.get(
            typ, "cluster-pg"
        )
        return {"arn": f"arn:aws:rds:{region}:{ACCOUNT_ID}:{kind}:{rid}"}
    if typ == "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
        return {"name": "default", "arn": f"arn:aws:rds:{region}:{ACCOUNT_ID}:target-group:prx-tg-{_hex(seed, 17)}"}
    if typ == "aws:mq/broker:Broker":
        host = f"{rid}.mq.{region}.on.aws"
        return {
            "arn": f"arn:aws:mq:{region}:{ACCOUNT_ID}:broker:{state.get('brokerName')}:{rid}",
            "instances": [{"consoleUrl": f"https://{host}", "endpoints": [f"amqps://{host}:5671"], "ipAddress": ""}],
        }
    if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
        return {
            "arn": f"arn:aws:elasticache:{region}:{ACCOUNT_ID}:replicationgroup:{rid}",
            "primaryEndpointAddress": f"master.{rid}.{_hex(seed, 6)}.{_zone_id_prefix(region)}.cache.amazonaws.com",
            "readerEndpointAddress": f"replica.{rid}.{_hex(seed, 6)}.{_zone_id_prefix(region)}.cache.amazonaws.com",
            "memberClusters": [f"{rid}-{i + 1:03d}" for i in range(int(state.get("numCacheClusters", 1)))],
        }
    if typ == "aws:elasticache/subnetGroup:SubnetGroup":
        return {"arn": f"arn:aws:elasticache:{region}:{ACCOUNT_ID}:subnetgroup:{rid}"}
    if typ == "aws:secretsmanager/secret:Secret":
        return {"arn": rid}
    if typ == "aws:secretsmanager/secretVersion:SecretVersion":
        return {"versionId": _uuid(seed), "arn": state.get("secretId")}
    if typ == "random:index/randomPassword:RandomPassword":
        # Deterministic and free of every character the consumers refuse.
        return {"result": "Offline" + _hex(seed, int(state.get("length", 16)) - 7), "bcryptHash": ""}
    if typ == "random:index/randomId:RandomId":
        hex_ = _hex(seed, 2 * int(state.get("byteLength", 4)))
        return {"hex": hex_, "dec": str(int(hex_, 16)), "b64Url": hex_, "b64Std": hex_}
    if typ == "aws:kms/key:Key":
        return {"arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{rid}", "keyId": rid}
    if typ == "aws:efs/fileSystem:FileSystem":
        return {
            "arn": f"arn:aws:elasticfilesystem:{region}:{ACCOUNT_ID}:file-system/{rid}",
            "dnsName": f"{rid}.efs.{region}.amazonaws.com",
            "ownerId": ACCOUNT_ID,
        }
    if typ == "aws:efs/accessPoint:AccessPoint":
        return {"arn": f"arn:aws:elasticfilesystem:{region}:{ACCOUNT_ID}:access-point/{rid}"}
    if typ == "aws:efs/mountTarget:MountTarget":
        return {
            "dnsName": f"{state.get('fileSystemId')}.efs.{region}.amazonaws.com",
            "networkInterfaceId": "eni-" + _hex(seed, 17),
        }
    if typ == "aws:s3/bucket:Bucket":
        return {
            "arn": f"arn:aws:s3:::{rid}",
            "bucketDomainName": f"{rid}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{rid}.s3.{region}.amazonaws.com",
            "region": region,
        }
    if typ == "aws:ecr/repository:Repository":
        return {
            "arn": f"arn:aws:ecr:{region}:{ACCOUNT_ID}:repository/{rid}",
            "registryId": ACCOUNT_ID,
            "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{rid}",
        }
    if typ == "aws:cloudfront/distribution:Distribution":
        return {
            "arn": f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/{rid}",
            "domainName": f"d{_hex(seed, 13)}.cloudfront.net",
            "hostedZoneId": "Z2FDTNDATAQYW2",
            "status": "Deployed",
            "etag": _hex(seed, 14).upper(),
        }
    if typ == "aws:cloudfront/originAccessControl:OriginAccessControl":
        return {"etag": _hex(seed, 14).upper()}
    if typ == "aws:acm/certificate:Certificate":
        domain = state.get("domainName", "")
        return {
            "arn": f"arn:aws:acm:{region}:{ACCOUNT_ID}:certificate/{_uuid(seed)}",
            "status": "PENDING_VALIDATION",
            "domainValidationOptions": [
                {
                    "domainName": domain,
                    "resourceRecordName": f"_{_hex(seed, 32)}.{domain}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{_hex(seed + 'v', 32)}.xlfgrmvvlj.acm-validations.aws.",
                }
            ],
        }
    if typ == "aws:acm/certificateValidation:CertificateValidation":
        return {"certificateArn": state.get("certificateArn")}
    if typ == "aws:route53/record:Record":
        return {"fqdn": str(state.get("name", "")).rstrip(".")}
    if typ == "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy":
        return {"etag": _hex(seed, 14).upper()}
    if typ == "aws:backup/vault:Vault":
        return {"arn": f"arn:aws:backup:{region}:{ACCOUNT_ID}:backup-vault:{rid}", "recoveryPoints": 0}
    if typ == "aws:backup/plan:Plan":
        return {"arn": f"arn:aws:backup:{region}:{ACCOUNT_ID}:backup-plan:{rid}", "version": _hex(seed, 32)}
    return None


def _uuid(seed: str) -> str:
    h = _hex(seed, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _documentation_ip(seed: str) -> str:
    return f"198.51.100.{int(_hex(seed, 2), 16) % 254 + 1}"


class RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that records every registration in Pulumi's wire form (camelCase)."""

    mocks: ScannerMocks

    def __init__(self, mocks_: ScannerMocks):
        super().__init__(mocks_)
        self.records: list[dict[str, Any]] = []
        self._by_urn: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request):
        child = None
        if request.type == remote.EKS_CLUSTER:
            # pulumi-eks is a remote component: under the real engine its provider registers an
            # aws:eks/cluster:Cluster child (with our transforms applied). Emulate that child so the
            # policies and tests see the shape the engine shows.
            urn = self.make_urn(request.parent, request.type, request.name)
            child = remote.emulate_eks_cluster(self, urn, request, self.mocks)
            self.mocks.pending_child = child
        response = super().RegisterResource(request)
        record = {
            "urn": response.urn,
            "type": request.type,
            "name": request.name,
            "parent": request.parent or None,
            "provider": request.provider.rsplit("::", 1)[0] if request.provider else None,
            "custom": bool(request.custom),
            "id": response.id or None,
            "dependencies": list(request.dependencies),
            "propertyDependencies": {k: list(v.urns) for k, v in request.propertyDependencies.items()},
            "protect": request.protect if request.HasField("protect") else False,
            "retainOnDelete": request.retainOnDelete if request.HasField("retainOnDelete") else False,
            "inputs": json_format.MessageToDict(request.object),
            "outputs": json_format.MessageToDict(response.object) if request.custom else {},
        }
        if record["id"] and record["custom"] and request.type.split(":")[0] in ("aws", "random"):
            # Bridged providers return the id among a resource's outputs too; policies that
            # resolve ids to resources (an update) read it there.
            record["outputs"].setdefault("id", record["id"])
        self.records.append(record)
        self._by_urn[record["urn"]] = record
        if child is not None:
            self.records.append(child)
            self._by_urn[child["urn"]] = child
            self.mocks.pending_child = None
        return response

    def RegisterResourceOutputs(self, request):
        record = self._by_urn.get(request.urn)
        if record is not None:
            record["outputs"] = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)
