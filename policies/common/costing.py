"""What a stack costs a month, from the resources it declares, priced offline (pure: no Pulumi,
no network, the standard library only, so the cost pack and `python -m cost` share it).

Each priced resource becomes line items: a quantity a month, a rate from the price table
(`prices.json` beside this file, dated, with its sources) and the usage assumption it rests on
where the resource alone does not say (GB through a NAT gateway, a bucket's size). Lines carry
the component they belong to (the stack's top-level `scanner:*` component) and a zone where the
resource sits in one, so the estimate reads by component, by zone and by item.

Capacity that no resource fixes comes from elsewhere:
- the scan pool's nodes: a `ScanCapacity` (vCPU-hours a week and the spot share), from the
  capacity model's simulated week (`python -m cost`) or its fluid approximation here
  (`fluid_scan_capacity`, what the cost pack uses: the simulation takes seconds);
- the services pool at its floor: the services' minimum replicas times their CPU requests,
  packed at `servicesPacking` onto the cheapest instance category the pool allows that holds
  their memory.

Every resource type is either priced here or listed in the table's `free` section with the
reason; `unpriced` names what is neither, and the tests fail on one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _contract() -> Any:
    """The contract module: `policies.common.contract` in the project, `contract` in a policy
    pack (policies/common on its path). Imported by name, so the type checker sees one module."""
    import importlib

    try:
        return importlib.import_module("policies.common.contract")
    except ImportError:  # pragma: no cover (the pack's import)
        return importlib.import_module("contract")


contract = _contract()

PRICES_PATH = Path(__file__).resolve().with_name("prices.json")
ZONE_TAG = contract.ZONE_TAG
REGIONAL = "regional"
HOURS_PER_WEEK = 168.0

#: The weekday load, shared with the capacity model (benchmarks/capacity.py): (hour of day UTC,
#: fraction of the peak rate), linear in between; weekends run WEEKEND_LEVEL of the peak.
WEEKDAY_CURVE: tuple[tuple[float, float], ...] = (
    (0, 0.04),
    (6, 0.04),
    (7, 0.15),
    (9, 0.7),
    (10, 1.0),
    (16, 1.0),
    (18, 0.45),
    (20, 0.2),
    (22, 0.08),
    (24, 0.04),
)
WEEKEND_LEVEL = 0.005
#: The share of the ScaledJobs' combined cap busy at the weekday peak.
DEFAULT_PEAK_LOAD = 0.40
GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}


@dataclass(frozen=True)
class Usage:
    """What the resources do not say, each with its default (`python -m cost --usage KEY=N`)."""

    default: float
    unit: str
    meaning: str


USAGE: dict[str, Usage] = {
    "natGbPerGateway": Usage(200, "GB/month", "data processed by each NAT gateway"),
    "endpointGbPerEndpoint": Usage(20, "GB/month", "data processed by each interface endpoint"),
    "repoCacheGb": Usage(500, "GB", "the repository cache's size on EFS"),
    "repoCacheIaShare": Usage(0.5, "share", "of the cache in Infrequent Access (untouched 30 days)"),
    "repoCacheReadGb": Usage(3000, "GB/month", "read from the repository cache (elastic throughput)"),
    "repoCacheWriteGb": Usage(300, "GB/month", "written to the repository cache"),
    "ecrGbPerRepository": Usage(5, "GB", "images kept per ECR repository"),
    "bucketGb": Usage(20, "GB", "stored per S3 bucket"),
    "bucketPutThousands": Usage(50, "thousand/month", "PUT/LIST requests per bucket"),
    "bucketGetThousands": Usage(500, "thousand/month", "GET requests per bucket"),
    "cdnGb": Usage(100, "GB/month", "the dashboard's transfer out of CloudFront"),
    "cdnRequestsMillions": Usage(5, "million/month", "the dashboard's HTTPS requests"),
    "albLcu": Usage(1, "LCU", "each load balancer's average capacity units"),
    "kmsRequestsMillionsPerKey": Usage(0.5, "million/month", "requests per KMS key"),
    "secretsApiThousandsPerSecret": Usage(10, "thousand/month", "GetSecretValue calls per secret"),
    "logsGbPerGroup": Usage(5, "GB/month", "ingested per log group (flow logs: flowLogsGb)"),
    "flowLogsGb": Usage(100, "GB/month", "VPC flow logs delivered"),
    "customMetrics": Usage(
        33, "metrics", "custom metrics the queue-metrics publisher keeps (prod: 7 queues x 4, 5 more)"
    ),
    "brokerStorageGbPerNode": Usage(20, "GB", "used on each broker node"),
    "databaseExtraBackupGb": Usage(0, "GB", "backup storage beyond the free allowance (the provisioned size)"),
    "databaseBackupGb": Usage(300, "GB", "database snapshots held in each backup vault"),
    "fileSystemBackupGb": Usage(500, "GB", "the file system's AWS Backup recovery points (warm)"),
    "cacheSnapshotGb": Usage(5, "GB", "each cache snapshot (one per retained day; the first is free)"),
    "backupCopyGbPerMonth": Usage(100, "GB/month", "copied to the backup region"),
    "drillsPerYear": Usage(2, "drills/year", "zone drills run (one template each)"),
    "lambdaRunsPerMonth": Usage(43_800, "runs/month", "runs of each scheduled function (once a minute)"),
    "lambdaSecondsPerRun": Usage(1.0, "s", "each run's duration"),
    "servicesPacking": Usage(0.75, "share", "of a services node's vCPUs the services' requests fill"),
    "servicesNodeVcpu": Usage(4, "vCPU", "a services node's size (its root volume is priced per node)"),
    "scanVcpuPerNode": Usage(10, "vCPU", "a scan node's average size (fluid estimate only: the model counts nodes)"),
    "interAzGb": Usage(
        500, "GB/month", "crossing zones (to the primaries, the broker, between pods), billed both ways"
    ),
    "ecrReplicationGbPerMonth": Usage(10, "GB/month", "images pushed, copied to each replica region"),
    "containerInsightsUsd": Usage(
        100, "USD/month", "Container Insights' observations: read the real figure after a day"
    ),
    "databaseLogsGbPerInstance": Usage(2, "GB/month", "logs a database instance exports to CloudWatch"),
    "enhancedMonitoringGbPerInstance": Usage(1, "GB/month", "Enhanced Monitoring's RDSOSMetrics per instance"),
    "brokerLogsGb": Usage(2, "GB/month", "the broker's general logs"),
    "logsCompressedShare": Usage(0.2, "share", "of ingested log bytes stored (CloudWatch bills storage compressed)"),
    "metricsInsightsSeries": Usage(15, "series", "time series each Metrics Insights alarm query analyses"),
    "scanUtilisation": Usage(0.67, "share", "of scan nodes' vCPU-hours running scans (fluid estimate only)"),
    "scanSpotShare": Usage(
        0.95, "share", "of scan node-hours on spot with an on-demand fallback (fluid estimate only)"
    ),
    "spotDiscount": Usage(-1, "share", "saving of spot over on-demand (-1: the table's, per region)"),
}


class PriceError(ValueError):
    """A price table or usage value that cannot be used: the message names the key."""


@dataclass(frozen=True)
class Resource:
    """A declared resource, as the record (`python -m offline.preview --json`) or the policy
    engine gives it: inputs in plain form (an unknown is None), dependencies by property."""

    type: str
    name: str
    urn: str
    parent: str | None
    inputs: Mapping[str, Any]
    deps: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ScanCapacity:
    vcpu_hours_per_week: float
    spot_share: float
    """Of the vCPU-hours, on spot."""
    category: str = "c"
    source: str = "the capacity model's week"
    node_hours_per_week: float = 0.0
    """Node-hours (their root volumes); 0: the vCPU-hours over `scanVcpuPerNode`."""


@dataclass(frozen=True)
class Line:
    component: str
    zone: str
    item: str
    resource: str
    quantity: float
    unit: str
    rate: float
    usage: str = ""
    """The usage key the quantity rests on (empty: the resource fixes it)."""
    baseline: str = ""
    """The always-on capacity a commitment can cover: `ec2`, `rds`, `elasticache` or `mq`."""

    @property
    def monthly(self) -> float:
        return self.quantity * self.rate


@dataclass
class Estimate:
    region: str
    lines: list[Line]
    usage: dict[str, float]
    unpriced: list[str]
    """Resources of a type neither priced nor free, or of a class the table has no price for."""
    scans: ScanCapacity | None = None

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    def by(self, key: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[getattr(line, key)] = out.get(getattr(line, key), 0.0) + line.monthly
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def top(self, n: int = 10) -> list[Line]:
        return sorted(self.lines, key=lambda line: -line.monthly)[:n]


def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    with path.open() as f:
        return json.load(f)


def usage_values(overrides: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Every usage key at its default, with `overrides` checked: a known key, a number >= 0
    (shares at most 1)."""
    values = {key: u.default for key, u in USAGE.items()}
    for key, raw in (overrides or {}).items():
        if key not in USAGE:
            raise PriceError(f"usage {key}: not a usage key (one of {', '.join(sorted(USAGE))})")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise PriceError(f"usage {key}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise PriceError(f"usage {key}: {raw!r} is not a finite number")
        if key == "spotDiscount" and value == -1:
            values[key] = value
            continue
        if value < 0 or (USAGE[key].unit == "share" and value > 1):
            raise PriceError(
                f"usage {key}: {raw!r} must be at least 0{' and at most 1' if USAGE[key].unit == 'share' else ''}"
            )
        values[key] = value
    return values


def free_reason(prices: Mapping[str, Any], resource_type: str) -> str | None:
    free = prices["free"]
    if resource_type in free:
        return free[resource_type]
    return free.get(resource_type.split(":", 1)[0] + ":*")


#: Sizes by how many `large` they make: within a family, AWS prices grow in step with the size.
_SIZES = {"nano": 0.0625, "micro": 0.125, "small": 0.25, "medium": 0.5, "large": 1.0, "xlarge": 2.0}
_CLASS = re.compile(r"^(?P<family>(?:db\.|cache\.|mq\.)?[a-z0-9-]+)\.(?P<size>\d*x?large|nano|micro|small|medium)$")


def _size(size: str) -> float | None:
    if size in _SIZES:
        return _SIZES[size]
    found = re.fullmatch(r"(\d+)xlarge", size)
    return 2.0 * int(found.group(1)) if found else None


def class_price(column: Mapping[str, float], name: str) -> float | None:
    """A class's hourly price: the table's, or a size of the same family in the table scaled to
    this size (`db.r7g.2xlarge` is four `db.r7g.large`); None when the family is not priced."""
    if name in column:
        return float(column[name])
    wanted = _CLASS.match(name)
    if not wanted or _size(wanted["size"]) is None:
        return None
    for known, price in sorted(column.items()):
        found = _CLASS.match(known)
        if found and found["family"] == wanted["family"] and _size(found["size"]):
            return float(price) * (_size(wanted["size"]) or 0) / (_size(found["size"]) or 1)
    return None


def class_vcpus(name: str) -> int:
    """vCPUs of a class from its size (large 2, xlarge 4, 2xlarge 8; the small sizes 2)."""
    found = _CLASS.match(name)
    size = _size(found["size"]) if found else None
    return max(2, round(2 * size)) if size else 2


# ----- the resources' shape ------------------------------------------------------------------


def _path(value: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return default
        value = value.get(part)
        if value is None:
            return default
    return value


def _cpu(quantity: Any) -> float:
    text = str(quantity or "0")
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return 0.0


_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_MEMORY_GIB = {
    None: 1 / 2**30,
    "Ki": 1 / 2**20,
    "Mi": 1 / 2**10,
    "Gi": 1.0,
    "Ti": 2**10,
    "K": 1e3 / 2**30,
    "M": 1e6 / 2**30,
    "G": 1e9 / 2**30,
    "T": 1e12 / 2**30,
}


def _memory_gib(quantity: Any) -> float:
    found = _MEMORY.match(str(quantity or "0"))
    return float(found.group(1)) * _MEMORY_GIB[found.group(2)] if found else 0.0


_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


def _minutes(duration: Any) -> float:
    found = _DURATION.match(str(duration or ""))
    if not found:
        return 1.0  # an action without a duration (a failover) is billed its first minute
    h, m, s = (int(g or 0) for g in found.groups())
    return max(1.0, h * 60 + m + s / 60)


class _Stack:
    def __init__(self, resources: Iterable[Resource]):
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources}

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources if r.type == resource_type]

    def component(self, resource: Resource) -> str:
        """The name of the top-level `scanner:*` component holding `resource` ("stack" when none)."""
        found = "stack"
        seen: set[str] = set()
        current_: Resource | None = resource
        while current_ is not None and current_.urn not in seen:
            seen.add(current_.urn)
            if current_.type.startswith("scanner:"):
                found = current_.name
            current_ = self.by_urn.get(current_.parent or "")
        return found

    def dep(self, resource: Resource, key: str) -> list[Resource]:
        return [self.by_urn[u] for u in resource.deps.get(key, ()) if u in self.by_urn]

    def zone(self, resource: Resource) -> str:
        tags = resource.inputs.get("tags") or {}
        if isinstance(tags, Mapping) and tags.get(ZONE_TAG):
            return str(tags[ZONE_TAG])
        if resource.inputs.get("availabilityZone"):
            return str(resource.inputs["availabilityZone"])
        for subnet in self.dep(resource, "subnetId"):
            if subnet.inputs.get("availabilityZone"):
                return str(subnet.inputs["availabilityZone"])
        return REGIONAL

    def subnet_zones(self, resource: Resource) -> list[str]:
        zones = [str(s.inputs.get("availabilityZone") or REGIONAL) for s in self.dep(resource, "subnetIds")]
        if not zones:
            zones = [REGIONAL] * len(resource.inputs.get("subnetIds") or [])
        return zones


