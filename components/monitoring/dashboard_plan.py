"""The stack's CloudWatch dashboard, laid out from the alarm plan without Pulumi.

The composites on top (what the drill and zonal autoshift watch), then a band per tier: a heading,
the tier's regional alarms four to a row, then a row per zonal metric with a column per zone (the
same zone always in the same column, so a zone's loss reads down one column). Every graph is an
alarm's own (`annotations.alarms`): the dashboard shows exactly what alarms, at its threshold.

The body follows CloudWatch's dashboard body structure (widgets on a 24-column grid, `x`, `y`,
`width`, `height` and `properties` per widget); tests validate it against a schema of that
structure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from components.monitoring.alarm_plan import AlarmPlan

GRID = 24
REGIONAL_WIDTH = 6
HEIGHT = 6
#: CloudWatch's alarm status widget lists at most 100 alarms.
STATUS_MAX = 100


def zonal_key(name: str, zone: str) -> str:
    """An alarm's name without its zone: the row a zonal alarm belongs to."""
    return name.replace(f"-{zone}", "").replace(zone, "").strip("-")


def body(
    plan: AlarmPlan,
    zones: tuple[str, ...],
    region_of: Callable[[str], str],
    arn_of: Callable[[str], str],
    title: str,
) -> dict[str, Any]:
    """The dashboard body: `region_of(alarm)` is the region an alarm lives in, `arn_of(name)` its ARN."""
    widgets: list[dict[str, Any]] = []
    y = 0
    composites = [c.name for c in plan.composites][:STATUS_MAX]
    widgets.append(
        {
            "type": "alarm",
            "x": 0,
            "y": y,
            "width": GRID,
            "height": 3,
            "properties": {"title": f"{title}: tiers and zones", "alarms": [arn_of(c) for c in composites]},
        }
    )
    y += 3
    column = GRID // max(len(zones), 1)
    for tier in dict.fromkeys(a.tier for a in plan.alarms):
        widgets.append(
            {"type": "text", "x": 0, "y": y, "width": GRID, "height": 1, "properties": {"markdown": f"## {tier}"}}
        )
        y += 1
        regional = [a for a in plan.of_tier(tier) if a.zone is None]
        for i, alarm in enumerate(regional):
            widgets.append(
                _graph(alarm.name, region_of(alarm.name), arn_of, (i % 4) * REGIONAL_WIDTH, y, REGIONAL_WIDTH)
            )
            if i % 4 == 3 or i == len(regional) - 1:
                y += HEIGHT
        rows: dict[str, list] = {}
        for alarm in plan.of_tier(tier):
            if alarm.zone is not None:
                rows.setdefault(zonal_key(alarm.name, alarm.zone), []).append(alarm)
        for alarms in rows.values():
            for alarm in alarms:
                x = zones.index(alarm.zone) * column if alarm.zone in zones else 0
                widgets.append(_graph(alarm.name, region_of(alarm.name), arn_of, x, y, column))
            y += HEIGHT
    return {"start": "-PT12H", "periodOverride": "inherit", "widgets": widgets}


def _graph(name: str, region: str, arn_of: Callable[[str], str], x: int, y: int, width: int) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": HEIGHT,
        "properties": {
            "title": name,
            "region": region,
            "view": "timeSeries",
            "stacked": False,
            "annotations": {"alarms": [arn_of(name)]},
        },
    }
