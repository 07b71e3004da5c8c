"""Unit layer for the data plane's least-privilege policies (security pack: who reads which data
secret; data-safety pack: the scan queues' durability): one policy, in process, on the recorded prod
stack with one hand-made edit. The whole-program faults are in test_data_policies.py.

An edit that hands a resource a secret does what the program would: the resource's property comes
to depend on the secret (all a preview knows), and on an update it also holds the secret's ARN.
"""

import json

import pytest
from conftest import UNKNOWN, all_policies, drop, one, run, set_value, unit_cases, verdict

from policies.common import contract

SECRET, ROLE, ROLE_POLICY = "aws:secretsmanager/secret:Secret", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
QUEUE, EXCHANGE = "rabbitmq:index/queue:Queue", "rabbitmq:index/exchange:Exchange"
BINDING = "rabbitmq:index/binding:Binding"
TRIGGER_AUTH = "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"
CONFIG_MAP, DEPLOYMENT = "kubernetes:core/v1:ConfigMap", "kubernetes:apps/v1:Deployment"
SAST_QUEUE = "broker-queue-scans.sast"


def handed(type_, name, prop, secret, value_path=None):
    """`prop` of the named resource comes to take `secret`: a dependency, and on an update its ARN
    at `value_path` (inputs and outputs)."""

    def edit(record):
        resource, target = one(record, type_, name), one(record, SECRET, secret)
        resource["propertyDependencies"].setdefault(prop, []).append(target["urn"])
        resource["dependencies"].append(target["urn"])
        arn = target["outputs"].get("arn")
        if value_path and isinstance(arn, str):
            set_value(record, type_, name, value_path, arn)

    return edit


def policy_reads(role_policy, secret):
    """The role's inline policy also grants `secret` (the document names its ARN once known)."""

    def edit(record):
        handed(ROLE_POLICY, role_policy, "policy", secret)(record)
        policy, arn = one(record, ROLE_POLICY, role_policy), one(record, SECRET, secret)["outputs"].get("arn")
        for side in ("inputs", "outputs"):
            document = policy[side].get("policy")
            if isinstance(document, str) and isinstance(arn, str):
                parsed = json.loads(document)
                parsed["Statement"].append(
                    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}
                )
                policy[side]["policy"] = json.dumps(parsed)

    return edit


def stops_reading(role_policy, secret):
    """The role's inline policy no longer grants `secret`."""

    def edit(record):
        policy, target = one(record, ROLE_POLICY, role_policy), one(record, SECRET, secret)
        policy["propertyDependencies"]["policy"].remove(target["urn"])
        arn = target["outputs"].get("arn")
        for side in ("inputs", "outputs"):
            document = policy[side].get("policy")
            if isinstance(document, str) and isinstance(arn, str):
                policy[side]["policy"] = document.replace(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")

    return edit


def queue_arguments(**changes):
    """The sast scan queue declared with these x-arguments changed (None removes one)."""

    def edit(record):
        queue = one(record, QUEUE, SAST_QUEUE)
        arguments = json.loads(queue["inputs"]["settings"]["argumentsJson"])
        for key, value in changes.items():
            key = "x-" + key.replace("_", "-")
            if value is None:
                arguments.pop(key, None)
            else:
                arguments[key] = value
        set_value(record, QUEUE, SAST_QUEUE, "settings.argumentsJson", json.dumps(arguments))

    return edit


def policy_document(role_policy, statement):
    """The role's inline policy replaced by one literal statement (known in a preview too)."""

    def edit(record):
        policy = one(record, ROLE_POLICY, role_policy)
        for side in ("inputs", "outputs"):
            policy[side]["policy"] = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        policy["propertyDependencies"]["policy"] = []

    return edit


def policy_also(role_policy, statement):
    """One more statement in the role's inline policy (its document is known on an update)."""

    def edit(record):
        policy = one(record, ROLE_POLICY, role_policy)
        for side in ("inputs", "outputs"):
            document = json.loads(policy[side]["policy"])
            document["Statement"].append(statement)
            policy[side]["policy"] = json.dumps(document)

    return edit


def master_password_in_a_secret(record):
    """A Kubernetes Secret built from the master user's password (not its Secrets Manager secret)."""
    password = one(record, "random:index/randomPassword:RandomPassword", "postgres-master")
    config_map = one(record, CONFIG_MAP, "data-access-endpoints")
    config_map["propertyDependencies"].setdefault("data", []).append(password["urn"])
    config_map["dependencies"].append(password["urn"])


def trusted_by(role_name, principal, action):
    """The role's trust replaced by one Allow for `principal` (a literal: known in a preview too)."""

    def edit(record):
        trust = json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": action}]}
        )
        set_value(record, ROLE, role_name, "assumeRolePolicy", trust)

    return edit


