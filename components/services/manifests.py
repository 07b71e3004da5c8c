"""The services' Kubernetes manifests, built by pure functions from the service settings.

The component (services.py) declares them; tests and policies read exactly what is built
here. No resource is declared here: a manifest is a plain dict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.common.peak_window import TIMEZONE, PeakWindow
from components.eks import karpenter_plan

ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
NAME_LABEL = "app.kubernetes.io/name"
INGRESS_CLASS = "alb"
#: Modern TLS only (TLS 1.3 and 1.2 with forward secrecy).
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
#: Seconds a stopping pod keeps serving, so the load balancer deregisters it before it exits.
DRAIN_SECONDS = 15


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
        {
            "maxSkew": 1,
            "topologyKey": ZONE_KEY,
            "whenUnsatisfiable": "DoNotSchedule",
            "minDomains": zone_count,
            "labelSelector": selector,
            "matchLabelKeys": ["pod-template-hash"],
        },
        {
            "maxSkew": 1,
            "topologyKey": HOST_KEY,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
            "matchLabelKeys": ["pod-template-hash"],
        },
    ]


def deployment_spec(
    spec: ServiceSpec, zone_count: int, config_map: str, secret_env: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Deployment's spec. No `replicas`: the autoscaler owns the count (a value here would be
    reapplied on every update and fight it). `secret_env` names the service's own secrets
    (ARNs, never values)."""
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
                "containers": [
                    {
                        "name": spec.name,
                        "image": spec.image,
                        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
                        "envFrom": [{"configMapRef": {"name": config_map}}],
                        "env": [
                            {"name": "PORT", "value": str(spec.port)},
                            {"name": "SERVICE_NAME", "value": spec.name},
                            *({"name": k, "value": v} for k, v in sorted((secret_env or {}).items())),
                        ],
                        # CPU has a request only (no throttling under bursts); memory is capped at it.
                        "resources": {
                            "requests": {"cpu": f"{spec.cpu_millicores}m", "memory": f"{spec.memory_mib}Mi"},
                            "limits": {"memory": f"{spec.memory_mib}Mi"},
                        },
                        "startupProbe": {"httpGet": http, "periodSeconds": 2, "failureThreshold": 60},
                        "readinessProbe": {
                            "httpGet": http,
                            "periodSeconds": 5,
                            "timeoutSeconds": 2,
                            "failureThreshold": 3,
                        },
                        "livenessProbe": {
                            "httpGet": http,
                            "periodSeconds": 10,
                            "timeoutSeconds": 2,
                            "failureThreshold": 6,
                        },
                        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
            },
        },
    }


def disruption_budget_spec(service: str) -> dict[str, Any]:
    """One replica at a time may be evicted (node drains, consolidation); pods that are not
    healthy anyway never block a drain."""
    return {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {NAME_LABEL: service}},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def scaled_object_spec(spec: ServiceSpec, peak: PeakWindow) -> dict[str, Any]:
    """KEDA's ScaledObject: an HPA named after the service, scaled on CPU, with a higher floor
    during the weekday peak (cron trigger) and `minReplicas` otherwise."""
    triggers: list[dict[str, Any]] = [
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(spec.target_cpu_percent)}},
    ]
    if spec.peak_min_replicas > spec.min_replicas:
        triggers.append(
            {
                "type": "cron",
                "name": "weekday-peak",
                "metadata": {
                    "timezone": TIMEZONE,
                    "start": peak.start_cron,
                    "end": peak.end_cron,
                    "desiredReplicas": str(spec.peak_min_replicas),
                },
            }
        )
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
        "minReplicaCount": spec.min_replicas,
        "maxReplicaCount": spec.max_replicas,
        "pollingInterval": 30,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "name": spec.name,
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60}],
                    },
                    # Slowly down: a short lull does not give back capacity the next burst needs.
                    "scaleDown": {
                        "stabilizationWindowSeconds": 300,
                        "policies": [{"type": "Percent", "value": 25, "periodSeconds": 60}],
                    },
                },
            }
        },
        "triggers": triggers,
    }


def service_spec(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "type": "ClusterIP",
        "selector": {NAME_LABEL: spec.name},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    }


def service_annotations(spec: ServiceSpec) -> dict[str, str]:
    """Target-group settings the controller reads from the Service."""
    return {
        "alb.ingress.kubernetes.io/healthcheck-path": spec.health_path,
        "alb.ingress.kubernetes.io/success-codes": "200-399",
    }


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
        "alb.ingress.kubernetes.io/load-balancer-attributes": ",".join(
            [
                "routing.http.drop_invalid_header_fields.enabled=true",
                "idle_timeout.timeout_seconds=60",
                # Zonal shift and autoshift (and the zone drill's shift) move traffic off a zone.
                "zonal_shift.config.enabled=true",
            ]
        ),
        "alb.ingress.kubernetes.io/tags": ",".join(f"{k}={v}" for k, v in sorted(settings.tags.items())),
    }
    if settings.certificate_arn:
        annotations["alb.ingress.kubernetes.io/certificate-arn"] = settings.certificate_arn
        annotations["alb.ingress.kubernetes.io/ssl-policy"] = SSL_POLICY
    if settings.scheme == "internal":
        annotations["alb.ingress.kubernetes.io/inbound-cidrs"] = ",".join(settings.client_cidrs)
    return annotations


def ingress_spec(services: list[ServiceSpec]) -> dict[str, Any]:
    paths = [
        {
            "path": s.ingress_path,
            "pathType": "Prefix",
            "backend": {"service": {"name": s.name, "port": {"name": "http"}}},
        }
        for s in sorted(services, key=lambda s: (-len(s.ingress_path or ""), s.name))
        if s.ingress_path
    ]
    return {"ingressClassName": INGRESS_CLASS, "rules": [{"http": {"paths": paths}}]}
