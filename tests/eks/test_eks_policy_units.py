"""Unit layer for the EKS placement and security policies: one policy, in process, on the recorded prod
stack with one hand-made edit; the whole-program faults stay in test_*_policies.py.

Each case edits a clean record the way a plausible bug or a careless config would, and the policy
must refuse it with its own message, on a first preview (ids unknown) and on an update (ids known).
"""

import json
from typing import Any

import pytest
from conftest import DELETE, UNKNOWN, assert_refused, drop, named, run, set_value, unit_cases, verdict

SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
COMPONENT = "eks:index:Cluster"
CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
POOL = "kubernetes:karpenter.sh/v1:NodePool"
ZONE_KEY = "topology.kubernetes.io/zone"
CAPACITY_KEY = "karpenter.sh/capacity-type"
LABEL = "scanner.io/pool"
MODES = ["preview", "update"]


# ----- edits the conftest helpers do not cover: property dependencies, Karpenter requirements -------


def id_of(record, type_, name):
    """A resource's id: known on an update, unknown during a first preview."""
    [resource] = named(record, type_, name)
    return resource["outputs"].get("id", UNKNOWN)


def on_subnets(type_, name, path, dependency, *subnets):
    """The resource's subnets are `subnets` (names), by dependency and by value."""

    def edit(record):
        urns = [named(record, SUBNET, s)[0]["urn"] for s in subnets]
        for resource in named(record, type_, name):
            resource["propertyDependencies"][dependency] = urns
        set_value(record, type_, name, path, [id_of(record, SUBNET, s) for s in subnets])

    return edit


def private(*zones):
    return [f"network-private-us-east-1{z}" for z in zones]


#: Every tier's subnet in us-east-1a: one zone's subnets where one tier's were meant.
ZONE_A = [f"network-{tier}-us-east-1a" for tier in ("public", "private", "isolated")]


def requirement(pool, key, **changes):
    """Change fields of one requirement (by its key) of a NodePool."""

    def edit(record):
        for resource in named(record, POOL, pool):
            for side in ("inputs", "outputs"):
                for found in resource[side]["spec"]["template"]["spec"]["requirements"]:
                    if found["key"] == key:
                        found.update(changes)

    return edit


def relabel(value):
    """Every pool that carries the scan-pool label gets `value` (DELETE: loses the label)."""

    def edit(record):
        for resource in named(record, POOL):
            for side in ("inputs", "outputs"):
                labels = resource[side]["spec"]["template"]["metadata"]["labels"]
                if labels.get(LABEL) == "scan-jobs":
                    if value is DELETE:
                        labels.pop(LABEL)
                    else:
                        labels[LABEL] = value

    return edit


def public_api(cidrs, type_=COMPONENT, prefix=""):
    """The public endpoint turned on with `cidrs`, on the component or (prefix "vpcConfig.") the child."""

    def edit(record):
        set_value(record, type_, None, f"{prefix}endpointPublicAccess", True)
        set_value(record, type_, None, f"{prefix}publicAccessCidrs", cidrs)

    return edit


def api_rules_on(group):
    """The deploy runners' 443 rules put on another security group, by dependency and by value."""

    def edit(record):
        [target] = named(record, SECURITY_GROUP, group)
        for rule in named(record, INGRESS, "cluster-api-from-*"):
            rule["propertyDependencies"]["securityGroupId"] = [target["urn"]]
        set_value(record, INGRESS, "cluster-api-from-*", "securityGroupId", id_of(record, SECURITY_GROUP, group))

    return edit


def key_arn(record):
    """The secrets key the component was given (unknown during a first preview)."""
    return named(record, COMPONENT)[0]["inputs"]["encryptionConfigKeyArn"]


def both(*edits):
    def edit(record):
        for one_edit in edits:
            one_edit(record)

    return edit


# ----- faults: policy -> [(label, edit, message fragment[, the only mode it applies to])] ---------------

