"""The scan ScaledJobs' manifests, built by pure functions: one Job per waiting request.

The component (scan_scaling.py) declares them; the capacity model and the tests read the same
settings from here. No resource is declared here: a manifest is a plain dict.
"""

from __future__ import annotations

from typing import Any

TRIGGER_AUTH = "rabbitmq-management"
#: Seconds between two looks at the queue: the longest a request waits before its Job exists.
POLLING_INTERVAL = 10


def queue_name(prefix: str, engine: str) -> str:
    return f"{prefix}.{engine}"


def trigger_authentication(secret_arn: str, region: str) -> dict[str, Any]:
    """Broker management URL and credentials, read by KEDA from its own broker user's secret
    (a monitoring user: it reads queue depth and can neither publish nor consume)."""
    return {
        "podIdentity": {"provider": "aws"},
        "region": region,
        "secrets": [
            {"parameter": "host", "name": secret_arn, "secretKey": "managementUrl"},
            {"parameter": "username", "name": secret_arn, "secretKey": "username"},
            {"parameter": "password", "name": secret_arn, "secretKey": "password"},
        ],
    }


def scaled_job_spec(engine: str, queue: str, max_jobs: int, job_spec: Any, vhost: str = "/") -> dict[str, Any]:
    """One Job per waiting request (QueueLength, value 1), up to `max_jobs` at once, zero when the
    queue is empty. `accurate` counts Jobs that have not become Ready as already serving a
    request, so slow starts (a node being launched, the fetch step) do not start extra Jobs."""
    return {
        "jobTargetRef": job_spec,
        "pollingInterval": POLLING_INTERVAL,
        "minReplicaCount": 0,
        "maxReplicaCount": max_jobs,
        "successfulJobsHistoryLimit": 5,
        "failedJobsHistoryLimit": 10,
        "scalingStrategy": {"strategy": "accurate", "pendingPodConditions": ["PodScheduled", "Ready"]},
        # A changed ScaledJob leaves running scans alone.
        "rollout": {"strategy": "gradual"},
        "triggers": [
            {
                "type": "rabbitmq",
                "metadata": {
                    "protocol": "http",
                    "queueName": queue,
                    "vhostName": vhost,
                    "mode": "QueueLength",
                    "value": "1",
                },
                "authenticationRef": {"name": TRIGGER_AUTH},
            }
        ],
    }
