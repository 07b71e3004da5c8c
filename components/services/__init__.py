"""The services tier: the long-running services, their pure manifests, and the cluster platform under them.

Kept empty: importing a pure planner must not import Pulumi."""
