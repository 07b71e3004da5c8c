"""What the services need from the cluster before they can run: the AWS Load Balancer Controller
(Ingresses become Application Load Balancers with pods as targets), metrics-server (the CPU
metrics KEDA's autoscalers read) and the descheduler (scale-downs may leave a zone without a
replica; the scheduler only spreads pods as they are created, so the descheduler evicts
replicas from crowded zones, within their disruption budgets, and the scheduler puts them back
where the spread wants them). All run on the system nodes.

The controller gets its AWS permissions through EKS Pod Identity. Pods cannot reach the nodes'
metadata service (hop limit 1), so region and VPC are given outright.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.helm import pinned_chart
from components.common.iam import pod_identity
from components.common.versions import DESCHEDULER_VERSION, LBC_VERSION, METRICS_SERVER_VERSION
from components.eks import karpenter_plan

LBC_CHART_REPO = "https://aws.github.io/eks-charts"
LBC_NAMESPACE = "kube-system"
LBC_SERVICE_ACCOUNT = "aws-load-balancer-controller"
METRICS_SERVER_CHART_REPO = "https://kubernetes-sigs.github.io/metrics-server/"
DESCHEDULER_CHART_REPO = "https://kubernetes-sigs.github.io/descheduler/"

#: The controller's documented IAM policy for LBC_VERSION (docs/install/iam_policy.json).
_POLICY_FILE = Path(__file__).with_name("lbc_iam_policy.json")


def controller_policy(partition: str, region: str, account_id: str, vpc_id: str) -> dict[str, Any]:
    """The documented policy in this partition, with the one statement it leaves unscoped
    (security-group ingress changes on any group) narrowed to this stack's VPC, as the
    installation guide recommends."""
    document = json.loads(_POLICY_FILE.read_text().replace("arn:aws:", f"arn:{partition}:"))
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "ec2:AuthorizeSecurityGroupIngress" in actions and "Condition" not in statement:
            statement["Condition"] = {
                "ArnEquals": {"ec2:Vpc": f"arn:{partition}:ec2:{region}:{account_id}:vpc/{vpc_id}"}
            }
    return document


def _system_placement(app: str) -> dict[str, Any]:
    return {
        "nodeSelector": karpenter_plan.SYSTEM_LABEL,
        "tolerations": [karpenter_plan.SYSTEM_TOLERATION],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
            }
        ],
    }


def controller_values(cluster_name: str, region: str, vpc_id: str) -> dict[str, Any]:
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": LBC_SERVICE_ACCOUNT},
        "replicaCount": 2,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "priorityClassName": "system-cluster-critical",
        "createIngressClassResource": True,
        "ingressClass": "alb",
        "defaultTargetType": "ip",
        # The mutating webhook on every Service (failure policy Fail) would make Service
        # creation cluster-wide depend on this controller; no Service here needs it.
        "enableServiceMutatorWebhook": False,
        **_system_placement("aws-load-balancer-controller"),
    }


def metrics_server_values() -> dict[str, Any]:
    return {
        "replicas": 2,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "priorityClassName": "system-cluster-critical",
        **_system_placement("metrics-server"),
    }


def descheduler_values(namespaces: list[str], interval: str = "5m") -> dict[str, Any]:
    """Only the zone-spread rule, only for hard constraints, only in the services' namespaces.
    Evictions go through the eviction API, so disruption budgets hold; pods with an emptyDir
    (the services' /tmp) are evictable."""
    return {
        "kind": "Deployment",
        "replicas": 1,
        "deschedulingInterval": interval,
        "deschedulerPolicyAPIVersion": "descheduler/v1alpha2",
        "deschedulerPolicy": {
            "profiles": [
                {
                    "name": "zone-spread",
                    "pluginConfig": [
                        {"name": "DefaultEvictor", "args": {"evictLocalStoragePods": True}},
                        {
                            "name": "RemovePodsViolatingTopologySpreadConstraint",
                            "args": {"constraints": ["DoNotSchedule"], "namespaces": {"include": list(namespaces)}},
                        },
                    ],
                    "plugins": {
                        "filter": {"enabled": ["DefaultEvictor"]},
                        "preEvictionFilter": {"enabled": ["DefaultEvictor"]},
                        "balance": {"enabled": ["RemovePodsViolatingTopologySpreadConstraint"]},
                    },
                }
            ]
        },
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": karpenter_plan.SYSTEM_LABEL,
        "tolerations": [karpenter_plan.SYSTEM_TOLERATION],
    }


@dataclass(frozen=True)
class ServicePlatformArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """The cluster (its output: the controller's role association waits for it)."""
    vpc_id: pulumi.Input[str]
    rebalanced_namespaces: tuple[str, ...] = ()
    """Namespaces whose Deployments the descheduler keeps spread over the zones. Default none."""
    after: tuple[pulumi.Resource, ...] = ()
    """What must exist first (system nodes, CoreDNS and the Pod Identity agent).
    Applied to the children that need it: a component's `depends_on` does not reach its
    children. Default nothing."""


class ServicePlatform(pulumi.ComponentResource):
    load_balancer_controller: k8s.helm.v3.Release
    metrics_server: k8s.helm.v3.Release
    descheduler: k8s.helm.v3.Release

    def __init__(self, name: str, args: ServicePlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:services:ServicePlatform",
            name,
            {
                "loadBalancerControllerVersion": LBC_VERSION,
                "metricsServerVersion": METRICS_SERVER_VERSION,
                "deschedulerVersion": DESCHEDULER_VERSION,
            },
            opts,
        )
        identity = pod_identity(
            f"{name}-lbc",
            parent=self,
            account_id=args.stack.account_id,
            cluster_name=args.cluster_name,
            namespace=LBC_NAMESPACE,
            service_account=LBC_SERVICE_ACCOUNT,
            description="AWS Load Balancer Controller (EKS Pod Identity)",
        )
        role = identity.role
        policy = aws.iam.Policy(
            f"{name}-lbc",
            description=f"AWS Load Balancer Controller {LBC_VERSION} for {args.stack.cluster_name}",
            policy=pulumi.Output.from_input(args.vpc_id).apply(
                lambda vpc: json.dumps(
                    controller_policy(args.stack.partition, args.stack.region, args.stack.account_id, vpc)
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-lbc", role=role.name, policy_arn=policy.arn, opts=pulumi.ResourceOptions(parent=role)
        )

        in_cluster = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        self.metrics_server = pinned_chart(
            f"{name}-metrics-server",
            chart="metrics-server",
            version=METRICS_SERVER_VERSION,
            repo=METRICS_SERVER_CHART_REPO,
            namespace="kube-system",
            values=metrics_server_values(),
            opts=in_cluster,
        )
        self.descheduler = pinned_chart(
            f"{name}-descheduler",
            chart="descheduler",
            version=DESCHEDULER_VERSION,
            repo=DESCHEDULER_CHART_REPO,
            namespace="kube-system",
            values=descheduler_values(list(args.rebalanced_namespaces)),
            opts=in_cluster,
        )
        self.load_balancer_controller = pinned_chart(
            f"{name}-lbc",
            chart="aws-load-balancer-controller",
            version=LBC_VERSION,
            repo=LBC_CHART_REPO,
            namespace=LBC_NAMESPACE,
            values=pulumi.Output.all(args.cluster_name, args.vpc_id).apply(
                lambda v: controller_values(v[0], args.stack.region, v[1])
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[identity.association, attachment, *args.after]),
        )
        self.register_outputs({"loadBalancerControllerVersion": LBC_VERSION})
