"""The drill's verdicts, taken while the zone is out: does every tier still serve from the zones
that are left? Each check returns a `Verdict`; a drill with a failed one fails.

- database: the primary (the Multi-AZ instance, or the cluster's writer) is available in another
  zone (FIS forced the failover); that it accepts writes is the database probe's to show;
- cache: the replication group has a primary, outside the zone;
- broker: every queue the queue-metrics publisher reported just before the experiment started is
  still reported now, so the broker answers for each (the drill queue's probe proves it takes
  writes);
- services: every Deployment of the services namespace that asks for pods has ready pods in the
  other zones;
- scans: a Job on the scan pool starts and succeeds before the zone is back, on a node outside
  the zone (Karpenter brings capacity up elsewhere).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policies.common import contract

NAMESPACE = "Scanner/RabbitMQ"
#: The longest a scan Job may take to start and succeed (less when the outage ends sooner).
SCAN_START_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    detail: str


def safely(check: str, call: Callable[[], Verdict]) -> Verdict:
    """The check's verdict; a check that cannot be made (an API refusing, a client error) fails
    with the reason, and the others are still taken."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 (a verdict, not a crash)
        return Verdict(check, False, f"could not be checked: {type(exc).__name__}: {exc}"[:300])


def _tags(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def database(rds: Any, prefix: str, zone: str) -> Verdict:
    wanted = f"{prefix}-database"
    instances = [i for page in rds.get_paginator("describe_db_instances").paginate() for i in page["DBInstances"]]
    clusters = [c for page in rds.get_paginator("describe_db_clusters").paginate() for c in page["DBClusters"]]
    for cluster in clusters:
        if _tags(cluster.get("TagList")).get(contract.DRILL_TARGET_TAG) != wanted:
            continue
        writer = next(
            (m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if m.get("IsClusterWriter")), None
        )
        member = next((i for i in instances if i["DBInstanceIdentifier"] == writer), None)
        if member is None:
            return Verdict("database", False, f"cluster {cluster['DBClusterIdentifier']} has no writer")
        return _primary(f"cluster {cluster['DBClusterIdentifier']}'s writer {writer}", member, zone)
    for instance in instances:
        if _tags(instance.get("TagList")).get(contract.DRILL_TARGET_TAG) == wanted:
            return _primary(f"instance {instance['DBInstanceIdentifier']}", instance, zone)
    return Verdict("database", False, f"no database tagged {contract.DRILL_TARGET_TAG}={wanted}")


def _primary(what: str, instance: dict[str, Any], zone: str) -> Verdict:
    where, status = instance.get("AvailabilityZone"), instance.get("DBInstanceStatus")
    if where == zone:
        return Verdict("database", False, f"{what} is still in {zone}: it did not fail over")
    if status != "available":
        return Verdict("database", False, f"{what} in {where} is {status}, not available")
    return Verdict("database", True, f"{what} is available in {where}")


def cache(elasticache: Any, prefix: str, zone: str) -> Verdict:
    wanted = f"{prefix}-cache"
    for page in elasticache.get_paginator("describe_replication_groups").paginate():
        for group in page["ReplicationGroups"]:
            tags = _tags(elasticache.list_tags_for_resource(ResourceName=group["ARN"]).get("TagList"))
            if tags.get(contract.DRILL_TARGET_TAG) != wanted:
                continue
            members = [m for ng in group.get("NodeGroups", []) for m in ng.get("NodeGroupMembers", [])]
            primary = next((m for m in members if m.get("CurrentRole") == "primary"), None)
            name = group["ReplicationGroupId"]
            if primary is None:
                return Verdict("cache", False, f"replication group {name} has no primary")
            where = primary.get("PreferredAvailabilityZone")
            if where == zone:
                return Verdict("cache", False, f"{name}'s primary {primary.get('CacheClusterId')} is still in {zone}")
            return Verdict("cache", True, f"{name}'s primary {primary.get('CacheClusterId')} is in {where}")
    return Verdict("cache", False, f"no replication group tagged {contract.DRILL_TARGET_TAG}={wanted}")


def broker(cloudwatch: Any, now: dt.datetime, fresh_minutes: int = 10, before: dt.datetime | None = None) -> Verdict:
    """Every queue reported in the `fresh_minutes` before `before` (the experiment's start; none:
    any in the last three hours) is reported in the last `fresh_minutes`: a queue deleted before
    the drill is not the drill's."""
    vhosts: dict[str, str] = {}
    for page in cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=NAMESPACE, MetricName="ReadyMessages", RecentlyActive="PT3H"
    ):
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            if "Queue" in dims:
                vhosts[dims["Queue"]] = dims.get("VHost", "")
    queues = sorted(vhosts)
    if before is not None and queues:
        queues = _reported(cloudwatch, vhosts, queues, before, fresh_minutes)
    if not queues:
        return Verdict("broker", False, f"no queue in {NAMESPACE}: the queue-metrics publisher reports none")
    seen = set(_reported(cloudwatch, vhosts, queues, now, fresh_minutes))
    silent = [q for q in queues if q not in seen]
    if silent:
        return Verdict("broker", False, f"not reported in the last {fresh_minutes} min: {', '.join(silent)}")
    return Verdict("broker", True, f"all {len(queues)} queue(s) reported in the last {fresh_minutes} min")


