"""The zone drill's settings: how long a zone is out, the experiments' stop conditions, and when
zonal autoshift may practise."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from stack_config.base import Section, no_duplicates

_WINDOW = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):[0-5]\d-(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):[0-5]\d$"
)


class DrillSection(Section):
    drill_outage_minutes: int = Field(default=30, ge=5, le=720)
    """How long a drill keeps its zone out (network, nodes, launch capacity, cache, shift), in
    minutes. Default 30 (FIS's power interruption scenario)."""
    drill_stop_conditions: Literal["other-zones", "none"] = "other-zones"
    """`other-zones`: a drill stops when another zone's zone-impaired composite goes into alarm
    (the outage spread). `none`: no stop condition, for a drill that tests the alerting itself;
    the placement pack refuses it in production unless set here. Default other-zones."""
    zonal_autoshift: bool = True
    """Zonal autoshift (and its practice runs) for the cluster and the API load balancer. Default on."""
    autoshift_practice_windows: tuple[str, ...] = ("Sat:06:00-Sat:18:00", "Sun:06:00-Sun:18:00")
    """When practice runs may start, `Day:HH:MM-Day:HH:MM` in UTC. Default Saturday and Sunday,
    06:00-18:00."""

    @field_validator("autoshift_practice_windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one window (Day:HH:MM-Day:HH:MM, UTC)")
        for window in value:
            match = _WINDOW.match(window)
            if not match:
                raise ValueError(f"{window!r} is not a window such as Sat:06:00-Sat:18:00 (UTC)")
            start, end = window.split("-")
            # ARC: a window starts and ends on the same day.
            if start[:3] != end[:3] or start[4:] >= end[4:]:
                raise ValueError(f"{window!r} must start and end on one day, the start before the end")
        return no_duplicates(value)
