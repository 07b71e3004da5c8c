"""Unit layer for the data-tier policies: one policy, in process, on the recorded prod stack with one
hand-made edit; the whole-program faults stay in test_data_policies.py.

Each case in CASES is a plausible bug or careless setting written straight into the record (both the
inputs and the outputs, as a changed argument shows), and the fragment of the message the policy must
print. CLUSTER_CASES do the same on the Multi-AZ DB cluster shape, which only dev can run (prod's config
refuses it: AWS Backup cannot copy cluster snapshots to a second region). QUIET holds edits a policy must
not refuse (preview unknowns, replicas, boundaries); ENVIRONMENTS and SETTINGS flip the stack's
environment and the policy config each way.
"""

import copy
import json

import pytest
from conftest import (
    DELETE,
    UNKNOWN,
    all_policies,
    assert_refused,
    drop,
    of_type,
    one,
    run,
    set_value,
    unit_cases,
    verdict,
)

MODES = ["preview", "update"]
#: Every policy here is EnforcementLevel.MANDATORY.
LEVEL = "mandatory"
#: dev with the other database deployment: a Multi-AZ DB cluster instead of a Multi-AZ instance.
CLUSTER = {"scanner:databaseDeployment": "multi-az-cluster", "scanner:databaseInstanceClass": "db.r6gd.large"}
STACKS = {"prod": ("prod", {}), "dev": ("dev", {}), "dev-cluster": ("dev", CLUSTER)}

DB, DB_CLUSTER = "aws:rds/instance:Instance", "aws:rds/cluster:Cluster"
PRIMARY, REPLICA = "postgres-primary", "postgres-replica"
DB_SUBNETS, CACHE_SUBNETS = "aws:rds/subnetGroup:SubnetGroup", "aws:elasticache/subnetGroup:SubnetGroup"
PARAMS, CLUSTER_PARAMS = "aws:rds/parameterGroup:ParameterGroup", "aws:rds/clusterParameterGroup:ClusterParameterGroup"
BROKER, CACHE = "aws:mq/broker:Broker", "aws:elasticache/replicationGroup:ReplicationGroup"
VAULT, PLAN, KEY = "aws:backup/vault:Vault", "aws:backup/plan:Plan", "aws:kms/key:Key"
SUBNET, PROVIDER = "aws:ec2/subnet:Subnet", "pulumi:providers:aws"
HOME_VAULT_ARN = "arn:aws:backup:us-east-1:123456789012:backup-vault:scanner-prod-data"


def base(stack: str, mode: str):
    name, overrides = STACKS[stack]
    return run(name, mode, **overrides)


def put(type_, name, **values):
    """Set each path ("a.b.0.c", or DELETE) on the named resources."""
    return lambda record: [set_value(record, type_, name, key, value) for key, value in values.items()]


def then(*edits):
    return lambda record: [edit(record) for edit in edits]


def unprotect(type_, name):
    return lambda record: one(record, type_, name).update(protect=False)


def zone_subnet(record, group, zone):
    """The subnet of `zone` the group's subnetIds depend on."""
    return next(
        s
        for s in of_type(record, SUBNET)
        if s["urn"] in group["propertyDependencies"]["subnetIds"] and s["inputs"]["availabilityZone"] == zone
    )


def without_subnet(type_, name, zone):
    """The group's subnet in `zone` left out, from its subnetIds (unknown ids in a preview) and its dependencies."""

    def edit(record):
        group = one(record, type_, name)
        subnet = zone_subnet(record, group, zone)
        for side in ("inputs", "outputs"):
            group[side]["subnetIds"].remove(subnet["outputs"].get("id") or UNKNOWN)
        group["propertyDependencies"]["subnetIds"].remove(subnet["urn"])
        group["dependencies"] = [u for u in group["dependencies"] if u != subnet["urn"]]

    return edit


