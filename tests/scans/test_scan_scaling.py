"""Queue-driven scan Jobs: KEDA, one ScaledJob per engine, its TriggerAuthentication, the cost
rules that keep scans on spot within the pool's limits, and their CRD schemas."""

import json

import pytest
from conftest import ROOT, of_type, one, run

from components.eks import karpenter_plan
from components.scans import scaled_jobs, scan_scaling
from components.scans.scan_job import DO_NOT_DISRUPT

COST = ROOT / "policies" / "cost"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
ENGINES = ["dependencies", "sast", "secrets"]


def scaled_jobs_of(record):
    return {r["inputs"]["metadata"]["name"]: r for r in of_type(record, SCALED_JOB)}


def test_one_scaled_job_per_engine_driven_by_its_queue_depth(prod_update):
    jobs = scaled_jobs_of(prod_update)
    assert sorted(jobs) == [f"scan-{e}" for e in ENGINES]
    for engine in ENGINES:
        spec = jobs[f"scan-{engine}"]["inputs"]["spec"]
        [trigger] = spec["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"] == {
            "protocol": "http",
            "queueName": f"scans.{engine}",
            "vhostName": "scanner",
            "mode": "QueueLength",
            "value": "1",
        }
        assert trigger["authenticationRef"] == {"name": scaled_jobs.TRIGGER_AUTH}
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 150)
        # Jobs not yet Ready count as serving a request: slow starts do not start extra Jobs.
        assert spec["scalingStrategy"] == {"strategy": "accurate", "pendingPodConditions": ["PodScheduled", "Ready"]}
        assert spec["rollout"] == {"strategy": "gradual"}


def test_each_job_is_the_scan_job_template_on_the_spot_pool(prod_update):
    for name, job in scaled_jobs_of(prod_update).items():
        template = job["inputs"]["spec"]["jobTargetRef"]["template"]
        assert template["metadata"]["annotations"] == {DO_NOT_DISRUPT: "true"}
        assert template["spec"]["nodeSelector"] == {karpenter_plan.POOL_LABEL: karpenter_plan.SCAN_POOL}
        [scan] = template["spec"]["containers"]
        engine = name.removeprefix("scan-")
        assert scan["image"] == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/scanner/{engine}:2026.11.1"
        fetch = template["spec"]["initContainers"][1]
        assert fetch["image"].endswith("/scanner/git-fetch:2026.11.1")
        assert {"name": "SCAN_QUEUE", "value": f"scans.{engine}"} in scan["env"]


def test_queue_depth_is_read_with_keda_s_own_broker_user(prod_update):
    """KEDA reads queue depth as its monitoring user, from that user's secret: never as the
    broker's administrator."""
    auth = one(prod_update, "kubernetes:keda.sh/v1alpha1:TriggerAuthentication")["inputs"]
    assert auth["metadata"] == {"name": scaled_jobs.TRIGGER_AUTH, "namespace": "scanner-scans"}
    secret = one(prod_update, "aws:secretsmanager/secret:Secret", "broker-keda")["outputs"]["arn"]
    admin = one(prod_update, "aws:secretsmanager/secret:Secret", "rabbitmq-admin")["outputs"]["arn"]
    assert one(prod_update, "rabbitmq:index/user:User", "broker-user-keda")["inputs"]["tags"] == ["monitoring"]
    manager = auth["spec"]["awsSecretManager"]
    assert manager["podIdentity"] == {"provider": "aws"}
    assert {(s["parameter"], s["secretKey"]) for s in manager["secrets"]} == {
        ("host", "managementUrl"),
        ("username", "username"),
        ("password", "password"),
    }
    assert {s["name"] for s in manager["secrets"]} == {secret}
    association = one(prod_update, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "scan-scaling-keda")[
        "inputs"
    ]
    assert (association["namespace"], association["serviceAccount"]) == ("keda", "keda-operator")
    policy = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "scan-scaling-keda")["inputs"]["policy"])
    assert policy["Statement"][0]["Resource"] == secret
    assert admin not in json.dumps(policy)