#: (label, edit, message) or, for a case of one mode only, (label, edit, message, mode).
CASES: dict[str, list[tuple[Any, ...]]] = {
    "eks-cluster-subnets-every-az": [
        (
            "control plane on one zone's tiers instead of one tier's zones",
            on_subnets(CLUSTER, None, "vpcConfig.subnetIds", "vpcConfig", *ZONE_A),
            "Cluster 'cluster-eks-eksCluster' has subnets in us-east-1a but not in us-east-1b, us-east-1c",
        ),
        (
            "component alone (no child visible) short of two zones",
            both(lambda r: drop(r, CLUSTER), on_subnets(COMPONENT, None, "subnetIds", "subnetIds", *private("b"))),
            "Cluster 'cluster-eks' has subnets in us-east-1b but not in us-east-1a, us-east-1c",
        ),
        (
            # Update only: the ids are unknown during a first preview, and the dependencies are right.
            "child's subnet ids name 1a twice, its dependencies right",
            lambda r: set_value(
                r, CLUSTER, None, "vpcConfig.subnetIds", [id_of(r, SUBNET, s) for s in private("a", "b", "a")]
            ),
            "has subnets in us-east-1a, us-east-1b but not in us-east-1c",
            "update",
        ),
    ],
    "eks-node-group-every-az": [
        (
            "node group lists 1a twice and not 1c",
            on_subnets(NODE_GROUP, None, "subnetIds", "subnetIds", *private("a", "b", "a")),
            "NodeGroup 'cluster-system' has subnets in us-east-1a, us-east-1b but not in us-east-1c",
        ),
        (
            "minSize below one node per zone",
            lambda r: set_value(r, NODE_GROUP, None, "scalingConfig.minSize", 2),
            "has minSize 2 for 3 zones; set it to at least 3",
        ),
        (
            # Update only: the ids are unknown during a first preview, and the dependencies are right.
            "subnet ids name another zone's subnet, dependencies right",
            lambda r: set_value(
                r, NODE_GROUP, None, "subnetIds", [id_of(r, SUBNET, s) for s in private("a", "b", "b")]
            ),
            "but not in us-east-1c",
            "update",
        ),
    ],
    "karpenter-node-pool-every-az": [
        (
            "services pool excludes a zone",
            requirement("karpenter-pool-services", ZONE_KEY, operator="NotIn", values=["us-east-1b"]),
            "NodePool 'services' requires topology.kubernetes.io/zone NotIn ['us-east-1b'], which leaves out us-east-1b",
        ),
        (
            "on-demand pool lists a zone of another region",
            requirement(
                "karpenter-pool-scan-jobs-on-demand", ZONE_KEY, values=["us-east-1a", "us-east-1b", "us-west-2c"]
            ),
            "NodePool 'scan-jobs-on-demand' requires topology.kubernetes.io/zone In ['us-east-1a', 'us-east-1b', "
            "'us-west-2c'], which leaves out us-east-1c",
        ),
        (
            "zone requirement DoesNotExist",
            requirement("karpenter-pool-scan-jobs", ZONE_KEY, operator="DoesNotExist", values=[]),
            "which leaves out us-east-1a, us-east-1b, us-east-1c",
        ),
    ],
    "karpenter-scan-pool-offers-spot": [
        (
            "spot pool's weight removed: the on-demand fallback comes first",
            lambda r: set_value(r, POOL, "karpenter-pool-scan-jobs", "spec.weight", DELETE),
            "NodePool 'scan-jobs-on-demand', the first choice for scan jobs (highest weight), does not offer spot",
        ),
        (
            "spot pool's capacity written NotIn [spot]",
            requirement("karpenter-pool-scan-jobs", CAPACITY_KEY, operator="NotIn"),
            "NodePool 'scan-jobs', the first choice for scan jobs (highest weight), does not offer spot",
        ),
        (
            "scan-pool label gone from every pool",
            relabel(DELETE),
            "no NodePool carries the label scanner.io/pool=scan-jobs",
        ),
    ],
    "eks-private-api-reachable": [
        (
            "runner rules open 22 instead of 443",
            lambda r: [set_value(r, INGRESS, "cluster-api-from-*", port, 22) for port in ("fromPort", "toPort")],
            "Cluster 'cluster-eks' has a private API only, and its cluster security group admits only its own members",
        ),
        (
            "runner rules removed",
            lambda r: drop(r, INGRESS, "cluster-api-from-*"),
            "no deploy runner can reach it on 443",
        ),
        (
            "runner rules on the endpoints' security group",
            api_rules_on("network-endpoints"),
            "no deploy runner can reach it on 443",
        ),
    ],
    "eks-endpoint-not-world-open": [
        (
            "endpointPublicAccess argument removed (defaults to public, open to all)",
            lambda r: set_value(r, COMPONENT, None, "endpointPublicAccess", DELETE),
            "the public API endpoint is open to 0.0.0.0/0",
        ),
        (
            "a /24 typed as /2 on the child cluster",
            public_api(["203.0.113.0/2"], CLUSTER, "vpcConfig."),
            "the public API endpoint is open to 203.0.113.0/2",
        ),
        (
            # Preview only: the child's CIDRs are unknown on a first preview, so the component's own
            # inputs must decide; on an update nothing is unknown.
            "child's CIDRs unknown in preview: the component decides",
            both(public_api(["0.0.0.0/0"]), public_api(UNKNOWN, CLUSTER, "vpcConfig.")),
            "the public API endpoint is open to 0.0.0.0/0",
            "preview",
        ),
    ],
    "eks-secrets-encryption": [
        (
            "child encrypts configmaps, not secrets",
            lambda r: set_value(
                r, CLUSTER, None, "encryptionConfig", {"provider": {"keyArn": key_arn(r)}, "resources": ["configmaps"]}
            ),
            "add an encryptionConfig for 'secrets'",
        ),
        (
            "child's encryptionConfig removed",
            lambda r: set_value(r, CLUSTER, None, "encryptionConfig", DELETE),
            "Kubernetes secrets are not envelope-encrypted",
        ),
        (
            "component's key ARN null (an unset config value)",
            lambda r: set_value(r, COMPONENT, None, "encryptionConfigKeyArn", None),
            "set encryptionConfigKeyArn to a KMS key",
        ),
    ],
    "ec2-imdsv2-required": [
        (
            "launch template hop limit 2",
            lambda r: set_value(r, TEMPLATE, None, "metadataOptions.httpPutResponseHopLimit", 2),
            "the metadata hop limit is 2, so pods can reach the node's credentials",
        ),
        (
            "launch template metadataOptions removed (EC2 defaults)",
            lambda r: set_value(r, TEMPLATE, None, "metadataOptions", DELETE),
            "instance metadata accepts IMDSv1 (httpTokens 'optional')",
        ),
        (
            "node class hop limit 2",
            lambda r: set_value(r, NODE_CLASS, None, "spec.metadataOptions.httpPutResponseHopLimit", 2),
            "the metadata hop limit is 2",
        ),
    ],
}