def subnet_id_from_an_apply(record):
    """The database group still depends on the 1a subnet, but the id it passes (through an apply) is 1b's
    private subnet: only the value, known on an update, shows the group is short of us-east-1a."""
    group = one(record, DB_SUBNETS, "postgres-subnets")
    wrong, right = one(record, SUBNET, "network-private-us-east-1b"), zone_subnet(record, group, "us-east-1a")
    for side in ("inputs", "outputs"):
        ids = group[side]["subnetIds"]
        ids[ids.index(right["outputs"]["id"])] = wrong["outputs"]["id"]


def force_ssl(type_, value):
    return put(type_, "postgres-params", **{"parameters.0": {"name": "rds.force_ssl", "value": value}})


def default_parameter_group(record):
    """The primary left on RDS's default group (which does not force TLS): no name, no dependency."""
    set_value(record, DB, PRIMARY, "parameterGroupName", DELETE)
    primary, group = one(record, DB, PRIMARY), one(record, PARAMS, "postgres-params")
    primary["propertyDependencies"].pop("parameterGroupName")
    primary["dependencies"].remove(group["urn"])


def copy_vault_through_its_own_provider(record):
    """The copy vault in us-west-2 through a provider of that region instead of its `region` input."""
    default = one(record, PROVIDER, "aws")
    west = copy.deepcopy(default)
    west.update(name="aws-us-west-2", urn=default["urn"][: -len("aws")] + "aws-us-west-2")
    for side in ("inputs", "outputs"):
        west[side]["region"] = "us-west-2"
    record.resources.insert(0, west)
    set_value(record, VAULT, "backup-copy-vault", "region", DELETE)
    one(record, VAULT, "backup-copy-vault")["provider"] = west["urn"]


