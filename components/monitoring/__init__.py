"""Monitoring: the alarm plan, its composites, and (to come) the alarms, topics and dashboard declared from it.

Kept empty: importing a pure planner must not import Pulumi."""
