"""The alarm plan (components/monitoring/alarm_plan.py), pure: one alarm per (tier, metric) and per
(zone, metric) where the metric has a zone, composites whose children exist, thresholds from
settings, and the derived limits (max_connections from the instance class)."""

import dataclasses
import re
from collections import Counter

import pytest

from components.monitoring import alarm_plan
from components.monitoring.alarm_plan import DatabaseInstance, Monitored, Thresholds

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
PROD = Monitored(
    zones=ZONES,
    database_instances=(
        DatabaseInstance("scanner-prod-postgres", "primary", None),
        DatabaseInstance("scanner-prod-postgres-replica", "replica", "us-east-1c"),
    ),
    database_instance_class="db.r7g.large",
    database_allocated_storage_gib=100,
    proxy_name="scanner-prod-postgres",
    broker_name="scanner-prod-rabbitmq",
    scan_queues={"sast": "scans.sast", "secrets": "scans.secrets"},
    dead_letter_queues={"sast": "scans.sast.dead", "secrets": "scans.secrets.dead"},
    vhost="scanner",
    cache_nodes=tuple((f"scanner-prod-redis-00{i + 1}", z) for i, z in enumerate(ZONES)),
    nat_zones=ZONES,
    cluster_name="scanner-prod",
    publisher_functions={z: f"scanner-prod-queue-metrics-{z}" for z in ZONES},
)


def metric_of(alarm):
    """The metric's name; for metric math, its inputs' names; for a Metrics Insights query, the
    metric it selects."""
    if alarm.metric:
        return alarm.metric.name
    if alarm.inputs:
        return tuple(m.name for _, m in alarm.inputs)
    found = re.search(r"SELECT \w+\((\w+)\)", alarm.expression or "")
    assert found, alarm.name
    return found.group(1)


def subject(alarm):
    """What the alarm watches: its metric's dimensions, or its inputs'."""
    metrics = [alarm.metric] if alarm.metric else [m for _, m in alarm.inputs]
    return tuple(sorted({d for m in metrics for d in m.dimensions}))


def test_one_alarm_per_resource_and_metric():
    plan = alarm_plan.plan(PROD)
    keys = Counter((subject(a), metric_of(a), a.expression) for a in plan.alarms)
    assert [k for k, n in keys.items() if n > 1] == []
    assert len({a.name for a in plan.alarms}) == len(plan.alarms)


@pytest.mark.parametrize(
    "tier, metrics",
    [
        (
            "data",
            {
                "CPUUtilization", "FreeableMemory", "FreeStorageSpace", "DatabaseConnections",
                "MaximumUsedTransactionIDs", "WriteLatency", "ReplicaLag", "ClientConnectionsSetupFailedAuth",
                "NodeMemoryUsedPercentMax", "NodeDiskFreeRatioMin", ("SystemCpuUtilization",), "EngineCPUUtilization", "DatabaseMemoryUsagePercentage", "CurrConnections",
                "ReplicationLag",
            },
        ),
        ("scans", {"ReadyMessages", "EstimatedWaitSeconds", ("ReadyMessages", "Consumers"), "PercentIOLimit",
                   "PublisherErrors", "Invocations", "Errors"}),
        ("network", {"ErrorPortAllocation", "PacketsDropCount"}),
        ("cluster", {"cluster_failed_node_count", "node_cpu_utilization", "node_memory_utilization",
                     "node_filesystem_utilization", "pod_status_pending", "pod_number_of_container_restarts"}),
        ("edge", {"5xxErrorRate"}),
    ],
)  # fmt: skip
def test_each_tier_watches_the_recommended_metrics(tier, metrics):
    assert {metric_of(a) for a in alarm_plan.plan(PROD).of_tier(tier)} == metrics