# fmt: off
CASES = {
    "rds-multi-az": [
        ("multi-az-left-out", put(DB, PRIMARY, multiAz=DELETE), "the database runs in one zone"),
        ("multi-az-pinned-to-a-zone", put(DB, PRIMARY, availabilityZone="us-east-1a"),
         "a Multi-AZ instance cannot be given an availabilityZone"),
        ("replica-promoted-single-az", put(DB, REPLICA, replicateSourceDb=DELETE), "the database runs in one zone"),
    ],
    "data-subnet-groups-every-az": [
        ("database-group-short-of-a-zone", without_subnet(DB_SUBNETS, "postgres-subnets", "us-east-1a"),
         "'postgres-subnets' (database subnet group) has subnets in us-east-1b, us-east-1c but not in us-east-1a"),
        ("cache-group-short-of-a-zone", without_subnet(CACHE_SUBNETS, "redis-subnets", "us-east-1c"),
         "'redis-subnets' (cache subnet group) has subnets in us-east-1a, us-east-1b but not in us-east-1c"),
        ("subnet-id-from-an-apply", subnet_id_from_an_apply, "but not in us-east-1a"),
    ],
    "rds-replica-other-az": [
        ("replica-moved-to-the-primary-zone", then(put(DB, PRIMARY, multiAz=False, availabilityZone="us-east-1b"),
                                                   put(DB, REPLICA, availabilityZone="us-east-1b")),
         "'postgres-replica' is in us-east-1b, the zone of its primary Instance 'postgres-primary'"),
        ("unpinned-replica-of-an-unknown-source", put(DB, REPLICA, replicateSourceDb=UNKNOWN, availabilityZone=DELETE),
         "'postgres-replica' replicates Instance 'postgres-primary' with no zone of its own"),
    ],
    "mq-cluster-multi-az": [
        ("active-standby-mode", put(BROKER, None, deploymentMode="ACTIVE_STANDBY_MULTI_AZ"),
         "is deployed as ACTIVE_STANDBY_MULTI_AZ"),
        ("deployment-mode-left-out", put(BROKER, None, deploymentMode=DELETE), "is deployed as SINGLE_INSTANCE"),
        ("cluster-in-two-zones", without_subnet(BROKER, "rabbitmq-broker", "us-east-1c"),
         "has subnets in 2 zone(s) (us-east-1a, us-east-1b); a cluster needs one in each of 3 zones"),
    ],
    "elasticache-failover-multi-az": [
        ("multi-az-off", put(CACHE, None, multiAzEnabled=False), "has Multi-AZ off"),
        ("two-nodes", put(CACHE, None, numCacheClusters=2, preferredCacheClusterAzs=["us-east-1a", "us-east-1b"]),
         "places 2 node(s) in us-east-1a, us-east-1b; place one in each of us-east-1a, us-east-1b, us-east-1c"),
        ("subnet-group-misses-a-zone", without_subnet(CACHE_SUBNETS, "redis-subnets", "us-east-1c"),
         "uses SubnetGroup 'redis-subnets', which misses us-east-1c"),
    ],
    "data-not-public": [
        ("public-primary", put(DB, PRIMARY, publiclyAccessible=True), "the service is publicly accessible"),
        ("public-replica", put(DB, REPLICA, publiclyAccessible=True), "the service is publicly accessible"),
    ],
    "elasticache-tls-required": [
        ("preferred-mode", put(CACHE, None, transitEncryptionMode="preferred"), "(transitEncryptionMode 'preferred')"),
        ("tls-left-out", put(CACHE, None, transitEncryptionEnabled=DELETE, transitEncryptionMode=DELETE),
         "the cache accepts plain-text connections"),
    ],
    "rds-tls-forced": [
        ("force-ssl-zero", force_ssl(PARAMS, "0"), "Instance 'postgres-primary' does not force TLS"),
        ("primary-on-the-default-group", default_parameter_group, "Instance 'postgres-primary' does not force TLS"),
    ],
    "stateful-resources-protected": [
        ("broker-unprotected", unprotect(BROKER, "rabbitmq-broker"), "not protected, which a production stack"),
        ("cache-unprotected", unprotect(CACHE, "redis-group"), "not protected, which a production stack"),
        ("database-key-unprotected", unprotect(KEY, "postgres-key"), "not protected, which a production stack"),
    ],
    "rds-deletion-protection": [
        ("replica-deletable", put(DB, REPLICA, deletionProtection=False), "can be deleted through the API"),
        ("flag-left-out", put(DB, PRIMARY, deletionProtection=DELETE), "which a production stack forbids"),
    ],
    "final-snapshot-on-delete": [
        ("no-snapshot-name", put(DB, PRIMARY, finalSnapshotIdentifier=DELETE), "deleting the database would take no"),
        ("cache-without-one", put(CACHE, None, finalSnapshotIdentifier=DELETE), "deleting the cache would take no"),
    ],
    "backup-retention": [
        ("six-days", put(DB, PRIMARY, backupRetentionPeriod=6),
         "kept 6 day(s); a production stack keeps them at least 7"),
        ("backups-die-with-the-instance", put(DB, PRIMARY, deleteAutomatedBackups=DELETE),
         "automated backups would be deleted with the instance"),
        ("cache-snapshots-off", put(CACHE, None, snapshotRetentionLimit=0), "cache snapshots are kept 0 day(s)"),
    ],
    "encryption-at-rest": [
        ("database-unencrypted", put(DB, PRIMARY, storageEncrypted=False, kmsKeyId=DELETE),
         "database storage is not encrypted"),
        ("activemq-on-an-aws-owned-key", put(BROKER, None, engineType="ActiveMQ"),
         "the broker is encrypted with an AWS-owned key"),
    ],
    "backup-copy-other-region": [
        ("copy-vault-in-the-home-region", put(VAULT, "backup-copy-vault", region="us-east-1"),
         "'backup-plan' copies no backup to a vault in another region than us-east-1"),
        # A literal ARN is known in a preview too: both modes see it.
        ("copy-to-a-home-vault-arn", put(PLAN, None, **{"rules.0.copyActions.0.destinationVaultArn": HOME_VAULT_ARN}),
         "'backup-plan' copies no backup to a vault in another region than us-east-1"),
        ("no-backup-plan", lambda record: drop(record, PLAN), "no AWS Backup plan protects the databases"),
    ],
}

