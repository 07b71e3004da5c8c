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

import json
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from components import karpenter_plan
from components.iam import SecretReads, pod_identity
from components.peak_window import TIMEZONE, PeakWindow

ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
NAME_LABEL = "app.kubernetes.io/name"
INGRESS_CLASS = "alb"
#: Modern TLS only (TLS 1.3 and 1.2 with forward secrecy).
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
#: Seconds a stopping pod keeps serving, so the load balancer deregisters it before it exits.
DRAIN_SECONDS = 15
#: pulumi-kubernetes waits (10 minutes) for a Deployment to become available and for a Service to
#: have no endpoint that is not ready; this annotation turns both waits off.
SKIP_AWAIT = "pulumi.com/skipAwait"
Rollout = Literal["await", "first-deploy"]


@dataclass(frozen=True)
class ServiceSpec:
    """What the component needs of one service (see `stack_config.ServiceSpec` for the rules)."""
    name: str
    image: pulumi.Input[str]
    port: int
    cpu_millicores: int
    memory_mib: int
    min_replicas: int
    peak_min_replicas: int
    max_replicas: int
    target_cpu_percent: int
    health_path: str
    ingress_path: str | None
    data_access: tuple[str, ...] = ()
    """Data stores (keys of `ServicesArgs.data_secrets`) the service's role may read."""


def labels(service: str) -> dict[str, str]:
    return {NAME_LABEL: service, "app.kubernetes.io/part-of": "scanner", "app.kubernetes.io/component": "service"}


def spread(service: str, zone_count: int) -> list[dict[str, Any]]:
    """Hard spread over zones counting every zone (`minDomains`), so the scheduler never packs
    replicas into the zones it happens to have nodes in; soft spread over nodes."""
    selector = {"matchLabels": {NAME_LABEL: service}}
    return [
        {"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": "DoNotSchedule", "minDomains": zone_count,
         "labelSelector": selector, "matchLabelKeys": ["pod-template-hash"]},
        {"maxSkew": 1, "topologyKey": HOST_KEY, "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": selector, "matchLabelKeys": ["pod-template-hash"]},
    ]


def deployment_spec(spec: ServiceSpec, zone_count: int, config_map: str) -> dict[str, Any]:
    """The Deployment's spec. No `replicas`: the autoscaler owns the count (a value here would be
    reapplied on every update and fight it)."""
    http = {"path": spec.health_path, "port": "http"}
    return {
        "selector": {"matchLabels": {NAME_LABEL: spec.name}},
        "revisionHistoryLimit": 5,
        # Never below the current count during a rollout: new pods are Ready before old ones go.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": labels(spec.name)},
            "spec": {
                # Its own identity: the service account of the same name.
                "serviceAccountName": spec.name,
                "automountServiceAccountToken": False,
                "nodeSelector": {karpenter_plan.POOL_LABEL: karpenter_plan.SERVICES_POOL},
                "topologySpreadConstraints": spread(spec.name, zone_count),
                "terminationGracePeriodSeconds": DRAIN_SECONDS + 30,
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": spec.name,
                    "image": spec.image,
                    "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
                    "envFrom": [{"configMapRef": {"name": config_map}}],
                    "env": [{"name": "PORT", "value": str(spec.port)}, {"name": "SERVICE_NAME", "value": spec.name}],
                    # CPU has a request only (no throttling under bursts); memory is capped at it.
                    "resources": {
                        "requests": {"cpu": f"{spec.cpu_millicores}m", "memory": f"{spec.memory_mib}Mi"},
                        "limits": {"memory": f"{spec.memory_mib}Mi"},
                    },
                    "startupProbe": {"httpGet": http, "periodSeconds": 2, "failureThreshold": 60},
                    "readinessProbe": {"httpGet": http, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3},
                    "livenessProbe": {"httpGet": http, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 6},
                    "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
            },
        },
    }


