"""Who probes the stores during a zone drill, from inside the cluster: a service account `drill`
in the scan namespace (where the repository cache's claim lives, so its probe mounts what the
scan Jobs mount) and its IAM role (EKS Pod Identity), which reads the drill's own users' secrets
(database `scans_drill`, broker `drill`, cache `drill`) and writes the probes' results under
`probes/` in the drill's report bucket, and nothing else.

The probe Job itself is not declared here: `python -m drill run --probes job` starts one per
drill (drill/probe_job.py) from the image in the stack's `scanner/drill-probe` repository and
removes it after; between drills nothing runs.

`config` is what that Job is told (secret ARNs, the canary queue, where results go): never a
secret's value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.iam import SecretReads, pod_identity
from components.data import broker_topology
from policies.common import contract

SERVICE_ACCOUNT = "drill"
CLIENT = "drill"
#: The image the probe Job runs (`scanner/<name>` in the stack's registry).
IMAGE = "drill-probe"
RESULTS_PREFIX = contract.DRILL_RESULTS_PREFIX


@dataclass(frozen=True)
class DrillProbesArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """The cluster (its output: the role association waits for it)."""
    namespace: str
    """The scan namespace."""
    secret_arns: Mapping[str, pulumi.Input[str]]
    """Store (`postgres`, `rabbitmq`, `redis`) -> the drill user's secret there."""
    key_arns: list[pulumi.Input[str]]
    """Keys those secrets are encrypted with."""
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    """The drill's report bucket: the probes' results go under `probes/`."""
    canary_queue: str
    """The broker's drill queue (the drill user may use no other but the health canary)."""
    vhost: str
    repo_cache_claim: pulumi.Input[str]
    """The scan Jobs' claim on the repository cache: the file probe mounts it."""
    reader_endpoint: pulumi.Input[str] | None = None
    """The read replica's address, probed with the drill's role; none: no replica. Default none."""
    reader_zone: str | None = None
    """The zone the replica is pinned to (an instance's replica); none: the reader endpoint
    follows the readers that are up (a cluster). A drill of that zone leaves the replica's probe
    out. Default none."""
    cache_replicas: int = 1
    """Replicas a cache canary must reach (WAIT) before it counts as written; 0 measures what
    the cache's own clients get. Capped to the replicas a zone's loss leaves (a node per zone,
    one of them the primary). Default 1."""
    after: Sequence[pulumi.Resource] = ()
    """The scan namespace: the service account is made in it."""


class DrillProbes(pulumi.ComponentResource):
    service_account: str
    role_arn: pulumi.Output[str]
    config: pulumi.Output[dict]
    """What the probe Job is told: stores, secret ARNs, the queue, the claim, the bucket."""

    def __init__(self, name: str, args: DrillProbesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:drill:DrillProbes",
            name,
            {"serviceAccount": SERVICE_ACCOUNT, "stores": sorted(args.secret_arns)},
            opts,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SERVICE_ACCOUNT,
                namespace=args.namespace,
                labels={"app.kubernetes.io/part-of": "scanner", "app.kubernetes.io/component": "drill"},
            ),
            # No API token in the pod: it talks to AWS and the stores, never to Kubernetes.
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        identity = pod_identity(
            f"{name}-role",
            parent=self,
            account_id=args.stack.account_id,
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=SERVICE_ACCOUNT,
            description="The zone drill's probes: the drill users' secrets, the results in the report bucket",
            reads=SecretReads(
                list(args.secret_arns.values()),
                args.key_arns,
            ),
            association_opts=pulumi.ResourceOptions(parent=self, depends_on=[account]),
            client=CLIENT,
        )
        aws.iam.RolePolicy(
            f"{name}-results",
            role=identity.role.id,
            policy=pulumi.Output.from_input(args.bucket_arn).apply(lambda arn: json.dumps(results_policy(arn))),
            opts=pulumi.ResourceOptions(parent=identity.role),
        )
        self.service_account = SERVICE_ACCOUNT
        self.role_arn = identity.role.arn
        self.config = pulumi.Output.all(
            secrets=pulumi.Output.all(**dict(args.secret_arns)),
            bucket=args.bucket_name,
            claim=args.repo_cache_claim,
            reader=args.reader_endpoint,
        ).apply(
            lambda v: probe_config(
                v["secrets"],
                v["bucket"],
                v["claim"],
                args.namespace,
                args.vhost,
                args.canary_queue,
                v["reader"],
                min(args.cache_replicas, max(0, len(args.stack.zones) - 2)),
                args.reader_zone,
            )
        )
        self.register_outputs({"serviceAccount": SERVICE_ACCOUNT, "roleArn": self.role_arn})


def results_policy(bucket_arn: str) -> dict:
    """Write and read back its own results and stop markers; nothing else in the bucket."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ProbeResults",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"{bucket_arn}/{RESULTS_PREFIX}/*",
            },
            {
                # Without ListBucket a missing marker reads as 403, not 404.
                "Sid": "ProbeMarkers",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": f"{RESULTS_PREFIX}/*"}},
            },
        ],
    }


def probe_config(
    secrets: Mapping[str, str],
    bucket: str,
    claim: str,
    namespace: str,
    vhost: str,
    queue: str,
    reader_endpoint: str | None,
    cache_replicas: int,
    reader_zone: str | None = None,
) -> dict:
    """The probe Job's settings (drill/stores.py reads them): ARNs and names, no secret value.
    A store with a `zone` lives in that zone only: a drill of it leaves the store out."""
    stores: dict[str, dict] = {}
    if "postgres" in secrets:
        stores["database"] = {"kind": "postgres", "secretArn": secrets["postgres"]}
        if reader_endpoint:
            stores["database-replica"] = {
                "kind": "postgres-replica",
                "secretArn": secrets["postgres"],
                "host": reader_endpoint,
            }
            if reader_zone:
                stores["database-replica"]["zone"] = reader_zone
    if "rabbitmq" in secrets:
        # Through the health exchange: the drill's user may write there and nowhere else.
        stores["broker"] = {
            "kind": "rabbitmq",
            "secretArn": secrets["rabbitmq"],
            "vhost": vhost,
            "queue": queue,
            "exchange": broker_topology.HEALTH_EXCHANGE,
            "routingKey": broker_topology.DRILL_ROUTING_KEY,
        }
    if "redis" in secrets:
        stores["cache"] = {"kind": "redis", "secretArn": secrets["redis"], "replicas": cache_replicas}
    stores["repo-cache"] = {"kind": "files", "directory": "/repo-cache/.drill"}
    return {
        "namespace": namespace,
        "serviceAccount": SERVICE_ACCOUNT,
        "claim": claim,
        "bucket": bucket,
        "prefix": RESULTS_PREFIX,
        "stores": stores,
    }
