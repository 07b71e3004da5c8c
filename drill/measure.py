"""What a drill's probes saw, measured without any server: per store, the longest window in which
its writes (or its checks) failed, which is the recovery time a client saw, and the canaries it
acknowledged that cannot be read afterwards, which is data lost (a drill passes only with none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["write", "check"]


@dataclass(frozen=True)
class Sample:
    at: float
    """Seconds since the probes started."""
    store: str
    operation: Operation
    ok: bool
    key: str = ""
    """The canary a write wrote."""
    error: str = ""
    took: float = 0.0
    """Seconds the call took: one slower than SLOW_S counts as an outage, even if it succeeded
    (a proxy that holds a query through a failover answers late, not never)."""


#: A call slower than this is part of an outage (twice the probes' own timeouts).
SLOW_S = 4.0


def _bad(sample: Sample) -> bool:
    return not sample.ok or sample.took > SLOW_S


@dataclass(frozen=True)
class StoreResult:
    store: str
    writes: int
    failed_writes: int
    checks: int
    failed_checks: int
    write_outage_s: float
    """Longest run of failed writes: from the first failure to the next success (or the end)."""
    check_outage_s: float
    acknowledged: int
    """Canaries whose write succeeded."""
    lost: tuple[str, ...] = ()
    """Acknowledged canaries that could not be read after the drill."""
    errors: tuple[str, ...] = field(default=())
    """The distinct errors seen, for the report."""

    @property
    def passed(self) -> bool:
        """Nothing lost, and something proved: a canary acknowledged, or for a store the drill
        only reads (no writes at all), a check answered."""
        if self.writes == 0:
            return self.checks > self.failed_checks
        return not self.lost and self.acknowledged > 0


def longest_outage(samples: list[Sample], end: float) -> float:
    """The longest time from a failed (or slow) sample to the next good one (or to `end`)."""
    longest, started = 0.0, None
    for sample in sorted(samples, key=lambda s: s.at):
        if _bad(sample) and started is None:
            started = sample.at
        elif not _bad(sample) and started is not None:
            longest = max(longest, sample.at - started)
            started = None
    if started is not None:
        longest = max(longest, end - started)
    return round(longest, 3)


def results(
    samples: Iterable[Sample], survivors: Mapping[str, set[str]], end: float, expected: Iterable[str] = ()
) -> dict[str, StoreResult]:
    """Per store, from every sample and the canaries each store still holds after the drill; a
    store in `expected` with no sample at all (its probe stuck in its first call) is there too,
    and fails."""
    by_store: dict[str, list[Sample]] = {store: [] for store in expected}
    for sample in samples:
        by_store.setdefault(sample.store, []).append(sample)
    out = {}
    for store, taken in sorted(by_store.items()):
        writes = [s for s in taken if s.operation == "write"]
        checks = [s for s in taken if s.operation == "check"]
        acknowledged = [s.key for s in writes if s.ok]
        held = survivors.get(store, set())
        out[store] = StoreResult(
            store=store,
            writes=len(writes),
            failed_writes=sum(not s.ok for s in writes),
            checks=len(checks),
            failed_checks=sum(not s.ok for s in checks),
            write_outage_s=longest_outage(writes, end),
            check_outage_s=longest_outage(checks, end),
            acknowledged=len(acknowledged),
            lost=tuple(k for k in acknowledged if k not in held),
            errors=tuple(sorted({s.error for s in taken if s.error}))[:10],
        )
    return out


def as_dict(found: Mapping[str, StoreResult]) -> dict[str, Any]:
    return {
        store: {
            "writes": r.writes,
            "failedWrites": r.failed_writes,
            "checks": r.checks,
            "failedChecks": r.failed_checks,
            "writeOutageSeconds": r.write_outage_s,
            "checkOutageSeconds": r.check_outage_s,
            "acknowledged": r.acknowledged,
            "lost": len(r.lost),
            "lostCanaries": list(r.lost[:20]),
            "errors": list(r.errors),
            "passed": r.passed,
        }
        for store, r in found.items()
    }


def markdown(found: Mapping[str, StoreResult]) -> str:
    lines = [
        "| store | writes (failed) | checks (failed) | longest write outage | longest check outage | lost canaries |",
        "|---|---|---|---|---|---|",
    ]
    for store, r in found.items():
        lines.append(
            f"| {store} | {r.writes} ({r.failed_writes}) | {r.checks} ({r.failed_checks}) | "
            f"{r.write_outage_s:.1f} s | {r.check_outage_s:.1f} s | {len(r.lost)} of {r.acknowledged} |"
        )
    return "\n".join(lines)


def exit_status(found: Mapping[str, StoreResult]) -> int:
    """0 when every store kept every canary it acknowledged; 1 otherwise (a lost canary, or a
    store that never acknowledged one: nothing was proved)."""
    return 0 if found and all(r.passed for r in found.values()) else 1
