"""Rules for the repository cache, the dashboard bucket and CDN, and the registry, through the
gRPC gate with all three packs: each deliberate fault is refused by name."""

import pulumi_aws as aws
from conftest import PLACEMENT, ROOT, SECURITY, change

PACKS = (PLACEMENT, ROOT / "policies" / "data-safety", SECURITY)
MODES = ["preview", "update"]


def skip_mount_target_in_b(monkeypatch):
    """The cache component given no subnet for us-east-1b, so it places no mount target there."""
    import dataclasses

    from components.scans import repo_cache

    original = repo_cache.RepositoryCache.__init__

    def init(self, name, args, opts=None):
        subnets = {zone: subnet for zone, subnet in args.subnet_ids.items() if not zone.endswith("b")}
        original(self, name, dataclasses.replace(args, subnet_ids=subnets), opts)

    monkeypatch.setattr(repo_cache.RepositoryCache, "__init__", init)


def origin_without_access_control(monkeypatch):
    """The assets origin declared without its origin access control (the bucket open to CloudFront
    only through a public policy)."""
    original = aws.cloudfront.Distribution.__init__

    def init(self, name, opts=None, **kwargs):
        if name == "dashboard-distribution":
            kwargs["origins"] = [
                aws.cloudfront.DistributionOriginArgs(origin_id=o.origin_id, domain_name=o.domain_name)
                for o in kwargs["origins"]
            ]
        original(self, name, opts=opts, **kwargs)

    monkeypatch.setattr(aws.cloudfront.Distribution, "__init__", init)


FAULTS = {
    "unencrypted-file-system": (
        change(aws.efs.FileSystem, "repo-cache-fs", encrypted=False, kms_key_id=None),
        {"efs-encrypted"},
        "not encrypted at rest",
    ),
    "origin-without-access-control": (
        origin_without_access_control,
        {"cloudfront-origin-access-control"},
        "origin 'assets' reaches S3 without origin access control",
    ),
    "zone-without-mount-target": (
        skip_mount_target_in_b,
        {"efs-mount-target-every-az"},
        "has no mount target in us-east-1b",
    ),
    "one-zone-file-system": (
        change(aws.efs.FileSystem, "repo-cache-fs", availability_zone_name="us-east-1a"),
        {"efs-not-one-zone"},
        "One Zone storage",
    ),
    "public-bucket": (
        change(
            aws.s3.BucketPublicAccessBlock, "dashboard-assets", block_public_policy=False, restrict_public_buckets=False
        ),
        {"s3-private-and-encrypted"},
        "does not block public access",
    ),
    "cloudfront-http": (
        change(
            aws.cloudfront.Distribution,
            "dashboard-distribution",
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id="assets",
                viewer_protocol_policy="allow-all",
                allowed_methods=["GET", "HEAD"],
                cached_methods=["GET", "HEAD"],
                cache_policy_id="658327ea-f89d-4fab-a63d-7e88639e58f6",
            ),
        ),
        {"cloudfront-https-only"},
        "serves plain HTTP",
    ),
    "mutable-tags": (
        change(aws.ecr.Repository, "registry-sast", image_tag_mutability="MUTABLE"),
        {"ecr-immutable-scan-on-push"},
        "image tags are mutable",
    ),
    "no-efs-backup": (
        change(
            aws.efs.BackupPolicy,
            "repo-cache-backup",
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="DISABLED"),
        ),
        {"efs-backups-on"},
        "has no AWS Backup policy ENABLED",
    ),
    "unversioned-bucket": (
        change(
            aws.s3.BucketVersioning,
            "dashboard-assets",
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Suspended"),
        ),
        {"s3-versioning-on"},
        "is not versioned",
    ),
}


def representative_faults() -> dict:
    """Every fault of the table (they touch different resources or arguments), judged with the other tiers' in one run
    of the program through the pack processes, in both modes (tests/packs/test_gate_of_record.py)."""
    return dict(FAULTS)
