"""IAM documents several components share: the trust of an EKS Pod Identity role, and the
permission to read Secrets Manager secrets under customer managed keys."""

from __future__ import annotations

import json


def pod_identity_trust(account_id: str | None = None, namespace: str | None = None,
                       service_account: str | None = None) -> str:
    """A role EKS Pod Identity may hand to pods; optionally only in this account, and only to the
    pods of one namespace and service account (checked on the session tags Pod Identity sets)."""
    conditions: dict[str, str] = {}
    if account_id:
        conditions["aws:SourceAccount"] = account_id
    if namespace:
        conditions["aws:RequestTag/kubernetes-namespace"] = namespace
    if service_account:
        conditions["aws:RequestTag/kubernetes-service-account"] = service_account
    statement: dict = {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                       "Action": ["sts:AssumeRole", "sts:TagSession"]}
    if conditions:
        statement["Condition"] = {"StringEquals": conditions}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def secret_read_policy(secret_arns: list[str], key_arns: list[str],
                       actions: tuple[str, ...] = ("secretsmanager:GetSecretValue",)) -> str:
    """Read these secrets, and decrypt with their keys only on Secrets Manager's behalf."""
    def one_or_many(arns: list[str]):
        return arns[0] if len(arns) == 1 else sorted(arns)

    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions[0] if len(actions) == 1 else list(actions),
         "Resource": one_or_many(list(secret_arns))},
        # StringLike: the wildcard only matches there (StringEquals would never match).
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": one_or_many(list(key_arns)),
         "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}},
    ]})
