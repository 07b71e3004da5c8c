"""Karpenter's node class, node pools, IAM and Helm values, as pure functions; and the CRD
validator that checks them the way the API server would."""

import copy
import json

import pytest

from components.common.peak_window import PeakWindow
from components.eks import karpenter_plan as plan

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
LIMITS = plan.PoolLimits(cpu=1000, memory_gib=4000)


def requirement(pool, key):
    return next(r for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key)


PEAK = PeakWindow("1-5", 7, 19)


def manifests():
    pools = plan.scan_pools(ZONES, LIMITS, "1m", 25, peak=PEAK) + [
        plan.services_pool(ZONES, plan.PoolLimits(128, 512), peak=PEAK)
    ]
    return [
        plan.node_class(
            "scanner-prod",
            "karpenter-node-abc",
            "al2023@v20260930",
            {"project": "scanner", "kubernetes.io/cluster/x": "owned"},
        )
    ] + pools


# ----- IAM ---------------------------------------------------------------------------------

LONG = dict(
    partition="aws-us-gov",
    region="ap-southeast-4",
    account_id="123456789012",
    cluster_name="c" * 100,
    queue_arn="arn:aws:sqs:ap-southeast-4:123456789012:" + "q" * 80,
    node_role_arn="arn:aws:iam::123456789012:role/" + "r" * 64,
)


def test_each_controller_policy_fits_iam_limit_with_the_longest_names():
    documents = plan.controller_policies(**LONG)
    sizes = {name: plan.policy_size(doc) for name, doc in documents.items()}
    assert all(size < plan.IAM_POLICY_LIMIT for size in sizes.values()), sizes
    # ...which one document would not: that is why it is split.
    merged = {"Version": "2012-10-17", "Statement": [s for d in documents.values() for s in d["Statement"]]}
    assert plan.policy_size(merged) > plan.IAM_POLICY_LIMIT