def _reported(cloudwatch: Any, vhosts: dict[str, str], queues: list[str], end: dt.datetime, minutes: int) -> list[str]:
    """Those of `queues` with a ReadyMessages datum in the `minutes` before `end`."""
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": "ReadyMessages",
                    "Dimensions": [{"Name": "VHost", "Value": vhosts[q]}, {"Name": "Queue", "Value": q}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
            "ReturnData": True,
        }
        for i, q in enumerate(queues)
    ]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=end - dt.timedelta(minutes=minutes), EndTime=end
    )
    seen = {r["Id"] for r in answer["MetricDataResults"] if r.get("Values")}
    return [q for i, q in enumerate(queues) if f"q{i}" in seen]


def services(kube: Any, namespace: str, zone: str) -> Verdict:
    ready = kube.ready_zones(namespace)
    if not ready:
        return Verdict("services", False, f"no Deployment in {namespace}")
    short = sorted(d for d, by_zone in ready.items() if not any(n for z, n in by_zone.items() if z != zone))
    if short:
        return Verdict("services", False, f"no ready pod outside {zone}: {', '.join(short)}")
    return Verdict(
        "services",
        True,
        "; ".join(
            f"{d}: {sum(n for z, n in by_zone.items() if z != zone)} ready" for d, by_zone in sorted(ready.items())
        ),
    )


def scans(
    kube: Any,
    manifest: dict[str, Any],
    zone: str,
    timeout_s: float = SCAN_START_TIMEOUT_S,
    poll_s: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """The Job succeeds within `timeout_s`, on a node outside `zone` (the manifest chooses no
    zone: where Karpenter put it is the finding)."""
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    kube.create_job(manifest)
    started = clock()
    try:
        while True:
            if kube.job_succeeded(namespace, name):
                took = clock() - started
                where = sorted(kube.job_zones(namespace, name))
                if zone in where or not where:
                    return Verdict("scans", False, f"the scan pool's Job ran in {', '.join(where) or 'no known zone'}")
                return Verdict("scans", True, f"a Job on the scan pool ran in {took:.0f} s, in {', '.join(where)}")
            failed = kube.job_failed(namespace, name)
            if failed is not None:
                return Verdict("scans", False, f"the scan pool's Job failed: {failed}")
            if clock() - started > timeout_s:
                return Verdict("scans", False, f"no scan capacity came up within {timeout_s:.0f} s")
            sleep(poll_s)
    finally:
        kube.delete_job(namespace, name)