def attached(role_name, policy_arn):
    return lambda record: set_value(record, ROLE, role_name, "managedPolicyArns", [policy_arn])


def then(*edits):
    return lambda record: [edit(record) for edit in edits]


IRSA = {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"}
CI = {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}


def untag_role(name):
    """The role loses its client tag (a key with dots, which set_value's paths cannot name)."""

    def edit(record):
        role = one(record, ROLE, name)
        for side in ("inputs", "outputs"):
            role[side].get("tags", {}).pop(contract.CLIENT_TAG)

    return edit


# fmt: off
CASES = {
    "workloads-no-administrator-secrets": [
        ("keda-authenticates-as-the-broker-administrator",
         handed(TRIGGER_AUTH, "scan-scaling-trigger-auth", "spec", "rabbitmq-admin",
                "spec.awsSecretManager.secrets.0.name"),
         "TriggerAuthentication 'scan-scaling-trigger-auth' takes the rabbitmq/administrator secret"),
        ("endpoints-configmap-hands-out-the-master-secret",
         handed(CONFIG_MAP, "data-access-endpoints", "data", "postgres-master", "data.POSTGRES_SECRET_ARN"),
         "ConfigMap 'data-access-endpoints' takes the postgres/administrator secret"),
        ("a-service-role-reads-the-master-secret", policy_reads("services-storage-api", "postgres-master"),
         "workload role Role 'services-storage-api' (service:storage-api) may read the postgres/administrator"),
        ("a-role-reads-every-secret", policy_document("services-webhooks", {
            "Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}),
         "Role 'services-webhooks' (service:webhooks) may read the rabbitmq/administrator secret"),
        ("an-aws-managed-policy-reads-every-secret",
         attached("services-webhooks", "arn:aws:iam::aws:policy/SecretsManagerReadWrite"),
         "Role 'services-webhooks' (service:webhooks) may read the rabbitmq/administrator secret"),
        ("an-irsa-role-reads-the-master", then(trusted_by("services-webhooks", IRSA, "sts:assumerolewithwebidentity"),
                                               policy_reads("services-webhooks", "postgres-master")),
         "Role 'services-webhooks' (service:webhooks) may read the postgres/administrator secret"),
        ("the-master-password-itself", master_password_in_a_secret,
         "ConfigMap 'data-access-endpoints' takes RandomPassword 'postgres-master', an administrator's password"),
    ],
    "data-secret-readers": [
        ("an-engine-reads-another-engines-user", policy_reads("scan-access-sast", "broker-engine-secrets"),
         "Role 'scan-access-sast' (engine:sast) may read the rabbitmq/engine-secrets secret, whose readers are "
         "engine:secrets"),
        ("a-service-reads-the-write-role", policy_reads("services-api", "postgres-scans_rw"),
         "(service:api) may read the postgres/scans_rw secret, whose readers are service:storage-api"),
        ("a-role-without-a-client-reads-a-user", untag_role("services-webhooks"),
         "Role 'services-webhooks' (no client) may read the rabbitmq/svc-webhooks secret"),
        # A function's role is a workload's too: the queue-metrics publisher reads its own user only.
        ("the-publisher-reads-keda-s-user", policy_reads("queue-metrics", "broker-keda"),
         "Role 'queue-metrics' (queue-metrics) may read the rabbitmq/keda secret, whose readers are keda"),
        ("the-publisher-loses-its-secret", stops_reading("queue-metrics", "broker-queue-metrics"),
         "the rabbitmq/queue-metrics secret lists queue-metrics, whose role(s) cannot read it"),
        ("a-service-loses-its-own-secret", stops_reading("services-api", "redis-svc-api"),
         "the redis/svc-api secret lists service:api, whose role(s) cannot read it"),
        # The mocks' ARNs carry the resource's name where AWS puts the secret's.
        ("a-glob-over-the-database-roles", policy_also("services-webhooks", {
            "Effect": "Allow", "Action": ["secretsmanager:Get*"],
            "Resource": "arn:aws:secretsmanager:*:*:secret:postgres-scans_*"}),
         "Role 'services-webhooks' (service:webhooks) may read the postgres/scans_owner secret", "update"),
        ("everything-but-its-own", policy_document("services-webhooks", {
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "NotResource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nothing"}),
         "Role 'services-webhooks' (service:webhooks) may read the postgres/scans_rw secret"),
    ],
    "scan-queues-quorum-dead-lettered": [
        ("classic-scan-queue", queue_arguments(queue_type="classic"), "scan queue scans.sast: its type is classic"),
        ("no-delivery-limit", queue_arguments(delivery_limit=None), "it has no delivery limit"),
        ("no-dead-letter-exchange", queue_arguments(dead_letter_exchange=None), "it has no dead-letter exchange"),
        ("dead-letters-bound-nowhere", lambda r: drop(r, BINDING, "broker-binding-scans.dead-scans.sast.dead"),
         "nothing is bound to scans.dead with routing key sast"),
        ("dead-letter-exchange-undeclared", lambda r: drop(r, EXCHANGE, "broker-exchange-scans.dead"),
         "its dead-letter exchange scans.dead is not declared"),
        ("scan-queue-left-to-its-clients", lambda r: drop(r, QUEUE, SAST_QUEUE),
         "scales on queue scans.sast, which the stack does not declare"),
    ],
}

#: Edits the policies must not refuse.
QUIET = {
    # Not a workload role: the proxy logs in as each client role, and the master is its fallback.
    "data-secret-readers": [
        ("the-proxy-reads-the-role-secrets", policy_reads("postgres-proxy", "postgres-scans_ro")),
        # A CI system's web identity is no workload: what it reads is not the pods' business.
        ("a-ci-role-is-no-workload", then(trusted_by("services-webhooks", CI, "sts:AssumeRoleWithWebIdentity"),
                                          policy_reads("services-webhooks", "postgres-master"))),
        # A wildcard that matches none of the data secrets (update: the ARNs are known).
        ("a-wildcard-over-other-secrets", policy_also("services-webhooks", {
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": ["arn:aws:secretsmanager:*:*:secret:other/*"]}), None, "update"),
    ],
    # A guardrail that denies the administrators' secrets is no read of them (update: the ARNs are known).
    "workloads-no-administrator-secrets": [
        ("the-proxy-reads-the-master", policy_reads("postgres-proxy", "postgres-master")),
        ("a-deny-on-the-administrators", policy_also("services-webhooks", {
            "Effect": "Deny", "Action": "secretsmanager:*",
            "Resource": ["arn:aws:secretsmanager:*:*:secret:rabbitmq-admin*",
                         "arn:aws:secretsmanager:*:*:secret:postgres-master*"]}), None, "update"),
        ("an-allow-cancelled-by-a-deny", then(
            policy_also("services-webhooks", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                              "Resource": "*"}),
            policy_also("services-webhooks", {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue",
                                              "NotResource": "arn:aws:secretsmanager:*:*:secret:broker-svc-webhooks*"})),
         None, "update"),
    ],
    # Unknown until the update: decided there.
    "scan-queues-quorum-dead-lettered": [
        ("arguments-unknown", lambda r: set_value(r, QUEUE, SAST_QUEUE, "settings.argumentsJson", UNKNOWN), None,
         "preview"),
    ],
}
# fmt: on


def test_tables_name_real_policies():
    assert set(CASES) <= all_policies() and set(QUIET) <= set(CASES)


def test_prod_passes_each_policy():
    for mode in ("preview", "update"):
        record = run("prod", mode)
        for policy in CASES:
            assert verdict(record, policy) == [], (mode, policy)


@pytest.mark.parametrize("policy, edit, message, mode", unit_cases(CASES))
def test_fault_is_refused(policy, edit, message, mode):
    record = run("prod", mode)
    edit(record)
    found = verdict(record, policy)
    assert found and {d.level for d in found} == {"mandatory"}, [(d.level, d.message) for d in found]
    assert any(message in d.message for d in found), [d.message for d in found]


@pytest.mark.parametrize("policy, edit, message, mode", unit_cases(QUIET))
def test_edit_is_not_refused(policy, edit, message, mode):
    record = run("prod", mode)
    edit(record)
    assert verdict(record, policy) == []


def test_the_first_deploy_stage_skips_the_queue_rule_only_while_it_declares_no_queue():
    """The stage declares no queue (the management API does not answer from outside the VPC); a
    stack that says it is in that stage and still declares a bad queue is judged as any other."""
    record = run("prod", "preview")
    record.config = dict(record.config, **{"scanner:servicesRollout": "first-deploy"})
    queue_arguments(queue_type="classic")(record)
    assert any("its type is classic" in d.message for d in verdict(record, "scan-queues-quorum-dead-lettered"))
