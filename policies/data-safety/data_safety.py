"""Nothing lost: protection, final snapshots, backups and encryption on stateful resources."""

from __future__ import annotations

import json

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from environments import KEYS, stack_config, stack_environment
from stack_graph import (
    BROKER,
    BUCKET,
    CACHE_GROUP,
    DB_CLUSTER,
    DB_INSTANCE,
    FILE_SYSTEM,
    UNKNOWN,
    Report,
    StackGraph,
    known,
    path,
    setting,
    short,
    whole,
)

BACKUP_VAULT = "aws:backup/vault:Vault"
SECRET = "aws:secretsmanager/secret:Secret"
KMS_KEY = "aws:kms/key:Key"

#: Resources whose loss loses data, or makes it unreadable (keys) or unreachable (credentials):
#: they must carry Pulumi's `protect`.
STATEFUL = [
    DB_INSTANCE,
    DB_CLUSTER,
    BROKER,
    CACHE_GROUP,
    BACKUP_VAULT,
    KMS_KEY,
    SECRET,
    "aws:efs/fileSystem:FileSystem",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
]


def _value(args: ResourceValidationArgs, key: str, default):
    """A property, `default` when absent, UNKNOWN when computed during preview (decided on update)."""
    return path(args.props, key, default, unknown=UNKNOWN)


def _replica(args: ResourceValidationArgs) -> bool:
    return args.resource_type == DB_INSTANCE and "replicateSourceDb" in list(args.props)


def stateful_protected(args: ResourceValidationArgs, report: Report) -> None:
    environment, rules = stack_environment()
    if not rules.protect_stateful_resources:
        return  # the environment allows destroyable data (its stack must opt out explicitly)
    types = setting(args, "types", STATEFUL)
    if args.resource_type in types and not _replica(args) and not args.opts.protect:
        report(
            f"this stateful resource is not protected, which a {environment} stack requires: a `pulumi destroy` "
            "or a replacing change would delete it. Set the `protect` resource option (and retainOnDelete); "
            f"the program does so unless {KEYS['protect']} is false."
        )


def deletion_protection(args: ResourceValidationArgs, report: Report) -> None:
    environment, rules = stack_environment()
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER) and rules.protect_stateful_resources:
        value = _value(args, "deletionProtection", False)
        if value is not UNKNOWN and value is not True:
            report(
                f"the database can be deleted through the API, which a {environment} stack forbids; set "
                f"deletionProtection (the program does unless {KEYS['protect']} is false)."
            )


def final_snapshot(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER) and not _replica(args):
        if _value(args, "skipFinalSnapshot", False) is True or "finalSnapshotIdentifier" not in list(args.props):
            report(
                "deleting the database would take no final snapshot; set finalSnapshotIdentifier and leave "
                "skipFinalSnapshot false."
            )
    elif args.resource_type == CACHE_GROUP and "finalSnapshotIdentifier" not in list(args.props):
        report("deleting the cache would take no final snapshot; set finalSnapshotIdentifier.")


def backup_retention(args: ResourceValidationArgs, report: Report) -> None:
    environment, rules = stack_environment()
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER) and not _replica(args):
        minimum = setting(args, "minimumDatabaseDays", rules.minimum_database_backup_days)
        days = _value(args, "backupRetentionPeriod", 0 if args.resource_type == DB_INSTANCE else 1)
        if days is not UNKNOWN and days < minimum:
            report(
                f"automated backups are kept {days} day(s); a {environment} stack keeps them at least {minimum} "
                f"(backupRetentionPeriod, from {KEYS['database_backups']}), or point-in-time recovery falls short."
            )
        if args.resource_type == DB_INSTANCE and _value(args, "deleteAutomatedBackups", True) is True:
            report("automated backups would be deleted with the instance; set deleteAutomatedBackups to false.")
    elif args.resource_type == CACHE_GROUP:
        minimum = setting(args, "minimumCacheDays", rules.minimum_cache_snapshot_days)
        days = _value(args, "snapshotRetentionLimit", 0)
        if days is not UNKNOWN and days < minimum:
            report(
                f"cache snapshots are kept {days} day(s); a {environment} stack keeps them at least {minimum} "
                f"(snapshotRetentionLimit, from {KEYS['cache_snapshots']})."
            )


def encrypted_at_rest(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER) and not _replica(args):
        if _value(args, "storageEncrypted", False) is False:
            report("database storage is not encrypted; set storageEncrypted with a KMS key.")
    elif args.resource_type == CACHE_GROUP and _value(args, "atRestEncryptionEnabled", False) is False:
        report("cache data is not encrypted at rest; set atRestEncryptionEnabled with a KMS key.")
    elif (
        args.resource_type == BROKER
        and _value(args, "engineType", "") == "ActiveMQ"
        and _value(args, "encryptionOptions.useAwsOwnedKey", True) is True
    ):
        # RabbitMQ brokers are always encrypted with an AWS-owned key; ActiveMQ can use a customer key.
        report(
            "the broker is encrypted with an AWS-owned key you cannot audit or revoke; set encryptionOptions "
            "with a customer managed kmsKeyId."
        )


POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="stateful-resources-protected",
        description="Requires Pulumi's protect option on databases, brokers, caches, file systems, buckets, backup "
        "vaults, KMS keys and secrets, where the stack's environment keeps data protected.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=stateful_protected,
        config_schema=PolicyConfigSchema(
            properties={
                "types": {"type": "array", "items": {"type": "string"}, "default": STATEFUL},
            }
        ),
    ),
    ResourceValidationPolicy(
        name="rds-deletion-protection",
        description="Requires deletion protection on every database, where the stack's environment keeps data "
        "protected.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=deletion_protection,
    ),
    ResourceValidationPolicy(
        name="final-snapshot-on-delete",
        description="Requires a final snapshot when a database or cache is deleted.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=final_snapshot,
    ),
    ResourceValidationPolicy(
        name="backup-retention",
        description="Requires automated database backups and cache snapshots kept at least the configured days, "
        "and database backups that outlive the instance.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=backup_retention,
        config_schema=PolicyConfigSchema(
            properties={
                # No defaults: the stack's environment decides (policies/common/environments.py).
                "minimumDatabaseDays": {"type": "integer", "minimum": 1, "maximum": 35},
                "minimumCacheDays": {"type": "integer", "minimum": 1, "maximum": 35},
            }
        ),
    ),
    ResourceValidationPolicy(
        name="encryption-at-rest",
        description="Requires databases and caches encrypted at rest, and ActiveMQ brokers on customer managed keys.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=encrypted_at_rest,
    ),
]


# ----- copies in a second region ----------------------------------------------------------------

BACKUP_PLAN = "aws:backup/plan:Plan"


def resource_region(resource) -> str | None:
    """The region a resource is created in: its own `region` input (pulumi-aws 7), else its
    provider's."""
    region = known(resource, "region")
    if region:
        return region
    provider = getattr(resource, "provider", None)
    try:
        return provider.props.get("region") if provider is not None else None
    except UnknownValueError:
        return None


def _arn_region(arn: object) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[3] if len(parts) > 5 and parts[0] == "arn" else None


def backups_copied_elsewhere(args: StackValidationArgs, report: Report) -> None:
    """Region-level recovery: every backup plan copies to a vault in another region, by
    dependency (first preview) and by the destination ARN once known."""
    environment, rules = stack_environment()
    if not rules.backup_copy_region:
        return
    graph = StackGraph(args.resources)
    plans = graph.of_type(BACKUP_PLAN)
    stateful = [r for r in graph.resources if r.resource_type in (DB_INSTANCE, DB_CLUSTER)]
    if not plans and stateful:
        report(
            f"no AWS Backup plan protects the databases; a {environment} stack copies backups to a second region "
            f"({KEYS['copy_region']}).",
            None,
        )
    for plan in plans:
        home = resource_region(plan) or stack_config().get("aws:region")
        elsewhere = [
            v
            for v in plan.property_dependencies.get("rules", [])
            if v.resource_type == BACKUP_VAULT and resource_region(v) not in (None, home)
        ]
        destinations = [
            path(a, "destinationVaultArn")
            for rule in (known(plan, "rules", []) or [])
            for a in (path(rule, "copyActions", []) or [])
        ]
        # Once known, every destination must be in another region too.
        wrong = [d for d in destinations if isinstance(d, str) and _arn_region(d) in (None, home)]
        if not elsewhere or wrong:
            report(
                f"{short(plan)} copies no backup to a vault in another region than {home or 'its own'}; a "
                f"{environment} stack needs region-level recovery: set {KEYS['copy_region']} (the program adds "
                "the copy rule).",
                plan.urn,
            )


POLICIES += [
    StackValidationPolicy(
        name="backup-copy-other-region",
        description="Requires every AWS Backup plan to copy to a vault in another region, where the stack's "
        "environment demands region-level recovery.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=backups_copied_elsewhere,
    ),
]


# ----- file systems and buckets: rules across resources ---------------------------------------

EFS_BACKUP_POLICY = "aws:efs/backupPolicy:BackupPolicy"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"


