"""The settings every private bucket of the stack gets: the owner enforced (no ACLs), no public
access, versioning, and server-side encryption with S3's key or a KMS key (bucket keys on)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def private_bucket(
    name: str, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions, kms_key_arn: pulumi.Input[str] | None = None
) -> None:
    """The four settings of `bucket`, each a resource named `name` under `opts`; objects are
    encrypted with `kms_key_arn` when given, else with S3's own key."""
    aws.s3.BucketOwnershipControls(
        name,
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts,
    )
    aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketVersioning(
        name,
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=opts,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=(
                    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms" if kms_key_arn is not None else "AES256",
                        kms_master_key_id=kms_key_arn,
                    )
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=opts,
    )


def expire(
    name: str,
    bucket: aws.s3.Bucket,
    opts: pulumi.ResourceOptions,
    *,
    rule_id: str,
    prefix: str,
    days: int,
    noncurrent_days: int,
) -> aws.s3.BucketLifecycleConfiguration:
    """Objects under `prefix` expire after `days`, their older versions after `noncurrent_days`."""
    return aws.s3.BucketLifecycleConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=rule_id,
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                noncurrent_version_expiration=(
                    aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=noncurrent_days
                    )
                ),
            )
        ],
        opts=opts,
    )
