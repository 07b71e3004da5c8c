"""The dashboard's static assets: a private S3 bucket behind CloudFront.

The bucket is reachable only by this distribution (origin access control, SigV4, the policy
conditioned on the distribution's ARN), versioned, encrypted, and logged. CloudFront serves
HTTPS only (HTTP is redirected), with TLS 1.2 or newer on a custom domain, compression, HTTP/3,
security headers, and the single-page-app fallback: without `s3:ListBucket` a missing object is
a 403, not a 404; the distribution may therefore list the bucket, so a missing object is a
404, which alone maps to `/index.html` (a 403 from a WAF block stays a 403).

The bucket policy references the distribution (its ARN), and the distribution references only
the bucket's domain and the origin access control, never the policy: no dependency cycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.buckets import expire, private_bucket
from components.common.context import StackContext

#: AWS managed cache policy CachingOptimized.
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
#: ACM certificates for CloudFront, and CloudFront-scope web ACLs, live in us-east-1.
CLOUDFRONT_REGION = "us-east-1"


@dataclass(frozen=True)
class DashboardCdnArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    price_class: str
    """CloudFront price class."""
    domain_name: str | None
    """Custom domain; none: the cloudfront.net name."""
    hosted_zone_id: str | None
    """Route 53 zone of `domain_name`, for the certificate's DNS validation and the alias records."""
    web_acl_arn: str | None
    """WAFv2 web ACL (CLOUDFRONT scope) to attach; none: no WAF."""
    log_retention_days: int = 90
    """Days the access logs are kept. Default 90."""


