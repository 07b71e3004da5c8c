"""`python -m drill run`: the drill's steps in the runbook's order, on the deployed stack.

1. the report before (every alarm over the last hour);
2. the alarms muted, if asked (`--mute-alerts`: a drill that does not test the alerting);
3. the probes started, where the stores answer: in a Job inside the cluster (drill/remote.py),
   or in this process when it runs inside the VPC; the drill does not start if they cannot;
4. the zone's experiment started, and watched until it ends (or stopped at the timeout); while
   the zone is out (two thirds into the longest action), the verdicts (drill/verdicts.py);
5. the probes stopped, and what each store still holds read back;
6. the revert: drills stopped, zonal shifts cancelled, and the alarms unmuted if this run muted
   them (nothing else is unmuted);
7. the report after, and the comparison; a summary in JSON and Markdown, and with probes a
   timeline picture (`timeline.svg`: each store's writes, the experiment's states, the alarms' changes).

Exit 0 when the experiment completed, no store lost a canary and every verdict passed; 1 when it
was stopped, failed, timed out, a canary was lost, a verdict failed, or the probes never started.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drill import aws as steps
from drill import measure, timeline
from drill.probes import Probe
from drill.remote import LocalProbes, ProbeError, ProbeSession
from drill.verdicts import Verdict
from ops import alarms as alarm_ops

ENDED = ("completed", "stopped", "failed", "cancelled")


class NoDrill(Exception):
    """The zone has no drill template in the stack."""


@dataclass
class RunOptions:
    prefix: str
    zone: str
    out_dir: Path
    mute: bool = False
    before_minutes: int = 60
    poll_s: float = 10.0
    timeout_s: float = 2 * 3600
    seed: int | None = None
    verify_after_s: float | None = None
    """When the verdicts are taken, in seconds after the experiment starts; none: two thirds
    into the template's longest action."""


@dataclass
class RunResult:
    zone: str
    experiment_id: str
    status: str
    reason: str
    timeline: list[dict[str, Any]] = field(default_factory=list)
    stores: dict[str, measure.StoreResult] = field(default_factory=dict)
    regressions: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    verdicts_expected: bool = False
    probe_error: str = ""
    """Why the probes proved nothing (never started, failed, their result lost or short); empty
    when they ran for the whole drill."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Stores not probed in this drill, and why."""
    skipped: list[str] = field(default_factory=list)
    """Actions FIS skipped (no target found in the zone)."""
    skipped_required: list[str] = field(default_factory=list)
    """Skipped actions whose targets are named by ARN: the drill did not do what it says."""

    @property
    def exit_status(self) -> int:
        """0 when the experiment completed, every probed store kept every canary it acknowledged
        (and acknowledged some: a store whose writes all failed proved nothing), and the verdicts,
        when asked for, were taken and all passed."""
        stores_ok = all(r.passed for r in self.stores.values())
        verdicts_ok = all(v.passed for v in self.verdicts) and (self.verdicts or not self.verdicts_expected)
        passed = self.status == "completed" and stores_ok and verdicts_ok and not self.probe_error
        return 0 if passed and not self.skipped_required else 1


_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


def longest_action_s(template: dict[str, Any]) -> float:
    """The longest `duration` of the template's actions, in seconds (0 when none has one)."""
    longest = 0.0
    for action in (template.get("actions") or {}).values():
        found = _DURATION.match(str((action.get("parameters") or {}).get("duration", "")))
        if found:
            h, m, sec = (int(g or 0) for g in found.groups())
            longest = max(longest, h * 3600.0 + m * 60.0 + sec)
    return longest


def template_of(fis: Any, prefix: str, zone: str, seed: int | None) -> tuple[str, str]:
    by_zone = {
        str(t["tags"]["Name"]).removeprefix(f"{prefix}-drill-"): template_id
        for template_id, t in steps.drill_templates(fis, prefix).items()
    }
    if not by_zone:
        raise NoDrill(f"the stack {prefix} has no drill templates ({prefix}-drill-<zone>)")
    if zone == "random":
        zone = random.Random(seed).choice(sorted(by_zone))
    if zone not in by_zone:
        raise NoDrill(f"{zone} has no drill template (zones: {', '.join(sorted(by_zone))})")
    return zone, by_zone[zone]


