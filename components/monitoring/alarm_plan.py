"""Which alarms the stack keeps, and why, planned without Pulumi.

Every tier gets the metrics AWS's CloudWatch "recommended alarms" name for its services, with their
suggested thresholds as defaults (`Thresholds`, each a setting). Where a metric belongs to one zone
(the read replica pinned to the last zone, a cache node, a zonal NAT gateway, the queue-metrics
publisher of a zone) the alarm carries that zone; the others watch a resource that moves between
zones on its own (the Multi-AZ primary, the broker's cluster, EFS, the cluster as a whole).

Composite alarms sit on top, because the zone drill and zonal autoshift take a handful of alarm
ARNs, not a hundred (FIS: at most five stop conditions per experiment; ARC practice runs: one
outcome alarm and a few blocking ones):

- `tier-<tier>`: any alarm of that tier;
- `drill-stop`: the page-level alarms of no zone (storage, transaction IDs, the broker's limits,
  requests waiting without consumers): the service failing as a whole, which stops a zone drill
  and holds back autoshift's practice runs;
- `zone-<zone>`: any of that zone's health signals (`Alarm.zone_health`): its NAT gateway, the load
  balancer's answers and targets there, its publisher not running, the replicas there falling
  behind. Not every alarm that carries the zone: a capacity ticket (a cache node's CPU) is no
  zone's impairment, and a fault every zone shares (a broker login the publishers all use) must
  not page for three zones, stop a drill or block a zonal shift.

Dimension values that only the deployed resources know (a NAT gateway's id) are written as
`{ref}` placeholders (`{nat:us-east-1a}`), which the component that declares the alarms fills in.

Amazon MQ publishes no per-queue metrics for RabbitMQ 4 brokers: the queue alarms read the custom
metrics the queue-metrics publisher puts under `QUEUE_NAMESPACE`. The cluster's alarms read
Container Insights, which the amazon-cloudwatch-observability add-on feeds: it is declared with
the alarms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["page", "ticket"]
Comparison = Literal[
    "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
]
Missing = Literal["missing", "notBreaching", "breaching", "ignore"]

#: Page-level alarms a zone drill trips by design: they never stop one.
DRILL_EXPECTED = ("cluster-failed-nodes",)
#: Where the queue-metrics publisher puts its per-queue metrics.
QUEUE_NAMESPACE = "Scanner/RabbitMQ"
#: Gibibytes of memory per vCPU of each RDS instance family, and vCPUs per size: RDS for
#: PostgreSQL sets max_connections to LEAST(DBInstanceClassMemory / 9531392, 5000).
_GIB_PER_VCPU = {"r": 8, "m": 4, "x2": 16, "x2ie": 32, "c": 2}
_VCPUS = {
    "medium": 2,
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "12xlarge": 48,
    "16xlarge": 64,
}
_T_MEMORY_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
GIB = 1024**3


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the plan, defaulting to AWS's recommendation where it gives one."""

    database_cpu_percent: float = 90
    database_freeable_memory_fraction: float = 0.10
    """Of the instance class's memory."""
    database_free_storage_fraction: float = 0.10
    """Of the allocated storage."""
    database_connections_fraction: float = 0.80
    """Of max_connections, as RDS derives it from the class's memory."""
    database_replica_lag_seconds: float = 60
    database_write_latency_seconds: float = 0.02
    database_transaction_ids: float = 1_000_000_000
    """MaximumUsedTransactionIDs: wraparound stops writes at about 2.1 billion."""
    proxy_auth_failures: float = 10
    """Client connections refused at authentication, per 5 minutes."""
    broker_memory_percent: float = 80
    """Of the node's memory high watermark (publishers are blocked at 100)."""
    broker_cpu_percent: float = 85
    broker_disk_free_ratio: float = 2.0
    """Free disk over the disk-free limit (publishers are blocked at 1)."""
    queue_ready_messages: float = 10_000
    queue_wait_seconds: float = 1800
    """A scan request waits no longer than the longest scan takes (estimated from the queue's
    depth and delivery rate: quorum queues report no head-message age)."""
    cache_engine_cpu_percent: float = 90
    cache_memory_percent: float = 80
    cache_replication_lag_seconds: float = 30
    cache_connections: float = 10_000
    efs_io_limit_percent: float = 90
    nat_dropped_packets: float = 100
    """Per 5 minutes."""
    node_cpu_percent: float = 90
    node_memory_percent: float = 90
    node_filesystem_percent: float = 85
    pod_restarts: float = 5
    """Container restarts in a watched namespace per 5 minutes."""
    pending_pods: float = 0
    """The services' pods pending, every minute for 15 minutes (Container Insights' enhanced
    observability)."""
    cdn_error_percent: float = 5
    alb_errors_per_minute: float = 10
    """Load balancer 5xx responses of a zone per minute (its own: 502, 503, 504 when targets fail)."""
    alb_response_seconds: float = 2
    """p99 target response time of a zone."""


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    """Name and value; a value `{ref}` is filled in by the component that declares the alarm."""
    statistic: str = "Average"


