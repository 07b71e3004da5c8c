"""Least privilege in the data plane: who may read which data-tier secret.

The program tags every data-tier secret with whose credentials it holds and which clients may
read it (`scanner.io/data-secret`, `scanner.io/readers`), and every workload's IAM role with the
client it is (`scanner.io/client`); the names come from policies/common/contract.py. A workload
role is one pods or functions can take: its trust names pods.eks.amazonaws.com (EKS Pod Identity)
or lambda.amazonaws.com (the queue-metrics publisher), or allows sts:AssumeRoleWithWebIdentity
from an EKS cluster's OIDC provider (IRSA).

Who reads a secret is found in the stack itself, in every policy document a workload role has
(RolePolicy, `inlinePolicies`, customer managed policies attached or in `managedPolicyArns`):
a document that depends on the secret (all a preview knows), names its ARN, or allows
GetSecretValue on a wildcard matching it (`*` always; a pattern once the ARN is known), or on
everything but a few (NotAction, NotResource).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

import contract
from stack_graph import Report, known, short, tag

SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED_POLICY = "aws:iam/policy:Policy"
READ_ACTION = "secretsmanager:GetSecretValue"
#: AWS managed policies that allow GetSecretValue on every secret.
AWS_MANAGED_READERS = ("AdministratorAccess", "PowerUserAccess", "SecretsManagerReadWrite")
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
FUNCTION_PRINCIPAL = "lambda.amazonaws.com"


def _data_secrets(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type == SECRET and tag(r, contract.DATA_SECRET_TAG)]


def _is_administrator(secret: PolicyResource) -> bool:
    return (tag(secret, contract.DATA_SECRET_TAG) or "").endswith("/" + contract.ADMINISTRATOR)


@lru_cache(maxsize=4096)
def _compiled(pattern: str, case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case else re.IGNORECASE)


def _iam_pattern(pattern: str, value: str, *, case: bool) -> bool:
    """IAM's wildcard match: `*` any run, `?` one character, nothing else special."""
    return _compiled(pattern, case).fullmatch(value) is not None


def _allows(statement: Mapping, action: str) -> bool:
    if "NotAction" in statement:
        return not any(_iam_pattern(a, action, case=False) for a in _listed(statement.get("NotAction")))
    return any(_iam_pattern(a, action, case=False) for a in _listed(statement.get("Action")))


def _workload_role(role: PolicyResource) -> bool:
    """A role pods or functions can take: its trust allows EKS Pod Identity's service or Lambda's,
    or a web identity from an EKS cluster's OIDC provider (IRSA). Other web identities (a CI
    system's) are not workloads."""
    for statement in _statements(known(role, "assumeRolePolicy")):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        principal = principal if isinstance(principal, Mapping) else {}
        services = _listed(principal.get("Service"))
        federated = _listed(principal.get("Federated"))
        if {POD_IDENTITY_PRINCIPAL, FUNCTION_PRINCIPAL} & set(services) and _allows(statement, "sts:AssumeRole"):
            return True
        if any("oidc.eks." in f for f in federated) and _allows(statement, "sts:AssumeRoleWithWebIdentity"):
            return True
    return False


def _statements(document: Any) -> list[Mapping]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, Mapping):
        return []
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, Mapping) else statements
    return [st for st in statements if isinstance(st, Mapping)] if isinstance(statements, Sequence) else []


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


def _covers(statement: Mapping, arn: str | None) -> bool:
    """The statement's resources take the secret at `arn`; with the ARN unknown, only what takes
    everything (`*`, or a NotResource) is known to."""
    if "NotResource" in statement:
        return arn is None or not any(_iam_pattern(r, arn, case=True) for r in _listed(statement.get("NotResource")))
    return any(
        r == "*" or (arn is not None and _iam_pattern(r, arn, case=True)) for r in _listed(statement.get("Resource"))
    )


