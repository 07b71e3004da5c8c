"""`python -m drill run` against AWS under moto (FIS experiments move pending, initiating,
running, completed as they are read): the runbook's steps in order, the revert whatever happens,
and the verdict: a stopped experiment, a timeout or a lost canary fail the drill."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from drill_aws import PREFIX, Shifts, alarm, drill_template
from moto import mock_aws

from drill import __main__ as drill_cli
from drill import run as runner

#: A run with neither probes nor verdicts: what these tests of the steps themselves run.
NOTHING_PROVED = ("--probes", "none", "--no-verdicts")


class MemoryStore:
    """A probe over a dict; `forget` drops canaries as a lost store would."""

    writes = True

    def __init__(self, store: str, forget: int = 0):
        self.store, self.forget = store, forget
        self.held: dict[str, bool] = {}

    def write(self, key: str) -> None:
        self.held[key] = True

    def check(self) -> None:
        pass

    def survivors(self, keys):
        kept = [k for k in keys if k in self.held]
        return set(kept[self.forget :])

    def close(self) -> None:
        pass


@pytest.fixture
def aws():
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        fis = boto3.client("fis", region_name="us-east-1")
        alarm(cloudwatch, f"{PREFIX}-database-primary-cpu")
        drill_template(fis, "us-east-1a")
        drill_template(fis, "us-east-1b")
        yield fis, cloudwatch


def options(tmp_path: Path, **changes) -> runner.RunOptions:
    return runner.RunOptions(prefix=PREFIX, zone="us-east-1b", out_dir=tmp_path / "drill", poll_s=0.01, **changes)


def test_a_drill_runs_the_runbook_and_passes(aws, tmp_path):
    fis, cloudwatch = aws
    shifts = Shifts([])
    result = runner.run(fis, shifts, [cloudwatch], options(tmp_path, mute=True), probes=[MemoryStore("cache")])
    assert result.exit_status == 0 and result.status == "completed" and result.zone == "us-east-1b"
    assert [t["status"] for t in result.timeline][-2:] == ["running", "completed"]
    # Muted for the drill, unmuted after: nothing left muted.
    described = cloudwatch.describe_alarms(AlarmNames=[f"{PREFIX}-database-primary-cpu"])["MetricAlarms"][0]
    assert described["ActionsEnabled"] is True and f"unmuted {PREFIX}-database-primary-cpu" in result.reverted
    assert result.stores["cache"].acknowledged > 0 and result.stores["cache"].lost == ()
    out = tmp_path / "drill"
    assert {p.name for p in out.iterdir()} >= {
        "pre.json",
        "post.json",
        "comparison.md",
        "summary.json",
        "summary.md",
        "timeline.svg",
    }
    assert "cache" in (out / "timeline.svg").read_text() and "completed" in (out / "timeline.svg").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is True and summary["experimentId"] == result.experiment_id
    assert "Verdict: PASS" in (out / "summary.md").read_text()


def test_a_lost_canary_fails_the_drill(aws, tmp_path):
    fis, cloudwatch = aws
    result = runner.run(fis, Shifts([]), [cloudwatch], options(tmp_path), probes=[MemoryStore("queue", forget=1)])
    assert result.status == "completed" and len(result.stores["queue"].lost) == 1 and result.exit_status == 1


class Stubborn:
    """moto's FIS, but the experiment runs until it is stopped, or ends as `ends`."""

    def __init__(self, fis, ends: str | None = None):
        self.fis, self.ends, self.stopped = fis, ends, False

    def __getattr__(self, name):
        return getattr(self.fis, name)

    def get_experiment(self, id):  # noqa: A002 (boto3's name)
        if self.stopped:
            return {"experiment": {"id": id, "state": {"status": "stopped", "reason": "Experiment stopped"}}}
        if self.ends:
            return {"experiment": {"id": id, "state": {"status": self.ends, "reason": "Stop condition triggered"}}}
        return {"experiment": {"id": id, "state": {"status": "running", "reason": "Experiment is running"}}}

    def stop_experiment(self, id):  # noqa: A002
        self.stopped = True
        return {"experiment": {"id": id, "state": {"status": "stopping"}}}


def test_a_stop_condition_fails_the_drill_and_the_revert_still_runs(aws, tmp_path):
    fis, cloudwatch = aws
    result = runner.run(Stubborn(fis, ends="stopped"), Shifts([]), [cloudwatch], options(tmp_path, mute=True))
    assert (result.status, result.reason, result.exit_status) == ("stopped", "Stop condition triggered", 1)
    assert cloudwatch.describe_alarms()["MetricAlarms"][0]["ActionsEnabled"] is True