#: On dev's Multi-AZ DB cluster (a development stack).
CLUSTER_CASES = {
    "rds-multi-az": [("no-cluster-instance-class", put(DB_CLUSTER, None, dbClusterInstanceClass=DELETE),
                      "is not a Multi-AZ DB cluster")],
    "data-not-public": [("public-cluster", put(DB_CLUSTER, None, publiclyAccessible=True), "publicly accessible")],
    "rds-tls-forced": [("cluster-group-force-ssl-zero", force_ssl(CLUSTER_PARAMS, "0"),
                        "Cluster 'postgres-cluster' does not force TLS")],
    "final-snapshot-on-delete": [("cluster-skips-its-snapshot", put(DB_CLUSTER, None, skipFinalSnapshot=True),
                                  "deleting the database would take no final snapshot")],
    "backup-retention": [("cluster-backups-off", put(DB_CLUSTER, None, backupRetentionPeriod=0),
                          "kept 0 day(s); a development stack keeps them at least 1")],
    "encryption-at-rest": [("cluster-unencrypted", put(DB_CLUSTER, None, storageEncrypted=False),
                            "database storage is not encrypted")],
}

#: Cases that exist in one mode only.
ONLY = {
    # Ids are unknown in a preview; only an update's values can disagree with the dependencies.
    "subnet-id-from-an-apply": "update",
    # On a first preview the replica's source identifier is unknown and only its dependency names it;
    # an update knows every value (there is no unknown to send).
    "unpinned-replica-of-an-unknown-source": "preview",
    "unknown-source-is-still-a-replica": "preview",
    "deletion-protection-unknown": "preview",
}

#: Edits a policy must not refuse.
QUIET = {
    "rds-multi-az": [("unknown-source-is-still-a-replica", put(DB, REPLICA, replicateSourceDb=UNKNOWN))],
    "rds-replica-other-az": [("multi-az-replica-needs-no-zone",
                              put(DB, REPLICA, multiAz=True, availabilityZone=DELETE))],
    # Decided on the update, where the value is known.
    "rds-deletion-protection": [("deletion-protection-unknown", put(DB, PRIMARY, deletionProtection=UNKNOWN))],
    "backup-retention": [("exactly-seven-days", put(DB, PRIMARY, backupRetentionPeriod=7))],
    "backup-copy-other-region": [("copy-vault-region-from-its-provider", copy_vault_through_its_own_provider)],
}

#: (policy, stack, environment it is relabelled as (None: no environment key), edit, fragment or None to pass).
ENVIRONMENTS = [
    ("stateful-resources-protected", "dev", "staging", None, "not protected, which a staging stack requires"),
    ("stateful-resources-protected", "prod", "development", unprotect(DB, PRIMARY), None),
    # A stack that does not say its environment is held to the strictest.
    ("stateful-resources-protected", "dev", None, None, "not protected, which a production stack requires"),
    ("rds-deletion-protection", "dev-cluster", "staging", None, "can be deleted through the API, which a staging"),
    ("rds-deletion-protection", "prod", "development", put(DB, PRIMARY, deletionProtection=False), None),
    ("backup-retention", "dev", "staging", None, "kept 3 day(s); a staging stack keeps them at least 7"),
    ("backup-retention", "prod", "development", put(DB, PRIMARY, backupRetentionPeriod=1), None),
    ("backup-copy-other-region", "dev", "production", None, "another region than eu-west-1; a production stack"),
    ("backup-copy-other-region", "prod", "staging", lambda record: drop(record, VAULT, "backup-copy-vault"), None),
]