class DashboardCdn(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    distribution_domain: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardCdnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:cdn:DashboardCdn", name, {"domainName": args.domain_name}, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)

        logs = self._log_bucket(name, args)
        bucket = aws.s3.Bucket(f"{name}-assets", force_destroy=not args.stack.protect, opts=keep)
        assets = pulumi.ResourceOptions(parent=bucket)
        private_bucket(f"{name}-assets", bucket, assets)
        aws.s3.BucketLogging(
            f"{name}-assets", bucket=bucket.id, target_bucket=logs.id, target_prefix="s3/", opts=assets
        )

        access_control = aws.cloudfront.OriginAccessControl(
            f"{name}-oac",
            name=f"{args.stack.name_prefix}-dashboard",
            description="Dashboard assets bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child,
        )
        headers = aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-headers",
            name=f"{args.stack.name_prefix}-dashboard-security",
            comment="Security headers for the dashboard",
            security_headers_config=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigArgs(
                strict_transport_security=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurityArgs(
                    access_control_max_age_sec=63072000, include_subdomains=True, preload=True, override=True
                ),
                content_type_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigContentTypeOptionsArgs(
                    override=True
                ),
                frame_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigFrameOptionsArgs(
                    frame_option="DENY", override=True
                ),
                referrer_policy=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigReferrerPolicyArgs(
                    referrer_policy="strict-origin-when-cross-origin", override=True
                ),
                xss_protection=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigXssProtectionArgs(
                    protection=True, mode_block=True, override=True
                ),
                content_security_policy=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicyArgs(
                    content_security_policy="default-src 'self'; frame-ancestors 'none'; object-src 'none'",
                    override=True,
                ),
            ),
            opts=child,
        )

        certificate_arn = self._certificate(name, args) if args.domain_name else None
        distribution = aws.cloudfront.Distribution(
            f"{name}-distribution",
            enabled=True,
            comment=f"{args.stack.name_prefix} dashboard",
            default_root_object="index.html",
            aliases=[args.domain_name] if args.domain_name else None,
            price_class=args.price_class,
            http_version="http2and3",
            is_ipv6_enabled=True,
            web_acl_id=args.web_acl_arn,
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id="assets",
                    domain_name=bucket.bucket_regional_domain_name,
                    origin_access_control_id=access_control.id,
                )
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id="assets",
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD", "OPTIONS"],
                cached_methods=["GET", "HEAD"],
                compress=True,
                cache_policy_id=CACHING_OPTIMIZED,
                response_headers_policy_id=headers.id,
            ),
            # Single-page app: unknown paths are the app's routes. With s3:ListBucket granted to
            # this distribution a missing key is a 404; a 403 (a WAF block) is left alone.
            custom_error_responses=[
                aws.cloudfront.DistributionCustomErrorResponseArgs(
                    error_code=404, response_code=200, response_page_path="/index.html", error_caching_min_ttl=10
                )
            ],
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version="TLSv1.2_2021",
            )
            if certificate_arn
            else aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True),
            logging_config=aws.cloudfront.DistributionLoggingConfigArgs(
                bucket=logs.bucket_domain_name, prefix="cloudfront/", include_cookies=False
            ),
            # CloudFront checks that the log bucket takes ACLs when the distribution is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._log_acl),
        )
        aws.s3.BucketPolicy(
            f"{name}-assets",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, distribution.arn).apply(
                lambda v: json.dumps(bucket_policy(v[0], v[1]))
            ),
            opts=assets,
        )
        if args.domain_name and args.hosted_zone_id:
            for record_type in ("A", "AAAA"):
                aws.route53.Record(
                    f"{name}-alias-{record_type.lower()}",
                    zone_id=args.hosted_zone_id,
                    name=args.domain_name,
                    type=record_type,
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=distribution.domain_name,
                            zone_id=distribution.hosted_zone_id,
                            evaluate_target_health=False,
                        )
                    ],
                    opts=child,
                )

        self.bucket_name = bucket.bucket
        self.distribution_domain = distribution.domain_name
        self.distribution_id = distribution.id
        self.register_outputs({"bucket": bucket.bucket, "distributionDomain": distribution.domain_name})

    def _log_bucket(self, name: str, args: DashboardCdnArgs) -> aws.s3.Bucket:
        """Access logs of the bucket and the distribution. CloudFront's standard logs are written
        with ACLs, so this bucket (only this one) keeps ACLs on, owned by the bucket owner."""
        logs = aws.s3.Bucket(
            f"{name}-logs",
            force_destroy=not args.stack.protect,
            opts=pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect),
        )
        child = pulumi.ResourceOptions(parent=logs)
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-logs",
            bucket=logs.id,
            rule=(aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerPreferred")),
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-logs",
            bucket=logs.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-logs",
            bucket=logs.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=(
                        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    )
                )
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-logs",
            bucket=logs.id,
            versioning_configuration=(aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled")),
            opts=child,
        )
        expire(
            f"{name}-logs",
            logs,
            child,
            rule_id="expire-logs",
            prefix="",
            days=args.log_retention_days,
            noncurrent_days=7,
        )
        acl = aws.s3.BucketAcl(
            f"{name}-logs",
            bucket=logs.id,
            acl="log-delivery-write",
            opts=pulumi.ResourceOptions(parent=logs, depends_on=[ownership]),
        )
        self._log_acl = [ownership, acl]
        return logs

    def _certificate(self, name: str, args: DashboardCdnArgs) -> pulumi.Output[str]:
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            region=CLOUDFRONT_REGION,
            domain_name=args.domain_name,
            validation_method="DNS",
            opts=pulumi.ResourceOptions(parent=self),
        )
        if not args.hosted_zone_id:
            return certificate.arn  # validated outside the program (DNS elsewhere)
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-certificate-validation",
            zone_id=args.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=pulumi.ResourceOptions(parent=certificate),
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate",
            region=CLOUDFRONT_REGION,
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=pulumi.ResourceOptions(parent=certificate),
        )
        return validation.certificate_arn


def bucket_policy(bucket_arn: str, distribution_arn: str) -> dict:
    """Objects readable by this distribution only, and nothing without TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowCloudFrontRead",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
            },
            # Listing lets S3 answer a missing object with 404 rather than 403.
            {
                "Sid": "AllowCloudFrontList",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
            },
            {
                "Sid": "DenyWithoutTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
