"""Pure planning for Karpenter: node class, node pools, interruption rules and the controller's
IAM policies. No Pulumi runtime here, so every rule is tested fast; `components/eks/karpenter.py`
only declares what these functions return.

Capacity flows through three kinds of node:

- **system** nodes (an EKS managed node group, on-demand, tainted `CriticalAddonsOnly`) run
  Karpenter itself, CoreDNS and the other controllers: Karpenter never runs on nodes it manages;
- the **services** pool (on-demand) runs the API services and the storage API;
- the **scan-jobs** pool (spot, tainted so only scan Jobs land there) runs the scan engines, with
  a lower-weight on-demand pool as a fallback when spot capacity runs out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from components.common.peak_window import PeakWindow
from components.common.versions import KARPENTER_VERSION  # noqa: F401  (the release this plan is for)
from policies.common import contract

KARPENTER_CHART = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_NAMESPACE = "karpenter"
KARPENTER_SERVICE_ACCOUNT = "karpenter"

NODE_CLASS = "scanner"
SCAN_POOL = contract.SCAN_POOL
SCAN_FALLBACK_POOL = contract.SCAN_FALLBACK_POOL
SERVICES_POOL = contract.SERVICES_POOL

#: Label every Karpenter node carries with its pool's role; workloads select on it.
POOL_LABEL = contract.POOL_LABEL
#: Taint that keeps everything but scan Jobs off the scan nodes.
SCAN_TAINT = {"key": "scanner.io/scan-jobs", "value": "true", "effect": "NoSchedule"}
#: Label and taint of the system node group (cluster-critical add-ons only).
SYSTEM_LABEL = {"scanner.io/node-role": "system"}
SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}
#: What the add-ons that run on the system nodes tolerate.
SYSTEM_TOLERATION = {"key": SYSTEM_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}

#: Taint the EFS CSI node agent removes once it has registered with the kubelet. Scan nodes
#: start with it (a startup taint, which pods need not tolerate), so no scan lands on a fresh
#: node before the driver can mount the repository cache ("driver not registered").
EFS_STARTUP_TAINT = {"key": "efs.csi.aws.com/agent-not-ready", "effect": "NoExecute"}

#: Smallest scan node, vCPUs.
SCAN_NODE_MIN_CPU = 8

#: Discovery tag on the private subnets and the cluster security group.
DISCOVERY_TAG = "karpenter.sh/discovery"

#: IAM's limit on a managed policy document, in characters without whitespace.
IAM_POLICY_LIMIT = 6144

_DURATION = re.compile(r"^([0-9]+(s|m|h))+$")

CapacityType = Literal["spot", "on-demand"]


@dataclass(frozen=True)
class PoolLimits:
    cpu: int
    """vCPUs across all nodes of the pool."""
    memory_gib: int
    """Memory across all nodes of the pool, GiB."""

    def scaled(self, percent: int) -> PoolLimits:
        return PoolLimits(cpu=max(1, self.cpu * percent // 100), memory_gib=max(1, self.memory_gib * percent // 100))

    def as_limits(self) -> dict[str, str]:
        return {"cpu": str(self.cpu), "memory": f"{self.memory_gib}Gi"}


def check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration such as '30s', '1m' or '1h30m'")
    return value


# ----- node class --------------------------------------------------------------------------


def node_class(
    cluster_name: str, node_role: str, ami_alias: str, tags: dict[str, str], root_volume_gib: int = 100
) -> dict[str, Any]:
    """The EC2NodeClass every pool uses: subnets and security groups found by the discovery tag,
    IMDSv2 only with a hop limit of 1 (pods cannot reach the node's credentials), an encrypted
    gp3 root volume."""
    discovery = {DISCOVERY_TAG: cluster_name}
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": NODE_CLASS},
        "spec": {
            "role": node_role,
            "amiSelectorTerms": [{"alias": ami_alias}],
            "subnetSelectorTerms": [{"tags": discovery}],
            "securityGroupSelectorTerms": [{"tags": discovery}],
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "rootVolume": True,
                    "ebs": {
                        "volumeSize": f"{root_volume_gib}Gi",
                        "volumeType": "gp3",
                        "encrypted": True,
                        "deleteOnTermination": True,
                    },
                }
            ],
            # Karpenter adds the cluster-ownership and node-claim tags itself and refuses them here.
            "tags": {
                k: v
                for k, v in tags.items()
                if not k.startswith("kubernetes.io/cluster") and not k.startswith(("karpenter.", "eks:"))
            },
        },
    }


# ----- node pools --------------------------------------------------------------------------


def _requirements(
    capacity_types: list[str], zones: Sequence[str], diverse: bool, min_cpu: int | None = None
) -> list[dict[str, Any]]:
    requirements: list[dict[str, Any]] = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": list(zones)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        # Compute, general purpose and memory optimised, from the 6th generation on (Nitro,
        # current prices): wide enough that spot is found in some pool of every zone.
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": ["65"]},
    ]
    if min_cpu:
        requirements.append({"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": [str(min_cpu - 1)]})
    if diverse:
        # At least this many instance families stay eligible, so one spot pool running dry
        # never leaves a request with no alternative.
        requirements.append({"key": "karpenter.k8s.aws/instance-family", "operator": "Exists", "minValues": 5})
    return requirements


def node_pool(
    name: str,
    *,
    role: str,
    capacity_types: list[CapacityType],
    zones: Sequence[str],
    limits: PoolLimits,
    weight: int,
    consolidate_after: str,
    budgets: list[dict[str, Any]],
    taints: list[dict[str, str]] | None = None,
    startup_taints: list[dict[str, str]] | None = None,
    expire_after: str = "720h",
    termination_grace_period: str | None = None,
    diverse: bool = False,
    min_cpu: int | None = None,
) -> dict[str, Any]:
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
        "requirements": _requirements(list(capacity_types), zones, diverse, min_cpu),
        "expireAfter": expire_after,
    }
    if taints:
        template_spec["taints"] = taints
    if startup_taints:
        template_spec["startupTaints"] = startup_taints
    if termination_grace_period:
        template_spec["terminationGracePeriod"] = termination_grace_period
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "weight": weight,
            "limits": limits.as_limits(),
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": check_duration(consolidate_after),
                "budgets": budgets,
            },
            "template": {
                "metadata": {"labels": {POOL_LABEL: role}},
                "spec": template_spec,
            },
        },
    }


#: Voluntary disruptions that move or replace a node that still runs pods. `Empty` is not among
#: them: removing a node with nothing on it disrupts nobody, and is how a pool shrinks.
DISRUPTIVE_REASONS = ["Underutilized", "Drifted"]


def peak_freeze(peak: PeakWindow | None) -> list[dict[str, Any]]:
    """A budget that allows no disruptive consolidation or drift replacement during the weekday
    peak (Karpenter applies the most restrictive active budget); outside it, the pool's other
    budgets apply. Empty nodes still go at any hour."""
    if peak is None:
        return []
    return [{"nodes": "0", "reasons": list(DISRUPTIVE_REASONS), "schedule": peak.start_cron, "duration": peak.duration}]


class _ScanPoolOptions(TypedDict):
    """The `node_pool` arguments the spot scan pool and its on-demand fallback share."""

    role: str
    zones: Sequence[str]
    consolidate_after: str
    taints: list[dict[str, str]]
    startup_taints: list[dict[str, str]]
    expire_after: str
    termination_grace_period: str
    min_cpu: int
    budgets: list[dict[str, Any]]


def scan_pools(
    zones: Sequence[str],
    limits: PoolLimits,
    consolidate_after: str,
    fallback_percent: int,
    job_deadline_minutes: int = 40,
    peak: PeakWindow | None = None,
) -> list[dict[str, Any]]:
    """The spot scan pool, and (unless `fallback_percent` is 0) its on-demand fallback with a
    lower weight and a share of the limits, so a spot drought slows scans but never stops them."""
    common = _ScanPoolOptions(
        role=SCAN_POOL,
        zones=zones,
        consolidate_after=consolidate_after,
        taints=[SCAN_TAINT],
        startup_taints=[EFS_STARTUP_TAINT],
        # Nodes are replaced daily (fresh AMI, no drift build-up); a node being expired still
        # waits for its running scans, up to the longest scan plus margin.
        expire_after="24h",
        termination_grace_period=f"{job_deadline_minutes + 10}m",
        # Nodes of 8 vCPU or more: a 4-vCPU node holds one 2-vCPU scan after the system
        # reservations and daemons, so small nodes multiply launches, image pulls and idle cores.
        min_cpu=SCAN_NODE_MIN_CPU,
        budgets=[
            # Empty nodes go at once: that is how the pool reaches zero when the queue is empty.
            {"nodes": "100%", "reasons": ["Empty"]},
            # Scans carry karpenter.sh/do-not-disrupt, so these only move idle capacity.
            {"nodes": "20%", "reasons": list(DISRUPTIVE_REASONS)},
            *peak_freeze(peak),
        ],
    )
    pools = [node_pool(SCAN_POOL, capacity_types=["spot"], limits=limits, weight=100, diverse=True, **common)]
    if fallback_percent > 0:
        pools.append(
            node_pool(
                SCAN_FALLBACK_POOL,
                capacity_types=["on-demand"],
                limits=limits.scaled(fallback_percent),
                weight=10,
                **common,
            )
        )
    return pools


def services_pool(zones: Sequence[str], limits: PoolLimits, peak: PeakWindow | None = None) -> dict[str, Any]:
    """On-demand capacity for the services, consolidated slowly and one node at a time so the
    services' disruption budgets are never raced, and left alone during the weekday peak."""
    return node_pool(
        SERVICES_POOL,
        role=SERVICES_POOL,
        capacity_types=["on-demand"],
        zones=zones,
        limits=limits,
        weight=50,
        consolidate_after="5m",
        budgets=[{"nodes": "1"}, *peak_freeze(peak)],
    )


# ----- interruption handling --------------------------------------------------------------

#: EventBridge rules that feed Karpenter's interruption queue: (name suffix, source, detail-type).
INTERRUPTION_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("health", "aws.health", "AWS Health Event"),
    ("spot-interruption", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("state-change", "aws.ec2", "EC2 Instance State-change Notification"),
)

#: The queue keeps a message only as long as the two-minute spot warning is useful.
QUEUE_RETENTION_SECONDS = 300


def event_pattern(source: str, detail_type: str) -> str:
    return json.dumps({"source": [source], "detail-type": [detail_type]})


def queue_policy(queue_arn: str) -> dict[str, Any]:
    """EventBridge may send to the queue; nothing may use it without TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowEventBridge",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyWithoutTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


# ----- controller IAM ---------------------------------------------------------------------


def controller_policies(
    *, partition: str, region: str, account_id: str, cluster_name: str, queue_arn: str, node_role_arn: str
) -> dict[str, dict[str, Any]]:
    """The controller's permissions, split by concern into managed policies that each stay
    under IAM's 6,144-character limit even with the longest cluster and region names (a
    single document does not). Scoped as Karpenter's reference policy: instance actions only
    on resources tagged for this cluster and a node pool."""
    ec2 = f"arn:{partition}:ec2:{region}"
    profiles = f"arn:{partition}:iam::{account_id}:instance-profile/*"
    cluster_arn = f"arn:{partition}:eks:{region}:{account_id}:cluster/{cluster_name}"
    owned = f"kubernetes.io/cluster/{cluster_name}"
    tagged_resources = [
        f"{ec2}:*:{kind}/*"
        for kind in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    request_tags = {f"aws:RequestTag/{owned}": "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name}

    def statement(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None):
        body: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
        if condition:
            body["Condition"] = condition
        return body

    def document(*statements):
        return {"Version": "2012-10-17", "Statement": list(statements)}

    return {
        "node-lifecycle": document(
            statement(
                "AllowScopedEC2InstanceAccessActions",
                ["ec2:RunInstances", "ec2:CreateFleet"],
                [
                    f"{ec2}::image/*",
                    f"{ec2}::snapshot/*",
                    f"{ec2}:*:security-group/*",
                    f"{ec2}:*:subnet/*",
                    f"{ec2}:*:capacity-reservation/*",
                    f"{ec2}:*:placement-group/*",
                ],
            ),
            statement(
                "AllowScopedEC2LaunchTemplateAccessActions",
                ["ec2:RunInstances", "ec2:CreateFleet"],
                f"{ec2}:*:launch-template/*",
                {
                    "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                },
            ),
            statement(
                "AllowScopedEC2InstanceActionsWithTags",
                ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                tagged_resources,
                {"StringEquals": request_tags, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
            ),
            statement(
                "AllowScopedResourceCreationTagging",
                ["ec2:CreateTags"],
                tagged_resources,
                {
                    "StringEquals": {
                        **request_tags,
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    },
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            ),
            statement(
                "AllowScopedResourceTagging",
                ["ec2:CreateTags"],
                f"{ec2}:*:instance/*",
                {
                    "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                    "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                    },
                },
            ),
            statement(
                "AllowScopedDeletion",
                ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
                {
                    "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                },
            ),
        ),
        "iam-integration": document(
            statement(
                "AllowPassingInstanceRole",
                ["iam:PassRole"],
                node_role_arn,
                {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
            ),
            statement(
                "AllowScopedInstanceProfileCreationActions",
                ["iam:CreateInstanceProfile"],
                profiles,
                {
                    "StringEquals": {**request_tags, "aws:RequestTag/topology.kubernetes.io/region": region},
                    "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            ),
            statement(
                "AllowScopedInstanceProfileTagActions",
                ["iam:TagInstanceProfile"],
                profiles,
                {
                    "StringEquals": {
                        f"aws:ResourceTag/{owned}": "owned",
                        "aws:ResourceTag/topology.kubernetes.io/region": region,
                        **request_tags,
                        "aws:RequestTag/topology.kubernetes.io/region": region,
                    },
                    "StringLike": {
                        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                        "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    },
                },
            ),
            statement(
                "AllowScopedInstanceProfileActions",
                ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
                profiles,
                {
                    "StringEquals": {
                        f"aws:ResourceTag/{owned}": "owned",
                        "aws:ResourceTag/topology.kubernetes.io/region": region,
                    },
                    "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            ),
        ),
        "cluster-and-queue": document(
            statement("AllowAPIServerEndpointDiscovery", ["eks:DescribeCluster"], cluster_arn),
            statement(
                "AllowInterruptionQueueActions",
                ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                queue_arn,
            ),
            statement(
                "AllowZonalShiftStatusReadOnly",
                ["arc-zonal-shift:GetManagedResource"],
                "*",
                {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}},
            ),
        ),
        "resource-discovery": document(
            statement(
                "AllowRegionalReadActions",
                [
                    "ec2:DescribeCapacityReservations",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribePlacementGroups",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                ],
                "*",
                {"StringEquals": {"aws:RequestedRegion": region}},
            ),
            statement(
                "AllowSSMReadActions", ["ssm:GetParameter"], f"arn:{partition}:ssm:{region}::parameter/aws/service/*"
            ),
            statement("AllowPricingReadActions", ["pricing:GetProducts"], "*"),
            statement("AllowUnscopedInstanceProfileListAction", ["iam:ListInstanceProfiles"], "*"),
            statement("AllowInstanceProfileReadActions", ["iam:GetInstanceProfile"], profiles),
        ),
    }


def policy_size(document: dict[str, Any]) -> int:
    """Characters IAM counts against the limit (whitespace is not counted)."""
    return len(re.sub(r"\s", "", json.dumps(document)))


# ----- Helm values -----------------------------------------------------------------------


def helm_values(cluster_name: str, queue_name: str, region: str, custom_networking: bool = False) -> dict[str, Any]:
    """Controller values: on the system nodes only, spread over zones, credentials from EKS Pod
    Identity (no role annotation on the service account). The region is given outright: Pod
    Identity supplies credentials but no region, and the nodes' metadata service is out of the
    pods' reach (hop limit 1), where Karpenter would otherwise look it up."""
    settings: dict[str, Any] = {
        "clusterName": cluster_name,
        "interruptionQueue": queue_name,
        # Honour ARC zonal shifts of the cluster (since 1.12, off by default): while a zone is
        # shifted away, new nodes go to the other zones, so Pods evicted from the lost zone do
        # not land on nodes that cannot join. Its controller role reads the shifts
        # (arc-zonal-shift:GetManagedResource, in the policy above).
        "enableZonalShift": True,
    }
    if custom_networking:
        # With VPC CNI custom networking the node's primary ENI holds no pods: Karpenter must
        # leave it out when it computes how many pods an instance type fits.
        settings["reservedENIs"] = "1"
    return {
        "settings": settings,
        "serviceAccount": {"create": True, "name": KARPENTER_SERVICE_ACCOUNT},
        "replicas": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", **SYSTEM_LABEL},
        "tolerations": [SYSTEM_TOLERATION],
        "affinity": {
            # Never on a node Karpenter manages, even if a label is copied by mistake.
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]}
                    ]
                }
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                    }
                ]
            },
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
            }
        ],
        "podDisruptionBudget": {"name": "karpenter", "maxUnavailable": 1},
        "priorityClassName": "system-cluster-critical",
        "controller": {
            "env": [{"name": "AWS_REGION", "value": region}],
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        },
        "dnsPolicy": "ClusterFirst",
        "logLevel": "info",
    }
