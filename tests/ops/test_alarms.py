"""Muting and unmuting a named set of a stack's alarms (ops/alarms.py) against CloudWatch under
moto: the selected alarms' actions disabled, then enabled, and nothing else changed (not their
state, not another stack's alarms, not the alarms outside the selection)."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest
from conftest import ROOT
from moto import mock_aws

from ops import alarms
from policies.common import contract

TOPIC = "arn:aws:sns:us-east-1:123456789012:scanner-prod-page"
#: (name, tier, zone) of the alarms made for each test; one of another stack.
MADE = [
    ("scanner-prod-database-primary-cpu", "data", None),
    ("scanner-prod-cache-cpu-us-east-1a", "data", "us-east-1a"),
    ("scanner-prod-nat-port-allocation-us-east-1a", "network", "us-east-1a"),
    ("scanner-prod-nat-port-allocation-us-east-1b", "network", "us-east-1b"),
    ("scanner-prod-queue-sast-backlog", "scans", None),
    # A zone's composite in the stack; moto has no composite alarms (PutCompositeAlarm is not
    # implemented), so a metric alarm stands in for it: the tool lists both kinds in one call.
    ("scanner-prod-zone-us-east-1a", None, "us-east-1a"),
    ("scanner-dev-database-primary-cpu", "data", None),
]


@pytest.fixture
def cloudwatch():
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        for name, tier, zone in MADE:
            tags = [{"Key": contract.TIER_TAG, "Value": tier}] if tier else []
            tags += [{"Key": contract.ZONE_TAG, "Value": zone}] if zone else []
            client.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/RDS",
                MetricName="CPUUtilization",
                Statistic="Average",
                Period=60,
                EvaluationPeriods=5,
                Threshold=90,
                ComparisonOperator="GreaterThanThreshold",
                AlarmActions=[TOPIC],
                Tags=tags,
            )
        yield client


def described(client) -> dict[str, dict]:
    page = client.describe_alarms(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return {a["AlarmName"]: a for a in page["MetricAlarms"] + page["CompositeAlarms"]}


def without_actions_flag(alarm: dict) -> dict:
    return {k: v for k, v in alarm.items() if k not in ("ActionsEnabled", "AlarmConfigurationUpdatedTimestamp")}


def test_muting_a_zone_disables_its_alarms_actions_and_changes_nothing_else(cloudwatch, capsys):
    before = described(cloudwatch)
    assert alarms.main(["mute", "--prefix", "scanner-prod", "--zone", "us-east-1a"], cloudwatch) == 0
    after = described(cloudwatch)
    muted = {name for name, a in after.items() if not a["ActionsEnabled"]}
    assert muted == {
        "scanner-prod-cache-cpu-us-east-1a",
        "scanner-prod-nat-port-allocation-us-east-1a",
        "scanner-prod-zone-us-east-1a",
    }
    assert {n: without_actions_flag(a) for n, a in after.items()} == {
        n: without_actions_flag(a) for n, a in before.items()
    }
    assert "3 of 3 selected alarm(s) muted" in capsys.readouterr().out

    assert alarms.main(["unmute", "--prefix", "scanner-prod", "--zone", "us-east-1a"], cloudwatch) == 0
    assert all(a["ActionsEnabled"] for a in described(cloudwatch).values())


def test_the_whole_stack_is_muted_and_another_stack_is_not(cloudwatch):
    assert alarms.main(["mute", "--prefix", "scanner-prod"], cloudwatch) == 0
    enabled = {n: a["ActionsEnabled"] for n, a in described(cloudwatch).items()}
    assert enabled.pop("scanner-dev-database-primary-cpu") is True
    assert set(enabled.values()) == {False}


def test_tiers_and_names_narrow_the_selection(cloudwatch, capsys):
    assert (
        alarms.main(["mute", "--prefix", "scanner-prod", "--tier", "network", "--name", "*-us-east-1b"], cloudwatch)
        == 0
    )
    assert {n for n, a in described(cloudwatch).items() if not a["ActionsEnabled"]} == {
        "scanner-prod-nat-port-allocation-us-east-1b"
    }
    capsys.readouterr()
    # Already muted: a second mute changes nothing and says so.
    assert alarms.main(["mute", "--prefix", "scanner-prod", "--tier", "network"], cloudwatch) == 0
    assert "1 of 2 selected alarm(s) muted" in capsys.readouterr().out


def test_a_dry_run_changes_nothing(cloudwatch, capsys):
    assert alarms.main(["mute", "--prefix", "scanner-prod", "--dry-run"], cloudwatch) == 0
    assert all(a["ActionsEnabled"] for a in described(cloudwatch).values())
    assert "would be muted: scanner-prod-queue-sast-backlog" in capsys.readouterr().out


def test_more_than_a_hundred_alarms_go_in_batches():
    calls = []

    class Recorder:
        def disable_alarm_actions(self, AlarmNames):  # noqa: N803 (boto3's names)
            calls.append(len(AlarmNames))

    alarms.apply(Recorder(), "mute", [alarms.Alarm(f"a{i}", f"arn:{i}", True) for i in range(250)])
    assert calls == [100, 100, 50]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mute"], "error: arguments: the following arguments are required: --prefix"),
        (["silence", "--prefix", "scanner-prod"], "error: arguments: argument action: invalid choice: 'silence'"),
        (["mute", "--prefix", "Scanner Prod"], "error: --prefix: 'Scanner Prod' is not a stack name prefix"),
        (["mute", "--prefix", "scanner-prod", "--zone", "east"], "error: --zone: 'east' is not an availability zone"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "ops.alarms", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


def _alarm(client, name: str, tags: list[dict]) -> None:
    client.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/CloudFront",
        MetricName="5xxErrorRate",
        Statistic="Average",
        Period=300,
        EvaluationPeriods=2,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[TOPIC],
        Tags=tags,
    )


def test_a_stack_outside_us_east_1_has_its_global_alarms_muted_there_too(capsys):
    """dev lives in eu-west-1; its CloudFront alarm and the edge tier's composite in us-east-1."""
    with mock_aws():
        home = boto3.client("cloudwatch", region_name="eu-west-1")
        east = boto3.client("cloudwatch", region_name="us-east-1")
        _alarm(home, "scanner-dev-database-primary-cpu", [{"Key": contract.TIER_TAG, "Value": "data"}])
        _alarm(east, "scanner-dev-dashboard-5xx", [{"Key": contract.TIER_TAG, "Value": "edge"}])
        _alarm(east, "scanner-prod-dashboard-5xx", [{"Key": contract.TIER_TAG, "Value": "edge"}])
        assert alarms.main(["mute", "--prefix", "scanner-dev", "--region", "eu-west-1"]) == 0
        assert {a["AlarmName"]: a["ActionsEnabled"] for a in home.describe_alarms()["MetricAlarms"]} == {
            "scanner-dev-database-primary-cpu": False
        }
        assert {a["AlarmName"]: a["ActionsEnabled"] for a in east.describe_alarms()["MetricAlarms"]} == {
            "scanner-dev-dashboard-5xx": False,
            "scanner-prod-dashboard-5xx": True,
        }
        assert "2 of 2 selected alarm(s) muted" in capsys.readouterr().out


def test_muting_a_zone_says_the_tier_composites_still_notify(cloudwatch, capsys):
    assert alarms.main(["mute", "--prefix", "scanner-prod", "--zone", "us-east-1a"], cloudwatch=cloudwatch) == 0
    out = capsys.readouterr().out
    assert "the tier composites still notify" in out and "--name 'tier-*'" in out
    # Without a zone there is nothing to say.
    alarms.main(["mute", "--prefix", "scanner-prod"], cloudwatch=cloudwatch)
    assert "tier composites" not in capsys.readouterr().out
