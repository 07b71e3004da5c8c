"""Services on EKS: Deployments spread over every zone with budgets, KEDA autoscalers with the
weekday-peak schedule, the load balancer controller and the API Ingress; the config rules; the
placement rules that refuse a stack breaking them, through the gate and the preview command."""

import json

import pytest
from conftest import ROOT, gate, mandatory, of_type, one, run

from components.common.peak_window import PeakWindow
from components.eks import karpenter_plan
from components.services import manifests, services
from components.services import platform as service_platform
from stack_config import ConfigError

PLACEMENT = ROOT / "policies" / "placement"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
BUDGET = "kubernetes:policy/v1:PodDisruptionBudget"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RELEASE = "kubernetes:helm.sh/v3:Release"
PROD_SERVICES = {"api", "webhooks", "storage-api"}
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def by_name(record, type_):
    return {r["inputs"]["metadata"]["name"]: r["inputs"] for r in of_type(record, type_)}


def as_ints(value):
    """Wire numbers are floats; the CRD schemas want integers."""
    return json.loads(json.dumps(value), parse_float=lambda t: int(float(t)) if float(t).is_integer() else float(t))


# ----- the peak window ---------------------------------------------------------------------


def test_peak_window_cron_and_membership():
    peak = PeakWindow("1-5", 7, 19)
    assert (peak.start_cron, peak.end_cron, peak.duration) == ("0 7 * * 1-5", "0 19 * * 1-5", "12h")
    assert peak.contains(1, 7) and peak.contains(5, 18)
    assert not peak.contains(5, 19) and not peak.contains(6, 12) and not peak.contains(0, 12)
    assert PeakWindow("1,3-4", 9, 17).day_numbers() == {1, 3, 4}
    assert peak.describe() == "Mon, Tue, Wed, Thu, Fri 07:00-19:00 UTC"


# ----- what prod declares --------------------------------------------------------------------


def test_each_configured_service_gets_deployment_budget_service_and_autoscaler(prod_update):
    for type_ in (DEPLOYMENT, BUDGET, SCALED_OBJECT, "kubernetes:core/v1:Service"):
        assert set(by_name(prod_update, type_)) >= PROD_SERVICES, type_
    assert set(by_name(prod_update, DEPLOYMENT)) == PROD_SERVICES