def test_a_drill_past_its_timeout_is_stopped(aws, tmp_path):
    fis, cloudwatch = aws
    stubborn = Stubborn(fis)
    clock = iter(range(0, 10_000, 30))
    result = runner.run(stubborn, Shifts([]), [cloudwatch], options(tmp_path, timeout_s=60), clock=lambda: next(clock))
    assert stubborn.stopped and result.status == "stopped" and result.exit_status == 1
    assert {"status": "stop requested", "reason": "timeout"} in [
        {k: t[k] for k in ("status", "reason")} for t in result.timeline
    ]


def test_an_experiment_aws_refuses_to_start_leaves_nothing_muted(aws, tmp_path, capsys):
    fis, cloudwatch = aws

    class Refusing(Stubborn):
        def start_experiment(self, **_):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "no"}}, "StartExperiment")

    clients = {"fis": Refusing(fis), "cloudwatch": cloudwatch, "arc-zonal-shift": Shifts([])}
    argv = ["run", "--prefix", PREFIX, "--zone", "us-east-1a", "--out-dir", str(tmp_path / "d"), "--mute-alerts"]
    assert drill_cli.main([*argv, *NOTHING_PROVED], clients=clients) == 3
    assert "ValidationException" in capsys.readouterr().err
    assert cloudwatch.describe_alarms()["MetricAlarms"][0]["ActionsEnabled"] is True


def test_the_command_runs_a_random_zone_and_refuses_an_unknown_one(aws, tmp_path, capsys):
    fis, cloudwatch = aws
    clients = {"fis": fis, "cloudwatch": cloudwatch, "arc-zonal-shift": Shifts([])}
    argv = [
        "run",
        "--prefix",
        PREFIX,
        "--zone",
        "random",
        "--seed",
        "1",
        "--out-dir",
        str(tmp_path / "d"),
        "--poll",
        "0.01",
        *NOTHING_PROVED,
    ]
    assert drill_cli.main(argv, clients=clients) == 0
    assert "Verdict: PASS" in capsys.readouterr().out
    argv = ["run", "--prefix", PREFIX, "--zone", "us-east-1c", "--out-dir", str(tmp_path / "e"), *NOTHING_PROVED]
    assert drill_cli.main(argv, clients=clients) == 2
    assert "us-east-1c has no drill template (zones: us-east-1a, us-east-1b)" in capsys.readouterr().err


class Refused(MemoryStore):
    def write(self, key: str) -> None:
        raise ConnectionError("TLS required")


def test_a_store_that_acknowledged_nothing_proved_nothing_and_fails(aws, tmp_path):
    fis, cloudwatch = aws
    result = runner.run(fis, Shifts([]), [cloudwatch], options(tmp_path), probes=[Refused("cache")])
    assert result.status == "completed" and result.stores["cache"].acknowledged == 0 and result.exit_status == 1


def test_without_probes_the_summary_says_nothing_was_proved(aws, tmp_path):
    fis, cloudwatch = aws
    result = runner.run(fis, Shifts([]), [cloudwatch], options(tmp_path))
    assert "No probe ran" in runner.markdown(result) and runner.summary(result)["probed"] is False


# ----- what goes wrong around the experiment ------------------------------------------------


class Session:
    """A probe session whose `finish` raises what a real one may let through (a connection error)."""

    left_out: dict[str, str] = {}
    expected = ["database"]

    def __init__(self, error: BaseException | None = None):
        self.error = error
        self.order: list[str] = []

    def start(self):
        self.order.append("start")

    def trouble(self):
        return None

    def finish(self):
        self.order.append("finish")
        if self.error:
            raise self.error
        from drill.remote import Probed

        return Probed([], {}, 1.0)