@dataclass(frozen=True)
class Alarm:
    name: str
    """Unique within the stack; the component prefixes it with the stack's name prefix."""
    tier: str
    zone: str | None
    threshold: float
    comparison: Comparison
    severity: Severity
    reason: str
    metric: Metric | None = None
    expression: str | None = None
    """Metric math over `inputs` (ids m1, m2, ...), when one metric does not say it."""
    inputs: tuple[tuple[str, Metric], ...] = ()
    period: int = 60
    evaluation_periods: int = 5
    datapoints: int = 5
    missing: Missing = "missing"
    zone_health: bool = False
    """Joins its zone's `zone-<zone>` composite: a sign that the zone itself is impaired."""


@dataclass(frozen=True)
class Composite:
    name: str
    kind: Literal["tier", "zone", "drill"]
    key: str
    children: tuple[str, ...]


@dataclass(frozen=True)
class AlarmPlan:
    alarms: tuple[Alarm, ...]
    composites: tuple[Composite, ...]

    def alarm(self, name: str) -> Alarm:
        return next(a for a in self.alarms if a.name == name)

    def of_tier(self, tier: str) -> list[Alarm]:
        return [a for a in self.alarms if a.tier == tier]

    def of_zone(self, zone: str) -> list[Alarm]:
        return [a for a in self.alarms if a.zone == zone]


@dataclass(frozen=True)
class DatabaseInstance:
    identifier: str
    role: Literal["primary", "replica"]
    zone: str | None
    """The zone of a pinned instance (the replica); None for the Multi-AZ primary, which moves."""
    dimension: str = "DBInstanceIdentifier"
    """`DBClusterIdentifier` for a Multi-AZ DB cluster, whose metrics follow its writer."""


@dataclass(frozen=True)
class Monitored:
    """What the stack has that the plan watches, by the names the program gives it."""

    zones: tuple[str, ...]
    database_instances: tuple[DatabaseInstance, ...]
    database_instance_class: str
    database_allocated_storage_gib: int
    proxy_name: str
    broker_name: str
    scan_queues: Mapping[str, str]
    """Engine -> its scan queue."""
    dead_letter_queues: Mapping[str, str]
    vhost: str
    cache_nodes: tuple[tuple[str, str], ...]
    """(cache cluster id, zone) of each node of the replication group."""
    nat_zones: tuple[str, ...]
    """The NAT gateways: the zone of each zonal one (every zone with per-az, the first with
    single), or `regional` for one regional NAT gateway (its alarms carry no zone)."""
    cluster_name: str
    publisher_functions: Mapping[str, str] = field(default_factory=dict)
    """Zone -> the queue-metrics publisher's function name."""
    cdn_distribution: bool = True
    broker_nodes: int = 3
    """Nodes of the broker's cluster (Amazon MQ's broker-level CPU is their sum)."""
    load_balancer: bool = False
    """The API load balancer exists (`{load-balancer}`: its ARN suffix, `app/<name>/<id>`)."""


