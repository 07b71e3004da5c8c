"""Policy unit layer for the services and the edge (Deployments, budgets, load balancers, CloudFront):
one policy, in process, on the recorded prod stack with one hand-made edit; the whole-program
faults stay in test_*.py (test_services.py, tests/scans/test_storage_policies.py)."""

import json

import pytest
from conftest import DELETE, assert_refused, drop, named, run, set_value, unit_cases, verdict

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
BUDGET = "kubernetes:policy/v1:PodDisruptionBudget"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
SERVICE = "kubernetes:core/v1:Service"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
ALB = "alb.ingress.kubernetes.io/"
POD = "spec.template.spec"
ZONE_SPREAD = f"{POD}.topologySpreadConstraints.0"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
PRIVATE = "scanner-prod-private-us-east-1"
MODES = ["preview", "update"]


def setting(type_, name, path, value):
    return lambda record: set_value(record, type_, name, path, value)


def edits(*steps):
    def edit(record):
        for step in steps:
            step(record)

    return edit


def annotated(type_, name, changes):
    """Annotations added (a value of None removes one): their keys hold dots, so not via a path."""

    def edit(record):
        for resource in named(record, type_, name):
            for side in ("inputs", "outputs"):
                annotations = resource[side]["metadata"].setdefault("annotations", {})
                annotations.update(changes)
                for key in [k for k, v in changes.items() if v is None]:
                    del annotations[key]

    return edit


def internet_facing(**changes):
    return annotated(
        INGRESS, "services-api", {f"{ALB}scheme": "internet-facing", **{ALB + k: v for k, v in changes.items()}}
    )


def cdn(path, value):
    return setting(DISTRIBUTION, "dashboard-distribution", path, value)


def another_s3_origin(record):
    [distribution] = named(record, DISTRIBUTION, "dashboard-distribution")
    origin = {"originId": "logs", "domainName": "dashboard-logs-8e02907.s3.us-east-1.amazonaws.com"}
    set_value(record, DISTRIBUTION, "dashboard-distribution", "origins", [*distribution["inputs"]["origins"], origin])


HTTP_BEHAVIOUR = {
    "pathPattern": "/reports/*",
    "targetOriginId": "assets",
    "viewerProtocolPolicy": "allow-all",
    "allowedMethods": ["GET", "HEAD"],
    "cachedMethods": ["GET", "HEAD"],
    "cachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
}

