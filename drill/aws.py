"""The drill's steps against a deployed stack (boto3): the metric report taken before and after,
their comparison, and the revert that is safe at any time and twice.

- `report`: every alarm of the stack (`<prefix>-…`), its state, and its metric over a window
  (count, minimum, maximum, average, last), as CloudWatch returns them (`GetMetricData` with the
  alarm's own metric, or its metric math and Metrics Insights queries);
- `compare`: two reports side by side; an alarm in ALARM after that was not before is a
  regression (exit 1);
- `revert`: stop the stack's running drill experiments, cancel the zonal shifts still active on
  the resources its drills shift, and unmute the stack's alarms (all of them: a drill mutes all,
  or none).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from ops import alarms as alarm_ops

RUNNING = ("pending", "initiating", "running")
SHIFT_OVER = ("ConflictException", "ResourceNotFoundException")
#: GetMetricData takes at most 500 queries per call.
QUERIES_PER_CALL = 500


def _stack_alarms(cloudwatch: Any, prefix: str) -> list[dict[str, Any]]:
    found = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{prefix}-", AlarmTypes=["MetricAlarm"]
    ):
        found += page.get("MetricAlarms", [])
    return found


def _queries(alarm: dict[str, Any], qid: str) -> list[dict[str, Any]]:
    """The alarm's own metric (or queries), renamed so each alarm's ids are its own."""
    if alarm.get("Metrics"):
        out = []
        for q in alarm["Metrics"]:
            query = {k: v for k, v in q.items() if k in ("Id", "Expression", "MetricStat", "Label", "Period")}
            query["Id"] = f"{qid}_{q['Id']}"
            if "Expression" in query and not query["Expression"].lstrip().upper().startswith("SELECT"):
                for other in alarm["Metrics"]:
                    query["Expression"] = re.sub(
                        rf"\b{re.escape(other['Id'])}\b", f"{qid}_{other['Id']}", query["Expression"]
                    )
            query["ReturnData"] = bool(q.get("ReturnData"))
            out.append(query)
        return out
    stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic") or "Average"
    return [
        {
            "Id": qid,
            "MetricStat": {
                "Metric": {
                    "Namespace": alarm["Namespace"],
                    "MetricName": alarm["MetricName"],
                    "Dimensions": alarm.get("Dimensions", []),
                },
                "Period": int(alarm.get("Period") or 60),
                "Stat": stat,
            },
            "ReturnData": True,
        }
    ]


def report(cloudwatch: Any, prefix: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Every alarm of the stack with its state and its metric between `start` and `end`."""
    found = _stack_alarms(cloudwatch, prefix)
    ids = {f"a{i}": a for i, a in enumerate(found)}
    values: dict[str, list[float]] = {}
    errors: dict[str, str] = {}

    def fetch(batch: list[tuple[str, list[dict[str, Any]]]]) -> None:
        queries = [q for _, qs in batch for q in qs]
        try:
            pages = cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    values.setdefault(result["Id"].split("_")[0], []).extend(float(v) for v in result["Values"])
        except Exception as exc:  # noqa: BLE001 (refused: alarm by alarm, each refusal recorded)
            if len(batch) > 1:
                for one in batch:
                    fetch([one])
            else:
                errors[batch[0][0]] = f"{type(exc).__name__}: {exc}"[:300]

    # A call takes one Metrics Insights query at most: those alone; the rest batched by whole
    # alarms (an expression never apart from its inputs), up to 500 queries a call.
    insights = {
        qid
        for qid, a in ids.items()
        if any(str(m.get("Expression", "")).lstrip().upper().startswith("SELECT") for m in a.get("Metrics") or [])
    }
    batch: list[tuple[str, list[dict[str, Any]]]] = []
    for qid, alarm in ids.items():
        queries = _queries(alarm, qid)
        if qid in insights:
            fetch([(qid, queries)])
            continue
        if sum(len(q) for _, q in batch) + len(queries) > QUERIES_PER_CALL:
            fetch(batch)
            batch = []
        batch.append((qid, queries))
    if batch:
        fetch(batch)
    alarms_out = {}
    for qid, alarm in ids.items():
        points = values.get(qid, [])
        alarms_out[alarm["AlarmName"].removeprefix(f"{prefix}-")] = {
            "state": alarm.get("StateValue", "INSUFFICIENT_DATA"),
            "threshold": alarm.get("Threshold"),
            "comparison": alarm.get("ComparisonOperator"),
            "points": len(points),
            "min": min(points) if points else None,
            "max": max(points) if points else None,
            "average": sum(points) / len(points) if points else None,
            "last": points[-1] if points else None,
            **({"error": errors[qid]} if qid in errors else {}),
        }
    return {
        "prefix": prefix,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "alarms": dict(sorted(alarms_out.items())),
    }


