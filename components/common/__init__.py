"""Pieces several tiers share: IAM documents, security-group rules, pinned Helm releases, every
pinned version, the weekday-peak schedule.

Kept empty: importing a pure planner must not import Pulumi."""