def disruption_budget_spec(service: str) -> dict[str, Any]:
    """One replica at a time may be evicted (node drains, consolidation); pods that are not
    healthy anyway never block a drain."""
    return {"maxUnavailable": 1, "selector": {"matchLabels": {NAME_LABEL: service}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def scaled_object_spec(spec: ServiceSpec, peak: PeakWindow) -> dict[str, Any]:
    """KEDA's ScaledObject: an HPA named after the service, scaled on CPU, with a higher floor
    during the weekday peak (cron trigger) and `minReplicas` otherwise."""
    triggers: list[dict[str, Any]] = [
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(spec.target_cpu_percent)}},
    ]
    if spec.peak_min_replicas > spec.min_replicas:
        triggers.append({"type": "cron", "name": "weekday-peak", "metadata": {
            "timezone": TIMEZONE, "start": peak.start_cron, "end": peak.end_cron,
            "desiredReplicas": str(spec.peak_min_replicas)}})
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
        "minReplicaCount": spec.min_replicas,
        "maxReplicaCount": spec.max_replicas,
        "pollingInterval": 30,
        "advanced": {"horizontalPodAutoscalerConfig": {
            "name": spec.name,
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60}]},
                # Slowly down: a short lull does not give back capacity the next burst needs.
                "scaleDown": {"stabilizationWindowSeconds": 300,
                              "policies": [{"type": "Percent", "value": 25, "periodSeconds": 60}]},
            },
        }},
        "triggers": triggers,
    }


def service_spec(spec: ServiceSpec) -> dict[str, Any]:
    return {"type": "ClusterIP", "selector": {NAME_LABEL: spec.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}


def service_annotations(spec: ServiceSpec) -> dict[str, str]:
    """Target-group settings the controller reads from the Service."""
    return {"alb.ingress.kubernetes.io/healthcheck-path": spec.health_path,
            "alb.ingress.kubernetes.io/success-codes": "200-399"}


@dataclass(frozen=True)
class IngressSettings:
    load_balancer_name: str
    scheme: str
    subnet_names: list[str]
    """`Name` tags of one subnet per zone (public for internet-facing, private for internal)."""
    certificate_arn: str | None
    client_cidrs: list[str]
    """Where an internal load balancer takes requests from: the VPC and, with custom networking, the pod CIDR."""
    tags: dict[str, str]


def ingress_annotations(settings: IngressSettings) -> dict[str, str]:
    listen = [{"HTTPS": 443}] if settings.certificate_arn else [{"HTTP": 80}]
    annotations = {
        "alb.ingress.kubernetes.io/load-balancer-name": settings.load_balancer_name,
        "alb.ingress.kubernetes.io/scheme": settings.scheme,
        "alb.ingress.kubernetes.io/target-type": "ip",
        # Pinned, one per zone: the load balancer spans every zone, whatever else is tagged.
        "alb.ingress.kubernetes.io/subnets": ",".join(settings.subnet_names),
        "alb.ingress.kubernetes.io/listen-ports": json.dumps(listen),
        "alb.ingress.kubernetes.io/load-balancer-attributes": ",".join([
            "routing.http.drop_invalid_header_fields.enabled=true",
            "idle_timeout.timeout_seconds=60",
        ]),
        "alb.ingress.kubernetes.io/tags": ",".join(f"{k}={v}" for k, v in sorted(settings.tags.items())),
    }
    if settings.certificate_arn:
        annotations["alb.ingress.kubernetes.io/certificate-arn"] = settings.certificate_arn
        annotations["alb.ingress.kubernetes.io/ssl-policy"] = SSL_POLICY
    if settings.scheme == "internal":
        annotations["alb.ingress.kubernetes.io/inbound-cidrs"] = ",".join(settings.client_cidrs)
    return annotations


def ingress_spec(services: list[ServiceSpec]) -> dict[str, Any]:
    paths = [{"path": s.ingress_path, "pathType": "Prefix",
              "backend": {"service": {"name": s.name, "port": {"name": "http"}}}}
             for s in sorted(services, key=lambda s: (-len(s.ingress_path or ""), s.name)) if s.ingress_path]
    return {"ingressClassName": INGRESS_CLASS, "rules": [{"http": {"paths": paths}}]}


@dataclass(frozen=True)
class DataSecret:
    secret_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]


@dataclass(frozen=True)
class ServicesArgs:
    services: tuple[ServiceSpec, ...]
    zone_count: int
    cluster_name: pulumi.Input[str]
    account_id: str
    namespace: str
    config_map: str
    data_secrets: dict[str, DataSecret]
    """Data store -> its credentials secret and the key it is encrypted with."""
    peak: PeakWindow
    ingress: IngressSettings
    rollout: Rollout = "await"
    """`await` (default): `pulumi up` waits until every service is ready. `first-deploy`: the
    Deployments and Services are declared without waiting, for the first `up`, which creates the
    registry the images are pushed to afterwards (README, first deploy)."""
    run_after: tuple[pulumi.Resource, ...] = ()
    """What must exist first: the namespace, KEDA (ScaledObject CRD), the node pools."""
    read_at_start: tuple[pulumi.Resource, ...] = ()
    """What the pods read when they start (the data endpoints ConfigMap). Waited for when the
    rollout is awaited; on a first deploy nothing waits for the pods, and a pod whose ConfigMap
    is not there yet simply starts once it is, so the Deployments do not wait for the data tier."""
    ingress_after: tuple[pulumi.Resource, ...] = ()
    """The load balancer controller, whose webhook admits Ingresses."""


