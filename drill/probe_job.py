"""The Kubernetes Job that probes the stores from inside the cluster during one drill (pure).

It runs `python -m drill probe` from the stack's `scanner/drill-probe` image (drill/Dockerfile)
as the `drill` service account, whose Pod Identity role reads the drill users' secrets and writes
under `probes/` in the report bucket (components/drill/probes.py). It mounts the scan Jobs'
repository cache claim, so its file canaries go where the scans read.

Where it runs matters as much as what it does: on the services' on-demand nodes (never spot:
an interruption would end the measurement) outside the zone being drilled (its own node must not
be part of the outage it measures), and never disrupted by Karpenter's consolidation.
"""

from __future__ import annotations

import json
from typing import Any

from components.eks import karpenter_plan
from components.scans.scan_job import DO_NOT_DISRUPT, SCAN_GID, SCAN_UID

CONTAINER = "probe"
CACHE_MOUNT = "/repo-cache"
ZONE_LABEL = "topology.kubernetes.io/zone"
CAPACITY_LABEL = "karpenter.sh/capacity-type"


#: Both Jobs' containers: no escalation, nothing written outside their volumes, no capability.
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _labels(run_id: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": "scanner",
        "app.kubernetes.io/component": "drill",
        "scanner.io/drill-run": run_id,
    }


def job_name(run_id: str) -> str:
    return f"drill-probe-{run_id}"


def manifest(settings: dict[str, Any], image: str, run_id: str, zone: str, region: str, max_minutes: int) -> dict:
    """The Job for run `run_id` of a drill of `zone`: it probes until the runner writes its stop
    marker, or for `max_minutes` at most, and Kubernetes ends it a few minutes after that."""
    labels = _labels(run_id)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(run_id), "namespace": settings["namespace"], "labels": labels},
        "spec": {
            # One attempt: a second pod would start a second, unrelated series of canaries.
            "backoffLimit": 0,
            "activeDeadlineSeconds": (max_minutes + 10) * 60,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels, "annotations": {DO_NOT_DISRUPT: "true"}},
                "spec": {
                    "serviceAccountName": settings["serviceAccount"],
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "nodeSelector": {karpenter_plan.POOL_LABEL: karpenter_plan.SERVICES_POOL},
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": ZONE_LABEL, "operator": "NotIn", "values": [zone]},
                                            {"key": CAPACITY_LABEL, "operator": "NotIn", "values": ["spot"]},
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": SCAN_UID,
                        "runAsGroup": SCAN_GID,
                        "fsGroup": SCAN_GID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": image,
                            "args": ["probe", "--run", run_id, "--max-minutes", str(max_minutes)],
                            "env": [
                                {"name": "DRILL_PROBES", "value": json.dumps(settings, sort_keys=True)},
                                {"name": "AWS_REGION", "value": region},
                                {"name": "AWS_DEFAULT_REGION", "value": region},
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": CONTAINER_SECURITY,
                            "volumeMounts": [
                                {"name": "repo-cache", "mountPath": CACHE_MOUNT},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "repo-cache", "persistentVolumeClaim": {"claimName": settings["claim"]}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def scan_start_name(run_id: str) -> str:
    return f"drill-scan-start-{run_id}"


def scan_start_manifest(settings: dict[str, Any], image: str, run_id: str) -> dict:
    """A Job shaped like a scan's where it matters (the scan pool on spot, its taint tolerated, no
    zone chosen) that does nothing but start: that it succeeds during the drill proves scan
    capacity still comes up, in the zones that are left."""
    labels = _labels(run_id)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": scan_start_name(run_id), "namespace": settings["namespace"], "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 900,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": settings["serviceAccount"],
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "nodeSelector": {karpenter_plan.POOL_LABEL: karpenter_plan.SCAN_POOL},
                    "tolerations": [
                        {
                            "key": karpenter_plan.SCAN_TAINT["key"],
                            "operator": "Equal",
                            "value": karpenter_plan.SCAN_TAINT["value"],
                            "effect": karpenter_plan.SCAN_TAINT["effect"],
                        }
                    ],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": SCAN_UID,
                        "runAsGroup": SCAN_GID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "start",
                            "image": image,
                            "args": ["ready"],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                            "securityContext": CONTAINER_SECURITY,
                        }
                    ],
                },
            },
        },
    }
