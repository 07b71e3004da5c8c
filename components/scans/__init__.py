"""The scan tier: the repository cache, the scan identity and token pool, the registry, the Job
template and the queue-driven ScaledJobs.

Kept empty: importing a pure planner must not import Pulumi."""
