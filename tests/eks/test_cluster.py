"""The EKS cluster, system node group and Karpenter, as the program registers them under mocks."""

import json

import pytest
from conftest import by_urn, of_type, one, run

from components.common import versions
from components.eks import karpenter_plan as plan
from components.eks.cluster import CONTROL_PLANE_LOGS, enable_zonal_shift

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
SUBNET = "aws:ec2/subnet:Subnet"


def zones_of(record, resource, prop):
    subnets = by_urn(record)
    return sorted(
        subnets[u]["inputs"]["availabilityZone"]
        for u in resource["propertyDependencies"][prop]
        if subnets[u]["type"] == SUBNET
    )


# ----- control plane -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_control_plane_is_private_encrypted_logged_and_in_every_zone(mode, prod_update, prod_preview):
    record = prod_update if mode == "update" else prod_preview
    cluster = one(record, "eks:index:Cluster")["inputs"]
    assert cluster["authenticationMode"] == "API"
    assert cluster["endpointPrivateAccess"] is True and cluster["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster
    assert cluster["enabledClusterLogTypes"] == list(CONTROL_PLANE_LOGS)
    assert cluster["version"] == versions.DEFAULT_KUBERNETES_VERSION
    assert cluster["skipDefaultNodeGroup"] is True and cluster["bootstrapSelfManagedAddons"] is False
    assert "encryptionConfigKeyArn" in cluster
    assert zones_of(record, one(record, "eks:index:Cluster"), "subnetIds") == ZONES


def test_on_a_first_preview_the_child_encryption_config_is_unknown_as_under_pulumi_eks(prod_preview):
    from conftest import UNKNOWN

    assert one(prod_preview, "aws:eks/cluster:Cluster")["inputs"]["encryptionConfig"] == UNKNOWN


def test_secrets_key_rotates_and_its_arn_reaches_the_cluster(prod_update):
    key = one(prod_update, "aws:kms/key:Key", "cluster-secrets")
    assert key["inputs"]["enableKeyRotation"] is True
    assert one(prod_update, "eks:index:Cluster")["inputs"]["encryptionConfigKeyArn"] == key["outputs"]["arn"]


def test_zonal_shift_is_set_on_the_cluster_child_by_the_transform(prod_update):
    # The child is the offline emulation of pulumi-eks's (offline/remote.py), with the program's
    # transform applied as the engine would: this proves the transform is passed and applied.
    child = one(prod_update, "aws:eks/cluster:Cluster")
    assert child["inputs"]["zonalShiftConfig"] == {"enabled": True}
    assert child["parent"] == one(prod_update, "eks:index:Cluster")["urn"]
    assert child["inputs"]["encryptionConfig"]["resources"] == ["secrets"]
    assert zones_of(prod_update, child, "vpcConfig") == ZONES


def test_zonal_shift_transform_touches_only_the_eks_cluster():
    import pulumi

    def args(type_):
        return pulumi.ResourceTransformArgs(
            custom=True, type_=type_, name="x", props={"name": "c"}, opts=pulumi.ResourceOptions()
        )

    assert enable_zonal_shift(args("aws:iam/role:Role")) is None
    result = enable_zonal_shift(args("aws:eks/cluster:Cluster"))
    assert result is not None
    assert result.props == {"name": "c", "zonalShiftConfig": {"enabled": True}}


def test_public_endpoint_only_from_configured_cidrs():
    record = run("prod", "preview", **{"scanner:clusterPublicAccessCidrs": '["198.51.99.0/24"]'})
    cluster = one(record, "eks:index:Cluster")["inputs"]
    assert cluster["endpointPublicAccess"] is True
    assert cluster["publicAccessCidrs"] == ["198.51.99.0/24"]


def test_admin_roles_get_cluster_admin_access_entries():
    arn = "arn:aws:iam::123456789012:role/platform-admins"
    record = run("prod", "update", **{"scanner:clusterAdminRoleArns": json.dumps([arn])})
    entry = one(record, "aws:eks/accessEntry:AccessEntry", "cluster-admin-0")
    assert (entry["inputs"]["principalArn"], entry["inputs"]["type"]) == (arn, "STANDARD")
    association = one(record, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert association["inputs"]["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    assert association["inputs"]["accessScope"] == {"type": "cluster"}
    assert entry["urn"] in association["propertyDependencies"]["principalArn"]  # created after its entry


def test_core_addons_are_managed_and_pinned(prod_update):
    addons = {a["inputs"]["addonName"]: a for a in of_type(prod_update, "aws:eks/addon:Addon")}
    pinned = versions.ADDON_VERSIONS[versions.DEFAULT_KUBERNETES_VERSION]
    assert {name: a["inputs"]["addonVersion"] for name, a in addons.items()} == {name: pinned[name] for name in addons}
    assert set(addons) >= {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    assert all(a["inputs"]["clusterName"] == "scanner-prod" for a in addons.values())
    group = one(prod_update, "aws:eks/nodeGroup:NodeGroup")
    # Networking before the nodes, CoreDNS (which needs nodes) after, on the system nodes.
    for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert addons[name]["urn"] in group["dependencies"]
    assert group["urn"] in addons["coredns"]["dependencies"]
    coredns = json.loads(addons["coredns"]["inputs"]["configurationValues"])
    assert coredns["nodeSelector"] == plan.SYSTEM_LABEL and coredns["replicaCount"] >= len(ZONES)


# ----- system node group -----------------------------------------------------------------------


def test_system_node_group_is_on_demand_in_every_zone_and_tainted(prod_update):
    group = one(prod_update, "aws:eks/nodeGroup:NodeGroup")
    inputs = group["inputs"]
    assert zones_of(prod_update, group, "subnetIds") == ZONES
    assert inputs["capacityType"] == "ON_DEMAND"
    assert inputs["scalingConfig"]["minSize"] >= len(ZONES)
    assert inputs["labels"] == plan.SYSTEM_LABEL
    assert inputs["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    template = one(prod_update, "aws:ec2/launchTemplate:LaunchTemplate")
    assert inputs["launchTemplate"]["id"] == template["id"]
    assert template["inputs"]["metadataOptions"]["httpTokens"] == "required"
    [disk] = template["inputs"]["blockDeviceMappings"]
    assert disk["ebs"]["encrypted"] == "true" and disk["ebs"]["volumeType"] == "gp3"


def test_nodes_per_zone_scales_the_minimum():
    record = run("prod", "preview", **{"scanner:systemNodesPerZone": "2"})
    assert one(record, "aws:eks/nodeGroup:NodeGroup")["inputs"]["scalingConfig"]["minSize"] == 6


# ----- Karpenter ---------------------------------------------------------------------------------


def test_interruption_queue_is_encrypted_short_lived_and_tls_only(prod_update):
    queue = one(prod_update, "aws:sqs/queue:Queue")
    assert queue["inputs"]["messageRetentionSeconds"] == plan.QUEUE_RETENTION_SECONDS
    assert queue["inputs"]["sqsManagedSseEnabled"] is True
    policy = json.loads(one(prod_update, "aws:sqs/queuePolicy:QueuePolicy")["inputs"]["policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"AllowEventBridge", "DenyWithoutTls"}
    assert all(s["Resource"] == queue["outputs"]["arn"] for s in policy["Statement"])


def test_every_interruption_rule_targets_the_queue(prod_update):
    queue = one(prod_update, "aws:sqs/queue:Queue")
    # The Karpenter component's rules (the queue-metrics publishers' are schedules).
    rules = {
        r["urn"]: json.loads(r["inputs"]["eventPattern"])
        for r in of_type(prod_update, "aws:cloudwatch/eventRule:EventRule")
        if r["name"].startswith("karpenter")
    }
    assert {(p["source"][0], p["detail-type"][0]) for p in rules.values()} == {
        (s, d) for _, s, d in plan.INTERRUPTION_EVENTS
    }
    targets = [
        t for t in of_type(prod_update, "aws:cloudwatch/eventTarget:EventTarget") if t["name"].startswith("karpenter")
    ]
    assert len(targets) == len(rules)
    assert all(t["inputs"]["arn"] == queue["outputs"]["arn"] for t in targets)
    assert {t["parent"] for t in targets} == set(rules)


def test_controller_role_is_assumed_through_pod_identity_by_the_release_service_account(prod_update):
    role = one(prod_update, "aws:iam/role:Role", "karpenter-controller")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    association = one(prod_update, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-controller")[
        "inputs"
    ]
    release = one(prod_update, "kubernetes:helm.sh/v3:Release", "karpenter-controller")["inputs"]
    assert association["roleArn"] == role["outputs"]["arn"]
    assert association["namespace"] == release["namespace"] == plan.KARPENTER_NAMESPACE
    assert association["serviceAccount"] == release["values"]["serviceAccount"]["name"]
    assert association["clusterName"] == "scanner-prod"


def test_controller_policies_are_split_attached_and_under_the_limit(prod_update):
    role = one(prod_update, "aws:iam/role:Role", "karpenter-controller")
    policies = [p for p in of_type(prod_update, "aws:iam/policy:Policy") if p["parent"] == role["urn"]]
    assert len(policies) == 4
    attached = {
        a["inputs"]["policyArn"]
        for a in of_type(prod_update, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["inputs"]["role"] == role["outputs"]["name"]
    }
    assert attached == {p["outputs"]["arn"] for p in policies}
    for policy in policies:
        assert plan.policy_size(json.loads(policy["inputs"]["policy"])) < plan.IAM_POLICY_LIMIT
    queue = one(prod_update, "aws:sqs/queue:Queue")
    assert any(queue["outputs"]["arn"] in p["inputs"]["policy"] for p in policies)


def test_node_role_has_an_ec2_linux_access_entry_and_is_the_node_class_role(prod_update):
    role = one(prod_update, "aws:iam/role:Role", "karpenter-node")
    entry = one(prod_update, "aws:eks/accessEntry:AccessEntry", "karpenter-node")["inputs"]
    assert (entry["principalArn"], entry["type"]) == (role["outputs"]["arn"], "EC2_LINUX")
    node_class = one(prod_update, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")["inputs"]
    assert node_class["spec"]["role"] == role["outputs"]["name"]
    assert node_class["spec"]["amiSelectorTerms"] == [{"alias": f"al2023@{versions.AL2023_AMI_RELEASE}"}]


def test_release_is_pinned_and_points_at_the_cluster_and_queue(prod_update):
    crds = one(prod_update, "kubernetes:helm.sh/v3:Release", "karpenter-crd")["inputs"]
    release = one(prod_update, "kubernetes:helm.sh/v3:Release", "karpenter-controller")
    inputs = release["inputs"]
    assert inputs["version"] == crds["version"] == plan.KARPENTER_VERSION
    assert inputs["version"].startswith("1.")
    assert inputs["chart"] == plan.KARPENTER_CHART and inputs["skipCrds"] is True
    queue = one(prod_update, "aws:sqs/queue:Queue")
    assert inputs["values"]["settings"] == {
        "clusterName": "scanner-prod",
        "interruptionQueue": queue["outputs"]["name"],
        "enableZonalShift": True,
    }
    assert {"name": "AWS_REGION", "value": "us-east-1"} in inputs["values"]["controller"]["env"]
    # The release itself (a component's depends_on does not reach its children) waits for its
    # identity, its node access, the CRDs, the system nodes, CoreDNS and the Pod Identity agent.
    resources = by_urn(prod_update)
    after = {resources[u]["type"] for u in release["dependencies"]}
    assert {
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "aws:eks/accessEntry:AccessEntry",
        "kubernetes:helm.sh/v3:Release",
    } <= after
    addons = {a["inputs"]["addonName"]: a["urn"] for a in of_type(prod_update, "aws:eks/addon:Addon")}
    for urn in (
        one(prod_update, "aws:eks/nodeGroup:NodeGroup")["urn"],
        addons["coredns"],
        addons["eks-pod-identity-agent"],
    ):
        assert urn in release["dependencies"]


def test_karpenter_nodes_wait_for_their_role_policies(prod_update):
    role = one(prod_update, "aws:iam/role:Role", "karpenter-node")
    entry = one(prod_update, "aws:eks/accessEntry:AccessEntry", "karpenter-node")
    attachments = [
        a["urn"]
        for a in of_type(prod_update, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["parent"] == role["urn"]
    ]
    assert len(attachments) == 4 and set(attachments) <= set(entry["dependencies"])


def test_release_runs_in_its_own_namespace_with_api_priority(prod_update):
    namespace = one(prod_update, "kubernetes:core/v1:Namespace", "karpenter-namespace")["inputs"]["metadata"]["name"]
    assert namespace == plan.KARPENTER_NAMESPACE != "kube-system"
    schemas = of_type(prod_update, "kubernetes:flowcontrol.apiserver.k8s.io/v1:FlowSchema")
    subjects = {json.dumps(s["inputs"]["spec"]["rules"][0]["subjects"], sort_keys=True) for s in schemas}
    assert len(schemas) == 2 and len(subjects) == 1
    assert f'"namespace": "{plan.KARPENTER_NAMESPACE}"' in subjects.pop()
    [workload] = [s for s in schemas if s["inputs"]["metadata"]["name"] == "karpenter-workload"]
    assert workload["inputs"]["spec"]["rules"][0]["nonResourceRules"] == [{"nonResourceURLs": ["*"], "verbs": ["*"]}]


def test_node_pools_allow_every_zone_and_take_limits_from_config():
    record = run(
        "prod",
        "preview",
        **{"scanner:scanPoolCpuLimit": "400", "scanner:scanPoolMemoryGib": "1600", "scanner:scanMaxParallelJobs": "50"},
    )
    pools = {
        p["inputs"]["metadata"]["name"]: p["inputs"]["spec"]
        for p in of_type(record, "kubernetes:karpenter.sh/v1:NodePool")
    }
    assert set(pools) == {plan.SCAN_POOL, plan.SCAN_FALLBACK_POOL, plan.SERVICES_POOL}
    for spec in pools.values():
        [zone] = [r for r in spec["template"]["spec"]["requirements"] if r["key"] == "topology.kubernetes.io/zone"]
        assert zone["values"] == ZONES
    assert pools[plan.SCAN_POOL]["limits"] == {"cpu": "400", "memory": "1600Gi"}
    assert pools[plan.SCAN_FALLBACK_POOL]["limits"] == {"cpu": "100", "memory": "400Gi"}


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_every_declared_custom_resource_validates_against_the_crds(crds, stack):
    record = run(stack, "update")
    declared = [r for r in record.resources if r["type"].startswith("kubernetes:karpenter")]
    assert len(declared) >= 3
    for resource in declared:
        inputs = resource["inputs"]
        manifest = {
            "apiVersion": inputs["apiVersion"],
            "kind": inputs["kind"],
            "metadata": inputs["metadata"],
            "spec": json.loads(json.dumps(inputs["spec"]), parse_float=_number),
        }
        assert crds.validate(manifest) == [], resource["urn"]


def _number(text: str):
    """Wire numbers are floats; the API server sees integers where the manifest has them."""
    value = float(text)
    return int(value) if value.is_integer() else value


def test_pod_cidr_turns_on_custom_networking_with_an_eniconfig_per_zone():
    record = run("dev", "update", **{"scanner:podCidr": "100.64.0.0/16"})
    pod_subnets = {
        s["inputs"]["availabilityZone"]: s["id"]
        for s in of_type(record, SUBNET)
        if s["inputs"]["tags"]["scanner.io/tier"] == "pods"
    }
    configs = {
        c["inputs"]["metadata"]["name"]: c
        for c in of_type(record, "kubernetes:crd.k8s.amazonaws.com/v1alpha1:ENIConfig")
    }
    assert set(configs) == set(pod_subnets) and len(configs) >= 3
    security_group = one(record, "aws:ec2/tag:Tag")["inputs"]["resourceId"]
    for zone, config in configs.items():
        assert config["inputs"]["spec"] == {"subnet": pod_subnets[zone], "securityGroups": [security_group]}
    [cni] = [a for a in of_type(record, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "vpc-cni"]
    assert json.loads(cni["inputs"]["configurationValues"])["env"] == {
        "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true",
        "ENI_CONFIG_LABEL_DEF": "topology.kubernetes.io/zone",
    }
    group = one(record, "aws:eks/nodeGroup:NodeGroup")
    assert {c["urn"] for c in configs.values()} <= set(group["dependencies"])
    release = one(record, "kubernetes:helm.sh/v3:Release", "karpenter-controller")["inputs"]
    assert release["values"]["settings"]["reservedENIs"] == "1"


def test_without_pod_cidr_the_cni_keeps_its_defaults(prod_update):
    assert of_type(prod_update, "kubernetes:crd.k8s.amazonaws.com/v1alpha1:ENIConfig") == []
    [cni] = [a for a in of_type(prod_update, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "vpc-cni"]
    assert "configurationValues" not in cni["inputs"]
    release = one(prod_update, "kubernetes:helm.sh/v3:Release", "karpenter-controller")["inputs"]
    assert "reservedENIs" not in release["values"]["settings"]