def alarm_transitions(
    cloudwatch: Any, prefix: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, str]]:
    """Every state change of the stack's alarms between `start` and `end`: (when, "name: OK -> ALARM")."""
    found: list[tuple[dt.datetime, str]] = []
    for page in cloudwatch.get_paginator("describe_alarm_history").paginate(
        AlarmNamePrefix=prefix, HistoryItemType="StateUpdate", StartDate=start, EndDate=end
    ):
        for item in page.get("AlarmHistoryItems", []):
            try:
                data = json.loads(item.get("HistoryData") or "{}")
                change = f"{data['oldState']['stateValue']} -> {data['newState']['stateValue']}"
            except (KeyError, TypeError, ValueError):
                change = str(item.get("HistorySummary", "state changed"))
            found.append((item["Timestamp"], f"{item['AlarmName']}: {change}"))
    return sorted(found)


def compare(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows per alarm (state and average before and after), and the regressions: alarms in ALARM
    after that were not before."""
    rows, regressions = [], []
    names = sorted(set(before.get("alarms", {})) | set(after.get("alarms", {})))
    for name in names:
        pre, post = before["alarms"].get(name, {}), after["alarms"].get(name, {})
        rows.append(
            {
                "alarm": name,
                "before": pre.get("state", "absent"),
                "after": post.get("state", "absent"),
                "averageBefore": pre.get("average"),
                "averageAfter": post.get("average"),
            }
        )
        if post.get("state") == "ALARM" and pre.get("state") != "ALARM":
            regressions.append(name)
    return rows, regressions


def markdown_report(found: dict[str, Any]) -> str:
    lines = [
        f"Alarms of {found['prefix']} from {found['start']} to {found['end']}",
        "",
        "| alarm | state | threshold | points | min | max | average | last |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, a in found["alarms"].items():
        cells = [_num(a[k]) for k in ("threshold", "points", "min", "max", "average", "last")]
        lines.append(f"| {name} | {a['state']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_comparison(rows: list[dict[str, Any]], regressions: list[str]) -> str:
    lines = ["| alarm | before | after | average before | average after |", "|---|---|---|---|---|"]
    for r in rows:
        flag = " **new alarm**" if r["alarm"] in regressions else ""
        lines.append(
            f"| {r['alarm']}{flag} | {r['before']} | {r['after']} | {_num(r['averageBefore'])} | "
            f"{_num(r['averageAfter'])} |"
        )
    return "\n".join(lines)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def drill_templates(fis: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """The stack's drill templates by id (their Name tag: `<prefix>-drill-<zone>`)."""
    found = {}
    for page in fis.get_paginator("list_experiment_templates").paginate():
        for template in page.get("experimentTemplates", []):
            if str((template.get("tags") or {}).get("Name", "")).startswith(f"{prefix}-drill-"):
                found[template["id"]] = template
    return found


def revert(fis: Any, shifts: Any, cloudwatches: Iterable[Any], prefix: str, dry_run: bool = False) -> list[str]:
    """Stop the stack's running drills, cancel the zonal shifts they started, unmute the alarms.
    What it did, a line each; nothing to do is fine (it is safe to run twice)."""
    done: list[str] = []
    templates = drill_templates(fis, prefix)
    managed: set[str] = set()
    for template_id in templates:
        detail = fis.get_experiment_template(id=template_id)["experimentTemplate"]
        for target in (detail.get("targets") or {}).values():
            if target.get("resourceType") == "aws:arc:zonal-shift-managed-resource":
                managed.update(target.get("resourceArns") or [])
    for page in fis.get_paginator("list_experiments").paginate():
        for experiment in page.get("experiments", []):
            if experiment.get("experimentTemplateId") in templates and experiment["state"]["status"] in RUNNING:
                if not dry_run:
                    fis.stop_experiment(id=experiment["id"])
                done.append(f"{'would stop' if dry_run else 'stopped'} experiment {experiment['id']}")
    if shifts is not None:
        for shift in _active_shifts(shifts):
            # Only the drill's own: a shift an operator started for a real incident stays.
            if (
                shift.get("resourceIdentifier") in managed
                and shift.get("shiftType", "FIS_EXPERIMENT") == "FIS_EXPERIMENT"
            ):
                if not dry_run:
                    try:
                        shifts.cancel_zonal_shift(zonalShiftId=shift["zonalShiftId"])
                    except Exception as exc:  # noqa: BLE001 (it ended between the list and the cancel)
                        if not _already_over(exc):
                            raise
                        continue
                done.append(
                    f"{'would cancel' if dry_run else 'cancelled'} zonal shift {shift['zonalShiftId']} "
                    f"({shift.get('awayFrom')} for {shift['resourceIdentifier']})"
                )
    for cloudwatch in cloudwatches:
        muted = [a for a in alarm_ops.alarms(cloudwatch, prefix) if not a.actions_enabled]
        if muted and not dry_run:
            alarm_ops.apply(cloudwatch, "unmute", muted)
        done += [f"{'would unmute' if dry_run else 'unmuted'} {a.name}" for a in muted]
    return done


def _already_over(exc: Exception) -> bool:
    """The shift ended on its own between the list and the cancel."""
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return code in SHIFT_OVER or type(exc).__name__ in SHIFT_OVER


def _active_shifts(shifts: Any) -> Iterable[dict[str, Any]]:
    token = None
    while True:
        page = shifts.list_zonal_shifts(status="ACTIVE", **({"nextToken": token} if token else {}))
        yield from page.get("items", [])
        token = page.get("nextToken")
        if not token:
            return
