"""The drill's steps against AWS APIs under moto (drill/aws.py through `python -m drill`): the
metric report, the comparison of two, and the revert that stops the stack's drills, cancels their
zonal shifts and unmutes the alarms, and does nothing the second time. moto has no ARC zonal
shift: a stand-in of its two calls records what is cancelled."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from drill_aws import CLUSTER, ELSEWHERE, PREFIX, Shifts, alarm, drill_template
from moto import mock_aws

from drill import __main__ as drill_cli


@pytest.fixture
def aws():
    with mock_aws():
        yield {
            "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
            "fis": boto3.client("fis", region_name="us-east-1"),
        }


def test_the_report_holds_each_alarm_s_state_and_metric(aws, tmp_path, capsys):
    alarm(aws["cloudwatch"], f"{PREFIX}-database-primary-cpu")
    alarm(aws["cloudwatch"], "scanner-dev-database-primary-cpu")
    now = dt.datetime.now(dt.UTC)
    aws["cloudwatch"].put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "scanner-prod-postgres"}],
                "Timestamp": now - dt.timedelta(minutes=m),
                "Value": v,
            }
            for m, v in ((3, 20.0), (2, 40.0), (1, 60.0))
        ],
    )
    out = tmp_path / "pre.json"
    assert drill_cli.main(["report", "--prefix", PREFIX, "--out", str(out)], clients=aws) == 0
    found = json.loads(out.read_text())
    assert list(found["alarms"]) == ["database-primary-cpu"]  # the other stack's is not ours
    cpu = found["alarms"]["database-primary-cpu"]
    assert (cpu["points"], cpu["min"], cpu["max"], cpu["average"]) == (3, 20.0, 60.0, 40.0)
    assert cpu["threshold"] == 90.0 and cpu["state"] in ("OK", "INSUFFICIENT_DATA")
    assert "| database-primary-cpu |" in out.with_suffix(".md").read_text()
    assert "1 alarm(s) reported" in capsys.readouterr().out


def report(states: dict[str, str]) -> dict:
    return {
        "prefix": PREFIX,
        "start": "s",
        "end": "e",
        "alarms": {n: {"state": s, "average": 1.0} for n, s in states.items()},
    }


def test_compare_flags_an_alarm_that_went_into_alarm(tmp_path, capsys):
    before, after = tmp_path / "pre.json", tmp_path / "post.json"
    before.write_text(json.dumps(report({"a": "OK", "b": "ALARM", "c": "OK"})))
    after.write_text(json.dumps(report({"a": "ALARM", "b": "ALARM", "c": "OK"})))
    out = tmp_path / "comparison.md"
    assert drill_cli.main(["compare", str(before), str(after), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "1 alarm(s) in ALARM after and not before: a" in text
    assert "| a **new alarm** | OK | ALARM |" in out.read_text()
    after.write_text(json.dumps(report({"a": "OK", "b": "OK", "c": "OK"})))
    assert drill_cli.main(["compare", str(before), str(after)]) == 0


def test_revert_stops_the_drill_cancels_its_shift_unmutes_and_is_safe_twice(aws, capsys):
    fis, cloudwatch = aws["fis"], aws["cloudwatch"]
    ours, theirs = drill_template(fis), drill_template(fis, prefix="scanner-dev")
    running = fis.start_experiment(clientToken="run", experimentTemplateId=ours)["experiment"]["id"]
    other = fis.start_experiment(clientToken="other", experimentTemplateId=theirs)["experiment"]["id"]
    shifts = Shifts(
        [
            {"zonalShiftId": "zs-1", "resourceIdentifier": CLUSTER, "awayFrom": "use1-az1", "status": "ACTIVE"},
            {"zonalShiftId": "zs-2", "resourceIdentifier": ELSEWHERE, "awayFrom": "use1-az1", "status": "ACTIVE"},
        ]
    )
    alarm(cloudwatch, f"{PREFIX}-database-primary-cpu")
    cloudwatch.disable_alarm_actions(AlarmNames=[f"{PREFIX}-database-primary-cpu"])
    clients = {**aws, "arc-zonal-shift": shifts}

    assert drill_cli.main(["revert", "--prefix", PREFIX, "--dry-run"], clients=clients) == 0
    # moto moves an experiment on as it is read (pending, initiating, running): never to stopping.
    assert fis.get_experiment(id=running)["experiment"]["state"]["status"] in ("pending", "initiating", "running")
    assert shifts.cancelled == []
    assert "would stop experiment" in capsys.readouterr().out

    assert drill_cli.main(["revert", "--prefix", PREFIX], clients=clients) == 0
    text = capsys.readouterr().out
    assert fis.get_experiment(id=running)["experiment"]["state"]["status"] in ("stopping", "stopped")
    assert fis.get_experiment(id=other)["experiment"]["state"]["status"] not in ("stopping", "stopped")
    assert shifts.cancelled == ["zs-1"]
    described = cloudwatch.describe_alarms(AlarmNames=[f"{PREFIX}-database-primary-cpu"])["MetricAlarms"][0]
    assert described["ActionsEnabled"] is True
    assert "revert: 3 change(s)" in text

    assert drill_cli.main(["revert", "--prefix", PREFIX], clients=clients) == 0
    assert "revert: 0 change(s)" in capsys.readouterr().out and shifts.cancelled == ["zs-1"]


def test_aws_refusing_a_call_is_one_line_exit_3(aws, capsys):
    class Refusing:
        def get_paginator(self, name):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "ListExperimentTemplates")

    assert (
        drill_cli.main(["revert", "--prefix", PREFIX], clients={**aws, "fis": Refusing(), "arc-zonal-shift": None}) == 3
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: AWS:") and "AccessDenied" in err and "\n" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "--prefix", "Scanner!", "--out", "x.json"], "--prefix: 'Scanner!' is not a stack name prefix"),
        (["report", "--prefix", PREFIX, "--out", "/no/such/dir/x.json"], "--out: /no/such/dir is not a directory"),
        (["report", "--prefix", PREFIX, "--out", "x.json", "--minutes", "0"], "--minutes: 0 is not between 1 and 1440"),
        (["compare", "/no/pre.json", "/no/post.json"], "no such report"),
        (["revert"], "the following arguments are required: --prefix"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(argv, message, capsys):
    assert drill_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


class OneInsightsQueryACall:
    """CloudWatch as GetMetricData documents it: at most one Metrics Insights query per call."""

    def __init__(self, alarms):
        self.alarms, self.calls = alarms, []

    def get_paginator(self, name):
        outer = self

        class Pages:
            def paginate(self, **kwargs):
                if name == "describe_alarms":
                    return [{"MetricAlarms": outer.alarms}]
                queries = kwargs["MetricDataQueries"]
                outer.calls.append([q["Id"] for q in queries])
                if sum(str(q.get("Expression", "")).startswith("SELECT") for q in queries) > 1:
                    raise ClientError({"Error": {"Code": "ValidationError", "Message": "one query"}}, "GetMetricData")
                return [
                    {"MetricDataResults": [{"Id": q["Id"], "Values": [1.0, 3.0]} for q in queries if q["ReturnData"]]}
                ]

        return Pages()


def test_metrics_insights_alarms_are_fetched_one_a_call_and_the_rest_together():
    select = "SELECT MAX(UnHealthyHostCount) FROM SCHEMA(\"AWS/ApplicationELB\", LoadBalancer)"
    alarms = [
        {
            "AlarmName": f"{PREFIX}-api-unhealthy-{z}",
            "Metrics": [{"Id": "e1", "Expression": select, "Period": 60, "ReturnData": True}],
        }
        for z in ("a", "b")
    ] + [
        {
            "AlarmName": f"{PREFIX}-cpu",
            "Namespace": "AWS/RDS",
            "MetricName": "CPUUtilization",
            "Statistic": "Average",
            "Period": 60,
        },
        {
            "AlarmName": f"{PREFIX}-no-consumer",
            "Metrics": [
                {"Id": "e1", "Expression": "IF(m1 > 0 AND m10 < 1, 1, 0)", "ReturnData": True},
                {
                    "Id": "m1",
                    "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "R"}, "Period": 60, "Stat": "Maximum"},
                },
                {
                    "Id": "m10",
                    "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "C"}, "Period": 60, "Stat": "Maximum"},
                },
            ],
        },
    ]
    from drill import aws as steps

    fake = OneInsightsQueryACall(alarms)
    now = dt.datetime.now(dt.UTC)
    found = steps.report(fake, PREFIX, now - dt.timedelta(hours=1), now)
    assert all(a["points"] == 2 and "error" not in a for a in found["alarms"].values()), found
    assert all(sum(i.count("_e1") for i in call) <= 2 for call in fake.calls)
    # Ids renamed whole: m1 is not a prefix of m10.
    assert len(fake.calls) == 3


def test_revert_leaves_an_operator_s_shift_and_a_shift_that_just_ended(aws, capsys):
    fis = aws["fis"]
    drill_template(fis)

    class Racing(Shifts):
        def cancel_zonal_shift(self, zonalShiftId):  # noqa: N803
            raise ClientError({"Error": {"Code": "ConflictException", "Message": "over"}}, "CancelZonalShift")

    shifts = Racing(
        [
            {
                "zonalShiftId": "zs-fis",
                "resourceIdentifier": CLUSTER,
                "shiftType": "FIS_EXPERIMENT",
                "status": "ACTIVE",
            },
            {"zonalShiftId": "zs-ops", "resourceIdentifier": CLUSTER, "shiftType": "ZONAL_SHIFT", "status": "ACTIVE"},
        ]
    )
    assert drill_cli.main(["revert", "--prefix", PREFIX], clients={**aws, "arc-zonal-shift": shifts}) == 0
    out = capsys.readouterr().out
    assert "zs-ops" not in out and "revert: 0 change(s)" in out
