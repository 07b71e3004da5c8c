"""The zone drill's rule of the placement pack through the real program and the gRPC gate: prod
passes; a zone without its drill, a drill that spares the database, and a drill without stop
conditions are each refused by name, in both modes ("preview" and "update", through the gate of
record, tests/packs/test_gate_of_record.py, with the other tiers' faults)."""

import dataclasses

import pulumi_aws as aws
from conftest import change


def zone_without_drill(monkeypatch):
    """The drill plans every zone but us-east-1a."""
    from components.drill import drill_plan

    original = drill_plan.plan
    monkeypatch.setattr(drill_plan, "plan", lambda stack: [p for p in original(stack) if p.zone != "us-east-1a"])


def drill_spares_the_database(monkeypatch):
    """us-east-1b's drill without its database failover."""
    from components.drill import drill_plan

    original = drill_plan.plan_zone

    def plan_zone(stack, zone):
        planned = original(stack, zone)
        if zone != "us-east-1b":
            return planned
        return dataclasses.replace(planned, actions=tuple(a for a in planned.actions if a.name != "fail-over-database"))

    monkeypatch.setattr(drill_plan, "plan_zone", plan_zone)


FAULTS = {
    "zone-without-drill": (
        zone_without_drill,
        {"drill-every-zone"},
        "zone us-east-1a has no zone-drill experiment template",
    ),
    "drill-spares-the-database": (
        drill_spares_the_database,
        {"drill-every-zone"},
        "the zone drill of us-east-1b leaves out the database (aws:rds:reboot-db-instances with forceFailover)",
    ),
    "drill-without-stop-conditions": (
        change(
            aws.fis.ExperimentTemplate,
            "drill-us-east-1c",
            stop_conditions=[aws.fis.ExperimentTemplateStopConditionArgs(source="none")],
        ),
        {"drill-every-zone"},
        "the zone drill of us-east-1c has no alarm as a stop condition",
    ),
}


def representative_faults() -> dict:
    """Every fault of the table (each touches its own zone's template), judged with the other
    tiers' in one run of the program through the pack processes, in both modes."""
    return dict(FAULTS)