def test_deployments_spread_over_every_zone_on_the_services_pool(prod_update):
    for name, deployment in by_name(prod_update, DEPLOYMENT).items():
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        pod = deployment["spec"]["template"]["spec"]
        [zone] = [c for c in pod["topologySpreadConstraints"] if c["topologyKey"] == manifests.ZONE_KEY]
        assert (zone["whenUnsatisfiable"], zone["minDomains"], zone["maxSkew"]) == ("DoNotSchedule", 3, 1)
        assert zone["labelSelector"]["matchLabels"] == {manifests.NAME_LABEL: name}
        assert deployment["spec"]["template"]["metadata"]["labels"][manifests.NAME_LABEL] == name
        assert pod["nodeSelector"] == {karpenter_plan.POOL_LABEL: karpenter_plan.SERVICES_POOL}
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_probes_resources_and_hardening(prod_update):
    deployment = by_name(prod_update, DEPLOYMENT)["api"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["resources"] == {"requests": {"cpu": "1000m", "memory": "2048Mi"}, "limits": {"memory": "2048Mi"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    # The load balancer deregisters a stopping pod before it exits.
    assert (
        container["lifecycle"]["preStop"]["sleep"]["seconds"]
        < deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    )


def test_images_come_from_the_stacks_registry_at_the_configured_tag(prod_update):
    repositories = {r["inputs"]["name"]: r for r in of_type(prod_update, "aws:ecr/repository:Repository")}
    assert {f"scanner/{name}" for name in PROD_SERVICES} <= set(repositories)
    image = by_name(prod_update, DEPLOYMENT)["storage-api"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("/scanner/storage-api:2026.11.1")


def test_budgets_let_one_replica_go(prod_update):
    budgets = by_name(prod_update, BUDGET)
    assert set(budgets) == PROD_SERVICES
    for name, budget in budgets.items():
        assert budget["spec"]["maxUnavailable"] == 1
        assert budget["spec"]["selector"]["matchLabels"] == {manifests.NAME_LABEL: name}


def test_autoscalers_raise_the_floor_in_the_weekday_peak_only(prod_update):
    scalers = by_name(prod_update, SCALED_OBJECT)
    api = scalers["api"]["spec"]
    assert (api["minReplicaCount"], api["maxReplicaCount"]) == (3, 24)
    assert api["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "api"
    triggers = {t["type"]: t for t in api["triggers"]}
    assert triggers["cpu"] == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    assert triggers["cron"]["metadata"] == {
        "timezone": "Etc/UTC",
        "start": "0 7 * * 1-5",
        "end": "0 19 * * 1-5",
        "desiredReplicas": "6",
    }
    # webhooks has the same floor at every hour: no cron trigger.
    assert [t["type"] for t in scalers["webhooks"]["spec"]["triggers"]] == ["cpu"]


def test_peak_window_comes_from_config():
    record = run(
        "prod",
        "preview",
        **{"scanner:peakDays": "0-6", "scanner:peakStartHourUtc": "6", "scanner:peakEndHourUtc": "22"},
    )
    cron = next(t for t in by_name(record, SCALED_OBJECT)["api"]["spec"]["triggers"] if t["type"] == "cron")
    assert (cron["metadata"]["start"], cron["metadata"]["end"]) == ("0 6 * * 0-6", "0 22 * * 0-6")
    pools = by_name(record, "kubernetes:karpenter.sh/v1:NodePool")
    for pool in (karpenter_plan.SCAN_POOL, karpenter_plan.SERVICES_POOL):
        [freeze] = [b for b in pools[pool]["spec"]["disruption"]["budgets"] if "schedule" in b]
        assert (freeze["schedule"], freeze["duration"], freeze["nodes"]) == ("0 6 * * 0-6", "16h", "0")


@pytest.mark.parametrize("type_", [SCALED_OBJECT, "kubernetes:karpenter.sh/v1:NodePool"])
def test_autoscalers_and_scheduled_pools_validate_against_the_crds(crds, prod_update, type_):
    resources = of_type(prod_update, type_)
    assert resources
    for resource in resources:
        inputs = resource["inputs"]
        manifest = {
            "apiVersion": inputs["apiVersion"],
            "kind": inputs["kind"],
            "metadata": inputs["metadata"],
            "spec": as_ints(inputs["spec"]),
        }
        assert crds.validate(manifest) == [], resource["urn"]


def test_one_internal_load_balancer_in_a_private_subnet_of_every_zone(prod_update):
    [ingress] = by_name(prod_update, INGRESS).values()
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/subnets"].split(",") == [f"scanner-prod-private-{z}" for z in ZONES]
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.40.0.0/16"
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}]
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/api": "api", "/webhooks": "webhooks"}, "storage-api stays in-cluster"
    subnet_names = {r["inputs"]["tags"]["Name"] for r in of_type(prod_update, "aws:ec2/subnet:Subnet")}
    assert set(annotations["alb.ingress.kubernetes.io/subnets"].split(",")) <= subnet_names


def test_with_custom_networking_the_internal_load_balancer_admits_the_pod_range():
    record = run("prod", "preview", **{"scanner:podCidr": "100.64.0.0/16", "scanner:targetPodsPerZone": "8000"})
    annotations = next(iter(by_name(record, INGRESS).values()))["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.40.0.0/16,100.64.0.0/16"


def test_internet_facing_load_balancer_uses_public_subnets_and_tls():
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    record = run("prod", "preview", **{"scanner:apiIngressScheme": "internet-facing", "scanner:apiCertificateArn": arn})
    annotations = next(iter(by_name(record, INGRESS).values()))["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/subnets"].split(",") == [f"scanner-prod-public-{z}" for z in ZONES]
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTPS": 443}]
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == arn
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")
    assert "alb.ingress.kubernetes.io/inbound-cidrs" not in annotations


def test_ingress_waits_for_the_controller_and_services_for_keda(prod_update):
    releases = {r["inputs"]["name"]: r["urn"] for r in of_type(prod_update, RELEASE)}
    [ingress] = of_type(prod_update, INGRESS)
    assert releases["aws-load-balancer-controller"] in ingress["dependencies"]
    scaler = one(prod_update, SCALED_OBJECT, "services-api-autoscaler")
    assert releases["keda"] in scaler["dependencies"]
    assert releases["metrics-server"] in scaler["dependencies"]


def test_load_balancer_controller_is_pinned_with_pod_identity(prod_update):
    release = one(prod_update, RELEASE, "service-platform-lbc")["inputs"]
    assert (release["chart"], release["version"]) == ("aws-load-balancer-controller", service_platform.LBC_VERSION)
    values = release["values"]
    assert values["clusterName"] == "scanner-prod" and values["region"] == "us-east-1" and values["vpcId"]
    assert values["serviceAccount"]["name"] == service_platform.LBC_SERVICE_ACCOUNT
    assert values["nodeSelector"] == karpenter_plan.SYSTEM_LABEL
    assert values["enableServiceMutatorWebhook"] is False
    association = one(prod_update, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "service-platform-lbc")
    assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == (
        "kube-system",
        "aws-load-balancer-controller",
    )
    metrics = one(prod_update, RELEASE, "service-platform-metrics-server")["inputs"]
    assert (metrics["chart"], metrics["version"]) == ("metrics-server", service_platform.METRICS_SERVER_VERSION)


def test_descheduler_rebalances_only_the_services_zone_spread(prod_update):
    release = one(prod_update, RELEASE, "service-platform-descheduler")["inputs"]
    assert (release["chart"], release["version"]) == ("descheduler", service_platform.DESCHEDULER_VERSION)
    [profile] = release["values"]["deschedulerPolicy"]["profiles"]
    assert profile["plugins"]["balance"]["enabled"] == ["RemovePodsViolatingTopologySpreadConstraint"]
    assert "deschedule" not in profile["plugins"], "no other eviction rule"
    args = {c["name"]: c.get("args", {}) for c in profile["pluginConfig"]}
    assert args["RemovePodsViolatingTopologySpreadConstraint"] == {
        "constraints": ["DoNotSchedule"],
        "namespaces": {"include": ["scanner-services"]},
    }
    # The services mount an emptyDir at /tmp: without this they would never be evicted.
    assert args["DefaultEvictor"]["evictLocalStoragePods"] is True
    assert release["values"]["nodeSelector"] == karpenter_plan.SYSTEM_LABEL


def test_controller_policy_fits_iam_and_scopes_security_group_changes_to_the_vpc():
    document = service_platform.controller_policy(
        "aws-us-gov", "us-gov-west-1", "123456789012", "vpc-0123456789abcdef0"
    )
    assert karpenter_plan.policy_size(document) <= karpenter_plan.IAM_POLICY_LIMIT
    assert "arn:aws:" not in json.dumps(document), "every ARN is in the stack's partition"
    ingress_rules = [s for s in document["Statement"] if "ec2:AuthorizeSecurityGroupIngress" in s["Action"]]
    assert ingress_rules and all("Condition" in s for s in ingress_rules)
    assert {"ArnEquals": {"ec2:Vpc": "arn:aws-us-gov:ec2:us-gov-west-1:123456789012:vpc/vpc-0123456789abcdef0"}} in [
        s["Condition"] for s in ingress_rules
    ]


def test_services_namespace_injects_load_balancer_readiness_gates(prod_update):
    namespace = one(prod_update, "kubernetes:core/v1:Namespace", "data-access-namespace")["inputs"]
    assert namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


# ----- config rules ------------------------------------------------------------------------


def service(**overrides):
    return {"name": "api", "imageTag": "1.0.0", "port": 8080, "minReplicas": 3, "maxReplicas": 6, **overrides}


@pytest.mark.parametrize(
    "services_value,message",
    [
        ([service(minReplicas=2)], "scanner:services[0].minReplicas: 2 is fewer than one replica per zone (3 zones)"),
        ([service(peakMinReplicas=2)], "scanner:services[0].peakMinReplicas: 2 is below minReplicas 3"),
        (
            [service(maxReplicas=4, peakMinReplicas=5)],
            "scanner:services[0].maxReplicas: 4 is below the replica floor 5",
        ),
        ([service(imageTag="latest")], "scanner:services[0].imageTag: 'latest' is not a pinned image tag"),
        ([service(port=80)], "scanner:services[0].port: Input should be greater than or equal to 1024"),
        ([service(replicas=3)], "scanner:services[0].replicas: unknown key"),
        ([service(), service()], "scanner:services[1].name: 'api' is listed more than once"),
        ([service(name="sast")], "scanner:services[0].name: 'sast' is already an image of the scan Jobs"),
        ([service(name="drill")], "scanner:services[0].name: 'drill' is reserved for the data tier's own clients"),
        (
            [service(ingressPath="/a"), service(name="b", ingressPath="/a")],
            "scanner:services[1].ingressPath: /a is already routed to api",
        ),
        ([service(ingressPath="api")], "scanner:services[0].ingressPath: 'api' is not an absolute HTTP path"),
        (
            [service(maxReplicas=300, cpuMillicores=1000)],
            "scanner:services: the services at maxReplicas request 300 vCPU, more than servicesPoolCpuLimit 128",
        ),
        (
            [service(maxReplicas=100, cpuMillicores=100, memoryMib=8192)],
            "scanner:services: the services at maxReplicas "
            "request 800 GiB of memory, more than servicesPoolMemoryGib 512",
        ),
    ],
)
def test_bad_service_config_is_one_line_naming_the_key(services_value, message):
    with pytest.raises(ConfigError) as caught:
        run("prod", "preview", **{"scanner:services": json.dumps(services_value)})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"scanner:apiIngressScheme": "internet-facing"},
            "scanner:apiIngressScheme: internet-facing needs apiCertificateArn",
        ),
        (
            {"scanner:apiCertificateArn": "arn:aws:iam::1:cert"},
            "scanner:apiCertificateArn: 'arn:aws:iam::1:cert' is not an ACM",
        ),
        ({"scanner:peakEndHourUtc": "7"}, "scanner:peakEndHourUtc: 7 is not after peakStartHourUtc 7"),
        ({"scanner:peakDays": "mon-fri"}, "scanner:peakDays: 'mon-fri' is not a cron day-of-week field"),
        ({"scanner:peakDays": "5-1"}, "scanner:peakDays: range 5-1 runs backwards"),
        (
            {
                "scanner:apiCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
            },
            "scanner:apiCertificateArn: is in eu-west-1; a load balancer takes a certificate from its own region (us-east-1)",
        ),
        ({"scanner:peakStartHourUtc": "24"}, "scanner:peakStartHourUtc: Input should be less than or equal to 22"),
    ],
)
def test_bad_schedule_and_ingress_config_is_refused(overrides, message):
    with pytest.raises(ConfigError) as caught:
        run("prod", "preview", **overrides)
    assert str(caught.value).startswith(message)