CASES = {
    "deployment-rollout-awaited": [
        (
            "api-skips-await",
            annotated(DEPLOYMENT, "services-api", {"pulumi.com/skipAwait": "true"}),
            "does not wait for this Deployment to become ready (pulumi.com/skipAwait)",
        ),
        (
            "capitalised-true",
            annotated(DEPLOYMENT, "services-storage-api", {"pulumi.com/skipAwait": "True"}),
            "set scanner:servicesRollout back to await",
        ),
    ],
    "deployment-spread-over-zones": [
        (
            "zone-spread-soft",
            setting(DEPLOYMENT, "services-storage-api", f"{ZONE_SPREAD}.whenUnsatisfiable", "ScheduleAnyway"),
            "Deployment 'scanner-services/storage-api' runs up to 18 replicas but is not spread over the zones",
        ),
        (
            "min-domains-left-out",
            setting(DEPLOYMENT, "services-webhooks", f"{ZONE_SPREAD}.minDomains", DELETE),
            "Deployment 'scanner-services/webhooks' runs up to 12 replicas but is not spread",
        ),
        (
            "spread-counts-another-service",
            setting(
                DEPLOYMENT,
                "services-api",
                f"{ZONE_SPREAD}.labelSelector",
                {"matchLabels": {"app.kubernetes.io/name": "webhooks"}},
            ),
            "Deployment 'scanner-services/api' runs up to 24 replicas but is not spread",
        ),
    ],
    "deployment-has-disruption-budget": [
        (
            "budget-dropped",
            lambda r: drop(r, BUDGET, "services-webhooks"),
            "Deployment 'scanner-services/webhooks' runs up to 12 replicas with no PodDisruptionBudget",
        ),
        (
            "budget-in-default-namespace",
            setting(BUDGET, "services-api", "metadata.namespace", "default"),
            "Deployment 'scanner-services/api' runs up to 24 replicas with no PodDisruptionBudget",
        ),
        (
            "min-available-at-the-floor",
            edits(
                setting(BUDGET, "services-storage-api", "spec.maxUnavailable", DELETE),
                setting(BUDGET, "services-storage-api", "spec.minAvailable", 3),
            ),
            "PodDisruptionBudget 'scanner-services/storage-api' allows no eviction at 3 replica(s)",
        ),
    ],
    "load-balancer-every-az": [
        (
            "subnet-copied-from-dev",
            annotated(
                INGRESS, "services-api", {f"{ALB}subnets": f"{PRIVATE}a,{PRIVATE}b,scanner-dev-private-eu-west-1c"}
            ),
            "names scanner-dev-private-eu-west-1c, not a subnet of this stack",
        ),
        (
            "service-made-nlb",
            setting(SERVICE, "services-webhooks", "spec.type", "LoadBalancer"),
            "Service 'scanner-services/webhooks' leaves its load balancer's subnets to auto-discovery",
        ),
        (
            "legacy-class-two-zones",
            edits(
                setting(INGRESS, "services-api", "spec.ingressClassName", DELETE),
                annotated(
                    INGRESS,
                    "services-api",
                    {"kubernetes.io/ingress.class": "alb", f"{ALB}subnets": f"{PRIVATE}a,{PRIVATE}b"},
                ),
            ),
            "Ingress 'scanner-services/api''s load balancer has no subnet in us-east-1c",
        ),
    ],
    "internet-alb-https-only": [
        (
            "scheme-flipped",
            internet_facing(),
            "Ingress 'services-api' gives an internet-facing load balancer a plain-HTTP listener",
        ),
        (
            "https-without-certificate",
            internet_facing(**{"listen-ports": '[{"HTTPS": 443}]'}),
            "has an HTTPS listener without alb.ingress.kubernetes.io/certificate-arn",
        ),
        (
            "controller-default-tls",
            internet_facing(**{"listen-ports": '[{"HTTPS": 443}]', "certificate-arn": CERTIFICATE}),
            "ssl-policy ELBSecurityPolicy-2016-08 accepts TLS below 1.2",
        ),
    ],
    "service-pods-hardened": [
        (
            "host-network",
            setting(DEPLOYMENT, "services-api", f"{POD}.hostNetwork", True),
            "pods share the node's namespaces (hostNetwork)",
        ),
        (
            "capability-added",
            setting(
                DEPLOYMENT,
                "services-webhooks",
                f"{POD}.containers.0.securityContext.capabilities",
                {"add": ["NET_ADMIN"]},
            ),
            "container 'webhooks' keeps Linux capabilities",
        ),
        (
            "pod-non-root-left-out",
            setting(DEPLOYMENT, "services-storage-api", f"{POD}.securityContext.runAsNonRoot", DELETE),
            "container 'storage-api' may run as root",
        ),
    ],
    "cloudfront-https-only": [
        ("ordered-behaviour-allows-http", cdn("orderedCacheBehaviors", [HTTP_BEHAVIOUR]), "serves plain HTTP"),
        (
            "tls-1-1-on-own-certificate",
            cdn("viewerCertificate.minimumProtocolVersion", "TLSv1.1_2016"),
            "the distribution accepts TLSv1.1_2016",
        ),
        (
            "default-certificate",
            cdn("viewerCertificate", {"cloudfrontDefaultCertificate": True}),
            "a production stack serves its own domain with TLS 1.2 or newer",
        ),
    ],
    # In preview the bucket's domain is unknown: the origin must still count as S3 and be refused.
    "cloudfront-origin-access-control": [
        (
            "oac-left-out",
            cdn("origins.0.originAccessControlId", DELETE),
            "origin 'assets' reaches S3 without origin access control",
        ),
        (
            "legacy-oai",
            edits(
                cdn("origins.0.originAccessControlId", DELETE),
                cdn(
                    "origins.0.s3OriginConfig", {"originAccessIdentity": "origin-access-identity/cloudfront/E2EXAMPLE"}
                ),
            ),
            "origin 'assets' uses a legacy origin access identity",
        ),
        ("second-s3-origin", another_s3_origin, "origin 'logs' reaches S3 without origin access control"),
    ],
}

#: The policies that advise instead of refusing (the first deploy skips the wait on purpose).
LEVELS = {"deployment-rollout-awaited": "advisory"}

UNIT_FAULTS = unit_cases(CASES)


@pytest.mark.parametrize("policy, edit, message, mode", UNIT_FAULTS)
def test_fault_is_refused(policy, edit, message, mode):
    record = run("prod", mode)
    edit(record)
    assert_refused(record, policy, message, level=LEVELS.get(policy, "mandatory"))


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("policy", sorted(CASES))
def test_clean_stack_passes(policy, mode, stack):
    assert verdict(run(stack, mode), policy) == []


# ----- settings and environments ----------------------------------------------------------------------


@pytest.mark.parametrize("environment, refused", [("production", True), ("development", False), (None, True)])
def test_default_certificate_is_refused_where_the_environment_wants_its_own_domain(environment, refused):
    """CloudFront's own certificate: refused in production and, when the stack names no
    environment, under the strictest rules; allowed in development."""
    record = run("prod", "update")
    cdn("viewerCertificate", {"cloudfrontDefaultCertificate": True})(record)
    if environment is None:
        del record.config["scanner:environment"]
    else:
        record.config["scanner:environment"] = environment
    if refused:
        assert_refused(record, "cloudfront-https-only", f"a {environment or 'production'} stack serves its own domain")
    else:
        assert verdict(record, "cloudfront-https-only") == []


@pytest.mark.parametrize("mode", MODES)
def test_alb_class_is_read_from_policy_config(mode, tmp_path):
    """An Ingress of another class in two zones: not an ALB under the default setting; refused once
    the policy config names its class."""
    record = run("prod", mode)
    set_value(record, INGRESS, "services-api", "spec.ingressClassName", "alb-public")
    annotated(INGRESS, "services-api", {f"{ALB}subnets": f"{PRIVATE}a,{PRIVATE}b"})(record)
    config = tmp_path / "placement.json"
    config.write_text(json.dumps({"load-balancer-every-az": {"ingressClass": "alb-public"}}))

    assert verdict(record, "load-balancer-every-az") == []
    [found] = verdict(record, "load-balancer-every-az", config)
    assert found.level == "mandatory" and "has no subnet in us-east-1c" in found.message, found