def database_memory_gib(instance_class: str) -> float:
    """Memory of an RDS instance class (db.r7g.large: 16 GiB), from its family and size."""
    match = re.match(r"^db\.([a-z0-9-]+)\.(\w+)$", instance_class)
    if not match:
        raise ValueError(f"{instance_class!r} is not an RDS instance class")
    family, size = match.group(1), match.group(2)
    if family.startswith("t"):
        if size not in _T_MEMORY_GIB:
            raise ValueError(f"no memory size known for {instance_class}")
        return _T_MEMORY_GIB[size]
    kind = "x2ie" if family.startswith(("x2iedn", "x2iezn")) else "x2" if family.startswith("x2") else family[0]
    if kind not in _GIB_PER_VCPU or size not in _VCPUS:
        raise ValueError(f"no memory size known for {instance_class}")
    return _GIB_PER_VCPU[kind] * _VCPUS[size]


def max_connections(instance_class: str) -> int:
    """RDS for PostgreSQL's default max_connections for the class."""
    return min(int(database_memory_gib(instance_class) * GIB // 9531392), 5000)


def plan(stack: Monitored, limits: Thresholds | None = None) -> AlarmPlan:
    t = limits or Thresholds()
    alarms = [
        *_database(stack, t),
        *_broker(stack, t),
        *_queues(stack, t),
        *_cache(stack, t),
        *_storage(stack, t),
        *_network(stack, t),
        *_cluster(stack, t),
        *_load_balancer(stack, t),
        *_edge(stack, t),
    ]
    names = [a.name for a in alarms]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"alarm name(s) {', '.join(clash)} planned twice")
    composites = [
        Composite(f"tier-{tier}", "tier", tier, tuple(a.name for a in alarms if a.tier == tier))
        for tier in dict.fromkeys(a.tier for a in alarms)
    ]
    composites += [
        Composite(f"zone-{zone}", "zone", zone, tuple(a.name for a in alarms if a.zone == zone and a.zone_health))
        for zone in stack.zones
    ]
    # What stops a zone drill: the service failing as a whole, not in one zone. Page-level alarms
    # of no zone, which a single zone's loss does not trip (a NotReady node is what a drill makes).
    composites.append(
        Composite(
            "drill-stop",
            "drill",
            "stop",
            tuple(a.name for a in alarms if a.severity == "page" and a.zone is None and a.name not in DRILL_EXPECTED),
        )
    )
    empty = [c.name for c in composites if not c.children]
    if empty:
        raise ValueError(f"composite alarm(s) {', '.join(empty)} would have no children")
    return AlarmPlan(tuple(alarms), tuple(composites))


def _rds(db: DatabaseInstance, name: str, statistic: str = "Average") -> Metric:
    return Metric("AWS/RDS", name, ((db.dimension, db.identifier),), statistic)


def _database(stack: Monitored, t: Thresholds) -> list[Alarm]:
    memory = database_memory_gib(stack.database_instance_class) * GIB
    connections = max_connections(stack.database_instance_class)
    out = []
    for db in stack.database_instances:
        role, zone = db.role, db.zone
        out += [
            Alarm(
                f"database-{role}-cpu",
                "data",
                zone,
                t.database_cpu_percent,
                "GreaterThanThreshold",
                "ticket",
                "sustained CPU saturation slows every query",
                _rds(db, "CPUUtilization"),
            ),
            Alarm(
                f"database-{role}-freeable-memory",
                "data",
                zone,
                memory * t.database_freeable_memory_fraction,
                "LessThanThreshold",
                "ticket",
                "little memory left for the cache and connections: swapping follows",
                _rds(db, "FreeableMemory"),
            ),
            Alarm(
                f"database-{role}-free-storage",
                "data",
                zone,
                stack.database_allocated_storage_gib * GIB * t.database_free_storage_fraction,
                "LessThanThreshold",
                "page",
                "a full volume stops writes (autoscaling storage has a ceiling)",
                _rds(db, "FreeStorageSpace", "Minimum"),
            ),
            Alarm(
                f"database-{role}-connections",
                "data",
                zone,
                connections * t.database_connections_fraction,
                "GreaterThanThreshold",
                "ticket",
                f"close to max_connections ({connections} for {stack.database_instance_class})",
                _rds(db, "DatabaseConnections", "Maximum"),
            ),
            Alarm(
                f"database-{role}-transaction-ids",
                "data",
                zone,
                t.database_transaction_ids,
                "GreaterThanThreshold",
                "page",
                "transaction ID wraparound stops writes: vacuum is behind",
                _rds(db, "MaximumUsedTransactionIDs", "Maximum"),
                period=300,
                evaluation_periods=1,
                datapoints=1,
            ),
        ]
        if role == "primary":
            out.append(
                Alarm(
                    "database-primary-write-latency",
                    "data",
                    zone,
                    t.database_write_latency_seconds,
                    "GreaterThanThreshold",
                    "ticket",
                    "slow writes: storage or locks",
                    _rds(db, "WriteLatency"),
                )
            )
        else:
            out.append(
                Alarm(
                    "database-replica-lag",
                    "data",
                    zone,
                    t.database_replica_lag_seconds,
                    "GreaterThanThreshold",
                    "ticket",
                    "the replica's readers see stale results",
                    _rds(db, "ReplicaLag", "Maximum"),
                    zone_health=True,
                )
            )
    out.append(
        Alarm(
            "database-proxy-auth-failures",
            "data",
            None,
            t.proxy_auth_failures,
            "GreaterThanThreshold",
            "ticket",
            "clients refused at the proxy: a rotated password not yet picked up, or a missing role",
            Metric("AWS/RDS", "ClientConnectionsSetupFailedAuth", (("ProxyName", stack.proxy_name),), "Sum"),
            period=300,
            evaluation_periods=1,
            datapoints=1,
            missing="notBreaching",
        )
    )
    return out


def _mq(stack: Monitored, name: str, statistic: str = "Maximum") -> Metric:
    return Metric("AWS/AmazonMQ", name, (("Broker", stack.broker_name),), statistic)


def _broker(stack: Monitored, t: Thresholds) -> list[Alarm]:
    """Amazon MQ's broker-level metrics of a cluster are the sums over its nodes: CPU is read as
    their average, and memory and disk from the publisher's per-node figures (the fullest node's
    memory, the lowest node's free disk), since one node at its limit blocks every publisher."""
    return [
        Alarm(
            "broker-memory",
            "data",
            None,
            t.broker_memory_percent,
            "GreaterThanThreshold",
            "page",
            "at its memory watermark a node blocks every publisher of the cluster",
            Metric(QUEUE_NAMESPACE, "NodeMemoryUsedPercentMax", (("VHost", stack.vhost),), "Maximum"),
        ),
        Alarm(
            "broker-disk",
            "data",
            None,
            t.broker_disk_free_ratio,
            "LessThanThreshold",
            "page",
            "at its disk-free limit a node blocks every publisher of the cluster",
            Metric(QUEUE_NAMESPACE, "NodeDiskFreeRatioMin", (("VHost", stack.vhost),), "Minimum"),
        ),
        Alarm(
            "broker-cpu",
            "data",
            None,
            t.broker_cpu_percent,
            "GreaterThanThreshold",
            "ticket",
            "a saturated broker delays deliveries and confirms (the nodes' average)",
            expression=f"m1 / {stack.broker_nodes}",
            inputs=(("m1", _mq(stack, "SystemCpuUtilization", "Average")),),
        ),
    ]


def _queue(stack: Monitored, queue: str, name: str, statistic: str = "Maximum") -> Metric:
    return Metric(QUEUE_NAMESPACE, name, (("VHost", stack.vhost), ("Queue", queue)), statistic)


def _queues(stack: Monitored, t: Thresholds) -> list[Alarm]:
    out = []
    for engine, queue in stack.scan_queues.items():
        out += [
            Alarm(
                f"queue-{engine}-backlog",
                "scans",
                None,
                t.queue_ready_messages,
                "GreaterThanThreshold",
                "ticket",
                f"{queue} grows faster than its Jobs drain it (scan pool limits, spot capacity)",
                _queue(stack, queue, "ReadyMessages"),
                evaluation_periods=15,
                datapoints=15,
            ),
            Alarm(
                f"queue-{engine}-wait",
                "scans",
                None,
                t.queue_wait_seconds,
                "GreaterThanOrEqualToThreshold",
                "page",
                f"requests in {queue} would wait longer than the longest scan takes at the rate it delivers now",
                _queue(stack, queue, "EstimatedWaitSeconds"),
                missing="notBreaching",
            ),
            Alarm(
                f"queue-{engine}-no-consumer",
                "scans",
                None,
                0,
                "GreaterThanThreshold",
                "page",
                f"requests wait in {queue} and no Job consumes them (KEDA, its broker user, the scan pool)",
                expression="IF(m1 > 0 AND m2 < 1, 1, 0)",
                inputs=(("m1", _queue(stack, queue, "ReadyMessages")), ("m2", _queue(stack, queue, "Consumers"))),
                evaluation_periods=10,
                datapoints=10,
            ),
        ]
    for engine, queue in stack.dead_letter_queues.items():
        out.append(
            Alarm(
                f"queue-{engine}-dead-letters",
                "scans",
                None,
                0,
                "GreaterThanThreshold",
                "ticket",
                f"requests past the delivery limit wait in {queue} for a person",
                _queue(stack, queue, "ReadyMessages"),
                evaluation_periods=1,
                datapoints=1,
                missing="notBreaching",
            )
        )
    for zone, function in stack.publisher_functions.items():
        out += [
            Alarm(
                f"queue-metrics-errors-{zone}",
                "scans",
                zone,
                0,
                "GreaterThanThreshold",
                "ticket",
                "the zone's queue-metrics publisher cannot read the broker or its secret: the queue alarms go "
                "blind (it reports these in a metric of its own and ends cleanly)",
                Metric(QUEUE_NAMESPACE, "PublisherErrors", (("Zone", zone),), "Maximum"),
                period=300,
                evaluation_periods=1,
                datapoints=1,
                missing="notBreaching",
            ),
            Alarm(
                f"queue-metrics-silent-{zone}",
                "scans",
                zone,
                1,
                "LessThanThreshold",
                "ticket",
                "the publisher of this zone has not run for 10 minutes",
                Metric("AWS/Lambda", "Invocations", (("FunctionName", function),), "Sum"),
                period=300,
                evaluation_periods=2,
                datapoints=2,
                missing="breaching",
                zone_health=True,
            ),
            Alarm(
                f"queue-metrics-failures-{zone}",
                "scans",
                zone,
                0,
                "GreaterThanThreshold",
                "ticket",
                "the zone's publisher times out or crashes: nothing it reaches answers in time from this zone "
                "(a run that only fails to read the broker ends cleanly and reports PublisherErrors)",
                Metric("AWS/Lambda", "Errors", (("FunctionName", function),), "Sum"),
                period=300,
                evaluation_periods=2,
                datapoints=2,
                missing="notBreaching",
                zone_health=True,
            ),
        ]
    return out


def _cache(stack: Monitored, t: Thresholds) -> list[Alarm]:
    out = []
    for node, zone in stack.cache_nodes:
        metric = lambda name, stat="Average", node=node: Metric(  # noqa: E731
            "AWS/ElastiCache", name, (("CacheClusterId", node),), stat
        )
        out += [
            Alarm(
                f"cache-cpu-{zone}",
                "data",
                zone,
                t.cache_engine_cpu_percent,
                "GreaterThanThreshold",
                "ticket",
                "Redis runs on one thread: its saturation is every client's latency",
                metric("EngineCPUUtilization"),
            ),
            Alarm(
                f"cache-memory-{zone}",
                "data",
                zone,
                t.cache_memory_percent,
                "GreaterThanThreshold",
                "ticket",
                "evictions follow, then refused writes",
                metric("DatabaseMemoryUsagePercentage"),
            ),
            Alarm(
                f"cache-connections-{zone}",
                "data",
                zone,
                t.cache_connections,
                "GreaterThanThreshold",
                "ticket",
                "a client leaking connections",
                metric("CurrConnections", "Maximum"),
            ),
            Alarm(
                f"cache-replication-lag-{zone}",
                "data",
                zone,
                t.cache_replication_lag_seconds,
                "GreaterThanThreshold",
                "ticket",
                "a replica that takes over would lose recent writes",
                metric("ReplicationLag", "Maximum"),
                missing="notBreaching",
                zone_health=True,
            ),
        ]
    return out


def _storage(stack: Monitored, t: Thresholds) -> list[Alarm]:
    return [
        Alarm(
            "repo-cache-io-limit",
            "scans",
            None,
            t.efs_io_limit_percent,
            "GreaterThanThreshold",
            "ticket",
            "the repository cache is at its I/O limit: every scan's fetch waits",
            Metric("AWS/EFS", "PercentIOLimit", (("FileSystemId", "{file-system}"),), "Maximum"),
            missing="notBreaching",
        ),
    ]


def _network(stack: Monitored, t: Thresholds) -> list[Alarm]:
    out = []
    for key in stack.nat_zones:
        metric = lambda name, key=key: Metric(  # noqa: E731
            "AWS/NATGateway", name, (("NatGatewayId", f"{{nat:{key}}}"),), "Sum"
        )
        zone = key if key in stack.zones else None
        out += [
            Alarm(
                f"nat-port-allocation-{key}",
                "network",
                zone,
                0,
                "GreaterThanThreshold",
                "page",
                "the zone's NAT gateway runs out of source ports: new outbound connections fail",
                metric("ErrorPortAllocation"),
                period=300,
                evaluation_periods=1,
                datapoints=1,
                missing="notBreaching",
                zone_health=True,
            ),
            Alarm(
                f"nat-dropped-packets-{key}",
                "network",
                zone,
                t.nat_dropped_packets,
                "GreaterThanThreshold",
                "ticket",
                "the zone's NAT gateway drops packets",
                metric("PacketsDropCount"),
                period=300,
                evaluation_periods=3,
                datapoints=3,
                missing="notBreaching",
                zone_health=True,
            ),
        ]
    return out


#: Namespaces whose pods' restarts alarm: the services, and the controllers scans depend on.
CONTROLLERS = (
    ("service", "scanner-services", "a crash loop or OOM kills of an API service"),
    ("karpenter", "karpenter", "Karpenter down: no node is launched or consolidated"),
    ("keda", "keda", "KEDA down: no scan Job is started"),
)


def _insights(stack: Monitored, name: str, extra: tuple[tuple[str, str], ...] = ()) -> Metric:
    return Metric("ContainerInsights", name, (("ClusterName", stack.cluster_name), *extra), "Maximum")


def _cluster(stack: Monitored, t: Thresholds) -> list[Alarm]:
    return [
        Alarm(
            "cluster-failed-nodes",
            "cluster",
            None,
            0,
            "GreaterThanThreshold",
            "page",
            "nodes that are not ready take their pods with them",
            _insights(stack, "cluster_failed_node_count"),
        ),
        Alarm(
            "cluster-node-cpu",
            "cluster",
            None,
            t.node_cpu_percent,
            "GreaterThanThreshold",
            "ticket",
            "nodes at their CPU limit",
            _insights(stack, "node_cpu_utilization"),
            evaluation_periods=15,
            datapoints=15,
        ),
        Alarm(
            "cluster-node-memory",
            "cluster",
            None,
            t.node_memory_percent,
            "GreaterThanThreshold",
            "ticket",
            "nodes close to evicting pods for memory",
            _insights(stack, "node_memory_utilization"),
        ),
        Alarm(
            "cluster-node-filesystem",
            "cluster",
            None,
            t.node_filesystem_percent,
            "GreaterThanThreshold",
            "ticket",
            "nodes close to evicting pods for disk (image layers, scan work directories)",
            _insights(stack, "node_filesystem_utilization"),
        ),
        Alarm(
            "cluster-service-pods-pending",
            "cluster",
            None,
            t.pending_pods,
            "GreaterThanThreshold",
            "ticket",
            "the services' pods wait for a node for 15 minutes: the services pool at its limit, or a zone "
            "out (scan Jobs wait for Karpenter's nodes as a matter of course: not counted)",
            expression=(
                "SELECT SUM(pod_status_pending) FROM SCHEMA(ContainerInsights, ClusterName, Namespace, PodName) "
                f"WHERE ClusterName = '{stack.cluster_name}' AND Namespace = 'scanner-services'"
            ),
            evaluation_periods=15,
            datapoints=15,
            missing="notBreaching",
        ),
        *(
            Alarm(
                f"cluster-{label}-restarts",
                "cluster",
                None,
                t.pod_restarts,
                "GreaterThanThreshold",
                "ticket",
                f"containers of {namespace} restart: {what}",
                # The agent reports each pod's restarts since its last collection; Container
                # Insights has no namespace-level set: the namespace's sum, by a Metrics Insights query.
                expression=(
                    "SELECT SUM(pod_number_of_container_restarts) FROM SCHEMA(ContainerInsights, "
                    f"ClusterName, Namespace, PodName) WHERE ClusterName = '{stack.cluster_name}' "
                    f"AND Namespace = '{namespace}'"
                ),
                period=300,
                evaluation_periods=1,
                datapoints=1,
                missing="notBreaching",
            )
            for label, namespace, what in CONTROLLERS
        ),
    ]


def _load_balancer(stack: Monitored, t: Thresholds) -> list[Alarm]:
    """The API load balancer, zone by zone: what a zone's loss shows first to the services' users."""
    if not stack.load_balancer:
        return []
    out = []
    for zone in stack.zones:
        at = (("LoadBalancer", "{load-balancer}"), ("AvailabilityZone", zone))
        out += [
            Alarm(
                f"api-5xx-{zone}",
                "services",
                zone,
                t.alb_errors_per_minute,
                "GreaterThanThreshold",
                "ticket",
                "the load balancer answers 5xx in this zone: its targets there fail or are gone",
                Metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", at, "Sum"),
                missing="notBreaching",
                zone_health=True,
            ),
            Alarm(
                f"api-response-time-{zone}",
                "services",
                zone,
                t.alb_response_seconds,
                "GreaterThanThreshold",
                "ticket",
                "the services answer slowly in this zone (p99)",
                Metric("AWS/ApplicationELB", "TargetResponseTime", at, "p99"),
                missing="notBreaching",
            ),
            Alarm(
                f"api-unhealthy-targets-{zone}",
                "services",
                zone,
                0,
                "GreaterThanThreshold",
                "ticket",
                "service pods in this zone fail their health checks",
                # Per target group (one per service, named by the controller): every group of the
                # load balancer in this zone, by a Metrics Insights query.
                expression=(
                    'SELECT MAX(UnHealthyHostCount) FROM SCHEMA("AWS/ApplicationELB", AvailabilityZone, '
                    "LoadBalancer, TargetGroup) WHERE LoadBalancer = '{load-balancer}' "
                    f"AND AvailabilityZone = '{zone}'"
                ),
                missing="notBreaching",
                zone_health=True,
            ),
        ]
    return out


def _edge(stack: Monitored, t: Thresholds) -> list[Alarm]:
    if not stack.cdn_distribution:
        return []
    return [
        Alarm(
            "dashboard-5xx",
            "edge",
            None,
            t.cdn_error_percent,
            "GreaterThanThreshold",
            "ticket",
            "the dashboard fails for its users (CloudFront's metrics are in us-east-1)",
            Metric("AWS/CloudFront", "5xxErrorRate", (("DistributionId", "{distribution}"), ("Region", "Global"))),
            period=300,
            evaluation_periods=2,
            datapoints=2,
            missing="notBreaching",
        ),
    ]
