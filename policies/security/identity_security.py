"""Least privilege in the data plane: who may read which data-tier secret.

The program tags every data-tier secret with whose credentials it holds and which clients may
read it (`scanner.io/data-secret`, `scanner.io/readers`), and every workload's IAM role with the
client it is (`scanner.io/client`); the names come from policies/common/contract.py. A workload
role is one EKS Pod Identity may hand to pods (its trust names pods.eks.amazonaws.com).

Who reads a secret is found in the stack itself: an inline role policy whose document depends on
the secret (a preview knows the dependency before the ARN), or names its ARN (an update).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

import contract
from stack_graph import Report, known, short, tag

SECRET = "aws:secretsmanager/secret:Secret"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def _data_secrets(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type == SECRET and tag(r, contract.DATA_SECRET_TAG)]


def _is_administrator(secret: PolicyResource) -> bool:
    return (tag(secret, contract.DATA_SECRET_TAG) or "").endswith("/" + contract.ADMINISTRATOR)


def _workload_role(role: PolicyResource) -> bool:
    trust = known(role, "assumeRolePolicy")
    if isinstance(trust, dict):
        trust = json.dumps(trust)
    return isinstance(trust, str) and POD_IDENTITY_PRINCIPAL in trust


def _mentions(resource: PolicyResource, secret: PolicyResource, props: tuple[str, ...] | None = None) -> bool:
    """`resource` takes `secret`: a property depends on it, or (once known) holds its ARN."""
    dependencies = resource.property_dependencies
    for prop in props or tuple(dependencies):
        if secret in dependencies.get(prop, []):
            return True
    arn = known(secret, "arn")
    if not isinstance(arn, str) or not arn:
        return False
    values = [_get(resource.props, p) for p in props] if props else [resource.props]
    return any(arn in text for v in values for text in _strings(v))


def _get(props: Mapping, key: str) -> Any:
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a property value, skipping what a preview does not know yet."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key in list(value):
            yield from _strings(_get(value, key))
    elif isinstance(value, Sequence):
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                continue
            yield from _strings(item)


def _readers(args: StackValidationArgs) -> dict[str, set[PolicyResource]]:
    """Secret URN -> the workload roles whose inline policies take it."""
    roles = {r.urn: r for r in args.resources if r.resource_type == ROLE and _workload_role(r)}
    secrets = _data_secrets(args)
    readers: dict[str, set[PolicyResource]] = defaultdict(set)
    for policy in (r for r in args.resources if r.resource_type == ROLE_POLICY):
        owners = [d for d in policy.property_dependencies.get("role", []) if d.urn in roles]
        if not owners:
            named = known(policy, "role")
            owners = [r for r in roles.values() if named and named in (known(r, "name"), known(r, "id"))]
        for secret in secrets:
            if _mentions(policy, secret, ("policy",)):
                readers[secret.urn].update(owners)
    return readers


def _client(role: PolicyResource) -> str | None:
    return tag(role, contract.CLIENT_TAG)


def workloads_no_administrator_secrets(args: StackValidationArgs, report: Report) -> None:
    """No Kubernetes object takes an administrator's secret (its ARN in a Deployment's env, a Job
    template, a ScaledJob, a TriggerAuthentication, a ConfigMap the pods read), and no workload
    role may read one."""
    administrators = [s for s in _data_secrets(args) if _is_administrator(s)]
    if not administrators:
        return
    readers = _readers(args)
    for secret in administrators:
        holder = tag(secret, contract.DATA_SECRET_TAG)
        for resource in args.resources:
            if resource.resource_type.startswith("kubernetes:") and _mentions(resource, secret):
                report(
                    f"{short(resource)} takes the {holder} secret ({short(secret)}); workloads use a user of "
                    "their own, never an administrator's.",
                    resource.urn,
                )
        for role in sorted(readers.get(secret.urn, ()), key=lambda r: r.urn):
            report(
                f"workload role {short(role)} ({_client(role) or 'no client'}) may read the {holder} secret; "
                "no workload may.",
                role.urn,
            )


def data_secret_readers(args: StackValidationArgs, report: Report) -> None:
    """Each data secret is readable by exactly the workload roles of the clients it lists: none
    of another client, none without a client, and each listed client's role where the stack has
    one (a client without a role here, the drill, runs outside the cluster)."""
    readers = _readers(args)
    clients_with_roles = {
        _client(r) for r in args.resources if r.resource_type == ROLE and _workload_role(r) and _client(r)
    }
    for secret in _data_secrets(args):
        listed = tag(secret, contract.SECRET_READERS_TAG) or contract.NO_READERS
        allowed = set() if listed == contract.NO_READERS else set(listed.split())
        holder = tag(secret, contract.DATA_SECRET_TAG)
        actual = readers.get(secret.urn, set())
        for role in sorted(actual, key=lambda r: r.urn):
            client = _client(role)
            if client not in allowed:
                report(
                    f"workload role {short(role)} ({client or 'no client'}) may read the {holder} secret, whose "
                    f"readers are {listed}.",
                    role.urn,
                )
        missing = sorted((allowed & clients_with_roles) - {_client(r) for r in actual})
        if missing:
            report(
                f"the {holder} secret lists {', '.join(missing)}, whose role(s) cannot read it: the client would "
                "start without its credentials.",
                secret.urn,
            )


POLICIES = [
    StackValidationPolicy(
        name="workloads-no-administrator-secrets",
        description="Refuses a Kubernetes workload or workload role that takes the database master user's or the "
        "broker administrator's secret.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=workloads_no_administrator_secrets,
    ),
    StackValidationPolicy(
        name="data-secret-readers",
        description="Requires each data-tier secret to be readable by exactly the workload roles of the clients it "
        "lists.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=data_secret_readers,
    ),
]
