"""Data-tier rules of the placement, data-safety and security packs through the gRPC gate: prod
passes all three; each deliberate fault is refused by name; dev's opt-outs are explicit."""

import pulumi_aws as aws
import pulumi_rabbitmq as rabbitmq
import pytest
from conftest import (
    PLACEMENT,
    ROOT,
    SECURITY,
    change,
    gate,
    mandatory,
    run,
)

DATA_SAFETY = ROOT / "policies" / "data-safety"
PACKS = (PLACEMENT, DATA_SAFETY, SECURITY)
MODES = ["preview", "update"]


def keda_reads_the_broker_administrator(monkeypatch):
    """KEDA handed the broker's administrator secret instead of its monitoring user's."""
    from components.data import broker_clients, rabbitmq

    brokers = []
    original_broker, original_clients = rabbitmq.RabbitMq.__init__, broker_clients.BrokerClients.__init__

    def broker(self, *args, **kwargs):
        original_broker(self, *args, **kwargs)
        brokers.append(self)

    def clients(self, *args, **kwargs):
        original_clients(self, *args, **kwargs)
        self.secret_arns["keda"] = brokers[-1].secret_arn

    monkeypatch.setattr(rabbitmq.RabbitMq, "__init__", broker)
    monkeypatch.setattr(broker_clients.BrokerClients, "__init__", clients)


def engines_share_one_broker_user(monkeypatch):
    """Every engine's role given the first engine's broker user (one identity for all the Jobs)."""
    import dataclasses

    from components.scans import scan_access

    original = scan_access.ScanAccess.__init__

    def init(self, name, args, opts=None):
        first = args.engine_secret_arns[args.engines[0]]
        original(self, name, dataclasses.replace(args, engine_secret_arns=dict.fromkeys(args.engines, first)), opts)

    monkeypatch.setattr(scan_access.ScanAccess, "__init__", init)


FAULTS = {
    "keda-reads-the-broker-administrator": (
        keda_reads_the_broker_administrator,
        {"workloads-no-administrator-secrets", "data-secret-readers"},
        "takes the rabbitmq/administrator secret",
    ),
    "engines-share-one-broker-user": (
        engines_share_one_broker_user,
        {"data-secret-readers"},
        "(engine:secrets) may read the rabbitmq/engine-sast secret, whose readers are engine:sast",
    ),
    "classic-scan-queue": (
        change(
            rabbitmq.Queue,
            "broker-queue-scans.sast",
            settings=rabbitmq.QueueSettingsArgs(durable=True, arguments_json='{"x-queue-type": "classic"}'),
        ),
        {"scan-queues-quorum-dead-lettered"},
        "scan queue scans.sast: its type is classic",
    ),
    "single-az-database": (
        change(aws.rds.Instance, "postgres-primary", multi_az=False),
        {"rds-multi-az"},
        "the database runs in one zone",
    ),
    "replica-without-zone": (
        change(aws.rds.Instance, "postgres-replica", availability_zone=None),
        {"rds-replica-other-az"},
        "with no zone of its own",
    ),
    "single-instance-broker": (
        change(aws.mq.Broker, "rabbitmq-broker", deployment_mode="SINGLE_INSTANCE"),
        {"mq-cluster-multi-az"},
        "is deployed as SINGLE_INSTANCE",
    ),
    "public-broker": (
        change(aws.mq.Broker, "rabbitmq-broker", publicly_accessible=True),
        {"data-not-public"},
        "publicly accessible",
    ),
    "cache-without-failover": (
        change(aws.elasticache.ReplicationGroup, "redis-group", automatic_failover_enabled=False),
        {"elasticache-failover-multi-az"},
        "has automatic failover off",
    ),
    "backups-off": (
        change(aws.rds.Instance, "postgres-primary", backup_retention_period=0),
        {"backup-retention"},
        "automated backups are kept 0 day(s)",
    ),
    "no-deletion-protection": (
        change(aws.rds.Instance, "postgres-primary", deletion_protection=False),
        {"rds-deletion-protection"},
        "can be deleted through the API",
    ),
    "no-final-snapshot": (
        change(aws.rds.Instance, "postgres-primary", skip_final_snapshot=True),
        {"final-snapshot-on-delete"},
        "would take no final snapshot",
    ),
    "unencrypted-cache": (
        change(aws.elasticache.ReplicationGroup, "redis-group", at_rest_encryption_enabled=False, kms_key_id=None),
        {"encryption-at-rest"},
        "not encrypted at rest",
    ),
    "plaintext-cache": (
        change(
            aws.elasticache.ReplicationGroup,
            "redis-group",
            transit_encryption_enabled=False,
            transit_encryption_mode=None,
            auth_token=None,
        ),
        {"elasticache-tls-required"},
        "accepts plain-text connections",
    ),
    "copy-vault-at-home": (
        change(aws.backup.Vault, "backup-copy-vault", region="us-east-1"),
        {"backup-copy-other-region"},
        "copies no backup to a vault in another region than us-east-1",
    ),
    "tls-not-forced": (
        change(aws.rds.ParameterGroup, "postgres-params", parameters=[]),
        {"rds-tls-forced"},
        "does not force TLS",
    ),
}


