"""The EKS placement rules and the security pack through the gRPC gate: prod passes; each
deliberate fault is refused by name, in both the shape seen offline and the one the engine shows."""

import copy

import pulumi_aws as aws
import pulumi_eks as eks
import pytest
from conftest import PLACEMENT, SECURITY, gate, mandatory, run

from components.eks import cluster as cluster_module
from components.eks import karpenter_plan

MODES = ["preview", "update"]
PACKS = (PLACEMENT, SECURITY)


# ----- faults, each one change to the real program ------------------------------------------


def pool_pinned_to_one_zone(monkeypatch):
    original = karpenter_plan._requirements

    def requirements(capacity_types, zones, *args):
        return original(capacity_types, zones[:1], *args)

    monkeypatch.setattr(karpenter_plan, "_requirements", requirements)


def node_group_in_two_zones(monkeypatch):
    original = cluster_module.system_nodes

    def system_nodes(owner, name, args, cluster_name, subnet_ids, depends_on):
        return original(owner, name, args, cluster_name, subnet_ids[:2], depends_on)

    monkeypatch.setattr(cluster_module, "system_nodes", system_nodes)


def node_group_below_one_per_zone(monkeypatch):
    original = aws.eks.NodeGroupScalingConfigArgs.__init__

    def scaling(self, *, desired_size, max_size, min_size):
        original(self, desired_size=1, max_size=max_size, min_size=1)

    monkeypatch.setattr(aws.eks.NodeGroupScalingConfigArgs, "__init__", scaling)


def endpoint_open_to_world(monkeypatch):
    # Stack config refuses 0.0.0.0/0 before any resource exists, so the fault goes in underneath it.
    original = eks.Cluster.__init__

    def init(self, resource_name, opts=None, **kwargs):
        kwargs.update(endpoint_public_access=True, public_access_cidrs=None)
        original(self, resource_name, opts=opts, **kwargs)

    monkeypatch.setattr(eks.Cluster, "__init__", init)


def secrets_unencrypted(monkeypatch):
    original = eks.Cluster.__init__

    def init(self, resource_name, opts=None, **kwargs):
        kwargs.pop("encryption_config_key_arn")
        original(self, resource_name, opts=opts, **kwargs)

    monkeypatch.setattr(eks.Cluster, "__init__", init)


def node_class_allows_imdsv1(monkeypatch):
    original = karpenter_plan.node_class

    def node_class(*args, **kwargs):
        manifest = copy.deepcopy(original(*args, **kwargs))
        manifest["spec"]["metadataOptions"]["httpTokens"] = "optional"
        return manifest

    monkeypatch.setattr(karpenter_plan, "node_class", node_class)


def launch_template_allows_imdsv1(monkeypatch):
    original = aws.ec2.LaunchTemplateMetadataOptionsArgs.__init__

    def init(self, **kwargs):
        kwargs["http_tokens"] = "optional"
        original(self, **kwargs)

    monkeypatch.setattr(aws.ec2.LaunchTemplateMetadataOptionsArgs, "__init__", init)


def scan_pool_on_demand_only(monkeypatch):
    original = karpenter_plan.node_pool

    def node_pool(name, **kwargs):
        if name == karpenter_plan.SCAN_POOL:
            kwargs["capacity_types"] = ["on-demand"]
        return original(name, **kwargs)

    monkeypatch.setattr(karpenter_plan, "node_pool", node_pool)


def node_group_without_launch_template(monkeypatch):
    original = aws.eks.NodeGroup.__init__

    def init(self, resource_name, opts=None, **kwargs):
        kwargs.pop("launch_template", None)
        original(self, resource_name, opts=opts, **kwargs)

    monkeypatch.setattr(aws.eks.NodeGroup, "__init__", init)


def endpoint_open_in_halves(monkeypatch):
    original = eks.Cluster.__init__

    def init(self, resource_name, opts=None, **kwargs):
        kwargs.update(endpoint_public_access=True, public_access_cidrs=["0.0.0.0/1", "128.0.0.0/1"])
        original(self, resource_name, opts=opts, **kwargs)

    monkeypatch.setattr(eks.Cluster, "__init__", init)


def cluster_in_two_zones(monkeypatch):
    original = eks.Cluster.__init__

    def init(self, resource_name, opts=None, **kwargs):
        kwargs["subnet_ids"] = kwargs["subnet_ids"][:2]
        original(self, resource_name, opts=opts, **kwargs)

    monkeypatch.setattr(eks.Cluster, "__init__", init)


def no_runner_access(monkeypatch):
    """The private API's 443 rules for the deploy runners never declared."""
    monkeypatch.setattr(cluster_module, "allow_in", lambda *a, **k: None)


