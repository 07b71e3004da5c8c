"""What the pipeline needs before the main stacks exist, and the runner once they do.

One bootstrap stack per AWS account, listing the main stacks deployed into that account:

- GitHub's OIDC provider (or the account's existing one);
- per main stack: a deploy role (trusted by the stack's GitHub environment only) and a preview
  role (pull requests), each with the policy `bootstrap/permissions.py` writes; a KMS key for
  the stack's `awskms://` secrets provider;
- a state bucket for a self-managed backend: versioned, encrypted with its own key, TLS only,
  no public access, each stack's roles kept to that stack's state by the bucket's policy;
- with `runner: true` on a stack (after its first `up`): a CodeBuild GitHub Actions runner in
  the stack's private subnets, where the private cluster API answers.

Config is read and checked first (`bootstrap/settings.py`): bad input stops the run with one
line per problem before anything is declared.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

# `pulumi up` runs this from bootstrap/; the shared helpers sit in the repository's root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bootstrap import permissions, settings  # noqa: E402
from components.common.buckets import private_bucket  # noqa: E402

config = settings.load_from_pulumi()

account_id = aws.get_caller_identity().account_id
partition = aws.get_partition().partition
tags = {"project": settings.PROJECT, "stack": config.stack, "managed-by": "pulumi"}
provider = aws.Provider("aws", region=config.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
opts = pulumi.ResourceOptions(provider=provider)
keep = pulumi.ResourceOptions(
    provider=provider,
    protect=config.protect_stateful_resources,
    retain_on_delete=config.protect_stateful_resources,
)


def role_arn(name: str) -> str:
    """A role's ARN from its name: the bucket's policy names the roles before they exist."""
    return f"arn:{partition}:iam::{account_id}:role/{name}"


# ----- GitHub's OIDC provider ------------------------------------------------------------------

if config.github_oidc_provider_arn:
    oidc_arn: pulumi.Input[str] = config.github_oidc_provider_arn
else:
    # IAM trusts GitHub's issuer through its own library of root CAs: no thumbprint to pin.
    oidc_arn = aws.iam.OpenIdConnectProvider(
        "github",
        url="https://token.actions.githubusercontent.com",
        client_id_lists=["sts.amazonaws.com"],
        opts=keep,
    ).arn

# ----- the state bucket ------------------------------------------------------------------------

state_bucket_name: str | None = None
state_key_arn: pulumi.Output[str] | None = None
if config.state_bucket:
    state_key = aws.kms.Key(
        "state",
        description="Pulumi state of the scanner stacks",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        opts=keep,
    )
    aws.kms.Alias("state", name=f"alias/{settings.PROJECT}-state", target_key_id=state_key.key_id, opts=opts)
    state_key_arn = state_key.arn
    # Bucket names are global: the account and region keep this one unique.
    state_bucket_name = f"scanner-pulumi-state-{account_id}-{config.region}"
    bucket = aws.s3.Bucket("state", bucket=state_bucket_name, force_destroy=False, opts=keep)
    private_bucket("state", bucket, keep, kms_key_arn=state_key.arn)
    aws.s3.BucketLifecycleConfiguration(
        "state",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="old-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                # Every checkpoint is a new version of the stack's file: a year of them is kept.
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=365
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
            )
        ],
        opts=opts,
    )

# ----- per main stack: secrets key, roles, runner ----------------------------------------------

pipelines: dict[str, pulumi.Output[permissions.Pipeline]] = {}
exports: dict[str, dict[str, pulumi.Input[str]]] = {}
bucket_roles: list[tuple[str, list[str]]] = []
#: The roles the bucket's policy names: S3 refuses a policy whose principals do not exist yet.
declared_roles: list[aws.iam.Role] = []
regional: dict[str, aws.Provider] = {config.region: provider}


def pipeline_of(main: settings.MainStack, arns: list[str | None]) -> permissions.Pipeline:
    """What the policies of `main`'s roles are written for, once the keys' ARNs are known."""
    return permissions.Pipeline(
        stack=main.name,
        account_id=account_id,
        partition=partition,
        regions=main.regions,
        managed_policies=permissions.PROGRAM_MANAGED_POLICIES,
        state_bucket=state_bucket_name,
        state_key_arn=arns[0],
        secrets_key_arn=arns[1],
        hosted_zone_id=main.hosted_zone_id,
    )


def deploy_trust(main: settings.MainStack, provider_arn: str) -> str:
    subjects = [f"environment:{main.github_environment}"]
    return json.dumps(
        permissions.github_trust(provider_arn, config.github_repository, subjects, config.operator_role_arns)
    )


def runner_policy(main: settings.MainStack, args: list) -> str:
    log_group_arn, subnet_ids = args
    subnets = [f"arn:{partition}:ec2:{main.region}:{account_id}:subnet/{s}" for s in subnet_ids]
    return json.dumps(
        permissions.runner_policy(
            partition, main.region, account_id, log_group_arn, subnets, config.github_connection_arn or ""
        )
    )


def provider_for(region: str) -> aws.Provider:
    if region not in regional:
        regional[region] = aws.Provider(
            f"aws-{region}", region=region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags)
        )
    return regional[region]


source_credentials: dict[str, aws.codebuild.SourceCredential] = {}

for main in config.stacks:
    name = main.name
    prefix = f"scanner-{name}"
    secrets_key_arn: pulumi.Output[str] | None = None
    stack_exports: dict[str, pulumi.Input[str]] = {}
    if config.secrets_keys:
        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Pulumi config secrets of the {name} stack",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(provider=provider_for(main.region))),
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{prefix}-secrets",
            target_key_id=secrets_key.key_id,
            opts=pulumi.ResourceOptions(provider=provider_for(main.region)),
        )
        secrets_key_arn = secrets_key.arn
        stack_exports["secretsProvider"] = f"awskms://alias/{prefix}-secrets?region={main.region}"

    pipeline = pulumi.Output.all(state_key_arn, secrets_key_arn).apply(functools.partial(pipeline_of, main))
    pipelines[name] = pipeline

    deploy = aws.iam.Role(
        f"{name}-deploy",
        name=f"{prefix}-deploy",
        description=f"pulumi up of the {name} stack from GitHub Actions ({main.github_environment})",
        assume_role_policy=pulumi.Output.from_input(oidc_arn).apply(functools.partial(deploy_trust, main)),
        # The zone drill runs under this role for up to three hours.
        max_session_duration=10800,
        opts=opts,
    )
    deploy_policy = aws.iam.RolePolicy(
        f"{name}-deploy",
        role=deploy.name,
        policy=pipeline.apply(lambda p: json.dumps(permissions.deploy_policy(p, permissions.PROGRAM_SERVICES))),
        opts=opts,
    )
    preview = aws.iam.Role(
        f"{name}-preview",
        name=f"{prefix}-preview",
        description=f"pulumi preview of the {name} stack on pull requests",
        assume_role_policy=pulumi.Output.from_input(oidc_arn).apply(
            lambda arn: json.dumps(permissions.github_trust(arn, config.github_repository, ["pull_request"]))
        ),
        max_session_duration=3600,
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-preview",
        role=preview.name,
        policy=pipeline.apply(lambda p: json.dumps(permissions.preview_policy(p, permissions.PROGRAM_INVOKES))),
        opts=opts,
    )
    declared_roles += [deploy, preview]
    bucket_roles.append((name, [role_arn(f"{prefix}-deploy"), role_arn(f"{prefix}-preview")]))
    stack_exports.update(deployRoleArn=deploy.arn, previewRoleArn=preview.arn)

    if main.runner:
        assert config.github_connection_arn  # the config refuses a runner without it
        in_region = provider_for(main.region)
        ropts = pulumi.ResourceOptions(provider=in_region)
        reference = pulumi.StackReference(f"{config.main_stack_organization}/scanner/{name}")
        vpc_id = reference.require_output("vpcId")
        subnet_ids = reference.require_output("subnetIds").apply(lambda ids: sorted(ids["private"].values()))
        group = aws.ec2.SecurityGroup(
            f"{name}-runner",
            vpc_id=vpc_id,
            description=f"CodeBuild runner of the {name} stack's deploys: HTTPS out only",
            opts=ropts,
        )
        # GitHub, the AWS APIs, the package index and the cluster's private API: all on 443.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-runner-https",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            description="HTTPS",
            opts=ropts,
        )
        project_name = f"{prefix}-deploy"
        logs = aws.cloudwatch.LogGroup(
            f"{name}-runner", name=f"/aws/codebuild/{project_name}", retention_in_days=90, opts=ropts
        )
        runner_role = aws.iam.Role(
            f"{name}-runner",
            name=f"{prefix}-runner",
            description=f"CodeBuild runner of the {name} stack (its jobs assume the deploy role)",
            assume_role_policy=json.dumps(
                permissions.codebuild_trust(
                    account_id, f"arn:{partition}:codebuild:{main.region}:{account_id}:project/{project_name}"
                )
            ),
            opts=opts,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-runner",
            role=runner_role.name,
            policy=pulumi.Output.all(logs.arn, subnet_ids).apply(functools.partial(runner_policy, main)),
            opts=opts,
        )
        if main.region not in source_credentials:
            # One GitHub credential per account and region: every CodeBuild project there uses it.
            source_credentials[main.region] = aws.codebuild.SourceCredential(
                f"github-{main.region}",
                auth_type="CODECONNECTIONS",
                server_type="GITHUB",
                token=config.github_connection_arn,
                opts=ropts,
            )
        project = aws.codebuild.Project(
            f"{name}-runner",
            name=project_name,
            description=f"GitHub Actions runner inside the {name} stack's VPC",
            service_role=runner_role.arn,
            build_timeout=240,
            queued_timeout=60,
            source=aws.codebuild.ProjectSourceArgs(
                type="GITHUB", location=f"https://github.com/{config.github_repository}.git"
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                compute_type=config.runner_compute_type,
                image="aws/codebuild/standard:7.0",
                type="LINUX_CONTAINER",
                image_pull_credentials_type="CODEBUILD",
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=vpc_id, subnets=subnet_ids, security_group_ids=[group.id]
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    group_name=logs.name, status="ENABLED"
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            opts=pulumi.ResourceOptions(provider=in_region, depends_on=[policy, source_credentials[main.region]]),
        )
        # Only the deploy and drill workflows' jobs start this runner: a job of any other
        # workflow asking for its label is never picked up.
        aws.codebuild.Webhook(
            f"{name}-runner",
            project_name=project.name,
            build_type="BUILD",
            filter_groups=[
                aws.codebuild.WebhookFilterGroupArgs(
                    filters=[
                        aws.codebuild.WebhookFilterGroupFilterArgs(type="EVENT", pattern="WORKFLOW_JOB_QUEUED"),
                        aws.codebuild.WebhookFilterGroupFilterArgs(
                            type="WORKFLOW_NAME", pattern=permissions.RUNNER_WORKFLOWS
                        ),
                    ]
                )
            ],
            opts=ropts,
        )
        stack_exports["runnerLabel"] = (
            f"codebuild-{project_name}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"
        )
    exports[name] = stack_exports


def bucket_policy(resolved: list[permissions.Pipeline]) -> str:
    """The state bucket's policy: each stack's roles kept to its own state."""
    stacks = [(p, roles) for p, (_, roles) in zip(resolved, bucket_roles, strict=True)]
    return json.dumps(permissions.state_bucket_policy(partition, state_bucket_name or "", stacks))


if config.state_bucket:
    assert state_bucket_name is not None
    aws.s3.BucketPolicy(
        "state",
        bucket=state_bucket_name,
        policy=pulumi.Output.all(*pipelines.values()).apply(bucket_policy),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[bucket, *declared_roles]),
    )
    pulumi.export("backendUrl", f"s3://{state_bucket_name}?region={config.region}")

pulumi.export("githubOidcProviderArn", oidc_arn)
pulumi.export("stacks", exports)