def test_zonal_metrics_have_an_alarm_in_every_zone_and_the_others_none():
    plan = alarm_plan.plan(PROD)
    for zone in ZONES:
        names = {a.name.removesuffix(f"-{zone}") for a in plan.of_zone(zone)}
        assert {"cache-cpu", "cache-memory", "cache-connections", "cache-replication-lag"} <= names, zone
        assert {"nat-port-allocation", "nat-dropped-packets", "queue-metrics-errors", "queue-metrics-silent"} <= names
    # The replica is pinned to the last zone; the Multi-AZ primary and the broker move, so carry none.
    assert {a.name for a in plan.of_zone("us-east-1c")} >= {"database-replica-lag", "database-replica-cpu"}
    assert all(a.zone is None for a in plan.alarms if a.name.startswith(("database-primary", "broker-")))
    per_zone = Counter(a.name.rsplit("-us-east-1", 1)[0] for a in plan.alarms if a.zone and "-us-east-1" in a.name)
    assert set(per_zone.values()) == {3}


def test_every_composite_s_children_exist_and_each_zone_and_tier_has_one():
    plan = alarm_plan.plan(PROD)
    names = {a.name for a in plan.alarms}
    for composite in plan.composites:
        assert composite.children and set(composite.children) <= names, composite.name
    zones = {c.key: c for c in plan.composites if c.kind == "zone"}
    assert set(zones) == set(ZONES)
    # A zone's health signals only: not its capacity tickets, not the publisher's broker errors,
    # which every zone's publisher shares.
    assert set(zones["us-east-1a"].children) == {
        f"{kind}-us-east-1a"
        for kind in ("cache-replication-lag", "nat-port-allocation", "nat-dropped-packets", "queue-metrics-silent",
                     "queue-metrics-failures")
    }  # fmt: skip
    assert "database-replica-lag" in zones["us-east-1c"].children
    assert "database-replica-cpu" not in zones["us-east-1c"].children
    tiers = {c.key for c in plan.composites if c.kind == "tier"}
    assert tiers == {"data", "scans", "network", "cluster", "edge"}
    # Few enough ARNs for a drill: one per zone and per tier, and what stops a drill.
    assert len(plan.composites) == len(ZONES) + len(tiers) + 1
    stop = next(c for c in plan.composites if c.kind == "drill")
    assert stop.children
    assert all(plan.alarm(c).severity == "page" and plan.alarm(c).zone is None for c in stop.children)
    assert "cluster-failed-nodes" not in stop.children and "database-primary-free-storage" in stop.children


def test_the_api_load_balancer_is_watched_in_every_zone_once_it_exists():
    assert alarm_plan.plan(PROD).of_tier("services") == []
    plan = alarm_plan.plan(dataclasses.replace(PROD, load_balancer=True))
    alarms = plan.of_tier("services")
    assert {metric_of(a) for a in alarms} == {"HTTPCode_ELB_5XX_Count", "TargetResponseTime", "UnHealthyHostCount"}
    for zone in ZONES:
        mine = [a for a in alarms if a.zone == zone]
        assert len(mine) == 3
        assert all(
            ("AvailabilityZone", zone) in a.metric.dimensions
            if a.metric
            else f"AvailabilityZone = '{zone}'" in (a.expression or "")
            for a in mine
        )
    assert plan.alarm("api-response-time-us-east-1a").metric.statistic == "p99"  # type: ignore[union-attr]
    assert {c.name for c in plan.composites} >= {"tier-services"}


def test_pod_restarts_are_watched_per_namespace_of_the_services_and_the_scan_controllers():
    restarts = [a for a in alarm_plan.plan(PROD).of_tier("cluster") if a.name.endswith("-restarts")]
    expressions = [a.expression or "" for a in restarts]
    namespaces = {m.group(1) for e in expressions if (m := re.search(r"Namespace = '([\w-]+)'", e))}
    assert namespaces == {"scanner-services", "karpenter", "keda"}
    # A Metrics Insights query of this cluster only, with no metric math inputs.
    assert all("ClusterName = 'scanner-prod'" in e for e in expressions) and not any(a.inputs for a in restarts)


def test_a_regional_nat_gateway_has_its_alarms_without_a_zone():
    plan = alarm_plan.plan(dataclasses.replace(PROD, nat_zones=("regional",)))
    nat = [a for a in plan.of_tier("network")]
    assert {a.name for a in nat} == {"nat-port-allocation-regional", "nat-dropped-packets-regional"}
    assert all(
        a.zone is None and a.metric and a.metric.dimensions == (("NatGatewayId", "{nat:regional}"),) for a in nat
    )