def unprotected_database(monkeypatch):
    """`protect` is a resource option, not an input: lift it on the primary only."""
    import pulumi

    original = aws.rds.Instance.__init__

    def init(self, name, opts=None, **kwargs):
        if name == "postgres-primary":
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=False))
        original(self, name, opts=opts, **kwargs)

    monkeypatch.setattr(aws.rds.Instance, "__init__", init)


def replica_in_primary_zone(monkeypatch):
    """The primary pinned to the replica's zone: refused twice, as AWS would refuse a fixed zone on a
    Multi-AZ instance and the replica would share the primary's zone."""
    change(aws.rds.Instance, "postgres-primary", availability_zone="us-east-1c")(monkeypatch)


def cache_subnets_short_of_a_zone(monkeypatch):
    """The cache's subnet group declared with the subnets of two zones only."""
    original = aws.elasticache.SubnetGroup.__init__

    def init(self, name, opts=None, **kwargs):
        if name == "redis-subnets":
            kwargs["subnet_ids"] = list(kwargs["subnet_ids"])[:-1]
        original(self, name, opts=opts, **kwargs)

    monkeypatch.setattr(aws.elasticache.SubnetGroup, "__init__", init)


FAULTS["cache-subnets-short"] = (
    cache_subnets_short_of_a_zone,
    {"data-subnet-groups-every-az"},
    "but not in us-east-1c",
)
FAULTS["unprotected-database"] = (unprotected_database, {"stateful-resources-protected"}, "is not protected")
FAULTS["replica-in-primary-zone"] = (
    replica_in_primary_zone,
    {"rds-multi-az", "rds-replica-other-az"},
    "is in us-east-1c, the zone of its primary",
)


@pytest.mark.parametrize("mode", MODES)
def test_prod_passes_all_three_packs_with_every_policy_deciding(mode):
    result = gate(run("prod", mode), packs=PACKS)
    assert result.passed and result.diagnostics == [], [(d.policy, d.message) for d in result.diagnostics]
    assert {p.name for p in result.packs} == {"scanner-placement", "scanner-data-safety", "scanner-security"}


#: Faults that can share a run of the program: they touch different resources or arguments.
#: (Two faults on the replica's zone cannot: one unpins it, the other moves the primary to it.)
GROUPS = {"replica-unpinned": ["replica-without-zone"]}
GROUPS["the-rest"] = sorted(set(FAULTS) - {f for g in GROUPS.values() for f in g})
#: The groups judged by the pack processes, with the other tiers' (`representative_faults`); the
#: others by the same packs in process.
REPRESENTATIVE = ("the-rest",)


def representative_faults() -> dict:
    """One fault for each policy of this module's tables, judged with the other tiers' in one run
    of the program through the pack processes, in both modes (tests/packs/test_gate_of_record.py)."""
    return {name: FAULTS[name] for group in REPRESENTATIVE for name in GROUPS[group]}


def variation_groups() -> list[dict]:
    """The further variations on this module's tables, one group per run, each run shared with
    the other tiers' groups of the same rank and judged by the packs in process
    (tests/packs/test_gate_of_record.py)."""
    return [{name: FAULTS[name] for name in GROUPS[g]} for g in sorted(set(GROUPS) - set(REPRESENTATIVE))]


def test_the_representative_groups_cover_every_policy_of_the_table():
    """The groups judged by the pack processes hold a fault for each policy of the table."""
    covered = {p for g in REPRESENTATIVE for f in GROUPS[g] for p in FAULTS[f][1]}
    assert covered == {p for _, ps, _ in FAULTS.values() for p in ps}


def test_dev_opt_out_holds_in_development_only():
    """dev's unprotected, short-lived data tier passes as a development stack and is refused as a
    staging one (which keeps data protected but needs no copies in a second region)."""
    record = run("dev", "preview")
    assert gate(record, packs=(DATA_SAFETY,)).diagnostics == []
    record.config = dict(record.config, **{"scanner:environment": "staging"})
    strict = gate(record, packs=(DATA_SAFETY,))
    assert mandatory(strict) == ["backup-retention", "rds-deletion-protection", "stateful-resources-protected"]
    assert all("a staging stack" in d.message for d in strict.diagnostics)