def test_a_session_error_at_the_end_still_reverts_unmutes_and_writes_the_summary(aws, tmp_path):
    from botocore.exceptions import EndpointConnectionError

    fis, cloudwatch = aws
    session = Session(EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com"))
    result = runner.run(fis, Shifts([]), [cloudwatch], options(tmp_path, mute=True), probes=session)
    assert result.exit_status == 1 and "the probes' result is lost: Could not connect" in result.probe_error
    assert cloudwatch.describe_alarms()["MetricAlarms"][0]["ActionsEnabled"] is True
    assert json.loads((tmp_path / "drill" / "summary.json").read_text())["passed"] is False


def test_a_store_that_never_answered_once_is_judged_and_fails(aws, tmp_path):
    """The session probed `database`, and no sample of it came back (a probe stuck in its first call)."""
    fis, cloudwatch = aws
    result = runner.run(fis, Shifts([]), [cloudwatch], options(tmp_path), probes=Session())
    assert set(result.stores) == {"database"} and not result.stores["database"].passed and result.exit_status == 1


def test_the_runner_stopping_mid_experiment_stops_it_before_the_probes(aws, tmp_path):
    fis, cloudwatch = aws
    session = Session()
    calls = {"n": 0}

    def interrupted(_):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    class Watching(Stubborn):
        def stop_experiment(self, id):  # noqa: A002
            session.order.append("stop experiment")
            return super().stop_experiment(id)

    watching = Watching(fis)
    with pytest.raises(KeyboardInterrupt):
        runner.run(watching, Shifts([]), [cloudwatch], options(tmp_path, mute=True), probes=session, sleep=interrupted)
    assert session.order[:3] == ["start", "stop experiment", "finish"] and watching.stopped
    assert cloudwatch.describe_alarms()["MetricAlarms"][0]["ActionsEnabled"] is True
    summary = json.loads((tmp_path / "drill" / "summary.json").read_text())
    assert summary["passed"] is False and "KeyboardInterrupt" in summary["reason"]


def test_an_active_zonal_shift_on_what_the_drill_shifts_keeps_it_from_starting(aws, tmp_path):
    from drill_aws import CLUSTER

    fis, cloudwatch = aws
    practice = {
        "zonalShiftId": "p1",
        "resourceIdentifier": CLUSTER,
        "awayFrom": "use1-az1",
        "status": "ACTIVE",
        "shiftType": "PRACTICE_RUN",
    }
    session = Session()
    result = runner.run(fis, Shifts([practice]), [cloudwatch], options(tmp_path), probes=session)
    assert result.experiment_id == "" and result.exit_status == 1 and session.order == []
    assert "a zonal shift is already active on" in result.reason and "PRACTICE_RUN" in result.reason
    assert fis.list_experiments()["experiments"] == []


def test_an_action_named_by_arn_that_fis_skipped_fails_the_drill(aws, tmp_path):
    """With emptyTargetResolutionMode skip, an action that found nothing is skipped and the
    experiment still completes: one whose targets are named by ARN should always find them."""
    fis, cloudwatch = aws

    class Skipping(Stubborn):
        def get_experiment(self, id):  # noqa: A002
            return {
                "experiment": {
                    "id": id,
                    "state": {"status": "completed", "reason": ""},
                    "actions": {"shift-away": {"state": {"status": "skipped"}}},
                }
            }

    result = runner.run(Skipping(fis), Shifts([]), [cloudwatch], options(tmp_path), probes=[MemoryStore("cache")])
    assert result.status == "completed" and result.skipped_required == ["shift-away"] and result.exit_status == 1
    assert "FAILED: shift-away found no target, though named by ARN." in (tmp_path / "drill" / "summary.md").read_text()


def test_the_timeline_shows_the_alarms_that_changed_during_the_drill(aws, tmp_path):
    import datetime as dt

    fis, cloudwatch = aws

    class WithHistory:
        """moto's CloudWatch, with one alarm having gone into ALARM and back during the drill."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def get_paginator(self, name):
            if name != "describe_alarm_history":
                return self.real.get_paginator(name)
            now = dt.datetime.now(dt.UTC)

            def item(state_from, state_to, seconds):
                data = {"oldState": {"stateValue": state_from}, "newState": {"stateValue": state_to}}
                return {
                    "AlarmName": f"{PREFIX}-zone-b-impaired",
                    "Timestamp": now + dt.timedelta(seconds=seconds),
                    "HistoryData": json.dumps(data),
                }

            class Pages:
                def paginate(self, **kwargs):
                    assert kwargs["AlarmNamePrefix"] == PREFIX and kwargs["HistoryItemType"] == "StateUpdate"
                    return [{"AlarmHistoryItems": [item("OK", "ALARM", 1), item("ALARM", "OK", 2)]}]

            return Pages()

    result = runner.run(fis, Shifts([]), [WithHistory(cloudwatch)], options(tmp_path), probes=[MemoryStore("cache")])
    picture = (tmp_path / "drill" / "timeline.svg").read_text()
    assert result.exit_status == 0
    assert (
        f"{PREFIX}-zone-b-impaired: OK -&gt; ALARM" in picture
        and f"{PREFIX}-zone-b-impaired: ALARM -&gt; OK" in picture
    )