UNIT_FAULTS = unit_cases(CASES)


@pytest.mark.parametrize("policy,edit,message,mode", UNIT_FAULTS)
def test_fault_is_refused(policy, edit, message, mode):
    record = run("prod", mode)
    edit(record)
    assert_refused(record, policy, message)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("policy", sorted(CASES))
def test_clean_stack_passes(policy, stack, mode):
    assert verdict(run(stack, mode), policy) == []


# ----- what a policy-config setting decides: the same edit judged both ways ---------------------------
#: label -> (policy, edit, policy config, message before, message after); None for a message means the
#: policy passes. None of these policies reads the stack's environment.
SETTINGS = {
    "minimumNodesPerZone 2": (
        "eks-node-group-every-az",
        lambda r: None,
        {"minimumNodesPerZone": 2},
        None,
        "NodeGroup 'cluster-system' has minSize 3 for 3 zones; set it to at least 6",
    ),
    "scanPoolLabelValue nobody carries": (
        "karpenter-scan-pool-offers-spot",
        lambda r: None,
        {"scanPoolLabelValue": "scans"},
        None,
        "no NodePool carries the label scanner.io/pool=scans",
    ),
    "scanPoolLabelValue the pools were renamed to": (
        "karpenter-scan-pool-offers-spot",
        relabel("batch"),
        {"scanPoolLabelValue": "batch"},
        "no NodePool carries the label scanner.io/pool=scan-jobs",
        None,
    ),
    "minimumPrefixLength 16 refuses a /10": (
        "eks-endpoint-not-world-open",
        public_api(["100.64.0.0/10"]),
        {"minimumPrefixLength": 16},
        None,
        "open to 100.64.0.0/10; turn the public endpoint off or list only your own egress ranges (/16",
    ),
    "minimumPrefixLength 4 allows a /6": (
        "eks-endpoint-not-world-open",
        public_api(["8.0.0.0/6"]),
        {"minimumPrefixLength": 4},
        "open to 8.0.0.0/6",
        None,
    ),
    "maxHopLimit 2 allows hop limit 2": (
        "ec2-imdsv2-required",
        lambda r: set_value(r, TEMPLATE, None, "metadataOptions.httpPutResponseHopLimit", 2),
        {"maxHopLimit": 2},
        "the metadata hop limit is 2",
        None,
    ),
    "maxHopLimit 2 still refuses 3": (
        "ec2-imdsv2-required",
        lambda r: set_value(r, NODE_CLASS, None, "spec.metadataOptions.httpPutResponseHopLimit", 3),
        {"maxHopLimit": 2},
        "set httpPutResponseHopLimit to 1",
        "set httpPutResponseHopLimit to 2",
    ),
}


def expect(found, message):
    if message is None:
        assert found == [], [(d.level, d.message) for d in found]
    else:
        assert found and {d.level for d in found} == {"mandatory"}, [(d.level, d.message) for d in found]
        assert any(message in d.message for d in found), [d.message for d in found]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("label", sorted(SETTINGS))
def test_setting_decides(label, mode, tmp_path):
    policy, edit, setting, before, after = SETTINGS[label]
    record = run("prod", mode)
    edit(record)
    expect(verdict(record, policy), before)
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({policy: setting}))
    expect(verdict(record, policy, config), after)
