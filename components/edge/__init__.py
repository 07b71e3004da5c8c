"""The edge tier: the dashboard's CDN.

Kept empty: importing a pure planner must not import Pulumi."""
