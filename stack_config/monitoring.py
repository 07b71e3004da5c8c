"""The monitoring settings: the alarms' thresholds, who is told, and the monthly budget."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field, field_validator
from pydantic.alias_generators import to_camel, to_snake

from components.monitoring.alarm_plan import Thresholds
from stack_config.base import KeyedError, Section, no_duplicates

#: Threshold settings by their camelCase names (databaseCpuPercent), from the plan's defaults.
THRESHOLDS = {to_camel(f.name): f for f in dataclasses.fields(Thresholds)}
_EMAIL = re.compile(r"^email:[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_HTTPS = re.compile(r"^https://[^\s/]+(/\S*)?$")


class MonitoringSection(Section):
    alarm_thresholds: dict[str, float] = Field(default_factory=dict)
    """Alarm thresholds that differ from the plan's defaults (AWS's recommended alarms), by name:
    {databaseCpuPercent: 80, queueWaitSeconds: 900, ...}. Default none: every default."""
    page_subscriptions: tuple[str, ...] = ()
    """Who is paged (alarms of severity page): `email:<address>` or an `https://` endpoint each.
    Default none."""
    ticket_subscriptions: tuple[str, ...] = ()
    """Who gets tickets (severity ticket, and the budget's alerts), in the same form. Default none."""
    monthly_budget_usd: int | None = Field(default=None, ge=1, le=10_000_000)
    """The stack's monthly AWS budget in US dollars: actual and forecast spend above it alert the
    ticket subscriptions. Default none (no budget)."""

    @field_validator("alarm_thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, Any]) -> dict[str, float]:
        for name, number in value.items():
            if name not in THRESHOLDS:
                raise ValueError(f"{name!r} is no alarm threshold (thresholds: {', '.join(sorted(THRESHOLDS))})")
            if not isinstance(number, int | float) or isinstance(number, bool) or number < 0:
                raise ValueError(f"{name}: {number:g} is not a number of 0 or more")
            if name.endswith("Fraction") and not 0 < number <= 1:
                raise ValueError(f"{name}: {number:g} is not a fraction in (0, 1]")
            if name.endswith("Percent") and not 0 < number <= 100:
                raise ValueError(f"{name}: {number:g} is not a percentage in (0, 100]")
        return {name: float(number) for name, number in value.items()}

    @field_validator("page_subscriptions", "ticket_subscriptions")
    @classmethod
    def _subscriptions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for endpoint in value:
            if not (_EMAIL.match(endpoint) or _HTTPS.match(endpoint)):
                raise ValueError(f"{endpoint!r} is neither email:<address> nor an https:// endpoint")
        return no_duplicates(value)

    def thresholds(self) -> Thresholds:
        """The plan's thresholds with this stack's overrides."""
        return Thresholds(**{to_snake(name): value for name, value in self.alarm_thresholds.items()})

    def problems(self) -> Iterator[KeyedError]:
        if self.monthly_budget_usd is not None and not self.ticket_subscriptions:
            yield KeyedError("monthlyBudgetUsd", "alerts the ticket subscriptions, and ticketSubscriptions is empty")
