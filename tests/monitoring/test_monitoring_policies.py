"""Monitoring coverage rules of the placement pack through the real program and the gRPC gate:
prod passes; a database without an alarm, a zone without its composite, an alarm without an action
and an alarm acting on a topic outside the stack are each refused by name, in both modes (the gate
of record, tests/packs/test_gate_of_record.py, runs them with the other tiers' faults)."""

import dataclasses

import pulumi_aws as aws
from conftest import change


def database_without_alarms(monkeypatch):
    """The alarm plan loses its database alarms (the proxy's stays): the primary and the replica
    are watched by nothing."""
    from components.monitoring import alarm_plan

    original = alarm_plan._database
    monkeypatch.setattr(
        alarm_plan, "_database", lambda stack, t: [a for a in original(stack, t) if a.name.startswith("database-proxy")]
    )


def zone_without_composite(monkeypatch):
    """The plan's composites without us-east-1b's."""
    from components.monitoring import alarm_plan

    original = alarm_plan.plan

    def plan(stack, limits=None):
        planned = original(stack, limits)
        kept = tuple(c for c in planned.composites if c.name != "zone-us-east-1b")
        return dataclasses.replace(planned, composites=kept)

    monkeypatch.setattr(alarm_plan, "plan", plan)


FAULTS = {
    "database-without-alarms": (
        database_without_alarms,
        {"monitoring-resources-alarmed"},
        "no alarm with an action watches it",
    ),
    "zone-without-composite": (
        zone_without_composite,
        {"monitoring-zone-composites"},
        "zone us-east-1b has no zone-impaired composite alarm",
    ),
    "alarm-without-action": (
        change(aws.cloudwatch.MetricAlarm, "alarms-cache-cpu-us-east-1a", alarm_actions=[], ok_actions=[]),
        {"alarms-act-on-stack-topics"},
        "has no alarm action",
    ),
    "alarm-to-a-stranger-s-topic": (
        change(
            aws.cloudwatch.MetricAlarm,
            "alarms-nat-dropped-packets-us-east-1a",
            alarm_actions=["arn:aws:sns:us-east-1:210987654321:someone-else"],
        ),
        {"alarms-act-on-stack-topics"},
        "which is no SNS topic of this stack",
    ),
}


def representative_faults() -> dict:
    """Every fault of the table (each touches its own alarms), judged with the other tiers' in one
    run of the program through the pack processes, in "preview" and "update" mode."""
    return dict(FAULTS)
