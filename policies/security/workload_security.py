"""Security rules for what runs in the cluster: the load balancers the controller builds from
Ingresses, and the pods of the services."""

from __future__ import annotations

import json

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from stack_graph import DEPLOYMENT, INGRESS, UNKNOWN, Report, path

PREFIX = "alb.ingress.kubernetes.io/"
#: ELB security policies whose floor is TLS 1.2 or 1.3 (FIPS and post-quantum variants included).
_MODERN_TLS = (
    "ELBSecurityPolicy-TLS13-1-2",
    "ELBSecurityPolicy-TLS13-1-3",
    "ELBSecurityPolicy-TLS-1-2",
    "ELBSecurityPolicy-FS-1-2",
)
#: The controller's default when no ssl-policy is set; it accepts TLS 1.0.
_CONTROLLER_DEFAULT = "ELBSecurityPolicy-2016-08"


def _annotations(resource: PolicyResource) -> dict | None:
    value = path(resource.props, "metadata.annotations", {}, unknown=UNKNOWN)
    return None if value is UNKNOWN else dict(value or {})


def _listeners(annotations: dict) -> list | None:
    """The listen-ports, defaulting as the controller does (HTTPS 443 with a certificate)."""
    default = '[{"HTTPS": 443}]' if annotations.get(PREFIX + "certificate-arn") else '[{"HTTP": 80}]'
    try:
        ports = json.loads(annotations.get(PREFIX + "listen-ports", default))
    except (TypeError, ValueError):
        return None
    return ports if isinstance(ports, list) else None


def internet_alb_https_only(args: StackValidationArgs, report: Report) -> None:
    """Ingresses of one group share a load balancer: the group is internet-facing when any
    member says so, and every member's listeners, certificates and TLS policy are its own."""
    groups: dict[str, list[tuple[PolicyResource, dict]]] = {}
    for ingress in (r for r in args.resources if r.resource_type == INGRESS):
        annotations = _annotations(ingress)
        if annotations is None:
            continue
        group = annotations.get(PREFIX + "group.name") or f"ingress:{ingress.urn}"
        groups.setdefault(group, []).append((ingress, annotations))
    for members in groups.values():
        if not any(a.get(PREFIX + "scheme") == "internet-facing" for _, a in members):
            continue
        for ingress, annotations in members:
            ports = _listeners(annotations)
            if ports is None:
                report(f"{PREFIX}listen-ports of Ingress '{ingress.name}' is not a JSON list.", ingress.urn)
                continue
            if any("HTTP" in p for p in ports) and not annotations.get(PREFIX + "ssl-redirect"):
                report(
                    f"Ingress '{ingress.name}' gives an internet-facing load balancer a plain-HTTP listener; listen "
                    f"on HTTPS only (or set {PREFIX}ssl-redirect so HTTP only redirects).",
                    ingress.urn,
                )
            if any("HTTPS" in p for p in ports):
                if not annotations.get(PREFIX + "certificate-arn"):
                    report(
                        f"Ingress '{ingress.name}' has an HTTPS listener without {PREFIX}certificate-arn.", ingress.urn
                    )
                policy = annotations.get(PREFIX + "ssl-policy", _CONTROLLER_DEFAULT)
                if not str(policy).startswith(_MODERN_TLS):
                    report(
                        f"Ingress '{ingress.name}': {PREFIX}ssl-policy {policy} accepts TLS below 1.2 (the "
                        "controller's default when unset does); use ELBSecurityPolicy-TLS13-1-2-2021-06.",
                        ingress.urn,
                    )


def service_pods_hardened(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != DEPLOYMENT:
        return
    pod = path(args.props, "spec.template.spec", {}, unknown=UNKNOWN)
    if pod is UNKNOWN:
        return
    for namespace in ("hostNetwork", "hostPID", "hostIPC"):
        if path(pod, namespace) is True:
            report(f"pods share the node's namespaces ({namespace}).")
    pod_context = path(pod, "securityContext", {}) or {}
    for container in [*(path(pod, "initContainers", []) or []), *(path(pod, "containers", []) or [])]:
        name = path(container, "name", "?")
        context = path(container, "securityContext", {}) or {}
        if path(context, "privileged") is True or path(context, "allowPrivilegeEscalation", True) is not False:
            report(f"container '{name}' may gain privileges; set allowPrivilegeEscalation: false (and no privileged).")

        def effective(key: str, context=context):
            value = path(context, key)
            return path(pod_context, key) if value is None else value

        if effective("runAsNonRoot") is not True or effective("runAsUser") == 0:
            report(f"container '{name}' may run as root; set runAsNonRoot: true (and no runAsUser 0).")
        if "ALL" not in (path(context, "capabilities.drop", []) or []):
            report(f"container '{name}' keeps Linux capabilities; drop ALL.")


POLICIES = [
    StackValidationPolicy(
        name="internet-alb-https-only",
        description="Requires every Ingress of an internet-facing load balancer (or group) to serve HTTPS with a "
        "certificate and a TLS 1.2+ policy, plain HTTP at most as a redirect.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=internet_alb_https_only,
    ),
    ResourceValidationPolicy(
        name="service-pods-hardened",
        description="Requires Deployment pods to run as non-root, without privilege escalation or capabilities, "
        "and off the host's namespaces.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=service_pods_hardened,
    ),
]