# ----- pricing -------------------------------------------------------------------------------


def estimate(
    resources: Iterable[Resource],
    region: str,
    prices: Mapping[str, Any] | None = None,
    usage: Mapping[str, Any] | None = None,
    scans: ScanCapacity | None = None,
) -> Estimate:
    """The month's line items for `resources` in `region`. `scans`: the scan pool's capacity;
    none: the fluid approximation from the ScaledJobs."""
    prices = prices or load_prices()
    if region not in prices["regions"]:
        raise PriceError(f"aws:region: {region} has no prices in the table (priced: {', '.join(prices['regions'])})")
    use = usage_values(usage)
    rates = prices["regions"][region]
    hours = float(prices["hoursPerMonth"])
    stack = _Stack(resources)
    lines: list[Line] = []
    unpriced: list[str] = []

    def add(r: Resource, item: str, quantity: float, unit: str, rate: float, zone: str | None = None, **extra: str):
        lines.append(Line(stack.component(r), zone or stack.zone(r), item, r.name, quantity, unit, rate, **extra))

    def _logs(r: Resource, item: str, gb: float, key: str, days: float = 365) -> None:
        """Logs a service writes to CloudWatch: ingestion, and what a year's retention keeps."""
        add(r, f"{item}: ingestion", gb, "GB", rates["logsIngestGb"], usage=key)
        stored = gb * min(days, 365) / 30 * use["logsCompressedShare"]
        add(r, f"{item}: storage", stored, "GB-month", rates["logsStoreGbMonth"], usage="logsCompressedShare")

    def table(section: str, key: str, r: Resource) -> float | None:
        found = class_price(prices[section].get(region) or {}, key)
        if found is None:
            unpriced.append(f"{r.name}: no {section} price for {key} in {region}")
        return found

    spot_discount = use["spotDiscount"] if use["spotDiscount"] >= 0 else float(prices["spotDiscount"][region])
    priced_types: set[str] = set()

    def handles(*types: str):
        priced_types.update(types)
        return [r for t in types for r in stack.of_type(t)]

    # Network
    for r in handles("aws:ec2/natGateway:NatGateway"):
        add(r, "NAT gateway hours", hours, "h", rates["natHour"])
        add(r, "NAT gateway data", use["natGbPerGateway"], "GB", rates["natGb"], usage="natGbPerGateway")
    nat_of_eip = {
        u: nat for nat in stack.of_type("aws:ec2/natGateway:NatGateway") for u in nat.deps.get("allocationId", ())
    }
    for r in handles("aws:ec2/eip:Eip"):
        nat = nat_of_eip.get(r.urn)
        add(r, "public IPv4 address", hours, "h", rates["publicIpv4Hour"], zone=stack.zone(nat) if nat else None)
    for r in handles("aws:ec2/vpcEndpoint:VpcEndpoint"):
        if r.inputs.get("vpcEndpointType") != "Interface":
            continue
        for zone in stack.subnet_zones(r):
            add(r, "interface endpoint hours", hours, "h", rates["endpointZoneHour"], zone=zone)
        add(
            r,
            "interface endpoint data",
            use["endpointGbPerEndpoint"],
            "GB",
            rates["endpointGb"],
            zone=REGIONAL,
            usage="endpointGbPerEndpoint",
        )
    for r in handles("aws:ec2/flowLog:FlowLog"):
        add(r, "flow logs delivered", use["flowLogsGb"], "GB", rates["vendedLogsGb"], usage="flowLogsGb")

    # Cluster and nodes
    for r in handles("aws:eks/cluster:Cluster"):
        add(r, "EKS control plane", hours, "h", rates["eksClusterHour"])
    for r in handles("aws:eks/nodeGroup:NodeGroup"):
        types = r.inputs.get("instanceTypes") or []
        desired = float(_path(r.inputs, "scalingConfig.desiredSize", 0) or 0)
        rate = table("ec2Hour", types[0], r) if types else None
        zones = stack.subnet_zones(r) or [REGIONAL]
        volume = 0.0
        for template in stack.dep(r, "launchTemplate"):
            for mapping in template.inputs.get("blockDeviceMappings") or []:
                volume += float(_path(mapping, "ebs.volumeSize", 0) or 0)
        for zone in zones:
            share = desired / len(zones)
            if rate is not None:
                add(r, f"system nodes ({types[0]})", share * hours, "instance-h", rate, zone=zone, baseline="ec2")
            if volume:
                add(r, "system nodes' volumes (gp3)", share * volume, "GB-month", rates["ebsGp3GbMonth"], zone=zone)
    priced_types.add("kubernetes:karpenter.sh/v1:NodePool")
    _services_floor(stack, prices, region, use, hours, add)
    scans = _scan_pool(stack, prices, region, use, hours, add, spot_discount, scans)

    # Data
    for r in handles("aws:rds/instance:Instance"):
        cls = str(r.inputs.get("instanceClass") or "")
        rate = table("rdsHour", cls, r)
        copies = 2 if r.inputs.get("multiAz") else 1
        if rate is not None:
            add(
                r,
                f"database instance ({cls}{', Multi-AZ' if copies == 2 else ''})",
                copies * hours,
                "instance-h",
                rate,
                baseline="rds",
            )
        storage = r.inputs.get("allocatedStorage")
        if storage is None:
            source = next(iter(stack.dep(r, "replicateSourceDb")), None)
            storage = source.inputs.get("allocatedStorage") if source else 0
        add(r, "database storage (gp3)", copies * float(storage or 0), "GB-month", rates["rdsGp3GbMonth"])
        if r.inputs.get("enabledCloudwatchLogsExports"):
            _logs(r, "database logs exported", use["databaseLogsGbPerInstance"], "databaseLogsGbPerInstance")
        if float(r.inputs.get("monitoringInterval") or 0) > 0:
            _logs(r, "Enhanced Monitoring", use["enhancedMonitoringGbPerInstance"], "enhancedMonitoringGbPerInstance")
        if r.inputs.get("backupRetentionPeriod"):
            add(
                r,
                "database backup beyond the free allowance",
                use["databaseExtraBackupGb"],
                "GB-month",
                rates["rdsBackupGbMonth"],
                usage="databaseExtraBackupGb",
            )
    for r in handles("aws:rds/cluster:Cluster"):
        cls = str(r.inputs.get("dbClusterInstanceClass") or "")
        if cls:
            rate = table("rdsHour", cls, r)
            if rate is not None:
                add(r, f"database cluster instances ({cls} x 3)", 3 * hours, "instance-h", rate, baseline="rds")
            add(
                r,
                "database cluster storage",
                3 * float(r.inputs.get("allocatedStorage") or 0),
                "GB-month",
                rates["rdsGp3GbMonth"],
            )
    for r in handles("aws:rds/clusterInstance:ClusterInstance"):
        cls = str(r.inputs.get("instanceClass") or "")
        rate = table("rdsHour", cls, r)
        if rate is not None:
            add(r, f"database cluster instance ({cls})", hours, "instance-h", rate, baseline="rds")
    for r in handles("aws:rds/proxy:Proxy"):
        vcpus = 0
        for db in stack.of_type("aws:rds/instance:Instance") + stack.of_type("aws:rds/cluster:Cluster"):
            if stack.component(db) == stack.component(r) and not db.inputs.get("replicateSourceDb"):
                cls = str(db.inputs.get("instanceClass") or db.inputs.get("dbClusterInstanceClass") or "")
                vcpus = max(vcpus, int(prices["rdsVcpu"].get(cls) or class_vcpus(cls)))
        add(
            r,
            "database proxy (per vCPU of its database, at least 2)",
            max(2, vcpus) * hours,
            "vCPU-h",
            rates["rdsProxyVcpuHour"],
        )
    for r in handles("aws:mq/broker:Broker"):
        kind = str(r.inputs.get("hostInstanceType") or "")
        nodes = {"CLUSTER_MULTI_AZ": 3, "ACTIVE_STANDBY_MULTI_AZ": 2}.get(str(r.inputs.get("deploymentMode")), 1)
        rate = table("mqHour", kind, r)
        # A node in each of its subnets' zones.
        zones = (stack.subnet_zones(r) + [REGIONAL] * nodes)[:nodes]
        for zone in zones:
            if rate is not None:
                add(r, f"broker node ({kind})", hours, "instance-h", rate, zone=zone, baseline="mq")
            add(
                r,
                "broker storage",
                use["brokerStorageGbPerNode"],
                "GB-month",
                rates["mqStorageGbMonth"],
                zone=zone,
                usage="brokerStorageGbPerNode",
            )
        if _path(r.inputs, "logs.general"):
            _logs(r, "broker general logs", use["brokerLogsGb"], "brokerLogsGb")
    for r in handles("aws:elasticache/replicationGroup:ReplicationGroup"):
        kind = str(r.inputs.get("nodeType") or "")
        zones = [str(z) for z in r.inputs.get("preferredCacheClusterAzs") or []]
        count = int(r.inputs.get("numCacheClusters") or len(zones) or 1)
        zones = (zones + [REGIONAL] * count)[:count]
        rate = table("elasticacheHour", kind, r)
        for zone in zones:
            if rate is not None:
                add(r, f"cache node ({kind})", hours, "node-h", rate, zone=zone, baseline="elasticache")
        kept = int(r.inputs.get("snapshotRetentionLimit") or 0)
        if kept > 1:
            add(
                r,
                f"cache snapshots ({kept} kept, the first free)",
                (kept - 1) * use["cacheSnapshotGb"],
                "GB-month",
                rates["elasticacheBackupGbMonth"],
                usage="cacheSnapshotGb",
            )
    for r in handles("aws:efs/fileSystem:FileSystem"):
        ia = use["repoCacheIaShare"] if r.inputs.get("lifecyclePolicies") else 0.0
        add(
            r,
            "file system, Standard",
            use["repoCacheGb"] * (1 - ia),
            "GB-month",
            rates["efsStandardGbMonth"],
            usage="repoCacheGb",
        )
        add(
            r,
            "file system, Infrequent Access",
            use["repoCacheGb"] * ia,
            "GB-month",
            rates["efsIaGbMonth"],
            usage="repoCacheIaShare",
        )
        if r.inputs.get("throughputMode") == "elastic":
            add(
                r,
                "file system reads (elastic)",
                use["repoCacheReadGb"],
                "GB",
                rates["efsElasticReadGb"],
                usage="repoCacheReadGb",
            )
            add(
                r,
                "file system writes (elastic)",
                use["repoCacheWriteGb"],
                "GB",
                rates["efsElasticWriteGb"],
                usage="repoCacheWriteGb",
            )
    vaults = handles("aws:backup/vault:Vault")
    for r in vaults:
        # The vaults hold the database's snapshots (the backup selection); the file system's
        # recovery points go to the vault AWS makes for EFS backups, priced on the file system.
        vault_region = str(r.inputs.get("region") or region)
        other = prices["regions"].get(vault_region, rates)
        add(
            r,
            f"database snapshots in the vault ({vault_region})",
            use["databaseBackupGb"],
            "GB-month",
            other["backupRdsGbMonth"],
            usage="databaseBackupGb",
        )
        if vault_region != region:
            add(
                r,
                "backup copies to another region",
                use["backupCopyGbPerMonth"],
                "GB",
                rates["interRegionGb"],
                usage="backupCopyGbPerMonth",
            )
    for r in handles("aws:efs/backupPolicy:BackupPolicy"):
        if str(_path(r.inputs, "backupPolicy.status", "")).upper() == "ENABLED":
            add(
                r,
                "file system backups (AWS Backup, warm)",
                use["fileSystemBackupGb"],
                "GB-month",
                rates["backupWarmGbMonth"],
                usage="fileSystemBackupGb",
            )

    # Registry, buckets, edge
    replicas = [
        str(d.get("region"))
        for cfg in stack.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
        for rule in _path(cfg.inputs, "replicationConfiguration.rules", []) or []
        for d in rule.get("destinations") or []
    ]
    for r in handles("aws:ecr/repository:Repository"):
        add(r, "image storage", use["ecrGbPerRepository"], "GB-month", rates["ecrGbMonth"], usage="ecrGbPerRepository")
        for other in replicas:
            add(
                r,
                f"image storage, replica in {other}",
                use["ecrGbPerRepository"],
                "GB-month",
                prices["regions"].get(other, rates)["ecrGbMonth"],
                usage="ecrGbPerRepository",
            )
    for r in handles("aws:s3/bucket:Bucket"):
        add(r, "bucket storage", use["bucketGb"], "GB-month", rates["s3GbMonth"], usage="bucketGb")
        add(
            r,
            "bucket PUT/LIST requests",
            use["bucketPutThousands"],
            "thousand",
            rates["s3Put1k"],
            usage="bucketPutThousands",
        )
        add(
            r,
            "bucket GET requests",
            use["bucketGetThousands"],
            "thousand",
            rates["s3Get1k"],
            usage="bucketGetThousands",
        )
    for r in handles("aws:cloudfront/distribution:Distribution"):
        add(r, "CDN transfer out", use["cdnGb"], "GB", rates["cloudfrontGb"], zone=REGIONAL, usage="cdnGb")
        add(
            r,
            "CDN HTTPS requests",
            use["cdnRequestsMillions"] * 100,
            "10k requests",
            rates["cloudfrontHttps10k"],
            zone=REGIONAL,
            usage="cdnRequestsMillions",
        )
    balancers: dict[str, Resource] = {}
    for r in handles("kubernetes:networking.k8s.io/v1:Ingress"):
        annotations = _path(r.inputs, "metadata.annotations", {}) or {}
        key = (
            annotations.get("alb.ingress.kubernetes.io/group.name")
            or annotations.get("alb.ingress.kubernetes.io/load-balancer-name")
            or r.name
        )
        balancers.setdefault(str(key), r)
    for key, r in sorted(balancers.items()):
        add(r, f"load balancer {key}", hours, "h", rates["albHour"])
        add(
            r,
            f"load balancer {key} capacity units",
            use["albLcu"] * hours,
            "LCU-h",
            rates["albLcuHour"],
            usage="albLcu",
        )

    # Keys, secrets, monitoring, drills, functions
    for r in handles("aws:kms/key:Key"):
        # A rotated key bills a month for each of its first two rotations too: 3 from the third year.
        rotated = bool(r.inputs.get("enableKeyRotation"))
        add(
            r,
            "KMS key, rotated yearly" if rotated else "KMS key",
            3 if rotated else 1,
            "key-month",
            rates["kmsKeyMonth"],
        )
        add(
            r,
            "KMS requests",
            use["kmsRequestsMillionsPerKey"] * 100,
            "10k requests",
            rates["kms10k"],
            usage="kmsRequestsMillionsPerKey",
        )
    for r in handles("aws:secretsmanager/secret:Secret"):
        add(r, "secret", 1, "secret-month", rates["secretMonth"])
        add(
            r,
            "secret reads",
            use["secretsApiThousandsPerSecret"] / 10,
            "10k calls",
            rates["secrets10k"],
            usage="secretsApiThousandsPerSecret",
        )
    for r in handles("aws:cloudwatch/metricAlarm:MetricAlarm"):
        queries = [q for q in r.inputs.get("metricQueries") or [] if isinstance(q, Mapping)]
        # A query over Metrics Insights (SELECT ...); one whose expression is unknown at preview
        # (it names an ARN) is counted as one too, so both modes price the same.
        insights = [
            q
            for q in queries
            if not q.get("metric")
            and (
                "expression" in q and q.get("expression") is None or "SELECT" in str(q.get("expression") or "").upper()
            )
        ]
        metrics = sum(1 for q in queries if q.get("metric")) + len(insights) * use["metricsInsightsSeries"]
        periods = [float(r.inputs.get("period") or 60)] + [float(_path(q, "metric.period", 60) or 60) for q in queries]
        high = min(periods) < 60
        add(
            r,
            "alarm, high resolution" if high else ("alarm (Metrics Insights)" if insights else "alarm"),
            metrics or 1,
            "alarm metric-month",
            rates["alarmHighResMonth" if high else "alarmMonth"],
            zone=REGIONAL,
            usage="metricsInsightsSeries" if insights else "",
        )
    for r in handles("aws:cloudwatch/compositeAlarm:CompositeAlarm"):
        add(r, "composite alarm", 1, "alarm-month", rates["compositeAlarmMonth"], zone=REGIONAL)
    for r in handles("aws:cloudwatch/dashboard:Dashboard"):
        add(r, "dashboard", 1, "dashboard-month", rates["dashboardMonth"], zone=REGIONAL)
    flow_groups = {u for fl in stack.of_type("aws:ec2/flowLog:FlowLog") for u in fl.deps.get("logDestination", ())}
    for r in handles("aws:cloudwatch/logGroup:LogGroup"):
        ingest_key = "flowLogsGb" if r.urn in flow_groups else "logsGbPerGroup"
        days = float(r.inputs.get("retentionInDays") or 3653)
        if ingest_key == "logsGbPerGroup":
            add(r, "log ingestion", use[ingest_key], "GB", rates["logsIngestGb"], usage=ingest_key)
        stored = use[ingest_key] * days / 30 * use["logsCompressedShare"]
        add(r, "log storage (compressed)", stored, "GB-month", rates["logsStoreGbMonth"], usage=ingest_key)
    for r in stack.resources:
        if r.type == "scanner:monitoring:QueueMetricsPublisher":
            add(
                r,
                "custom metrics",
                use["customMetrics"],
                "metric-month",
                rates["customMetricMonth"],
                zone=REGIONAL,
                usage="customMetrics",
            )
    templates = handles("aws:fis/experimentTemplate:ExperimentTemplate")
    for r in templates:
        lengths = ("duration", "startInstancesAfterDuration", "durationBeforeInterruption")
        minutes = sum(
            _minutes(next((_param(a, k) for k in lengths if _param(a, k)), None)) for a in r.inputs.get("actions") or []
        )
        share = use["drillsPerYear"] / 12 / len(templates)
        add(
            r,
            "zone drill action-minutes",
            minutes * share,
            "action-minute",
            rates["fisActionMinute"],
            usage="drillsPerYear",
        )
    for r in handles("aws:lambda/function:Function"):
        runs = use["lambdaRunsPerMonth"]
        memory_gb = float(r.inputs.get("memorySize") or 128) / 1024
        arm = "arm64" in (r.inputs.get("architectures") or [])
        add(r, "function requests", runs / 1e6, "million", rates["lambdaRequestMillion"], usage="lambdaRunsPerMonth")
        add(
            r,
            "function compute",
            runs * use["lambdaSecondsPerRun"] * memory_gb,
            "GB-s",
            rates["lambdaArmGbSecond" if arm else "lambdaX86GbSecond"],
            usage="lambdaSecondsPerRun",
        )

    for r in handles("aws:eks/addon:Addon"):
        if r.inputs.get("addonName") == "amazon-cloudwatch-observability":
            add(
                r,
                "Container Insights (allowance)",
                use["containerInsightsUsd"],
                "USD",
                1.0,
                zone=REGIONAL,
                usage="containerInsightsUsd",
            )
    for r in stack.of_type("aws:ec2/vpc:Vpc"):
        add(
            r,
            "data between zones (both ways)",
            use["interAzGb"],
            "GB",
            2 * rates["interAzGb"],
            zone=REGIONAL,
            usage="interAzGb",
        )
    for cfg in handles("aws:ecr/replicationConfiguration:ReplicationConfiguration"):
        for other in replicas:
            add(
                cfg,
                f"image replication to {other}",
                use["ecrReplicationGbPerMonth"],
                "GB",
                rates["interRegionGb"],
                zone=REGIONAL,
                usage="ecrReplicationGbPerMonth",
            )
    for r in handles("kubernetes:core/v1:Service"):
        if _path(r.inputs, "spec.type") == "LoadBalancer":
            add(r, "network load balancer", hours, "h", rates["nlbHour"], zone=REGIONAL)
            add(
                r,
                "network load balancer capacity units",
                use["albLcu"] * hours,
                "NLCU-h",
                rates["nlbNlcuHour"],
                zone=REGIONAL,
                usage="albLcu",
            )
    provisioners = {
        str(_path(c.inputs, "metadata.name")): str(c.inputs.get("provisioner") or "")
        for c in stack.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    }
    for r in handles("kubernetes:core/v1:PersistentVolumeClaim"):
        if "ebs" in provisioners.get(str(_path(r.inputs, "spec.storageClassName")), ""):
            size = _memory_gib(_path(r.inputs, "spec.resources.requests.storage"))
            add(r, "volume claim (EBS gp3)", size, "GB-month", rates["ebsGp3GbMonth"], zone=REGIONAL)

    for r in stack.resources:
        if (
            r.type not in priced_types
            and free_reason(prices, r.type) is None
            and r.type != "scanner:monitoring:QueueMetricsPublisher"
        ):
            unpriced.append(f"{r.name}: {r.type} is neither priced nor free in the table")
    return Estimate(region, lines, use, sorted(set(unpriced)), scans)


