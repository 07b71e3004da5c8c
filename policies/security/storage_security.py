"""Security rules for the repository cache, the dashboard bucket and CDN, and the registry."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from environments import KEYS, stack_environment
from stack_graph import BUCKET, FILE_SYSTEM, UNKNOWN, Report, StackGraph, known, path, short

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
REPOSITORY = "aws:ecr/repository:Repository"
BLOCK_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
#: Viewer security policies CloudFront offers from TLS 1.2 up.
TLS12_POLICIES = ("TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")


def efs_encrypted(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == FILE_SYSTEM and path(args.props, "encrypted", False, unknown=UNKNOWN) is False:
        report("the file system is not encrypted at rest; set encrypted with a KMS key (it cannot be changed later).")


def buckets_private_and_encrypted(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    for bucket in graph.of_type(BUCKET):
        blocks = graph.referencing(PUBLIC_ACCESS_BLOCK, "bucket", bucket)
        if not any(all(known(b, k, False) is True for k in BLOCK_SETTINGS) for b in blocks):
            report(
                f"{short(bucket)} does not block public access; add a BucketPublicAccessBlock with all four "
                "settings true.",
                bucket.urn,
            )
        if not graph.referencing(BUCKET_ENCRYPTION, "bucket", bucket):
            report(
                f"{short(bucket)} has no server-side encryption configuration; add one (SSE-S3 or SSE-KMS).", bucket.urn
            )


def cloudfront_https(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != DISTRIBUTION:
        return
    behaviors = [path(args.props, "defaultCacheBehavior", {}, unknown=UNKNOWN)]
    behaviors += list(path(args.props, "orderedCacheBehaviors", [], unknown=UNKNOWN) or [])
    for behavior in behaviors:
        if behavior is UNKNOWN:
            continue
        policy = behavior.get("viewerProtocolPolicy", "allow-all")
        if policy == "allow-all":
            report(
                "a cache behaviour serves plain HTTP (viewerProtocolPolicy allow-all); use redirect-to-https "
                "or https-only."
            )
    certificate = list(path(args.props, "viewerCertificate", {}, unknown={}) or {})
    if "acmCertificateArn" in certificate or "iamCertificateId" in certificate:
        version = path(args.props, "viewerCertificate.minimumProtocolVersion", "TLSv1", unknown=UNKNOWN)
        if version is not UNKNOWN and version not in TLS12_POLICIES:
            report(f"the distribution accepts {version}; set minimumProtocolVersion to TLSv1.2_2021 or newer.")
    elif path(args.props, "viewerCertificate.cloudfrontDefaultCertificate", False, unknown=UNKNOWN) is True:
        environment, rules = stack_environment()
        if rules.custom_dashboard_domain:
            # CloudFront sets the TLSv1 policy on its own *.cloudfront.net certificate whatever
            # minimumProtocolVersion says (ViewerCertificate API reference).
            report(
                f"the distribution uses CloudFront's default certificate, which always accepts TLS 1.0 and 1.1; "
                f"a {environment} stack serves its own domain with TLS 1.2 or newer: set "
                f"{KEYS['dashboard_domain']} and scanner:dashboardHostedZoneId."
            )


def cloudfront_origin_access_control(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != DISTRIBUTION:
        return
    origins = path(args.props, "origins", [], unknown=UNKNOWN)
    if origins is UNKNOWN:
        return
    for origin in origins:
        keys = list(origin)
        # The bucket's domain is computed, so unknown on a first preview: count it as S3 then.
        domain = path(origin, "domainName", "", unknown="")
        if domain and ".s3." not in domain and ".s3-" not in domain:
            continue  # a custom (non-S3) origin
        if "s3OriginConfig" in keys:
            report(
                f"origin '{path(origin, 'originId', '?')}' uses a legacy origin access identity; use origin "
                "access control."
            )
        elif "originAccessControlId" not in keys:
            report(
                f"origin '{path(origin, 'originId', '?')}' reaches S3 without origin access control; set "
                "originAccessControlId so the bucket can stay private."
            )


def ecr_immutable_scanned(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != REPOSITORY:
        return
    mutability = path(args.props, "imageTagMutability", "MUTABLE", unknown=UNKNOWN)
    if mutability is not UNKNOWN and not str(mutability).startswith("IMMUTABLE"):
        report(
            "image tags are mutable: a pushed tag can be replaced under running scans. Set imageTagMutability "
            "to IMMUTABLE."
        )
    if path(args.props, "imageScanningConfiguration.scanOnPush", False, unknown=UNKNOWN) is False:
        report("images are not scanned on push; set imageScanningConfiguration.scanOnPush.")


POLICIES = [
    ResourceValidationPolicy(
        name="efs-encrypted",
        description="Requires EFS file systems encrypted at rest.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=efs_encrypted,
    ),
    StackValidationPolicy(
        name="s3-private-and-encrypted",
        description="Requires every bucket to block all public access and to have server-side encryption.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=buckets_private_and_encrypted,
    ),
    ResourceValidationPolicy(
        name="cloudfront-https-only",
        description="Requires CloudFront to serve HTTPS only, with TLS 1.2 or newer on custom certificates, and a "
        "custom certificate where the stack's environment demands TLS 1.2 to every viewer.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=cloudfront_https,
    ),
    ResourceValidationPolicy(
        name="cloudfront-origin-access-control",
        description="Requires S3 origins to be reached through origin access control.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=cloudfront_origin_access_control,
    ),
    ResourceValidationPolicy(
        name="ecr-immutable-scan-on-push",
        description="Requires ECR repositories with immutable tags and scanning on push.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=ecr_immutable_scanned,
    ),
]
