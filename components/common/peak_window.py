"""The weekday peak window every capacity schedule follows: the services' higher replica floor
and the node pools' freeze on voluntary disruption share one definition, in UTC (Karpenter's
budget schedules take no time zone, so KEDA's cron trigger is given UTC as well)."""

from __future__ import annotations

from dataclasses import dataclass

#: The zone the cron expressions are written in (an IANA name, as KEDA's cron trigger takes).
TIMEZONE = "Etc/UTC"

_DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def day_numbers(field: str) -> set[int]:
    """The days (0 = Sunday) of a cron day-of-week field of digits, ranges and commas; a range
    that runs backwards is refused, as cron parsers refuse it."""
    days: set[int] = set()
    for part in field.split(","):
        first, _, last = part.partition("-")
        if last and int(last) < int(first):
            raise ValueError(f"range {part} runs backwards; cron needs the lower day first (0 = Sunday)")
        days.update(range(int(first), int(last or first) + 1))
    return days


@dataclass(frozen=True)
class PeakWindow:
    days: str
    """Cron day-of-week field: `1-5` is Monday to Friday."""
    start_hour: int
    """First hour of the window (UTC), 0-22."""
    end_hour: int
    """Hour the window closes (UTC), after start_hour, at most 23."""

    @property
    def start_cron(self) -> str:
        return f"0 {self.start_hour} * * {self.days}"

    @property
    def end_cron(self) -> str:
        return f"0 {self.end_hour} * * {self.days}"

    @property
    def hours(self) -> int:
        return self.end_hour - self.start_hour

    @property
    def duration(self) -> str:
        """The window's length as a Karpenter budget duration."""
        return f"{self.hours}h"

    def day_numbers(self) -> set[int]:
        return day_numbers(self.days)

    def contains(self, weekday: int, hour: int) -> bool:
        """Whether an hour (UTC) of a day (0 = Sunday, as cron counts) is inside the window."""
        return weekday in self.day_numbers() and self.start_hour <= hour < self.end_hour

    def describe(self) -> str:
        days = ", ".join(_DAY_NAMES[d] for d in sorted(self.day_numbers()))
        return f"{days} {self.start_hour:02d}:00-{self.end_hour:02d}:00 UTC"