def _param(action: Mapping[str, Any], key: str) -> Any:
    params = action.get("parameters") or []
    if isinstance(params, Mapping):
        return params.get(key)
    return next((p.get("value") for p in params if isinstance(p, Mapping) and p.get("key") == key), None)


def _pool(stack: _Stack, label: str) -> Resource | None:
    pools = [
        p for p in stack.of_type("kubernetes:karpenter.sh/v1:NodePool") if _path(p.inputs, "metadata.name") == label
    ]
    return pools[0] if pools else None


def _categories(pool: Resource | None) -> list[str]:
    for req in _path(pool.inputs if pool else {}, "spec.template.spec.requirements", []) or []:
        if req.get("key") == "karpenter.k8s.aws/instance-category" and req.get("operator") == "In":
            return [str(v) for v in req.get("values") or []]
    return ["m"]


def _services_floor(stack: _Stack, prices, region: str, use, hours: float, add) -> None:
    """The services pool at its floor: every service's minimum replicas, packed."""
    # KEDA's minReplicaCount defaults to 0.
    minimums = {
        str(_path(s.inputs, "spec.scaleTargetRef.name")): float(_path(s.inputs, "spec.minReplicaCount", 0) or 0)
        for s in stack.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    }
    cpu = memory = 0.0
    for d in stack.of_type("kubernetes:apps/v1:Deployment"):
        selector = _path(d.inputs, "spec.template.spec.nodeSelector", {}) or {}
        if selector.get(contract.POOL_LABEL, contract.SERVICES_POOL) != contract.SERVICES_POOL:
            continue  # a Deployment pinned to another pool is not the services pool's
        name = str(_path(d.inputs, "metadata.name", d.name))
        replicas = minimums.get(name, float(_path(d.inputs, "spec.replicas", 1) or 1))
        for c in _path(d.inputs, "spec.template.spec.containers", []) or []:
            cpu += replicas * _cpu(_path(c, "resources.requests.cpu"))
            memory += replicas * _memory_gib(_path(c, "resources.requests.memory"))
    pool = _pool(stack, contract.SERVICES_POOL)
    if not cpu or pool is None:
        return
    fits = [c for c in _categories(pool) if c in GIB_PER_VCPU and GIB_PER_VCPU[c] * cpu >= memory] or ["r"]
    category = min(fits, key=lambda c: prices["ec2VcpuHour"][region].get(c, math.inf))
    vcpus = cpu / max(use["servicesPacking"], 0.05)
    add(
        pool,
        f"services pool at its floor ({cpu:g} vCPU requested, {category} family)",
        vcpus * hours,
        "vCPU-h",
        prices["ec2VcpuHour"][region][category],
        zone=REGIONAL,
        usage="servicesPacking",
        baseline="ec2",
    )
    volume = _root_volume_gb(stack)
    if volume:
        zones = _pool_zones(pool) or 1
        nodes = max(zones, math.ceil(vcpus / max(use["servicesNodeVcpu"], 1)))
        add(
            pool,
            f"services nodes' root volumes ({nodes} x {volume:g} GB gp3)",
            nodes * volume,
            "GB-month",
            prices["regions"][region]["ebsGp3GbMonth"],
            zone=REGIONAL,
            usage="servicesNodeVcpu",
        )