def _managed_arns(template: dict[str, Any]) -> set[str]:
    return {
        arn
        for target in (template.get("targets") or {}).values()
        if target.get("resourceType") == "aws:arc:zonal-shift-managed-resource"
        for arn in target.get("resourceArns") or []
    }


def _by_arn(template: dict[str, Any]) -> set[str]:
    """The template's actions whose targets are named by ARN: they always resolve, so one that
    was skipped did nothing it should have (a tag-found target may be absent: no spot node in
    the zone at a weekend, the primary elsewhere)."""
    targets = template.get("targets") or {}
    return {
        name
        for name, action in (template.get("actions") or {}).items()
        if any((targets.get(t) or {}).get("resourceArns") for t in (action.get("targets") or {}).values())
    }


def run(
    fis: Any,
    shifts: Any,
    cloudwatches: Sequence[Any],
    options: RunOptions,
    probes: Sequence[Probe] | ProbeSession = (),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    checks: Callable[[str, dt.datetime, float | None], list[Verdict]] | None = None,
) -> RunResult:
    """`probes`: the probes to run here, or a session that runs them elsewhere (a Job in the
    cluster). `checks(zone, started_at, remaining_s)`: the verdicts, taken once while the zone is
    out; `started_at` is when the experiment started (UTC), `remaining_s` the outage time left
    (None when the template's actions give no duration), which no check may outlast.

    Whatever happens once it has begun (an AWS or cluster error, an interrupt), the experiment
    is stopped before the probes are, the drill reverted, the alarms this run muted unmuted,
    and the summary written; the error is raised after."""
    zone, template_id = template_of(fis, options.prefix, options.zone, options.seed)
    template = fis.get_experiment_template(id=template_id)["experimentTemplate"]
    verify_after = options.verify_after_s
    outage_s = longest_action_s(template)
    if verify_after is None and checks is not None:
        verify_after = outage_s * 2 / 3
    options.out_dir.mkdir(parents=True, exist_ok=True)
    home = cloudwatches[0]

    def take_report(name: str) -> dict[str, Any]:
        end = dt.datetime.now(dt.UTC)
        found = steps.report(home, options.prefix, end - dt.timedelta(minutes=options.before_minutes), end)
        (options.out_dir / f"{name}.json").write_text(json.dumps(found, indent=2) + "\n")
        (options.out_dir / f"{name}.md").write_text(steps.markdown_report(found) + "\n")
        return found

    session: ProbeSession | None
    if isinstance(probes, Sequence):
        session = LocalProbes(probes) if probes else None
    else:
        session = probes
    result = RunResult(zone, "", "not started", "", verdicts_expected=checks is not None)
    if session is not None:
        result.left_out = dict(getattr(session, "left_out", {}) or {})
    # A zonal shift already active on what the drill shifts (an operator's, a practice run)
    # would make the experiment's own shift fail: nothing starts.
    busy = [
        f"{s.get('resourceIdentifier')} ({s.get('shiftType', 'ZONAL_SHIFT')} away from {s.get('awayFrom')})"
        for s in (steps._active_shifts(shifts) if shifts is not None else [])
        if s.get("resourceIdentifier") in _managed_arns(template)
    ]
    before = take_report("pre")
    if busy:
        result.reason = f"a zonal shift is already active on {', '.join(busy)}: end it, or wait, and run again"
        result.timeline.append({"at": 0.0, "status": "not started", "reason": result.reason})
        return _finish(options, result, before, take_report("post"))
    muted: list[tuple[Any, list[alarm_ops.Alarm]]] = []
    started, wall_started = clock(), dt.datetime.now(dt.UTC)
    probing = False
    failure: BaseException | None = None
    try:
        if options.mute:
            for cloudwatch in cloudwatches:
                chosen = [a for a in alarm_ops.alarms(cloudwatch, options.prefix) if a.actions_enabled]
                muted.append((cloudwatch, chosen))  # before the call: a half-done mute is undone too
                alarm_ops.apply(cloudwatch, "mute", chosen)
        if session is not None:
            try:
                session.start()
                probing = True
            except ProbeError as exc:
                result.reason = result.probe_error = f"the probes did not start: {exc}"
                result.timeline.append({"at": 0.0, "status": "not started", "reason": result.reason})
                raise
        experiment = fis.start_experiment(
            clientToken=uuid.uuid4().hex,
            experimentTemplateId=template_id,
            tags={"Name": f"{options.prefix}-drill-{zone}"},
        )["experiment"]
        result.experiment_id = experiment["id"]
        experiment_started, started_at = clock(), dt.datetime.now(dt.UTC)
        stopping = False
        seen = ""
        while True:
            state = fis.get_experiment(id=result.experiment_id)["experiment"]
            result.status, result.reason = state["state"]["status"], state["state"].get("reason", "")
            if result.status != seen:
                seen = result.status
                result.timeline.append(
                    {"at": round(clock() - started, 1), "status": result.status, "reason": result.reason}
                )
            if result.status in ENDED:
                result.skipped = sorted(
                    name
                    for name, action in (state.get("actions") or {}).items()
                    if (action.get("state") or {}).get("status") == "skipped"
                )
                result.skipped_required = sorted(set(result.skipped) & _by_arn(template))
                break
            if probing and session is not None and not result.probe_error:
                trouble = session.trouble()
                if trouble:
                    result.probe_error = trouble
                    result.timeline.append(
                        {"at": round(clock() - started, 1), "status": "probes lost", "reason": trouble}
                    )
            if (
                checks is not None
                and not result.verdicts
                and result.status == "running"
                and clock() - experiment_started >= (verify_after or 0)
            ):
                elapsed = clock() - experiment_started
                remaining = max(0.0, outage_s - elapsed) if outage_s else None
                try:
                    result.verdicts = checks(zone, started_at, remaining) or [
                        Verdict("verdicts", False, "no check was run")
                    ]
                except Exception as exc:  # noqa: BLE001 (a check that cannot run is a failed verdict)
                    result.verdicts = [Verdict("verdicts", False, f"the checks failed: {type(exc).__name__}: {exc}")]
                result.timeline.append(
                    {
                        "at": round(clock() - started, 1),
                        "status": "verified",
                        "reason": ", ".join(f"{v.check} {'ok' if v.passed else 'FAILED'}" for v in result.verdicts),
                    }
                )
            if clock() - started > options.timeout_s and not stopping:
                fis.stop_experiment(id=result.experiment_id)
                result.timeline.append(
                    {"at": round(clock() - started, 1), "status": "stop requested", "reason": "timeout"}
                )
                stopping = True
            sleep(options.poll_s)
    except ProbeError:
        pass
    except BaseException as exc:  # noqa: BLE001 (cleaned up below, raised after the summary)
        failure = exc
        result.reason = f"the runner stopped: {type(exc).__name__}: {exc}"
        result.timeline.append({"at": round(clock() - started, 1), "status": "runner stopped", "reason": result.reason})
    finally:
        # The zone back first: an experiment still running when the runner stops is stopped
        # before anything else, so the probes never stop while the zone is out.
        if result.experiment_id and result.status not in ENDED:
            try:
                fis.stop_experiment(id=result.experiment_id)
                result.timeline.append(
                    {"at": round(clock() - started, 1), "status": "stop requested", "reason": "the runner stopped"}
                )
            except Exception:  # noqa: BLE001 (revert below tries again)
                pass
        try:
            if session is not None and probing:
                try:
                    probed = session.finish()
                    expected = list(getattr(session, "expected", ()) or ())
                    result.stores = measure.results(probed.samples, probed.survivors, probed.ended, expected)
                    events = [(t["at"], t["status"]) for t in result.timeline]
                    events += _alarm_events(home, options.prefix, wall_started)
                    (options.out_dir / "timeline.svg").write_text(timeline.svg(probed.samples, probed.ended, events))
                except Exception as exc:  # noqa: BLE001 (whatever the session let through: no evidence)
                    result.timeline.append(
                        {"at": round(clock() - started, 1), "status": "no probe result", "reason": str(exc)}
                    )
                    result.probe_error = result.probe_error or f"the probes' result is lost: {exc}"
        finally:
            # The drill stopped and its shifts cancelled first, then the alarms back: never the
            # alarms on while the zone is still out.
            try:
                result.reverted = steps.revert(fis, shifts, [], options.prefix)
            finally:
                for cloudwatch, chosen in muted:
                    alarm_ops.apply(cloudwatch, "unmute", chosen)
                result.reverted += [f"unmuted {a.name}" for _, chosen in muted for a in chosen]
    try:
        after = take_report("post")
    except Exception:  # noqa: BLE001 (the summary is written regardless)
        if failure is None:
            raise
        after = {}
    _finish(options, result, before, after)
    if failure is not None:
        raise failure
    return result


