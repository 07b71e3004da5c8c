"""How service workloads find the data tier: a namespace, a ConfigMap of endpoints, and a service
account (`data-client`) for operational jobs such as schema migrations, whose IAM role (EKS Pod
Identity) reads the migrations role's secret only. The long-running services each have their
own account and role, which read their own users' secrets (components/services/services.py).

Secret values never enter Kubernetes: pods read them from Secrets Manager at start-up with
the service account's credentials, so rotation needs no redeploy of a Kubernetes Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.iam import SecretReads, pod_identity
from components.data import database_roles

NAMESPACE = "scanner-services"
SERVICE_ACCOUNT = "data-client"
CONFIG_MAP = "data-endpoints"


@dataclass(frozen=True)
class DataAccessArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """The cluster (its output: the role association waits for it)."""
    settings: Mapping[str, pulumi.Input[str]]
    """ConfigMap entries: endpoints, ports and the migrations secret's ARN (never secret values,
    never an administrator's secret)."""
    secret_arns: list[pulumi.Input[str]]
    """Secrets the data-client identity may read (the migrations role's)."""
    kms_key_arns: list[pulumi.Input[str]]
    """Keys those secrets are encrypted with."""


class DataAccess(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    namespace_resource: k8s.core.v1.Namespace

    def __init__(self, name: str, args: DataAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:services:DataAccess", name, {"kubernetesNamespace": NAMESPACE}, opts)
        in_cluster = pulumi.ResourceOptions(parent=self)

        identity = pod_identity(
            f"{name}-role",
            parent=self,
            account_id=args.stack.account_id,
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            description="Service workloads reading data-tier credentials (EKS Pod Identity)",
            reads=SecretReads(
                args.secret_arns, args.kms_key_arns, ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
            ),
            policy_name=f"{name}-secrets",
            association_name=f"{name}-identity",
            client=database_roles.MIGRATIONS,
        )

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    # The load balancer controller holds a rolling update until new pods pass the
                    # target group's health check, not only their own readiness probe.
                    "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
                },
            ),
            opts=in_cluster,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        self.namespace_resource = namespace
        k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SERVICE_ACCOUNT, namespace=NAMESPACE),
            automount_service_account_token=False,
            opts=in_namespace,
        )
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-endpoints",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CONFIG_MAP, namespace=NAMESPACE),
            data={key: pulumi.Output.from_input(value).apply(str) for key, value in args.settings.items()},
            opts=in_namespace,
        )

        self.role_arn = identity.role.arn
        self.register_outputs({"roleArn": identity.role.arn, "namespace": NAMESPACE})