def test_a_stack_without_services_has_no_ingress_and_no_deployments():
    record = run("prod", "preview", **{"scanner:services": "[]"})
    assert not of_type(record, DEPLOYMENT) and not of_type(record, INGRESS)
    assert of_type(record, RELEASE), "the platform (controllers) stays installed"


# ----- placement rules through the gate ----------------------------------------------------------


def unspread(monkeypatch):
    monkeypatch.setattr(
        manifests,
        "spread",
        lambda name, zones: [
            {
                "maxSkew": 1,
                "topologyKey": manifests.HOST_KEY,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {manifests.NAME_LABEL: name}},
            }
        ],
    )


def spread_over_too_few_zones(monkeypatch):
    original = manifests.spread
    monkeypatch.setattr(manifests, "spread", lambda name, zones: original(name, zones - 1))


def no_budgets(monkeypatch):
    # A budget that selects other pods is as good as none.
    monkeypatch.setattr(
        manifests,
        "disruption_budget_spec",
        lambda name: {"maxUnavailable": 1, "selector": {"matchLabels": {manifests.NAME_LABEL: f"{name}-old"}}},
    )


def budgets_blocking_drains(monkeypatch):
    original = manifests.disruption_budget_spec
    monkeypatch.setattr(manifests, "disruption_budget_spec", lambda name: {**original(name), "maxUnavailable": 0})