def _alarm_events(cloudwatch: Any, prefix: str, since: dt.datetime) -> list[tuple[float, str]]:
    """The stack's alarms' state changes over the drill, as timeline events (seconds since the
    run began); none when the history cannot be read (the picture is drawn without them)."""
    try:
        changes = steps.alarm_transitions(cloudwatch, prefix, since, dt.datetime.now(dt.UTC))
    except Exception:  # noqa: BLE001 (a picture without alarms beats none)
        return []
    return [(round((when - since).total_seconds(), 1), label) for when, label in changes]


def _finish(options: RunOptions, result: RunResult, before: dict[str, Any], after: dict[str, Any]) -> RunResult:
    rows, result.regressions = steps.compare(before, after) if after else ([], [])
    (options.out_dir / "comparison.md").write_text(steps.markdown_comparison(rows, result.regressions) + "\n")
    (options.out_dir / "summary.json").write_text(json.dumps(summary(result), indent=2) + "\n")
    (options.out_dir / "summary.md").write_text(markdown(result) + "\n")
    return result


def summary(result: RunResult) -> dict[str, Any]:
    return {
        "zone": result.zone,
        "experimentId": result.experiment_id,
        "status": result.status,
        "reason": result.reason,
        "timeline": result.timeline,
        "stores": measure.as_dict(result.stores),
        "newAlarms": result.regressions,
        "reverted": result.reverted,
        "verdicts": [{"check": v.check, "passed": v.passed, "detail": v.detail} for v in result.verdicts],
        "passed": result.exit_status == 0,
        "probed": bool(result.stores),
        "probeError": result.probe_error,
        "leftOut": result.left_out,
        "skippedActions": result.skipped,
        "skippedRequired": result.skipped_required,
    }