def test_keda_is_pinned_on_the_system_nodes(prod_update):
    release = one(prod_update, "kubernetes:helm.sh/v3:Release", "scan-scaling-keda")
    inputs = release["inputs"]
    assert (inputs["chart"], inputs["version"]) == ("keda", scan_scaling.KEDA_VERSION)
    assert inputs["values"]["nodeSelector"] == karpenter_plan.SYSTEM_LABEL
    addons = {a["inputs"]["addonName"]: a["urn"] for a in of_type(prod_update, "aws:eks/addon:Addon")}
    assert addons["eks-pod-identity-agent"] in release["dependencies"]


@pytest.mark.parametrize("kind", ["ScaledJob", "TriggerAuthentication"])
def test_keda_resources_validate_against_the_crds(crds, prod_update, kind):
    resources = of_type(prod_update, f"kubernetes:keda.sh/v1alpha1:{kind}")
    assert resources
    for resource in resources:
        inputs = resource["inputs"]
        manifest = {
            "apiVersion": inputs["apiVersion"],
            "kind": inputs["kind"],
            "metadata": inputs["metadata"],
            "spec": json.loads(
                json.dumps(inputs["spec"]), parse_float=lambda t: int(float(t)) if float(t).is_integer() else float(t)
            ),
        }
        assert crds.validate(manifest) == [], resource["urn"]


def test_scalers_larger_than_the_pool_are_refused_in_config():
    from stack_config import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"^scanner:scanMaxParallelJobs: 3 engines x 200 Jobs x 2 vCPU = 1200 vCPU, "
        r"more than scanPoolCpuLimit 1000",
    ):
        run("prod", "preview", **{"scanner:scanMaxParallelJobs": "200"})


def test_a_floating_image_tag_is_refused():
    from stack_config import ConfigError

    with pytest.raises(ConfigError, match="^scanner:scanImageTag: 'latest' is not a pinned image tag"):
        run("prod", "preview", **{"scanner:scanImageTag": "latest"})


# ----- cost rules through the gate -----------------------------------------------------------------


def on_demand_scan_jobs(monkeypatch):
    original = scaled_jobs.scaled_job_spec

    def spec(engine, queue, max_jobs, job_spec, **kwargs):
        job_spec.template.spec.node_selector = {karpenter_plan.POOL_LABEL: karpenter_plan.SERVICES_POOL}
        return original(engine, queue, max_jobs, job_spec, **kwargs)

    monkeypatch.setattr(scaled_jobs, "scaled_job_spec", spec)


def disruptable_scan_jobs(monkeypatch):
    original = scaled_jobs.scaled_job_spec

    def spec(engine, queue, max_jobs, job_spec, **kwargs):
        job_spec.template.metadata.annotations = {}
        return original(engine, queue, max_jobs, job_spec, **kwargs)

    monkeypatch.setattr(scaled_jobs, "scaled_job_spec", spec)


def oversized_scaler(monkeypatch):
    # The config check refuses this before any resource exists; the fault goes in underneath it.
    original = scaled_jobs.scaled_job_spec
    monkeypatch.setattr(
        scaled_jobs,
        "scaled_job_spec",
        lambda engine, queue, max_jobs, job_spec, **kwargs: original(engine, queue, 400, job_spec, **kwargs),
    )


FAULTS = {
    "scan-jobs-on-demand": (on_demand_scan_jobs, {"scan-jobs-on-spot-pool"}, "not pinned to the spot scan pool"),
    "scan-jobs-disruptable": (
        disruptable_scan_jobs,
        {"scan-jobs-on-spot-pool"},
        "lack the karpenter.sh/do-not-disrupt",
    ),
    "scaler-above-pool": (oversized_scaler, {"scaled-job-within-pool-limits"}, "at their maximum ask for 2400 vCPU"),
}


def representative_faults() -> dict:
    """Every fault of the table (they touch different resources or arguments), judged with the other tiers' in one run
    of the program through the pack processes, in both modes (tests/packs/test_gate_of_record.py)."""
    return dict(FAULTS)