def load_balancer_in_two_zones(monkeypatch):
    original = manifests.ingress_annotations

    def annotations(settings):
        values = original(settings)
        names = values["alb.ingress.kubernetes.io/subnets"].split(",")
        return {**values, "alb.ingress.kubernetes.io/subnets": ",".join(names[:2])}

    monkeypatch.setattr(manifests, "ingress_annotations", annotations)


def load_balancer_auto_discovered(monkeypatch):
    original = manifests.ingress_annotations
    monkeypatch.setattr(
        manifests,
        "ingress_annotations",
        lambda settings: {k: v for k, v in original(settings).items() if k != "alb.ingress.kubernetes.io/subnets"},
    )


def skewed_spread(monkeypatch):
    original = manifests.spread
    monkeypatch.setattr(
        manifests,
        "spread",
        lambda name, zones: [
            {**c, "maxSkew": 50} if c["topologyKey"] == manifests.ZONE_KEY else c for c in original(name, zones)
        ],
    )


def spread_counting_every_service(monkeypatch):
    original = manifests.spread
    monkeypatch.setattr(
        manifests,
        "spread",
        lambda name, zones: [
            {**c, "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "scanner"}}}
            for c in original(name, zones)
        ],
    )


def budgets_requiring_every_pod(monkeypatch):
    monkeypatch.setattr(
        manifests,
        "disruption_budget_spec",
        lambda name: {"minAvailable": "100%", "selector": {"matchLabels": {manifests.NAME_LABEL: name}}},
    )


def two_budgets_per_service(monkeypatch):
    original = services.k8s.policy.v1.PodDisruptionBudget

    def twice(resource_name, metadata, spec, opts=None):
        original(
            f"{resource_name}-copy", metadata={**metadata, "name": f"{metadata['name']}-copy"}, spec=spec, opts=opts
        )
        return original(resource_name, metadata=metadata, spec=spec, opts=opts)

    monkeypatch.setattr(services.k8s.policy.v1, "PodDisruptionBudget", twice)


def load_balancer_in_a_foreign_subnet(monkeypatch):
    original = manifests.ingress_annotations
    monkeypatch.setattr(
        manifests,
        "ingress_annotations",
        lambda settings: {**original(settings), "alb.ingress.kubernetes.io/subnets": "subnet-0123456789abcdef0"},
    )


FAULTS = {
    "spread-skew-50": (skewed_spread, {"deployment-spread-over-zones"}, "maxSkew: 1"),
    "spread-over-all-services": (
        spread_counting_every_service,
        {"deployment-spread-over-zones"},
        "a labelSelector of its own pods",
    ),
    "budget-requires-every-pod": (
        budgets_requiring_every_pod,
        {"deployment-has-disruption-budget"},
        "allows no eviction at 3 replica(s)",
    ),
    "two-budgets": (
        two_budgets_per_service,
        {"deployment-has-disruption-budget"},
        "selected by 2 PodDisruptionBudgets",
    ),
    "load-balancer-foreign-subnet": (
        load_balancer_in_a_foreign_subnet,
        {"load-balancer-every-az"},
        "names subnet-0123456789abcdef0, not a subnet of this stack",
    ),
    "deployment-not-spread": (
        unspread,
        {"deployment-spread-over-zones"},
        "runs up to 24 replicas but is not spread over the zones",
    ),
    "spread-short-of-a-zone": (spread_over_too_few_zones, {"deployment-spread-over-zones"}, "minDomains: 3"),
    "no-disruption-budget": (no_budgets, {"deployment-has-disruption-budget"}, "with no PodDisruptionBudget"),
    "budget-blocks-drains": (budgets_blocking_drains, {"deployment-has-disruption-budget"}, "allows no eviction"),
    "load-balancer-two-zones": (load_balancer_in_two_zones, {"load-balancer-every-az"}, "has no subnet in us-east-1c"),
    "load-balancer-auto-discovered": (
        load_balancer_auto_discovered,
        {"load-balancer-every-az"},
        "leaves its load balancer's subnets to auto-discovery",
    ),
}


#: Faults that can share a run: each changes a different builder (the spread, the budget, the
#: load balancer's subnets); alternatives for the same builder go to different runs.
GROUPS = {
    "first": ["spread-skew-50", "budget-requires-every-pod", "load-balancer-foreign-subnet"],
    "second": ["spread-over-all-services", "two-budgets", "load-balancer-two-zones"],
    "third": ["deployment-not-spread", "no-disruption-budget", "load-balancer-auto-discovered"],
    "fourth": ["spread-short-of-a-zone", "budget-blocks-drains"],
}


#: The group judged by the pack processes, with the other tiers' (`representative_faults`): one
#: fault for each policy of the table. The other groups are judged by the same packs in process.
REPRESENTATIVE = "first"


def test_groups_hold_every_fault_once():
    assert sorted(f for g in GROUPS.values() for f in g) == sorted(FAULTS)
    assert {p for f in GROUPS[REPRESENTATIVE] for p in FAULTS[f][1]} == {p for _, ps, _ in FAULTS.values() for p in ps}


def test_a_single_replica_deployment_needs_neither_spread_nor_budget(monkeypatch):
    """The rules apply from two replicas on; the count is read from the Deployment's autoscaler."""
    unspread(monkeypatch)
    no_budgets(monkeypatch)
    original = manifests.scaled_object_spec

    def single(spec, peak):
        return {**original(spec, peak), "minReplicaCount": 1, "maxReplicaCount": 1}

    monkeypatch.setattr(manifests, "scaled_object_spec", single)
    result = gate(run("prod", "preview"), packs=(PLACEMENT,))
    assert mandatory(result) == []


# ----- security rules on the services ------------------------------------------------------------

SECURITY = ROOT / "policies" / "security"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def public_http_listener(monkeypatch):
    original = manifests.ingress_annotations

    def annotations(settings):
        values = original(settings)
        return {
            **values,
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
            "alb.ingress.kubernetes.io/certificate-arn": CERTIFICATE,
        }

    monkeypatch.setattr(manifests, "ingress_annotations", annotations)


def privileged_service(monkeypatch):
    original = manifests.deployment_spec

    def spec(*args):
        value = original(*args)
        value["template"]["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": True}
        return value

    monkeypatch.setattr(manifests, "deployment_spec", spec)


def public_weak_tls(monkeypatch):
    original = manifests.ingress_annotations
    monkeypatch.setattr(
        manifests,
        "ingress_annotations",
        lambda settings: {
            **original(settings),
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
            "alb.ingress.kubernetes.io/certificate-arn": CERTIFICATE,
            "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-0-2021-06",
        },
    )


def plain_http_member_of_a_public_group(monkeypatch):
    """The group's public member is clean; a second member without a scheme adds port 80."""
    original = manifests.ingress_annotations

    def annotations(settings):
        values = {**original(settings), "alb.ingress.kubernetes.io/group.name": "api"}
        if settings.scheme == "internal":
            return values
        return {**values, "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}]'}

    monkeypatch.setattr(manifests, "ingress_annotations", annotations)
    original_ingress = services.k8s.networking.v1.Ingress

    class TwoIngresses(services.k8s.networking.v1.Ingress):
        def __init__(self, resource_name, metadata, spec, opts=None):
            public = {
                **metadata["annotations"],
                "alb.ingress.kubernetes.io/scheme": "internet-facing",
                "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
                "alb.ingress.kubernetes.io/certificate-arn": CERTIFICATE,
                "alb.ingress.kubernetes.io/ssl-policy": manifests.SSL_POLICY,
            }
            original_ingress(
                f"{resource_name}-public",
                spec=spec,
                opts=opts,
                metadata={**metadata, "name": "api-public", "annotations": public},
            )
            plain = {k: v for k, v in metadata["annotations"].items() if k != "alb.ingress.kubernetes.io/scheme"}
            plain["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTP": 80}]'
            super().__init__(resource_name, metadata={**metadata, "annotations": plain}, spec=spec, opts=opts)

    monkeypatch.setattr(services.k8s.networking.v1, "Ingress", TwoIngresses)


def root_container_under_a_non_root_pod(monkeypatch):
    original = manifests.deployment_spec

    def spec(*args):
        value = original(*args)
        context = value["template"]["spec"]["containers"][0]["securityContext"]
        context.update(runAsNonRoot=False, runAsUser=0)
        return value

    monkeypatch.setattr(manifests, "deployment_spec", spec)


def privileged_init_container(monkeypatch):
    original = manifests.deployment_spec

    def spec(*args):
        value = original(*args)
        value["template"]["spec"]["initContainers"] = [
            {"name": "setup", "image": "busybox:1.37", "securityContext": {"privileged": True}}
        ]
        return value

    monkeypatch.setattr(manifests, "deployment_spec", spec)


SECURITY_FAULTS = {
    "public-plain-http": (public_http_listener, {"internet-alb-https-only"}, "plain-HTTP listener"),
    "public-weak-tls": (
        public_weak_tls,
        {"internet-alb-https-only"},
        "ELBSecurityPolicy-TLS13-1-0-2021-06 accepts TLS below 1.2",
    ),
    "plain-http-group-member": (
        plain_http_member_of_a_public_group,
        {"internet-alb-https-only"},
        "Ingress 'services-api' gives an internet-facing load balancer a plain-HTTP listener",
    ),
    "privileged-service": (privileged_service, {"service-pods-hardened"}, "may gain privileges"),
    "root-container": (root_container_under_a_non_root_pod, {"service-pods-hardened"}, "may run as root"),
    "privileged-init-container": (
        privileged_init_container,
        {"service-pods-hardened"},
        "container 'setup' may gain privileges",
    ),
}


def test_a_certificate_without_listen_ports_means_https_only(monkeypatch):
    """The controller listens on 443 when a certificate is set and no ports are: no plain HTTP."""
    original = manifests.ingress_annotations

    def annotations(settings):
        values = {k: v for k, v in original(settings).items() if k != "alb.ingress.kubernetes.io/listen-ports"}
        return values

    monkeypatch.setattr(manifests, "ingress_annotations", annotations)
    record = run(
        "prod", "preview", **{"scanner:apiIngressScheme": "internet-facing", "scanner:apiCertificateArn": CERTIFICATE}
    )
    assert mandatory(gate(record, packs=(SECURITY,))) == []


#: One load-balancer fault and one pod fault per run.
SECURITY_GROUPS = {
    "first": ["public-plain-http", "privileged-service"],
    "second": ["public-weak-tls", "root-container"],
    "third": ["plain-http-group-member", "privileged-init-container"],
}


def test_security_groups_hold_every_fault_once():
    assert sorted(f for g in SECURITY_GROUPS.values() for f in g) == sorted(SECURITY_FAULTS)
    assert {p for f in SECURITY_GROUPS[REPRESENTATIVE] for p in SECURITY_FAULTS[f][1]} == {
        p for _, ps, _ in SECURITY_FAULTS.values() for p in ps
    }


def representative_faults() -> dict:
    """One fault for each policy of this module's tables, judged with the other tiers' in one run
    of the program through the pack processes, in both modes (tests/packs/test_gate_of_record.py)."""
    placement = {name: FAULTS[name] for name in GROUPS[REPRESENTATIVE]}
    security = {name: SECURITY_FAULTS[name] for name in SECURITY_GROUPS[REPRESENTATIVE]}
    assert not placement.keys() & security.keys()
    return placement | security


def variation_groups() -> list[dict]:
    """The further variations on this module's tables, one group per run, each run shared with
    the other tiers' groups of the same rank and judged by the packs in process
    (tests/packs/test_gate_of_record.py)."""
    # A placement group and a security group share a run: they change different builders.
    placement = [{name: FAULTS[name] for name in GROUPS[g]} for g in sorted(set(GROUPS) - {REPRESENTATIVE})]
    security = [
        {name: SECURITY_FAULTS[name] for name in SECURITY_GROUPS[g]}
        for g in sorted(set(SECURITY_GROUPS) - {REPRESENTATIVE})
    ]
    return [p | (security[i] if i < len(security) else {}) for i, p in enumerate(placement)]


def test_the_internet_facing_api_as_configured_passes_the_security_pack():
    record = run(
        "prod", "preview", **{"scanner:apiIngressScheme": "internet-facing", "scanner:apiCertificateArn": CERTIFICATE}
    )
    assert mandatory(gate(record, packs=(SECURITY, PLACEMENT))) == []


# ----- identities ------------------------------------------------------------------------------


def test_each_service_runs_as_itself_and_reads_only_its_stores(prod_update):
    def arn(name):
        return one(prod_update, "aws:secretsmanager/secret:Secret", name)["outputs"]["arn"]

    admin = arn("rabbitmq-admin")
    master = arn("postgres-master")
    expected = {
        "api": {"rabbitmq", "redis", "postgres-read"},
        "webhooks": {"rabbitmq"},
        "storage-api": {"postgres", "redis"},
    }
    for name, stores in expected.items():
        # Every store as a user of the service's own: never the master user or an administrator.
        own = {
            "postgres": "postgres-scans_rw",
            "postgres-read": "postgres-scans_ro",
            "redis": f"redis-svc-{name}",
            "rabbitmq": f"broker-svc-{name}",
        }
        secrets = {store: arn(own[store]) for store in stores}
        pod = by_name(prod_update, DEPLOYMENT)[name]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"] if e["name"].endswith("_SECRET_ARN")}
        names = {"postgres": "POSTGRES", "postgres-read": "POSTGRES_READ", "redis": "REDIS", "rabbitmq": "RABBITMQ"}
        assert env == {f"{names[store]}_SECRET_ARN": secrets[store] for store in stores}, name
        assert admin not in json.dumps(pod) and master not in json.dumps(pod), name
        role = one(prod_update, "aws:iam/role:Role", f"services-{name}")
        trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
        assert trust["aws:RequestTag/kubernetes-namespace"] == "scanner-services"
        assert trust["aws:RequestTag/kubernetes-service-account"] == name
        policy = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", f"services-{name}")["inputs"]["policy"])
        readable = policy["Statement"][0]["Resource"]
        readable = {readable} if isinstance(readable, str) else set(readable)
        assert readable == {secrets[store] for store in stores}, name
        association = one(prod_update, "aws:eks/podIdentityAssociation:PodIdentityAssociation", f"services-{name}")
        assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == (
            "scanner-services",
            name,
        )


def test_a_service_without_data_access_gets_no_secret_policy():
    record = run("prod", "update", **{"scanner:services": json.dumps([service()])})
    assert of_type(record, "aws:iam/role:Role") and not [
        p for p in of_type(record, "aws:iam/rolePolicy:RolePolicy") if p["name"] == "services-api"
    ]


def test_unknown_data_store_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"^scanner:services\[0\]\.dataAccess\[0\]: Input should be 'postgres', 'postgres-read', "
        r"'rabbitmq' or 'redis'",
    ):
        run("prod", "preview", **{"scanner:services": json.dumps([service(dataAccess=["mysql"])])})
