"""Long-running services (the API services and the storage API) on the on-demand services pool.

Each service listed in the stack config becomes a Deployment spread over every zone (a zone
outage leaves the others serving), a PodDisruptionBudget, a Service and a KEDA ScaledObject:
KEDA owns the service's HorizontalPodAutoscaler (named after the service) and feeds it two
triggers, average CPU and a cron window that raises the replica floor during the weekday peak.
Off-peak and at weekends the floor drops to `minReplicas`, which the config keeps at one or more
per zone. Services with an `ingressPath` share one Application Load Balancer, created by the
AWS Load Balancer Controller in one pinned subnet of every zone. Each service runs as its own
service account with its own IAM role (EKS Pod Identity) that reads only the data-tier secrets
its `dataAccess` lists.

The manifests are built by pure functions so tests and policies read exactly what is declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.iam import SecretReads, pod_identity
from components.common.peak_window import PeakWindow
from components.services import manifests
from components.services.manifests import IngressSettings, ServiceSpec

#: pulumi-kubernetes waits (10 minutes) for a Deployment to become available and for a Service to
#: have no endpoint that is not ready; this annotation turns both waits off.
SKIP_AWAIT = "pulumi.com/skipAwait"
Rollout = Literal["await", "first-deploy"]


@dataclass(frozen=True)
class DataSecret:
    secret_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]


@dataclass(frozen=True)
class ServicesArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    services: tuple[ServiceSpec, ...]
    cluster_name: pulumi.Input[str]
    """The cluster (its output: the services' role associations wait for it)."""
    namespace: str
    config_map: str
    """The data endpoints ConfigMap every pod reads."""
    peak: PeakWindow
    ingress: IngressSettings
    rollout: Rollout
    """`await`: `pulumi up` waits until every service is ready. `first-deploy`: the Deployments
    and Services are declared without waiting, for the first `up`, which creates the registry the
    images are pushed to afterwards (README, first deploy)."""
    after: tuple[pulumi.Resource, ...] = ()
    """What must exist first (the namespace, KEDA (ScaledObject CRD), metrics-server, the services node pool).
    Applied to the children that need it: a component's `depends_on` does not reach its
    children. Default nothing."""
    read_at_start: tuple[pulumi.Resource, ...] = ()
    """What the pods read when they start (the data endpoints ConfigMap). Waited for when the
    rollout is awaited; on a first deploy nothing waits for the pods, and a pod whose ConfigMap
    is not there yet simply starts once it is, so the Deployments do not wait for the data tier.
    Default nothing."""
    ingress_after: tuple[pulumi.Resource, ...] = ()
    """The load balancer controller, whose webhook admits Ingresses. Default nothing."""
    client_secrets: Mapping[str, Mapping[str, DataSecret]] = field(default_factory=dict)
    """Service -> store -> the secret of the service's own user of that store (its broker user,
    its cache user, the database role it is given), the only secrets its role reads, handed to
    its pods as `<STORE>_SECRET_ARN` (`POSTGRES_READ_SECRET_ARN` for postgres-read). Every store
    a service lists must have one. Default none."""


def secret_env(store: str) -> str:
    """The environment variable naming a store's secret in a service's pods."""
    return f"{store.upper().replace('-', '_')}_SECRET_ARN"


def _load_balancer_hostname(status: Any) -> str | None:
    ingress = getattr(getattr(status, "load_balancer", None), "ingress", None) or []
    return ingress[0].hostname if ingress else None


class Services(pulumi.ComponentResource):
    deployments: dict[str, k8s.apps.v1.Deployment]
    role_arns: dict[str, pulumi.Output[str]]
    ingress: k8s.networking.v1.Ingress | None

    def __init__(self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:services:Services",
            name,
            {
                "serviceNames": [s.name for s in args.services],
                "peakWindow": args.peak.describe(),
                "rollout": args.rollout,
            },
            opts,
        )
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        self.deployments = {}
        self.role_arns = {}
        # Objects whose readiness needs the service's image; on a first deploy nothing can be
        # pulled yet, so they are declared without waiting.
        skip_await = {SKIP_AWAIT: "true"} if args.rollout == "first-deploy" else {}
        for spec in args.services:
            metadata = {"name": spec.name, "namespace": args.namespace, "labels": manifests.labels(spec.name)}
            identity = self._identity(name, spec, args, metadata, after)
            deployment = k8s.apps.v1.Deployment(
                f"{name}-{spec.name}",
                metadata={**metadata, "annotations": skip_await} if skip_await else metadata,
                spec=manifests.deployment_spec(
                    spec,
                    len(args.stack.zones),
                    args.config_map,
                    {
                        secret_env(store): own.secret_arn
                        for store, own in args.client_secrets.get(spec.name, {}).items()
                    },
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*identity, *args.after, *(() if skip_await else args.read_at_start)]
                ),
            )
            self.deployments[spec.name] = deployment
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{spec.name}", metadata=metadata, spec=manifests.disruption_budget_spec(spec.name), opts=after
            )
            k8s.core.v1.Service(
                f"{name}-{spec.name}",
                metadata={**metadata, "annotations": {**manifests.service_annotations(spec), **skip_await}},
                spec=manifests.service_spec(spec),
                opts=after,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-{spec.name}-autoscaler",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=metadata,
                spec=manifests.scaled_object_spec(spec, args.peak),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment, *args.after]),
            )
        routed = [s for s in args.services if s.ingress_path]
        self.ingress = None
        self.api_hostname = pulumi.Output.from_input(None)
        if routed:
            self.ingress = k8s.networking.v1.Ingress(
                f"{name}-api",
                metadata={
                    "name": "api",
                    "namespace": args.namespace,
                    "labels": {"app.kubernetes.io/part-of": "scanner"},
                    "annotations": manifests.ingress_annotations(args.ingress),
                },
                spec=manifests.ingress_spec(routed),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *args.ingress_after]),
            )
            self.api_hostname = self.ingress.status.apply(_load_balancer_hostname)
        self.register_outputs({"deployments": sorted(self.deployments), "roleArns": self.role_arns})

    def _identity(
        self, name: str, spec: ServiceSpec, args: ServicesArgs, metadata: dict, after: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """The service's account, and its role that may read only the secrets it lists."""
        account = k8s.core.v1.ServiceAccount(
            f"{name}-{spec.name}", metadata=metadata, automount_service_account_token=False, opts=after
        )
        own = args.client_secrets.get(spec.name, {})
        missing = [store for store in spec.data_access if store not in own]
        if missing:
            raise ValueError(f"service {spec.name} lists {', '.join(missing)} but has no user of its own there")
        stores = [own[store] for store in spec.data_access]
        identity = pod_identity(
            f"{name}-{spec.name}",
            parent=self,
            account_id=args.stack.account_id,
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=spec.name,
            description=f"Service {spec.name} (EKS Pod Identity): reads {', '.join(spec.data_access) or 'no'} secrets",
            reads=SecretReads(
                [s.secret_arn for s in stores],
                [s.key_arn for s in stores],
                ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"),
            )
            if stores
            else None,
            client=f"service:{spec.name}",
        )
        self.role_arns[spec.name] = identity.role.arn
        return [r for r in (account, identity.reads, identity.association) if r is not None]
