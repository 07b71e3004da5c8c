"""Nothing lost: protection, final snapshots, backups and encryption on stateful resources."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from stack_graph import (
    BROKER,
    BUCKET,
    CACHE_GROUP,
    DB_CLUSTER,
    DB_INSTANCE,
    FILE_SYSTEM,
    UNKNOWN,
    StackGraph,
    known,
    path,
    setting,
    short,
)

BACKUP_VAULT = "aws:backup/vault:Vault"
SECRET = "aws:secretsmanager/secret:Secret"
KMS_KEY = "aws:kms/key:Key"

#: Resources whose loss loses data, or makes it unreadable (keys) or unreachable (credentials):
#: they must carry Pulumi's `protect`.
STATEFUL = [DB_INSTANCE, DB_CLUSTER, BROKER, CACHE_GROUP, BACKUP_VAULT, KMS_KEY, SECRET,
            "aws:efs/fileSystem:FileSystem", "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"]


def _value(args: ResourceValidationArgs, key: str, default):
    """A property, `default` when absent, UNKNOWN when computed during preview (decided on update)."""
    return path(args.props, key, default, unknown=UNKNOWN)


def _replica(args: ResourceValidationArgs) -> bool:
    return args.resource_type == DB_INSTANCE and "replicateSourceDb" in list(args.props)


def stateful_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    types = setting(args, "types", STATEFUL)
    if args.resource_type in types and not _replica(args) and not args.opts.protect:
        report("this stateful resource is not protected: a `pulumi destroy` or a replacing change would delete it. "
               "Set the `protect` resource option (and retainOnDelete).")


def deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER):
        value = _value(args, "deletionProtection", False)
        if value is not UNKNOWN and value is not True:
            report("the database can be deleted through the API; set deletionProtection.")


def final_snapshot(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER) and not _replica(args):
        if _value(args, "skipFinalSnapshot", False) is True or "finalSnapshotIdentifier" not in list(args.props):
            report("deleting the database would take no final snapshot; set finalSnapshotIdentifier and leave "
                   "skipFinalSnapshot false.")
    elif args.resource_type == CACHE_GROUP and "finalSnapshotIdentifier" not in list(args.props):
        report("deleting the cache would take no final snapshot; set finalSnapshotIdentifier.")


def backup_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER) and not _replica(args):
        minimum = setting(args, "minimumDatabaseDays", 7)
        days = _value(args, "backupRetentionPeriod", 0 if args.resource_type == DB_INSTANCE else 1)
        if days is not UNKNOWN and days < minimum:
            report(f"automated backups are kept {int(days)} day(s); keep them at least {int(minimum)} "
                   "(backupRetentionPeriod), or point-in-time recovery falls short.")
        if args.resource_type == DB_INSTANCE and _value(args, "deleteAutomatedBackups", True) is True:
            report("automated backups would be deleted with the instance; set deleteAutomatedBackups to false.")
    elif args.resource_type == CACHE_GROUP:
        minimum = setting(args, "minimumCacheDays", 1)
        days = _value(args, "snapshotRetentionLimit", 0)
        if days is not UNKNOWN and days < minimum:
            report(f"cache snapshots are kept {int(days)} day(s); keep them at least {int(minimum)} (snapshotRetentionLimit).")


def encrypted_at_rest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER) and not _replica(args):
        if _value(args, "storageEncrypted", False) is False:
            report("database storage is not encrypted; set storageEncrypted with a KMS key.")
    elif args.resource_type == CACHE_GROUP and _value(args, "atRestEncryptionEnabled", False) is False:
        report("cache data is not encrypted at rest; set atRestEncryptionEnabled with a KMS key.")
    elif (args.resource_type == BROKER and _value(args, "engineType", "") == "ActiveMQ"
          and _value(args, "encryptionOptions.useAwsOwnedKey", True) is True):
        # RabbitMQ brokers are always encrypted with an AWS-owned key; ActiveMQ can use a customer key.
        report("the broker is encrypted with an AWS-owned key you cannot audit or revoke; set encryptionOptions "
               "with a customer managed kmsKeyId.")


POLICIES = [
    ResourceValidationPolicy(
        name="stateful-resources-protected",
        description="Requires Pulumi's protect option on databases, brokers, caches, file systems, buckets, backup "
                    "vaults, KMS keys and secrets.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=stateful_protected,
        config_schema=PolicyConfigSchema(properties={
            "types": {"type": "array", "items": {"type": "string"}, "default": STATEFUL},
        }),
    ),
    ResourceValidationPolicy(
        name="rds-deletion-protection",
        description="Requires deletion protection on every database.",
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
        config_schema=PolicyConfigSchema(properties={
            "minimumDatabaseDays": {"type": "integer", "minimum": 1, "maximum": 35, "default": 7},
            "minimumCacheDays": {"type": "integer", "minimum": 1, "maximum": 35, "default": 1},
        }),
    ),
    ResourceValidationPolicy(
        name="encryption-at-rest",
        description="Requires databases and caches encrypted at rest, and ActiveMQ brokers on customer managed keys.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=encrypted_at_rest,
    ),
]


# ----- file systems and buckets: rules across resources ---------------------------------------

EFS_BACKUP_POLICY = "aws:efs/backupPolicy:BackupPolicy"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"


def efs_backups_on(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = StackGraph(args.resources)
    for file_system in graph.of_type(FILE_SYSTEM):
        policies = graph.referencing(EFS_BACKUP_POLICY, "fileSystemId", file_system)
        if not any(known(p, "backupPolicy", {}).get("status") == "ENABLED" for p in policies):
            report(f"{short(file_system)} has no AWS Backup policy ENABLED; add an aws.efs.BackupPolicy.",
                   file_system.urn)


def s3_versioning_on(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = StackGraph(args.resources)
    for bucket in graph.of_type(BUCKET):
        configs = graph.referencing(BUCKET_VERSIONING, "bucket", bucket)
        if not any(known(c, "versioningConfiguration", {}).get("status") == "Enabled" for c in configs):
            report(f"{short(bucket)} is not versioned: an overwrite or delete loses the object. Add a "
                   "BucketVersioning with status Enabled.", bucket.urn)


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