def _load_balancer_hostname(status: Any) -> str | None:
    ingress = getattr(getattr(status, "load_balancer", None), "ingress", None) or []
    return ingress[0].hostname if ingress else None


class Services(pulumi.ComponentResource):
    deployments: dict[str, k8s.apps.v1.Deployment]
    role_arns: dict[str, pulumi.Output[str]]
    ingress: k8s.networking.v1.Ingress | None

    def __init__(self, name: str, args: ServicesArgs, k8s_provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:services:Services", name, {
            "serviceNames": [s.name for s in args.services], "peakWindow": args.peak.describe(),
            "rollout": args.rollout}, opts)
        after = pulumi.ResourceOptions(parent=self, provider=k8s_provider, depends_on=list(args.run_after))
        self.deployments = {}
        self.role_arns = {}
        # Objects whose readiness needs the service's image; on a first deploy nothing can be
        # pulled yet, so they are declared without waiting.
        skip_await = {SKIP_AWAIT: "true"} if args.rollout == "first-deploy" else {}
        for spec in args.services:
            metadata = {"name": spec.name, "namespace": args.namespace, "labels": labels(spec.name)}
            identity = self._identity(name, spec, args, metadata, after)
            deployment = k8s.apps.v1.Deployment(
                f"{name}-{spec.name}", metadata={**metadata, "annotations": skip_await} if skip_await else metadata,
                spec=deployment_spec(spec, args.zone_count, args.config_map),
                opts=pulumi.ResourceOptions(parent=self, provider=k8s_provider,
                                            depends_on=[*identity, *args.run_after,
                                                        *(() if skip_await else args.read_at_start)]))
            self.deployments[spec.name] = deployment
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{spec.name}", metadata=metadata, spec=disruption_budget_spec(spec.name), opts=after)
            k8s.core.v1.Service(
                f"{name}-{spec.name}",
                metadata={**metadata, "annotations": {**service_annotations(spec), **skip_await}},
                spec=service_spec(spec), opts=after)
            k8s.apiextensions.CustomResource(
                f"{name}-{spec.name}-autoscaler", api_version="keda.sh/v1alpha1", kind="ScaledObject",
                metadata=metadata, spec=scaled_object_spec(spec, args.peak),
                opts=pulumi.ResourceOptions(parent=self, provider=k8s_provider,
                                            depends_on=[deployment, *args.run_after]))
        routed = [s for s in args.services if s.ingress_path]
        self.ingress = None
        self.api_hostname = pulumi.Output.from_input(None)
        if routed:
            self.ingress = k8s.networking.v1.Ingress(
                f"{name}-api",
                metadata={"name": "api", "namespace": args.namespace, "labels": {"app.kubernetes.io/part-of": "scanner"},
                          "annotations": ingress_annotations(args.ingress)},
                spec=ingress_spec(routed),
                opts=pulumi.ResourceOptions(parent=self, provider=k8s_provider,
                                            depends_on=[*args.run_after, *args.ingress_after]))
            self.api_hostname = self.ingress.status.apply(_load_balancer_hostname)
        self.register_outputs({"deployments": sorted(self.deployments), "roleArns": self.role_arns})

    def _identity(self, name: str, spec: ServiceSpec, args: ServicesArgs, metadata: dict,
                  after: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """The service's account, and its role that may read only the secrets it lists."""
        account = k8s.core.v1.ServiceAccount(
            f"{name}-{spec.name}", metadata=metadata, automount_service_account_token=False, opts=after)
        stores = [args.data_secrets[store] for store in spec.data_access]
        identity = pod_identity(
            f"{name}-{spec.name}", parent=self, account_id=args.account_id, cluster_name=args.cluster_name,
            namespace=args.namespace, service_account=spec.name,
            description=f"Service {spec.name} (EKS Pod Identity): reads {', '.join(spec.data_access) or 'no'} secrets",
            reads=SecretReads([s.secret_arn for s in stores], [s.key_arn for s in stores],
                              ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")) if stores else None)
        self.role_arns[spec.name] = identity.role.arn
        return [r for r in (account, identity.reads, identity.association) if r is not None]