def test_controller_may_only_create_and_delete_what_is_tagged_for_this_cluster():
    documents = plan.controller_policies(**LONG)
    statements = [s for d in documents.values() for s in d["Statement"]]
    sids = [s["Sid"] for s in statements]
    assert len(sids) == len(set(sids))
    owned = f"kubernetes.io/cluster/{LONG['cluster_name']}"
    for statement in statements:
        actions = set(statement["Action"])
        if actions & {
            "ec2:TerminateInstances",
            "ec2:DeleteLaunchTemplate",
            "ec2:CreateLaunchTemplate",
            "ec2:CreateTags",
            "iam:CreateInstanceProfile",
            "iam:DeleteInstanceProfile",
        }:
            conditions = json.dumps(statement.get("Condition", {}))
            assert owned in conditions, statement["Sid"]
        assert statement["Resource"] != "*" or all(
            a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions
        ), statement["Sid"]
    [pass_role] = [s for s in statements if s["Action"] == ["iam:PassRole"]]
    assert pass_role["Resource"] == LONG["node_role_arn"]
    [queue] = [s for s in statements if s["Sid"] == "AllowInterruptionQueueActions"]
    assert queue["Resource"] == LONG["queue_arn"]
    built = {r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    built -= {"*", LONG["queue_arn"], LONG["node_role_arn"]}
    assert built and all(r.startswith("arn:aws-us-gov:") for r in built), built


def test_queue_policy_admits_eventbridge_and_refuses_plain_http():
    policy = plan.queue_policy("arn:aws:sqs:us-east-1:123456789012:q")
    allow, deny = policy["Statement"]
    assert allow["Principal"]["Service"] == ["events.amazonaws.com", "sqs.amazonaws.com"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_interruption_rules_cover_the_four_event_kinds():
    kinds = {(source, detail) for _, source, detail in plan.INTERRUPTION_EVENTS}
    assert kinds == {
        ("aws.health", "AWS Health Event"),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
    }
    assert json.loads(plan.event_pattern("aws.ec2", "X")) == {"source": ["aws.ec2"], "detail-type": ["X"]}


# ----- pools -------------------------------------------------------------------------------


def test_scan_pool_is_spot_first_with_a_lower_weight_on_demand_fallback():
    spot, fallback = plan.scan_pools(ZONES, LIMITS, "1m", 25)
    assert requirement(spot, "karpenter.sh/capacity-type")["values"] == ["spot"]
    assert requirement(fallback, "karpenter.sh/capacity-type")["values"] == ["on-demand"]
    assert spot["spec"]["weight"] > fallback["spec"]["weight"]
    assert spot["spec"]["limits"] == {"cpu": "1000", "memory": "4000Gi"}
    assert fallback["spec"]["limits"] == {"cpu": "250", "memory": "1000Gi"}
    for pool in (spot, fallback):
        assert requirement(pool, "topology.kubernetes.io/zone") == {
            "key": "topology.kubernetes.io/zone",
            "operator": "In",
            "values": ZONES,
        }
        assert pool["spec"]["template"]["spec"]["taints"] == [plan.SCAN_TAINT]
        assert pool["spec"]["template"]["metadata"]["labels"] == {plan.POOL_LABEL: plan.SCAN_POOL}


def test_scan_pool_is_diverse_enough_for_spot():
    [spot, _] = plan.scan_pools(ZONES, LIMITS, "1m", 25)
    assert set(requirement(spot, "karpenter.k8s.aws/instance-category")["values"]) >= {"c", "m", "r"}
    assert requirement(spot, "karpenter.k8s.aws/instance-generation") == {
        "key": "karpenter.k8s.aws/instance-generation",
        "operator": "Gt",
        "values": ["5"],
    }
    assert requirement(spot, "karpenter.k8s.aws/instance-family")["minValues"] >= 5


def test_scan_pool_consolidates_quickly_and_lets_empty_nodes_go_at_once():
    [spot, _] = plan.scan_pools(ZONES, LIMITS, "45s", 25)
    disruption = spot["spec"]["disruption"]
    assert disruption["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert disruption["consolidateAfter"] == "45s"
    budgets = {tuple(b["reasons"]): b["nodes"] for b in disruption["budgets"]}
    assert budgets[("Empty",)] == "100%"
    assert budgets[("Underutilized", "Drifted")] == "20%"
    # A node being expired waits for the longest scan (30 min) before it is forced.
    grace = spot["spec"]["template"]["spec"]["terminationGracePeriod"]
    assert grace.endswith("m") and int(grace[:-1]) > 30


@pytest.mark.parametrize("pool", ["scan", "services"])
def test_the_weekday_peak_freezes_disruptive_consolidation_but_not_empty_nodes(pool):
    manifest = (
        plan.scan_pools(ZONES, LIMITS, "1m", 25, peak=PEAK)[0]
        if pool == "scan"
        else plan.services_pool(ZONES, plan.PoolLimits(128, 512), peak=PEAK)
    )
    budgets = manifest["spec"]["disruption"]["budgets"]
    [freeze] = [b for b in budgets if "schedule" in b]
    assert freeze == {
        "nodes": "0",
        "reasons": ["Underutilized", "Drifted"],
        "schedule": "0 7 * * 1-5",
        "duration": "12h",
    }
    # Outside the window an always-active budget still bounds disruption (a schedule alone would
    # leave it unbounded), and nothing keeps empty nodes.
    assert any("schedule" not in b and b["nodes"] != "0" for b in budgets)
    assert all("Empty" not in b.get("reasons", ["Empty"]) for b in budgets if b["nodes"] == "0")


def test_without_a_peak_window_no_budget_is_scheduled():
    for manifest in plan.scan_pools(ZONES, LIMITS, "1m", 25) + [plan.services_pool(ZONES, plan.PoolLimits(8, 32))]:
        assert all("schedule" not in b for b in manifest["spec"]["disruption"]["budgets"])


def test_scan_nodes_have_at_least_eight_vcpus_services_nodes_any_size():
    for pool in plan.scan_pools(ZONES, LIMITS, "1m", 25):
        bounds = {
            r["operator"]: r["values"]
            for r in pool["spec"]["template"]["spec"]["requirements"]
            if r["key"] == "karpenter.k8s.aws/instance-cpu"
        }
        assert bounds == {"Gt": [str(plan.SCAN_NODE_MIN_CPU - 1)], "Lt": ["65"]}
    services = plan.services_pool(ZONES, plan.PoolLimits(128, 512))
    assert [
        r["operator"]
        for r in services["spec"]["template"]["spec"]["requirements"]
        if r["key"] == "karpenter.k8s.aws/instance-cpu"
    ] == ["Lt"]


def test_no_fallback_pool_when_the_share_is_zero():
    assert [p["metadata"]["name"] for p in plan.scan_pools(ZONES, LIMITS, "1m", 0)] == [plan.SCAN_POOL]


def test_services_pool_is_on_demand_in_every_zone_without_taint():
    pool = plan.services_pool(ZONES, plan.PoolLimits(128, 512))
    assert requirement(pool, "karpenter.sh/capacity-type")["values"] == ["on-demand"]
    assert requirement(pool, "topology.kubernetes.io/zone")["values"] == ZONES
    assert "taints" not in pool["spec"]["template"]["spec"]
    assert pool["spec"]["disruption"]["budgets"][0] == {"nodes": "1"}


@pytest.mark.parametrize("value", ["1 minute", "1", "m", "-1m", ""])
def test_bad_durations_are_refused(value):
    with pytest.raises(ValueError, match="is not a duration"):
        plan.check_duration(value)


def test_node_class_requires_imdsv2_and_encrypts_the_root_volume():
    spec = plan.node_class("c", "role", "al2023@v20260930", {"kubernetes.io/cluster/c": "owned", "team": "x"})["spec"]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    [volume] = spec["blockDeviceMappings"]
    assert volume["rootVolume"] and volume["ebs"]["encrypted"] and volume["ebs"]["volumeType"] == "gp3"
    assert spec["subnetSelectorTerms"] == [{"tags": {plan.DISCOVERY_TAG: "c"}}]
    assert spec["securityGroupSelectorTerms"] == [{"tags": {plan.DISCOVERY_TAG: "c"}}]
    assert spec["tags"] == {"team": "x"}  # tags Karpenter reserves are dropped


def test_helm_values_pin_the_controller_to_system_nodes():
    values = plan.helm_values("scanner-prod", "karpenter-interruption-1", "eu-west-1")
    # Zonal shifts of the cluster are honoured: a drilled zone gets no new node while shifted away.
    assert values["settings"] == {
        "clusterName": "scanner-prod",
        "interruptionQueue": "karpenter-interruption-1",
        "enableZonalShift": True,
    }
    # Pod Identity gives no region and IMDS is out of reach (hop limit 1): the region is set outright.
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in values["controller"]["env"]
    assert values["serviceAccount"]["name"] == plan.KARPENTER_SERVICE_ACCOUNT
    assert values["nodeSelector"][next(iter(plan.SYSTEM_LABEL))] == "system"
    assert {"key": plan.SYSTEM_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    expressions = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"]
    assert {"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"} in expressions


# ----- CRD schemas ----------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(manifests())), ids=lambda i: manifests()[i]["metadata"]["name"])
def test_every_planned_custom_resource_validates_against_its_crd(crds, index):
    manifest = manifests()[index]
    assert crds.validate(manifest) == []


BROKEN = [
    (
        "misspelt field",
        "EC2NodeClass",
        lambda m: m["spec"]["metadataOptions"].update(httpPutResponseHopLimitt=5),
        "spec.metadataOptions: Additional properties are not allowed ('httpPutResponseHopLimitt' was unexpected)",
    ),
    (
        "node class accepting IMDSv1",
        "EC2NodeClass",
        lambda m: m["spec"]["metadataOptions"].update(httpTokens="maybe"),
        "spec.metadataOptions.httpTokens: 'maybe' is not one of ['required', 'optional']",
    ),
    (
        "node class with a reserved tag",
        "EC2NodeClass",
        lambda m: m["spec"].update(tags={"kubernetes.io/cluster/x": "owned"}),
        "restricted tag matching kubernetes.io/cluster/",
    ),
    (
        "node class with role and profile",
        "EC2NodeClass",
        lambda m: m["spec"].update(instanceProfile="p"),
        "must specify exactly one of ['role', 'instanceProfile']",
    ),
    (
        "alias of an unknown family",
        "EC2NodeClass",
        lambda m: m["spec"].update(amiSelectorTerms=[{"alias": "ubuntu@v1"}]),
        "family is not supported",
    ),
    (
        "zone requirement with no values",
        "NodePool",
        lambda m: m["spec"]["template"]["spec"]["requirements"][1].update(values=[]),
        "requirements with operator 'In' must have a value defined",
    ),
    (
        "budget schedule without duration",
        "NodePool",
        lambda m: m["spec"]["disruption"]["budgets"].append({"nodes": "0", "schedule": "0 9 * * mon-fri"}),
        "'schedule' must be set with 'duration'",
    ),
    (
        "bad consolidateAfter",
        "NodePool",
        lambda m: m["spec"]["disruption"].update(consolidateAfter="soon"),
        "spec.disruption.consolidateAfter: 'soon' does not match",
    ),
    (
        "restricted karpenter.sh label",
        "NodePool",
        lambda m: m["spec"]["template"]["metadata"]["labels"].update({"karpenter.sh/custom": "x"}),
        "label domain",
    ),
]


@pytest.mark.parametrize("label,kind,breaks,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_the_validator_refuses_what_the_api_server_would(crds, label, kind, breaks, message):
    manifest = copy.deepcopy(next(m for m in manifests() if m["kind"] == kind))
    breaks(manifest)
    problems = [str(p) for p in crds.validate(manifest)]
    assert any(message in p for p in problems), problems