def efs_backups_on(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    for file_system in graph.of_type(FILE_SYSTEM):
        policies = graph.referencing(EFS_BACKUP_POLICY, "fileSystemId", file_system)
        if not any(known(p, "backupPolicy", {}).get("status") == "ENABLED" for p in policies):
            report(
                f"{short(file_system)} has no AWS Backup policy ENABLED; add an aws.efs.BackupPolicy.", file_system.urn
            )


def s3_versioning_on(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    for bucket in graph.of_type(BUCKET):
        configs = graph.referencing(BUCKET_VERSIONING, "bucket", bucket)
        if not any(known(c, "versioningConfiguration", {}).get("status") == "Enabled" for c in configs):
            report(
                f"{short(bucket)} is not versioned: an overwrite or delete loses the object. Add a "
                "BucketVersioning with status Enabled.",
                bucket.urn,
            )


POLICIES += [
    StackValidationPolicy(
        name="efs-backups-on",
        description="Requires AWS Backup enabled on every EFS file system.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=efs_backups_on,
    ),
    StackValidationPolicy(
        name="s3-versioning-on",
        description="Requires versioning on every S3 bucket.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=s3_versioning_on,
    ),
]


QUEUE = "rabbitmq:index/queue:Queue"
EXCHANGE = "rabbitmq:index/exchange:Exchange"
BINDING = "rabbitmq:index/binding:Binding"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"


def _queue_arguments(queue: PolicyResource) -> dict | None:
    """A queue's x-arguments (`settings.argumentsJson`, or `settings.arguments`); None when unknown."""
    settings = path(queue.props, "settings", {}, unknown=UNKNOWN)
    if settings is UNKNOWN:
        return None
    text = path(settings, "argumentsJson", unknown=UNKNOWN)
    if text is UNKNOWN:
        return None
    if isinstance(text, str) and text:
        try:
            parsed = json.loads(text)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    plain = path(settings, "arguments", {}, unknown=UNKNOWN)
    return None if plain is UNKNOWN else dict(plain or {})


def _scan_queues(graph: StackGraph) -> list[tuple[PolicyResource, str, str | None]]:
    """(ScaledJob, queue name, vhost) for every RabbitMQ trigger a ScaledJob scales on."""
    out = []
    for job in graph.of_type(SCALED_JOB):
        for trigger in path(job.props, "spec.triggers", [], unknown=UNKNOWN) or []:
            if trigger is UNKNOWN or path(trigger, "type") != "rabbitmq":
                continue
            name = path(trigger, "metadata.queueName", unknown=UNKNOWN)
            if isinstance(name, str):
                vhost = path(trigger, "metadata.vhostName", unknown=UNKNOWN)
                out.append((job, name, vhost if isinstance(vhost, str) else None))
    return out


def scan_queues_quorum_dead_lettered(args: StackValidationArgs, report: Report) -> None:
    """A scan queue left to its first client is whatever that client declares: a classic queue
    dies with its node's zone, and without a delivery limit a request that crashes its Job is
    redelivered for ever. Every queue a ScaledJob scales on must be declared by the stack as a
    quorum queue with a delivery limit and a dead-letter exchange that routes somewhere."""
    graph = StackGraph(args.resources)
    queues = graph.of_type(QUEUE)
    if not queues and stack_config().get(KEYS["rollout"]) == "first-deploy":
        # The first-deploy stage runs from outside the VPC, where the management API does not
        # answer; the next stage declares the queues, and this rule holds it to them.
        return
    for job, name, vhost in _scan_queues(graph):
        matches = [
            q for q in queues if known(q, "name") == name and (vhost is None or known(q, "vhost", vhost) == vhost)
        ]
        if not matches:
            report(
                f"{short(job)} scales on queue {name}, which the stack does not declare: its first client would "
                "create it with whatever arguments it passes. Declare it (rabbitmq.Queue) as a quorum queue.",
                job.urn,
            )
            continue
        queue = matches[0]
        arguments = _queue_arguments(queue)
        if arguments is None:
            continue
        problems = []
        if arguments.get("x-queue-type") != "quorum":
            problems.append(f"its type is {arguments.get('x-queue-type', 'classic')}, not quorum (one replica)")
        limit = whole(arguments.get("x-delivery-limit"))
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            problems.append("it has no delivery limit (a poison request is redelivered for ever)")
        exchange = arguments.get("x-dead-letter-exchange")
        if not exchange:
            problems.append("it has no dead-letter exchange")
        else:
            routing_key = arguments.get("x-dead-letter-routing-key")
            declared = [e for e in graph.of_type(EXCHANGE) if known(e, "name") == exchange]
            bound = [
                b
                for b in graph.of_type(BINDING)
                if known(b, "source") == exchange
                or any(d in b.property_dependencies.get("source", []) for d in declared)
            ]
            if not declared:
                problems.append(f"its dead-letter exchange {exchange} is not declared")
            elif routing_key is not None and not any(known(b, "routingKey", routing_key) == routing_key for b in bound):
                problems.append(f"nothing is bound to {exchange} with routing key {routing_key} (dead letters vanish)")
            elif not bound:
                problems.append(f"nothing is bound to {exchange} (dead letters vanish)")
        if problems:
            report(f"scan queue {name}: {'; '.join(problems)}.", queue.urn)


POLICIES += [
    StackValidationPolicy(
        name="scan-queues-quorum-dead-lettered",
        description="Requires every queue a ScaledJob scales on to be declared by the stack as a quorum queue with a "
        "delivery limit and a dead-letter exchange bound to a queue.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=scan_queues_quorum_dead_lettered,
    ),
]
