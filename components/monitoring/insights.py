"""Container Insights: the `amazon-cloudwatch-observability` EKS add-on, which runs the
CloudWatch agent on every node and feeds the `ContainerInsights` metrics the cluster's alarms
read (failed nodes, node CPU, memory and disk, container restarts).

The agent's role comes from EKS Pod Identity (the add-on's `cloudwatch-agent` service account in
`amazon-cloudwatch`), with AWS's CloudWatchAgentServerPolicy. Its operator is cluster-critical:
on the system nodes. Container logs (Fluent Bit) are off: the services' logs are not this add-on's
to ship, and at scan volumes they would cost more than the metrics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import versions
from components.common.context import StackContext
from components.common.iam import pod_identity_trust
from components.eks import karpenter_plan

ADDON = "amazon-cloudwatch-observability"
NAMESPACE = "amazon-cloudwatch"
SERVICE_ACCOUNT = "cloudwatch-agent"


@dataclass(frozen=True)
class ContainerInsightsArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    """Picks the add-on build from components/common/versions.py."""
    after: Sequence[pulumi.Resource] = ()
    """The system nodes and the Pod Identity agent: EKS reports the add-on active once its pods run."""


class ContainerInsights(pulumi.ComponentResource):
    addon: aws.eks.Addon

    def __init__(self, name: str, args: ContainerInsightsArgs, opts: pulumi.ResourceOptions | None = None):
        version = versions.ADDON_VERSIONS[args.kubernetes_version][ADDON]
        super().__init__("scanner:monitoring:ContainerInsights", name, {"addonVersion": version}, opts)
        role = aws.iam.Role(
            f"{name}-agent",
            assume_role_policy=pod_identity_trust(args.stack.account_id, NAMESPACE, SERVICE_ACCOUNT),
            description="CloudWatch agent of Container Insights (EKS Pod Identity)",
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-agent",
            role=role.name,
            policy_arn=f"arn:{args.stack.partition}:iam::aws:policy/CloudWatchAgentServerPolicy",
            opts=pulumi.ResourceOptions(parent=role),
        )
        self.addon = aws.eks.Addon(
            f"{name}-addon",
            cluster_name=args.cluster_name,
            addon_name=ADDON,
            addon_version=version,
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account=SERVICE_ACCOUNT)
            ],
            configuration_values=json.dumps(configuration()),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment, *args.after]),
        )
        self.register_outputs({"addonVersion": version})


def configuration() -> dict:
    """The add-on's configuration values: no container logs, the operator on the system nodes."""
    return {
        "containerLogs": {"enabled": False},
        "manager": {
            "nodeSelector": karpenter_plan.SYSTEM_LABEL,
            "tolerations": [karpenter_plan.SYSTEM_TOLERATION],
        },
    }
