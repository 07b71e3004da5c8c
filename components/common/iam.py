"""IAM several components share: the trust of an EKS Pod Identity role, the permission to read
Secrets Manager secrets under customer managed keys, and a Pod Identity role with its
association."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext
from policies.common import contract


def pod_identity_trust(
    account_id: str | None = None, namespace: str | None = None, service_account: str | None = None
) -> str:
    """A role EKS Pod Identity may hand to pods; optionally only in this account, and only to the
    pods of one namespace and service account (checked on the session tags Pod Identity sets)."""
    conditions: dict[str, str] = {}
    if account_id:
        conditions["aws:SourceAccount"] = account_id
    if namespace:
        conditions["aws:RequestTag/kubernetes-namespace"] = namespace
    if service_account:
        conditions["aws:RequestTag/kubernetes-service-account"] = service_account
    statement: dict = {
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    }
    if conditions:
        statement["Condition"] = {"StringEquals": conditions}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def service_trust(service: str, account_id: str, source_arn: str | None = None) -> str:
    """A role an AWS service (`lambda.amazonaws.com`, `fis.amazonaws.com`) may take on this
    account's behalf only; with `source_arn` (a pattern), for those of its resources only."""
    condition: dict[str, dict[str, str]] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": condition,
                }
            ],
        }
    )


def secret_read_policy(
    secret_arns: list[str], key_arns: list[str], actions: tuple[str, ...] = ("secretsmanager:GetSecretValue",)
) -> str:
    """Read these secrets, and decrypt with their keys only on Secrets Manager's behalf."""

    def one_or_many(arns: list[str]):
        return arns[0] if len(arns) == 1 else sorted(arns)

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": actions[0] if len(actions) == 1 else list(actions),
                    "Resource": one_or_many(list(secret_arns)),
                },
                # StringLike: the wildcard only matches there (StringEquals would never match).
                {
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": one_or_many(list(key_arns)),
                    "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
                },
            ],
        }
    )


@dataclass(frozen=True)
class SecretReads:
    """Secrets a role may read, with the keys they are encrypted under."""

    secret_arns: list[pulumi.Input[str]]
    key_arns: list[pulumi.Input[str]]
    actions: tuple[str, ...] = ("secretsmanager:GetSecretValue",)

    def policy(self) -> pulumi.Output[str]:
        return pulumi.Output.all(pulumi.Output.all(*self.secret_arns), pulumi.Output.all(*self.key_arns)).apply(
            lambda arns: secret_read_policy(arns[0], arns[1], self.actions)
        )


@dataclass(frozen=True)
class PodIdentity:
    role: aws.iam.Role
    association: aws.eks.PodIdentityAssociation
    reads: aws.iam.RolePolicy | None


def pod_identity(
    name: str,
    *,
    parent: pulumi.Resource,
    account_id: str,
    cluster_name: pulumi.Input[str],
    namespace: str,
    service_account: str,
    description: str,
    reads: SecretReads | None = None,
    policy_name: str | None = None,
    association_name: str | None = None,
    association_opts: pulumi.ResourceOptions | None = None,
    client: str | None = None,
) -> PodIdentity:
    """An IAM role only pods of `namespace`/`service_account` get (EKS Pod Identity), its
    association with that service account, and, with `reads`, an inline policy to read secrets.
    The policy and association are named `name` unless given other names. `client` names a
    data-tier client (`service:api`): the role is tagged with it, and the security pack checks
    that it reads exactly the data secrets of that client."""
    role = aws.iam.Role(
        name,
        assume_role_policy=pod_identity_trust(account_id, namespace, service_account),
        description=description,
        tags={contract.CLIENT_TAG: client} if client else None,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    policy = None
    if reads is not None:
        policy = aws.iam.RolePolicy(
            policy_name or name, role=role.id, policy=reads.policy(), opts=pulumi.ResourceOptions(parent=role)
        )
    association = aws.eks.PodIdentityAssociation(
        association_name or name,
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=association_opts or pulumi.ResourceOptions(parent=parent),
    )
    return PodIdentity(role, association, policy)


def data_secret_tags(store: str, user: str, readers: Sequence[str]) -> dict[str, str]:
    """The tags the security pack reads on a data-tier secret: whose credentials it holds and
    which clients may read it (none for an administrator's)."""
    value = " ".join(sorted(readers)) or contract.NO_READERS
    if len(value) > 256:
        raise ValueError(f"the readers of the {store} secret of {user} do not fit in one tag (256 characters)")
    return {contract.DATA_SECRET_TAG: f"{store}/{user}", contract.SECRET_READERS_TAG: value}


def client_secret(
    name: str,
    *,
    parent: pulumi.Resource,
    stack: StackContext,
    store: str,
    user: str,
    readers: Sequence[str],
    description: str,
    kms_key_arn: pulumi.Input[str],
) -> aws.secretsmanager.Secret:
    """The secret of one client's own user of a data store (`<prefix>/<store>/<user>-…`), tagged
    with its readers, protected with the stack's data; its value is a version of its own."""
    return aws.secretsmanager.Secret(
        name,
        name_prefix=f"{stack.name_prefix}/{store}/{user}-",
        description=f"{stack.name_prefix} {description}",
        kms_key_id=kms_key_arn,
        recovery_window_in_days=30,
        tags=data_secret_tags(store, user, readers),
        opts=pulumi.ResourceOptions(parent=parent, protect=stack.protect),
    )