FAULTS = {
    "cluster-two-zones": (cluster_in_two_zones, {"eks-cluster-subnets-every-az"}, "but not in us-east-1c"),
    "no-runner-access": (no_runner_access, {"eks-private-api-reachable"}, "scanner:clusterApiAccessCidrs"),
    "node-group-default-template": (
        node_group_without_launch_template,
        {"ec2-imdsv2-required"},
        "uses the launch template EKS generates",
    ),
    "endpoint-open-in-halves": (
        endpoint_open_in_halves,
        {"eks-endpoint-not-world-open"},
        "open to 0.0.0.0/1, 128.0.0.0/1",
    ),
    "node-pool-one-zone": (
        pool_pinned_to_one_zone,
        {"karpenter-node-pool-every-az"},
        "NodePool 'scan-jobs' requires topology.kubernetes.io/zone In ['us-east-1a'], which leaves out us-east-1b, us-east-1c",
    ),
    "node-group-two-zones": (
        node_group_in_two_zones,
        {"eks-node-group-every-az"},
        "has subnets in us-east-1a, us-east-1b but not in us-east-1c",
    ),
    "node-group-min-1": (node_group_below_one_per_zone, {"eks-node-group-every-az"}, "has minSize 1 for 3 zones"),
    "endpoint-open": (endpoint_open_to_world, {"eks-endpoint-not-world-open"}, "open to 0.0.0.0/0"),
    "secrets-plain": (secrets_unencrypted, {"eks-secrets-encryption"}, "not envelope-encrypted"),
    "node-class-imdsv1": (node_class_allows_imdsv1, {"ec2-imdsv2-required"}, "accepts IMDSv1 (httpTokens 'optional')"),
    "launch-template-imdsv1": (launch_template_allows_imdsv1, {"ec2-imdsv2-required"}, "accepts IMDSv1"),
    "scan-pool-no-spot": (
        scan_pool_on_demand_only,
        {"karpenter-scan-pool-offers-spot"},
        "NodePool 'scan-jobs', the first choice for scan jobs (highest weight), does not offer spot",
    ),
}


@pytest.mark.parametrize("mode", MODES)
def test_prod_passes_both_packs_with_every_policy_deciding(mode):
    result = gate(run("prod", mode), packs=PACKS)
    assert result.passed and result.diagnostics == [], result.diagnostics
    # The gate reports each pack's version from its PulumiPolicy.yaml (the SDK's is a placeholder).
    from offline import packs

    wanted = {f"scanner-{p.name}": packs.version(p) for p in PACKS}
    assert {p.name: p.version for p in result.packs} == wanted and set(wanted) == {
        "scanner-placement",
        "scanner-security",
    }


#: Faults that can share a run of the program. The two open endpoints cannot: both set the
#: component's public CIDRs; nor can a private API without runner access, which either open
#: endpoint would make public.
GROUPS = {"open-in-halves": ["endpoint-open-in-halves"], "private-api": ["no-runner-access"]}
GROUPS["the-rest"] = sorted(set(FAULTS) - {f for g in GROUPS.values() for f in g})
#: The groups judged by the pack processes (the others by the same packs in process): "the-rest"
#: with the other tiers' representatives (`representative_faults`), "private-api" with the faults
#: that run apart (`apart_faults`: an API open to the world would leave the API reachable anyway).
REPRESENTATIVE = ("the-rest", "private-api")
WITH_THE_OTHER_TIERS = "the-rest"


def representative_faults() -> dict:
    """One fault for each policy of this module's tables, judged with the other tiers' in one run
    of the program through the pack processes, in both modes (tests/packs/test_gate_of_record.py)."""
    return {name: FAULTS[name] for name in GROUPS[WITH_THE_OTHER_TIERS]}


def apart_faults() -> dict:
    """A private API without runner access: judged with the other tiers' faults that run apart
    (tests/packs/test_gate_of_record.py)."""
    return {name: FAULTS[name] for name in GROUPS["private-api"]}


def variation_groups() -> list[dict]:
    """The further variations on this module's tables, one group per run, each run shared with
    the other tiers' groups of the same rank and judged by the packs in process
    (tests/packs/test_gate_of_record.py)."""
    return [{name: FAULTS[name] for name in GROUPS[g]} for g in sorted(set(GROUPS) - set(REPRESENTATIVE))]


def test_the_representative_groups_cover_every_policy_of_the_table():
    """The groups judged by the pack processes hold a fault for each policy of the table."""
    covered = {p for g in REPRESENTATIVE for f in GROUPS[g] for p in FAULTS[f][1]}
    assert covered == {p for _, ps, _ in FAULTS.values() for p in ps}


def without_cluster_child(record):
    """The stack as seen where the component's children are not visible (plain mocks)."""
    trimmed = copy.copy(record)
    trimmed.resources = [r for r in record.resources if r["type"] != "aws:eks/cluster:Cluster"]
    return trimmed


@pytest.mark.parametrize(
    "fault,policy", [("endpoint-open", "eks-endpoint-not-world-open"), ("secrets-plain", "eks-secrets-encryption")]
)
def test_component_inputs_alone_are_enough_to_refuse(fault, policy, monkeypatch):
    FAULTS[fault][0](monkeypatch)
    record = run("prod", "preview")
    both = [d for d in gate(record, packs=PACKS).diagnostics if d.policy == policy]
    alone = [d for d in gate(without_cluster_child(record), packs=PACKS).diagnostics if d.policy == policy]
    assert len(both) == 2 and len(alone) == 1  # component and child; the component alone


def test_cluster_short_of_a_zone_is_refused_on_either_shape(monkeypatch):
    cluster_in_two_zones(monkeypatch)
    record = run("prod", "update")
    for shape in (record, without_cluster_child(record)):
        result = gate(shape, packs=PACKS)
        assert mandatory(result) == ["eks-cluster-subnets-every-az"]
        [diagnostic] = result.diagnostics
        assert "but not in us-east-1c" in diagnostic.message
