"""Where scan jobs run and what they may read: the scan namespace, the scan service account, its
IAM role (EKS Pod Identity), and the GitHub token pool.

The token pool is a Secrets Manager secret holding several GitHub credentials, so jobs spread
their API and git calls across accounts instead of exhausting one account's rate limit. The
program creates the secret but never its value: operators put the tokens in with
`aws secretsmanager put-secret-value` (format in the README), so no token passes through the
stack's state. The secret's own policy lets no principal but the scan role read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.iam import SecretReads, pod_identity

NAMESPACE = "scanner-scans"
SERVICE_ACCOUNT = "scan-engine"


@dataclass(frozen=True)
class ScanAccessArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """The cluster (its output: the role association waits for it)."""
    extra_secret_arns: list[pulumi.Input[str]]
    """Other secrets the jobs read (the RabbitMQ credentials)."""
    extra_kms_key_arns: list[pulumi.Input[str]]
    """Keys those secrets are encrypted with."""


class ScanAccess(pulumi.ComponentResource):
    token_pool_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    namespace: str = NAMESPACE
    service_account: str = SERVICE_ACCOUNT

    def __init__(self, name: str, args: ScanAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:scans:ScanAccess", name, {"kubernetesNamespace": NAMESPACE}, opts)
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)

        key = aws.kms.Key(
            f"{name}-tokens-key",
            description=f"{args.stack.name_prefix} GitHub token pool",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        pool = aws.secretsmanager.Secret(
            f"{name}-github-tokens",
            name=f"{args.stack.name_prefix}/github-token-pool",
            description='GitHub credentials for scan jobs: {"tokens": [{"account": "...", "token": "..."}, ...]}; '
            "set outside the program",
            kms_key_id=key.arn,
            recovery_window_in_days=30,
            opts=keep,
        )
        identity = pod_identity(
            f"{name}-role",
            parent=self,
            account_id=args.stack.account_id,
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            description="Scan jobs: read the GitHub token pool and the queue credentials (EKS Pod Identity)",
            reads=SecretReads([pool.arn, *args.extra_secret_arns], [key.arn, *args.extra_kms_key_arns]),
            policy_name=f"{name}-secrets",
            association_name=f"{name}-identity",
        )
        role = identity.role
        aws.secretsmanager.SecretPolicy(
            f"{name}-github-tokens",
            secret_arn=pool.arn,
            policy=pulumi.Output.all(pool.arn, role.arn).apply(lambda v: json.dumps(token_pool_policy(v[0], v[1]))),
            opts=pulumi.ResourceOptions(parent=pool),
        )

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE, labels={"pod-security.kubernetes.io/enforce": "restricted"}
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SERVICE_ACCOUNT, namespace=NAMESPACE),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )

        self.namespace_resource = namespace
        self.token_pool_arn = pool.arn
        self.role_arn = role.arn
        self.register_outputs({"tokenPoolArn": pool.arn, "roleArn": role.arn, "namespace": NAMESPACE})


def token_pool_policy(secret_arn: str, reader_role_arn: str) -> dict:
    """Only the scan role reads the tokens; everyone else may still manage the secret."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyScanJobsRead",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arn,
                "Condition": {"StringNotEquals": {"aws:PrincipalArn": reader_role_arn}},
            }
        ],
    }