def markdown(result: RunResult) -> str:
    lines = [
        f"# Zone drill of {result.zone}",
        "",
        f"Experiment {result.experiment_id}: **{result.status}** ({result.reason})",
        "",
        "| at (s) | status | reason |",
        "|---|---|---|",
        *(f"| {t['at']} | {t['status']} | {t['reason']} |" for t in result.timeline),
        "",
    ]
    if result.verdicts:
        lines += ["| check | verdict | detail |", "|---|---|---|"]
        lines += [f"| {v.check} | {'pass' if v.passed else 'FAIL'} | {v.detail} |" for v in result.verdicts]
        lines.append("")
    elif result.verdicts_expected:
        lines += ["The verdicts were not taken: the zone was not out long enough.", ""]
    if result.probe_error:
        lines += [f"Probes: {result.probe_error}.", ""]
    for store, why in sorted(result.left_out.items()):
        lines += [f"Not probed: {store} ({why}).", ""]
    if result.skipped:
        lines += [f"Skipped by FIS (no target in the zone): {', '.join(result.skipped)}.", ""]
    if result.skipped_required:
        lines += [f"FAILED: {', '.join(result.skipped_required)} found no target, though named by ARN.", ""]
    if result.stores:
        lines += [measure.markdown(result.stores), ""]
    else:
        lines += ["No probe ran: this drill is no evidence that nothing was lost.", ""]
    lines.append(
        f"Alarms in ALARM after and not before: {', '.join(result.regressions)}"
        if result.regressions
        else "No alarm in ALARM after that was not before."
    )
    verdict = "PASS" if result.exit_status == 0 else "FAIL"
    if verdict == "PASS" and not result.stores:
        verdict = "PASS (the experiment alone: no evidence about data)"
    lines.append(f"Verdict: {verdict}")
    return "\n".join(lines)