#: (policy, its policy-config settings, edit, fragment or None to pass), on prod.
SETTINGS = [
    ("backup-retention", {"minimumDatabaseDays": 15}, None,
     "kept 14 day(s); a production stack keeps them at least 15"),
    ("backup-retention", {"minimumDatabaseDays": 14}, None, None),
    ("backup-retention", {"minimumCacheDays": 8}, None, "cache snapshots are kept 7 day(s)"),
    ("stateful-resources-protected", {"types": [DB, DB_SUBNETS]}, None, "not protected"),
    ("stateful-resources-protected", {"types": [BROKER]}, unprotect(DB, PRIMARY), None),
]
# fmt: on


def cases(table):
    return unit_cases(table, ONLY)


def expect(found, fragment):
    """Nothing said when `fragment` is None; else reports at the policy's level only, one saying `fragment`."""
    if fragment is None:
        assert found == [], [(d.level, d.message) for d in found]
    else:
        assert found and {d.level for d in found} == {LEVEL}, [(d.level, d.message) for d in found]
        assert any(fragment in d.message for d in found), [d.message for d in found]


def test_tables_name_real_policies_and_cases():
    assert set(CASES) <= all_policies() and len(CASES) == 14
    assert set(CLUSTER_CASES) | set(QUIET) | {p for p, *_ in ENVIRONMENTS + SETTINGS} <= set(CASES)
    assert set(ONLY) <= {e[0] for table in (CASES, CLUSTER_CASES, QUIET) for entries in table.values() for e in entries}


@pytest.mark.parametrize("policy, edit, message, mode", cases(CASES))
def test_fault_is_refused(policy, edit, message, mode):
    record = run("prod", mode)
    edit(record)
    assert_refused(record, policy, message, level=LEVEL)


@pytest.mark.parametrize("policy, edit, message, mode", cases(CLUSTER_CASES))
def test_cluster_fault_is_refused(policy, edit, message, mode):
    record = base("dev-cluster", mode)
    edit(record)
    assert_refused(record, policy, message, level=LEVEL)


@pytest.mark.parametrize("policy, edit, nothing, mode", cases(QUIET))
def test_edge_passes(policy, edit, nothing, mode):
    record = run("prod", mode)
    edit(record)
    expect(verdict(record, policy), nothing)


#: The policies that read a DB cluster, which also judge the cluster shape.
CLUSTER_READERS = set(CLUSTER_CASES) | {
    "rds-deletion-protection",
    "stateful-resources-protected",
    "backup-copy-other-region",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "policy, stack",
    [(p, s) for p in sorted(CASES) for s in ("prod", "dev")] + [(p, "dev-cluster") for p in sorted(CLUSTER_READERS)],
)
def test_clean_stack_passes(policy, stack, mode):
    # No diagnostic at all: also no "can't run policy during preview".
    assert verdict(base(stack, mode), policy) == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "policy, stack, environment, edit, fragment",
    ENVIRONMENTS,
    ids=[f"{p}:{s}-as-{e}:{'refused' if f else 'passes'}" for p, s, e, _, f in ENVIRONMENTS],
)
def test_environment_decides(policy, stack, environment, edit, fragment, mode):
    record = base(stack, mode)
    record.config = {k: v for k, v in record.config.items() if k != "scanner:environment"}
    if environment:
        record.config["scanner:environment"] = environment
    if edit:
        edit(record)
    expect(verdict(record, policy), fragment)


@pytest.mark.parametrize(
    "policy, settings, edit, fragment",
    SETTINGS,
    ids=[f"{p}:{json.dumps(s)}:{'refused' if f else 'passes'}" for p, s, _, f in SETTINGS],
)
def test_policy_config_decides(policy, settings, edit, fragment, tmp_path):
    record = run("prod", "preview")
    if edit:
        edit(record)
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({policy: settings}))
    expect(verdict(record, policy, policy_config=config), fragment)
