"""Queue-driven scan execution: KEDA on the system nodes, and a ScaledJob per scan engine that
starts one Job per request waiting in the engine's RabbitMQ queue and none when it is empty.

Queue depth comes from the broker's management API (RabbitMQ 4 on Amazon MQ publishes no
per-queue CloudWatch metrics), with credentials KEDA reads from Secrets Manager through its
own EKS Pod Identity role: no broker password in a Kubernetes Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.helm import pinned_chart
from components.common.iam import SecretReads, pod_identity
from components.common.versions import KEDA_VERSION
from components.eks import karpenter_plan
from components.scans import scaled_jobs
from components.scans.scan_job import ScanJobArgs, scan_job_spec

KEDA_CHART_REPO = "https://kedacore.github.io/charts"
KEDA_NAMESPACE = "keda"
KEDA_OPERATOR_SA = "keda-operator"


@dataclass(frozen=True)
class ScanScalingArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """The cluster (its output: KEDA's role association waits for it)."""
    namespace: str
    """Namespace of the scan jobs (ScaledJobs and TriggerAuthentication live there)."""
    engines: tuple[str, ...]
    """One ScaledJob per engine."""
    image_urls: Mapping[str, pulumi.Input[str]]
    """Engine (and `git-fetch`) -> repository URL."""
    image_tag: str
    """Tag of the engine and git-fetch images."""
    broker_secret_arn: pulumi.Input[str]
    broker_key_arn: pulumi.Input[str]
    service_accounts: Mapping[str, str]
    """Engine -> the service account its Jobs run as (its own identity)."""
    cache_claim: str
    """The repository cache's claim."""
    max_jobs_per_engine: int
    job_cpu: int
    job_memory_gib: int
    queue_prefix: str
    vhost: str = "/"
    """The broker vhost of the scan queues."""
    engine_secret_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Engine -> the secret of its broker user (it consumes its own queue only)."""
    """Queues are `<prefix>.<engine>`."""
    after: tuple[pulumi.Resource, ...] = ()
    """What must exist first (system nodes, CoreDNS, the Pod Identity agent, the scan namespace).
    Applied to the children that need it: a component's `depends_on` does not reach its
    children. Default nothing."""


class ScanScaling(pulumi.ComponentResource):
    scaled_jobs: dict[str, k8s.apiextensions.CustomResource]
    keda: k8s.helm.v3.Release

    def __init__(self, name: str, args: ScanScalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:scans:ScanScaling", name, {"engines": list(args.engines), "kedaVersion": KEDA_VERSION}, opts
        )
        identity = pod_identity(
            f"{name}-keda",
            parent=self,
            account_id=args.stack.account_id,
            cluster_name=args.cluster_name,
            namespace=KEDA_NAMESPACE,
            service_account=KEDA_OPERATOR_SA,
            description="KEDA operator: reads its own broker monitoring user's credentials (EKS Pod Identity)",
            reads=SecretReads([args.broker_secret_arn], [args.broker_key_arn]),
            client="keda",
        ).association

        release = pinned_chart(
            f"{name}-keda",
            chart="keda",
            version=KEDA_VERSION,
            repo=KEDA_CHART_REPO,
            namespace=KEDA_NAMESPACE,
            create_namespace=True,
            values={
                "nodeSelector": karpenter_plan.SYSTEM_LABEL,
                "tolerations": [karpenter_plan.SYSTEM_TOLERATION],
                "serviceAccount": {"operator": {"name": KEDA_OPERATOR_SA}},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[identity, *args.after]),
        )
        self.keda = release
        after_keda = pulumi.ResourceOptions(parent=self, depends_on=[release])
        auth = k8s.apiextensions.CustomResource(
            f"{name}-trigger-auth",
            api_version="keda.sh/v1alpha1",
            kind="TriggerAuthentication",
            metadata={"name": scaled_jobs.TRIGGER_AUTH, "namespace": args.namespace},
            spec={
                "awsSecretManager": pulumi.Output.from_input(args.broker_secret_arn).apply(
                    lambda arn: scaled_jobs.trigger_authentication(arn, args.stack.region)
                )
            },
            opts=after_keda,
        )
        self.scaled_jobs = {}
        for engine in args.engines:
            image = pulumi.Output.from_input(args.image_urls[engine]).apply(lambda url: f"{url}:{args.image_tag}")
            git_image = pulumi.Output.from_input(args.image_urls["git-fetch"]).apply(
                lambda url: f"{url}:{args.image_tag}"
            )
            job = scan_job_spec(
                ScanJobArgs(
                    engine=engine,
                    image=image,
                    git_image=git_image,
                    cache_claim=args.cache_claim,
                    service_account=args.service_accounts[engine],
                    cpu=str(args.job_cpu),
                    memory=f"{args.job_memory_gib}Gi",
                    env={
                        "SCAN_QUEUE": scaled_jobs.queue_name(args.queue_prefix, engine),
                        **(
                            {"RABBITMQ_SECRET_ARN": args.engine_secret_arns[engine]}
                            if engine in args.engine_secret_arns
                            else {}
                        ),
                    },
                )
            )
            self.scaled_jobs[engine] = k8s.apiextensions.CustomResource(
                f"{name}-{engine}",
                api_version="keda.sh/v1alpha1",
                kind="ScaledJob",
                metadata={"name": f"scan-{engine}", "namespace": args.namespace},
                spec=scaled_jobs.scaled_job_spec(
                    engine,
                    scaled_jobs.queue_name(args.queue_prefix, engine),
                    args.max_jobs_per_engine,
                    job,
                    vhost=args.vhost,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release, auth]),
            )
        self.register_outputs({"scaledJobs": sorted(self.scaled_jobs)})