def _grants_read(document: Any, arn: str | None) -> bool:
    """A known policy document allows reading the secret at `arn`: an Allow whose actions take
    GetSecretValue (by name, a wildcard or NotAction) on resources that take the secret (its ARN, a
    matching wildcard, NotResource), and no Deny that takes both."""
    statements = _statements(document)
    allowed = any(s.get("Effect") == "Allow" and _allows(s, READ_ACTION) and _covers(s, arn) for s in statements)
    denied = any(s.get("Effect") == "Deny" and _allows(s, READ_ACTION) and _covers(s, arn) for s in statements)
    return allowed and not denied


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


def _documents(args: StackValidationArgs, role: PolicyResource) -> tuple[list[tuple[PolicyResource, str]], bool]:
    """(resource, property) pairs holding the policy documents a role has (its `inlinePolicies`,
    each RolePolicy on it, each customer managed Policy attached to it by an attachment or in
    `managedPolicyArns`), and whether an AWS managed policy that reads every secret is attached."""
    pairs: list[tuple[PolicyResource, str]] = [(role, "inlinePolicies")]
    names = {known(role, "name"), known(role, "id")} - {None}
    attached = list(role.property_dependencies.get("managedPolicyArns", []))
    arns = _listed(known(role, "managedPolicyArns"))
    for r in args.resources:
        if r.resource_type not in (ROLE_POLICY, ROLE_POLICY_ATTACHMENT):
            continue
        if role not in r.property_dependencies.get("role", []) and known(r, "role") not in names:
            continue
        if r.resource_type == ROLE_POLICY:
            pairs.append((r, "policy"))
        else:
            attached += r.property_dependencies.get("policyArn", [])
            arns += _listed(known(r, "policyArn"))
    pairs += [(p, "policy") for p in attached if p.resource_type == MANAGED_POLICY]
    reads_all = any(a.startswith("arn:") and a.split(":policy/")[-1] in AWS_MANAGED_READERS for a in arns)
    return pairs, reads_all


def _reads(holder: PolicyResource, prop: str, secret: PolicyResource) -> bool:
    """The holder's document reads the secret: decided from its statements once it is known (a
    Deny counts), from its dependency on the secret while it is not (a preview)."""
    arn = known(secret, "arn")
    arn = arn if isinstance(arn, str) and arn else None
    value = _get(holder.props, prop)
    if prop == "inlinePolicies":
        documents = [_get(v, "policy") for v in value] if isinstance(value, Sequence) else []
    else:
        documents = [value]
    if any(_grants_read(d, arn) for d in documents if isinstance(d, str)):
        return True
    unknown = value is None or any(not isinstance(d, str) for d in documents)
    return unknown and secret in holder.property_dependencies.get(prop, [])


def _readers(args: StackValidationArgs) -> dict[str, set[PolicyResource]]:
    """Secret URN -> the workload roles whose policies (inline, attached) allow reading it."""
    roles = {r.urn: r for r in args.resources if r.resource_type == ROLE and _workload_role(r)}
    secrets = _data_secrets(args)
    readers: dict[str, set[PolicyResource]] = defaultdict(set)
    for role in roles.values():
        documents, reads_all = _documents(args, role)
        for secret in secrets:
            if reads_all or any(_reads(holder, prop, secret) for holder, prop in documents):
                readers[secret.urn].add(role)
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
    # The administrators' passwords themselves: what their secrets' values are made from.
    versions = [
        v
        for v in args.resources
        if v.resource_type == SECRET_VERSION
        and any(s in v.property_dependencies.get("secretId", []) for s in administrators)
    ]
    passwords = {
        d.urn: d
        for v in versions
        for d in v.property_dependencies.get("secretString", [])
        if d.resource_type == RANDOM_PASSWORD
    }
    for resource in args.resources:
        if not resource.resource_type.startswith("kubernetes:"):
            continue
        taken = {d.urn for deps in resource.property_dependencies.values() for d in deps} & set(passwords)
        for urn in sorted(taken):
            report(
                f"{short(resource)} takes {short(passwords[urn])}, an administrator's password; workloads use a "
                "user of their own.",
                resource.urn,
            )
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
