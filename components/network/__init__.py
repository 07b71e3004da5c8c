"""The network tier: the VPC across every zone, and its pure CIDR plan.

Kept empty: importing a pure planner must not import Pulumi."""