def _root_volume_gb(stack: _Stack) -> float:
    """The size of the volumes Karpenter's node class gives each node."""
    for node_class in stack.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        total = sum(
            _memory_gib(_path(m, "ebs.volumeSize"))
            for m in _path(node_class.inputs, "spec.blockDeviceMappings", []) or []
        )
        if total:
            return total
    return 0.0


def _pool_zones(pool: Resource) -> int:
    for req in _path(pool.inputs, "spec.template.spec.requirements", []) or []:
        if req.get("key") == "topology.kubernetes.io/zone" and req.get("operator") == "In":
            return len(req.get("values") or [])
    return 0


def fluid_scan_capacity(resources: Iterable[Resource], usage: Mapping[str, Any] | None = None) -> ScanCapacity:
    """The scan pool's week without simulating it: the ScaledJobs' combined cap, DEFAULT_PEAK_LOAD
    of it busy at the weekday peak and following WEEKDAY_CURVE, at `scanUtilisation`."""
    return _fluid(_Stack(resources), usage_values(usage))


def _fluid(stack: _Stack, use: Mapping[str, float]) -> ScanCapacity:
    jobs = cpu = 0.0
    for scaled in stack.of_type("kubernetes:keda.sh/v1alpha1:ScaledJob"):
        cap = float(_path(scaled.inputs, "spec.maxReplicaCount", 100) or 0)
        each = sum(
            _cpu(_path(c, "resources.requests.cpu"))
            for c in _path(scaled.inputs, "spec.jobTargetRef.template.spec.containers", []) or []
        )
        jobs += cap
        cpu += cap * each
    # Without an on-demand fallback pool, every scan node is spot.
    spot_share = use["scanSpotShare"] if _pool(stack, contract.SCAN_FALLBACK_POOL) is not None else 1.0
    if not jobs:
        return ScanCapacity(0.0, spot_share, source="no ScaledJob")
    # The curve's area over a weekday: busy hours at the peak's level.
    weekday = sum(
        (v0 + v1) / 2 * (h1 - h0) for (h0, v0), (h1, v1) in zip(WEEKDAY_CURVE, WEEKDAY_CURVE[1:], strict=False)
    )
    busy_hours = DEFAULT_PEAK_LOAD * (5 * weekday + 2 * 24 * WEEKEND_LEVEL)
    vcpu_hours = busy_hours * cpu / max(use["scanUtilisation"], 0.05)
    return ScanCapacity(vcpu_hours, spot_share, source="the fluid approximation of the capacity model's week")


