"""Where scan jobs run and what they may read: the scan namespace, one service account per engine
with its own IAM role (EKS Pod Identity), and the GitHub token pool.

Each engine's Jobs run as `scan-<engine>`, whose role reads the token pool and that engine's
broker user only: a compromised semgrep Job cannot consume another engine's queue.

The token pool is a Secrets Manager secret holding several GitHub credentials, so jobs spread
their API and git calls across accounts instead of exhausting one account's rate limit. The
program creates the secret but never its value: operators put the tokens in with
`aws secretsmanager put-secret-value` (format in the README), so no token passes through the
stack's state. The secret's own policy lets no principal but the scan role read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.iam import SecretReads, data_secret_tags, pod_identity

NAMESPACE = "scanner-scans"


def service_account(engine: str) -> str:
    """The service account an engine's Jobs run as."""
    return f"scan-{engine}"


@dataclass(frozen=True)
class ScanAccessArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """The cluster (its output: the role association waits for it)."""
    engines: tuple[str, ...]
    """The scan engines: one service account and role each."""
    engine_secret_arns: Mapping[str, pulumi.Input[str]]
    """Engine -> the secret of its own broker user."""
    engine_key_arns: list[pulumi.Input[str]]
    """Keys those secrets are encrypted with."""


class ScanAccess(pulumi.ComponentResource):
    token_pool_arn: pulumi.Output[str]
    role_arns: dict[str, pulumi.Output[str]]
    """Engine -> its role's ARN."""
    service_accounts: dict[str, str]
    """Engine -> the service account its Jobs run as."""
    namespace: str = NAMESPACE

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
            tags=data_secret_tags("github", "token-pool", [f"engine:{e}" for e in args.engines]),
            opts=keep,
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE, labels={"pod-security.kubernetes.io/enforce": "restricted"}
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_arns = {}
        self.service_accounts = {}
        for engine in args.engines:
            account = service_account(engine)
            identity = pod_identity(
                f"{name}-{engine}",
                parent=self,
                account_id=args.stack.account_id,
                cluster_name=args.cluster_name,
                namespace=NAMESPACE,
                service_account=account,
                description=f"Scan jobs of {engine}: read the GitHub token pool and {engine}'s queue credentials "
                "(EKS Pod Identity)",
                reads=SecretReads(
                    [pool.arn, *([args.engine_secret_arns[engine]] if engine in args.engine_secret_arns else [])],
                    [key.arn, *args.engine_key_arns],
                ),
                client=f"engine:{engine}",
            )
            k8s.core.v1.ServiceAccount(
                f"{name}-{engine}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=account, namespace=NAMESPACE),
                automount_service_account_token=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
            self.role_arns[engine] = identity.role.arn
            self.service_accounts[engine] = account
        aws.secretsmanager.SecretPolicy(
            f"{name}-github-tokens",
            secret_arn=pool.arn,
            policy=pulumi.Output.all(pool.arn, *self.role_arns.values()).apply(
                lambda v: json.dumps(token_pool_policy(v[0], v[1:]))
            ),
            opts=pulumi.ResourceOptions(parent=pool),
        )

        self.namespace_resource = namespace
        self.token_pool_arn = pool.arn
        self.register_outputs({"tokenPoolArn": pool.arn, "roleArns": self.role_arns, "namespace": NAMESPACE})


def token_pool_policy(secret_arn: str, reader_role_arns: Sequence[str]) -> dict:
    """Only the engines' roles read the tokens; everyone else may still manage the secret. (A
    negated condition with several values holds when the principal is none of them.)"""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyScanJobsRead",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arn,
                "Condition": {"StringNotEquals": {"aws:PrincipalArn": list(reader_role_arns)}},
            }
        ],
    }