def test_a_regional_nat_and_no_publishers_leave_a_zone_without_children_refused():
    stack = dataclasses.replace(PROD, nat_zones=(), publisher_functions={}, cache_nodes=PROD.cache_nodes[:2])
    with pytest.raises(ValueError, match="zone-us-east-1c would have no children"):
        alarm_plan.plan(dataclasses.replace(stack, database_instances=PROD.database_instances[:1]))
    # With the replica in the last zone, every zone keeps a child.
    assert alarm_plan.plan(stack).of_zone("us-east-1c")


def test_thresholds_come_from_the_settings_and_the_instance_class():
    plan = alarm_plan.plan(PROD)
    # db.r7g.large: 16 GiB, so max_connections LEAST(16 GiB / 9531392, 5000) = 1802; alarm at 80 %.
    assert alarm_plan.max_connections("db.r7g.large") == 1802
    assert plan.alarm("database-primary-connections").threshold == pytest.approx(1802 * 0.8)
    assert plan.alarm("database-primary-freeable-memory").threshold == pytest.approx(16 * 1024**3 * 0.1)
    assert plan.alarm("database-primary-free-storage").threshold == pytest.approx(100 * 1024**3 * 0.1)
    strict = alarm_plan.plan(PROD, Thresholds(database_cpu_percent=70, queue_wait_seconds=600))
    assert strict.alarm("database-primary-cpu").threshold == 70
    assert strict.alarm("queue-sast-wait").threshold == 600
    assert alarm_plan.database_memory_gib("db.t4g.medium") == 4
    assert alarm_plan.database_memory_gib("db.m8g.2xlarge") == 32
    assert (alarm_plan.database_memory_gib("db.x2g.large"), alarm_plan.database_memory_gib("db.x2iedn.xlarge")) == (
        32,
        128,
    )
    with pytest.raises(ValueError, match="no memory size known for db.r7g.metal"):
        alarm_plan.database_memory_gib("db.r7g.metal")


def test_queue_alarms_read_the_publisher_s_namespace_and_dead_letters_page_nobody():
    plan = alarm_plan.plan(PROD)
    backlog = plan.alarm("queue-sast-backlog").metric
    assert backlog is not None and backlog.namespace == alarm_plan.QUEUE_NAMESPACE
    assert dict(backlog.dimensions) == {"VHost": "scanner", "Queue": "scans.sast"}
    dead = plan.alarm("queue-secrets-dead-letters")
    assert dead.severity == "ticket" and dead.threshold == 0 and dead.missing == "notBreaching"
    assert plan.alarm("queue-sast-wait").severity == "page"


def test_broker_limits_are_read_per_node_and_its_cpu_as_the_nodes_average():
    plan = alarm_plan.plan(PROD)
    memory = plan.alarm("broker-memory").metric
    assert memory is not None and memory.name == "NodeMemoryUsedPercentMax" and memory.statistic == "Maximum"
    assert plan.alarm("broker-cpu").expression == "m1 / 3"
    assert alarm_plan.plan(dataclasses.replace(PROD, broker_nodes=1)).alarm("broker-cpu").expression == "m1 / 1"


def test_placeholders_name_what_only_the_deployed_resources_know():
    plan = alarm_plan.plan(PROD)
    nat, efs = plan.alarm("nat-port-allocation-us-east-1b").metric, plan.alarm("repo-cache-io-limit").metric
    assert nat is not None and nat.dimensions == (("NatGatewayId", "{nat:us-east-1b}"),)
    assert efs is not None and efs.dimensions == (("FileSystemId", "{file-system}"),)


def test_the_readme_s_alarm_table_names_every_metric_and_every_threshold_setting():
    """A new alarm or setting undocumented fails here: the table is the operators' reference."""
    from pathlib import Path

    from stack_config.monitoring import THRESHOLDS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Monitoring (`components/monitoring/`)") :]
    section = section[: section.index("\n## ")]
    plan = alarm_plan.plan(dataclasses.replace(PROD, load_balancer=True))
    metrics = {m for a in plan.alarms for m in ([metric_of(a)] if isinstance(metric_of(a), str) else metric_of(a))}
    assert sorted(m for m in metrics if m not in section) == []
    assert sorted(name for name in THRESHOLDS if f"`{name}`" not in section) == []