def _scan_pool(
    stack: _Stack, prices, region: str, use, hours: float, add, spot_discount: float, scans: ScanCapacity | None
) -> ScanCapacity | None:
    """The scan pool's lines; the capacity they were priced from (none without the pool)."""
    pool = _pool(stack, contract.SCAN_POOL)
    if pool is None:
        return None
    capacity = scans or _fluid(stack, use)
    rates = prices["ec2VcpuHour"][region]
    rate = rates.get(capacity.category, rates["c"])
    month = capacity.vcpu_hours_per_week * hours / HOURS_PER_WEEK
    add(
        pool,
        f"scan nodes on spot ({capacity.category} family)",
        month * capacity.spot_share,
        "vCPU-h",
        rate * (1 - spot_discount),
        zone=REGIONAL,
        usage="spotDiscount",
    )
    fallback = _pool(stack, contract.SCAN_FALLBACK_POOL) or pool
    add(
        fallback,
        f"scan nodes on demand ({capacity.category} family)",
        month * (1 - capacity.spot_share),
        "vCPU-h",
        rate,
        zone=REGIONAL,
    )
    volume = _root_volume_gb(stack)
    if volume:
        node_hours = capacity.node_hours_per_week or capacity.vcpu_hours_per_week / max(use["scanVcpuPerNode"], 1)
        add(
            pool,
            f"scan nodes' root volumes ({volume:g} GB gp3 each)",
            node_hours * hours / HOURS_PER_WEEK * volume / hours,
            "GB-month",
            prices["regions"][region]["ebsGp3GbMonth"],
            zone=REGIONAL,
            usage="" if capacity.node_hours_per_week else "scanVcpuPerNode",
        )
    return capacity


