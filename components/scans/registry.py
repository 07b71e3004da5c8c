"""ECR repositories for the images the cluster runs (scan engines, the fetch step, the services),
pulled by the nodes through the VPC endpoints.

Tags are immutable (a tag names one image forever, so a scan is reproducible and a pushed tag
cannot be swapped under a running fleet), images are scanned on push, encrypted with a KMS
key, and a lifecycle policy expires untagged images after a week and keeps the newest tagged
ones. Optionally the registry replicates these repositories to a second region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext

REPOSITORY_PREFIX = "scanner"


@dataclass(frozen=True)
class RegistryArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    engines: tuple[str, ...]
    """Image names: one repository `scanner/<name>` each."""
    replica_region: str | None
    """Region to replicate the images to; none: no replication."""
    keep_tagged_images: int = 30
    """Tagged images kept per repository (the newest). Default 30."""
    untagged_days: int = 7
    """Days an untagged image is kept. Default 7."""


def lifecycle_policy(keep_tagged: int, untagged_days: int) -> dict:
    """Untagged images go after `untagged_days`; of the rest, the newest `keep_tagged` stay.
    The `any` rule must have the highest priority number."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"expire untagged images after {untagged_days} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the newest {keep_tagged} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_tagged},
                "action": {"type": "expire"},
            },
        ]
    }


class Registry(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:registry:Registry", name, {"engines": list(args.engines)}, opts)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.stack.name_prefix} scan engine images",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect),
        )
        self.repository_urls = {}
        for engine in args.engines:
            repository = aws.ecr.Repository(
                f"{name}-{engine}",
                name=f"{REPOSITORY_PREFIX}/{engine}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=key.arn)
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{engine}",
                repository=repository.name,
                policy=json.dumps(lifecycle_policy(args.keep_tagged_images, args.untagged_days)),
                opts=pulumi.ResourceOptions(parent=repository),
            )
            self.repository_urls[engine] = repository.repository_url
        if args.replica_region:
            template_role, template_key = self._template_role(name, args)
            # Repositories ECR creates in the replica region take their settings from a creation
            # template there; without one they would have mutable tags and no lifecycle. A template
            # that encrypts with KMS needs a role ECR assumes to create the repositories and the
            # key grants (the service-linked role may only create repositories).
            aws.ecr.RepositoryCreationTemplate(
                f"{name}-replica-template",
                region=args.replica_region,
                prefix=REPOSITORY_PREFIX,
                applied_fors=["REPLICATION"],
                description="Scan engine images replicated from the primary region",
                image_tag_mutability="IMMUTABLE",
                encryption_configurations=[
                    aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(
                        encryption_type="KMS", kms_key=template_key.arn
                    )
                ],
                custom_role_arn=template_role.role.arn,
                lifecycle_policy=json.dumps(lifecycle_policy(args.keep_tagged_images, args.untagged_days)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[template_role.policy]),
            )
            # One replication configuration per registry: this stack owns the account's in its region.
            aws.ecr.ReplicationConfiguration(
                f"{name}-replication",
                replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(
                    rules=[
                        aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                            destinations=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(
                                    region=args.replica_region, registry_id=args.stack.account_id
                                )
                            ],
                            repository_filters=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleRepositoryFilterArgs(
                                    filter=f"{REPOSITORY_PREFIX}/", filter_type="PREFIX_MATCH"
                                )
                            ],
                        )
                    ]
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"repositoryUrls": self.repository_urls})

    def _template_role(self, name: str, args: RegistryArgs) -> tuple[_TemplateRole, aws.kms.Key]:
        """The replica region's image key, and the role ECR assumes to apply the creation template:
        create and replicate into `scanner/*` there, and grant itself use of that key."""
        assert args.replica_region is not None
        key = aws.kms.Key(
            f"{name}-replica-key",
            region=args.replica_region,
            description=f"{args.stack.name_prefix} scan engine images (replicas)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect),
        )
        role = aws.iam.Role(
            f"{name}-replica-template",
            description="Amazon ECR applies the replication creation template with this role",
            # The trust the ECR user guide gives for a creation-template role, as it stands: a
            # condition ECR might not send would leave the replicas uncreated, silently.
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ecr.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        repositories = (
            f"arn:{args.stack.partition}:ecr:{args.replica_region}:{args.stack.account_id}"
            f":repository/{REPOSITORY_PREFIX}/*"
        )
        policy = aws.iam.RolePolicy(
            f"{name}-replica-template",
            role=role.id,
            policy=key.arn.apply(
                lambda key_arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:TagResource"],
                                "Resource": repositories,
                            },
                            {
                                "Effect": "Allow",
                                "Action": ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"],
                                "Resource": key_arn,
                            },
                        ],
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        return _TemplateRole(role, policy), key


@dataclass(frozen=True)
class _TemplateRole:
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
