"""What the drill runner asks of the cluster, through the Kubernetes API (the `kubernetes`
client, with the kubeconfig the stack exports: `pulumi stack output kubeconfig --show-secrets`).
Its token comes from `aws eks get-token`, so the runner's AWS identity needs an access entry
on the cluster, as the deploy does.

Objects go in as plain manifests (drill/probe_job.py); what comes back is reduced to what the
drill decides on: why a Job failed, whether it succeeded, and per Deployment the zones of its
ready pods.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

ZONE_LABEL = "topology.kubernetes.io/zone"


class ClusterApi:
    def __init__(self, kubeconfig: str):
        from kubernetes import client, config

        api_client = config.new_client_from_config(config_file=kubeconfig)
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)

    def create_job(self, manifest: dict[str, Any]) -> None:
        self._batch.create_namespaced_job(manifest["metadata"]["namespace"], manifest)

    def _job(self, namespace: str, name: str) -> Any:
        return self._batch.read_namespaced_job_status(name, namespace)

    def job_failed(self, namespace: str, name: str) -> str | None:
        for condition in self._job(namespace, name).status.conditions or []:
            if condition.type == "Failed" and condition.status == "True":
                return f"{condition.reason}: {condition.message}"
        return None

    def job_succeeded(self, namespace: str, name: str) -> bool:
        return bool(self._job(namespace, name).status.succeeded)

    def delete_job(self, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _node_zones(self) -> dict[str, str]:
        return {n.metadata.name: (n.metadata.labels or {}).get(ZONE_LABEL, "?") for n in self._core.list_node().items}

    def job_zones(self, namespace: str, name: str) -> set[str]:
        """The zones of the nodes the Job's pods were placed on."""
        zones = self._node_zones()
        pods = self._core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
        return {zones.get(p.spec.node_name or "", "?") for p in pods if p.spec.node_name}

    def ready_zones(self, namespace: str) -> dict[str, dict[str, int]]:
        """Deployment -> zone -> its ready pods there, for the Deployments that ask for pods (one
        scaled to zero has none to lose)."""
        zones = self._node_zones()
        owners = {}
        for replica_set in self._apps.list_namespaced_replica_set(namespace).items:
            for ref in replica_set.metadata.owner_references or []:
                if ref.kind == "Deployment":
                    owners[replica_set.metadata.name] = ref.name
        out: dict[str, dict[str, int]] = {
            d.metadata.name: {} for d in self._apps.list_namespaced_deployment(namespace).items if d.spec.replicas != 0
        }
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for pod in self._core.list_namespaced_pod(namespace).items:
            ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
            owner = next(
                (owners.get(r.name) for r in pod.metadata.owner_references or [] if r.kind == "ReplicaSet"), None
            )
            if ready and owner in out:
                counts[owner][zones.get(pod.spec.node_name or "", "?")] += 1
        for deployment, by_zone in counts.items():
            out[deployment] = dict(by_zone)
        return out