# ----- what commitments save -----------------------------------------------------------------

COMMITMENT = {
    "ec2": ("computeSavingsPlan", "one-year Compute Savings Plan"),
    "rds": ("rdsReserved", "one-year RDS reserved instances"),
    "elasticache": ("elasticacheReserved", "one-year ElastiCache reserved nodes"),
    "mq": ("", "no reservations for Amazon MQ: stays on demand"),
}


@dataclass(frozen=True)
class Commitment:
    item: str
    component: str
    resource: str
    on_demand: float
    committed: float
    how: str

    @property
    def saving(self) -> float:
        return self.on_demand - self.committed


def commitments(found: Estimate, prices: Mapping[str, Any] | None = None) -> list[Commitment]:
    """The always-on baseline, item by item, on demand and under the commitment that covers it."""
    prices = prices or load_prices()
    rows: dict[tuple[str, str, str, str], float] = {}
    for line in found.lines:
        if line.baseline:
            key = (line.baseline, line.component, line.resource, line.item)
            rows[key] = rows.get(key, 0.0) + line.monthly
    out = []
    for (baseline, component, resource, item), monthly in sorted(rows.items(), key=lambda kv: -kv[1]):
        rate_key, how = COMMITMENT[baseline]
        discount = float(prices["commitments"][rate_key]) if rate_key else 0.0
        out.append(Commitment(item, component, resource, monthly, monthly * (1 - discount), how))
    return out


# ----- comparing -----------------------------------------------------------------------------


def difference(before: Estimate, after: Estimate) -> list[tuple[str, str, str, float, float]]:
    """(component, zone, item, before, after) for every line whose monthly figure differs."""

    def keyed(found: Estimate) -> dict[tuple[str, str, str], float]:
        out: dict[tuple[str, str, str], float] = {}
        for line in found.lines:
            # Keyed without the item's parenthesis (its class, its size): a change of class is one
            # line that changed, not one gone and one new.
            key = (line.component, line.zone, f"{line.item.split(' (')[0]} [{line.resource}]")
            out[key] = out.get(key, 0.0) + line.monthly
        return out

    a, b = keyed(before), keyed(after)
    rows = [(c, z, i, a.get((c, z, i), 0.0), b.get((c, z, i), 0.0)) for c, z, i in sorted(set(a) | set(b))]
    return [row for row in rows if abs(row[4] - row[3]) >= 0.005]
