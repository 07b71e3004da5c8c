"""What the pipeline's identities may do, as IAM policy documents: pure, no Pulumi import.

Three identities per stack of the main program, each assumed through GitHub's OIDC provider:

- the **deploy role** runs `pulumi up` (and the zone drill) from the runner inside the stack's
  VPC, in the stack's GitHub environment only;
- the **preview role** runs `pulumi preview` on pull requests: the look-ups the program makes,
  the state read and locked, the stack's secrets decrypted; nothing it can change;
- the **runner role** is the in-VPC CodeBuild runner's own: its network interfaces and its
  logs, nothing in the stack (the jobs it runs assume the deploy role).

Where IAM can scope by resource, it does: roles and policies by the `project`/`stack` tags the
main program's provider puts on everything it creates, keys likewise, roles passed only to the
services the program's roles trust, service-linked roles only for the services the program
uses. Where the provider's create, read, update and delete of a resource type need a long tail
of actions on auto-named resources (EC2, RDS, EKS...), the grant is the service, and only in
the stack's regions. `python -m bootstrap.permissions --stack prod` prints the documents.

Every statement carries a `Sid` that says why it is there; the README's table is written from
`WHY`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The tags the main program's provider puts on every resource it creates (its default tags).
PROJECT_TAG, STACK_TAG = "project", "stack"
PROJECT = "scanner"
#: CloudFront, Route 53, Budgets and Cost Explorer answer in us-east-1 only (aws:RequestedRegion),
#: and the dashboard's certificate must be there.
GLOBAL_REGION = "us-east-1"

#: IAM service prefixes of the main program's resources, by the provider's module
#: (`aws:<module>/...`); `cloudwatch` resources belong to three IAM services. A test fails when
#: the program declares a module this table lacks.
MODULE_SERVICES: dict[str, tuple[str, ...]] = {
    "acm": ("acm",),
    "arczonalshift": ("arc-zonal-shift",),
    "backup": ("backup", "backup-storage"),
    "budgets": ("budgets",),
    "cloudfront": ("cloudfront",),
    "cloudwatch": ("cloudwatch", "events", "logs"),
    "costexplorer": ("ce",),
    "ec2": ("ec2",),
    "ecr": ("ecr",),
    "efs": ("elasticfilesystem",),
    "eks": ("eks",),
    "elasticache": ("elasticache",),
    "fis": ("fis",),
    "iam": ("iam",),
    "kms": ("kms",),
    "lambda": ("lambda",),
    "mq": ("mq",),
    "rds": ("rds",),
    "route53": ("route53",),
    "s3": ("s3",),
    "secretsmanager": ("secretsmanager",),
    "sns": ("sns",),
    "sqs": ("sqs",),
    "vpc": ("ec2",),
}
#: Services whose endpoint is global (aws:RequestedRegion is us-east-1), granted there only.
GLOBAL_SERVICES = ("budgets", "ce", "cloudfront", "route53")
#: Granted by statements of their own, scoped by tag or by name: never service-wide.
SCOPED_SERVICES = ("iam", "kms")
#: Read-only calls the program makes beside its resources (its look-ups).
LOOKUP_ACTIONS = (
    "ec2:DescribeAvailabilityZones",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
)
#: The program's invokes, and the IAM actions each needs (sts:GetCallerIdentity needs none).
#: A test fails when the program calls an invoke this table lacks.
INVOKE_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": ("ec2:DescribeAvailabilityZones",),
    "aws:index/getCallerIdentity:getCallerIdentity": (),
    "aws:index/getPartition:getPartition": (),
    "aws:index/getRegion:getRegion": (),
    "aws:lb/getLoadBalancer:getLoadBalancer": (
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
    ),
}

#: Services that create a service-linked role the first time the stack uses them; the deploy
#: role may create those and no other.
SERVICE_LINKED = (
    "autoscaling.amazonaws.com",
    "eks.amazonaws.com",
    "eks-nodegroup.amazonaws.com",
    "elasticache.amazonaws.com",
    "elasticfilesystem.amazonaws.com",
    "mq.amazonaws.com",
    "rds.amazonaws.com",
    "replication.ecr.amazonaws.com",
    "spot.amazonaws.com",
)
#: Services the program's roles are passed to (their trust policies' principals; a test reads
#: them from the program), plus EKS, which takes the cluster's and the node group's roles.
PASSED_TO = (
    "backup.amazonaws.com",
    "ec2.amazonaws.com",
    "ecr.amazonaws.com",
    "eks.amazonaws.com",
    "fis.amazonaws.com",
    "lambda.amazonaws.com",
    "monitoring.rds.amazonaws.com",
    "pods.eks.amazonaws.com",
    "rds.amazonaws.com",
    "vpc-flow-logs.amazonaws.com",
)

#: What a stack's roles do to their own objects in the state bucket.
STATE_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject")

#: What the main program declares, uses and attaches (tests read the program and fail when
#: these fall behind it).
PROGRAM_SERVICES = (
    "acm",
    "arc-zonal-shift",
    "backup",
    "backup-storage",
    "budgets",
    "ce",
    "cloudfront",
    "cloudwatch",
    "ec2",
    "ecr",
    "eks",
    "elasticache",
    "elasticfilesystem",
    "events",
    "fis",
    "iam",
    "kms",
    "lambda",
    "logs",
    "mq",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
)
PROGRAM_INVOKES = tuple(INVOKE_ACTIONS)
PROGRAM_MANAGED_POLICIES = (
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
    "CloudWatchAgentServerPolicy",
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "service-role/AWSFaultInjectionSimulatorEC2Access",
    "service-role/AWSFaultInjectionSimulatorNetworkAccess",
    "service-role/AWSFaultInjectionSimulatorRDSAccess",
    "service-role/AmazonEFSCSIDriverPolicy",
    "service-role/AmazonRDSEnhancedMonitoringRole",
)
#: The workflows whose jobs the in-VPC runner takes (their `name:`), as the webhook's pattern.
RUNNER_WORKFLOWS = "^(deploy|zone drill)$"

#: Inline policy bytes per role (IAM counts every character but whitespace): 10,240.
INLINE_LIMIT = 10240

#: Why each statement is there, by Sid: the README's table of the deploy role is this.
WHY: dict[str, str] = {
    "StackServicesInItsRegions": "create, read, update and delete what the stack declares (VPC, EKS, RDS, MQ, "
    "ElastiCache, EFS, S3, ECR, Lambda, SNS, SQS, CloudWatch, Backup, FIS, ARC), only in the stack's region "
    "and its backup-copy region; no service the program does not use",
    "GlobalServicesOfTheStack": "the dashboard's CloudFront distribution, its Route 53 records and certificate, "
    "the budget and the cost anomaly monitor: services that answer in us-east-1 only",
    "TheDashboardsZone": "the dashboard's alias and certificate-validation records, in its hosted zone only",
    "Route53Changes": "the provider waits for each record change to be in sync",
    "ReadIam": "the provider reads every role, policy and instance profile it manages, and the AWS managed "
    "policies it attaches",
    "CreateTheStacksIam": "create roles and policies only with the stack's `project` and `stack` tags (the "
    "provider's default tags), so the deploy role of one stack cannot create another stack's",
    "ChangeTheStacksIam": "change and delete only the roles and policies tagged as this stack's: never the "
    "pipeline's own roles (tagged `scanner-bootstrap`), never another stack's",
    "AttachKnownPolicies": "attach to the stack's roles only the AWS managed policies the program attaches, "
    "or the account's own policies",
    "PassTheStacksRoles": "hand the stack's roles only to the services they trust (EKS, EC2, RDS, Lambda, "
    "Backup, FIS, ECR, VPC flow logs, EKS Pod Identity)",
    "ServiceLinkedRoles": "the service-linked roles EKS, node groups, RDS, ElastiCache, EFS, Amazon MQ, ECR "
    "replication, Auto Scaling and Spot create on first use; no others",
    "CreateTheStacksKeys": "create KMS keys only with the stack's tags",
    "UseTheStacksKeys": "manage and use only the keys tagged as this stack's (the pipeline's state and "
    "secrets keys are not)",
    "TheStacksAliases": "name keys only under `alias/scanner-<stack>-`",
    "ListKeys": "the provider lists keys and aliases to find its own",
    "TheStacksSecretsKey": "encrypt and decrypt the stack's config secrets (its `awskms://` secrets provider)",
    "TheStacksState": "read and write the stack's own state, history, backups and lock in the state bucket "
    "(the bucket's policy refuses every other key to this role)",
    "ListTheStateBucket": "the backend lists the bucket to find the stack and its lock",
    "StateKey": "the state bucket's objects are encrypted with the state key",
}


@dataclass(frozen=True)
class Pipeline:
    """What one stack's policies are written for."""

    stack: str
    """Main program stack (`prod`)."""
    account_id: str
    partition: str
    regions: tuple[str, ...]
    """The stack's region first, then its backup-copy region if it has one."""
    managed_policies: tuple[str, ...]
    """AWS managed policy names (path included, `service-role/AWSBackupServiceRolePolicyForBackup`)
    the program attaches to its roles."""
    state_bucket: str | None = None
    """The self-managed backend's bucket, or None with Pulumi Cloud."""
    state_key_arn: str | None = None
    secrets_key_arn: str | None = None
    """The stack's `awskms://` secrets provider key, or None with the passphrase provider."""
    hosted_zone_id: str | None = None
    """The dashboard's Route 53 zone: record changes are granted there only. None: Route 53 as a service."""
    project: str = PROJECT


def _document(statements: Iterable[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def services_of(types: Iterable[str]) -> set[str]:
    """IAM service prefixes of resource type tokens (`aws:ec2/vpc:Vpc` -> `ec2`); raises KeyError
    naming a module the table lacks."""
    services: set[str] = set()
    for token in types:
        package, _, rest = token.partition(":")
        if package != "aws":
            continue
        module = rest.split("/", 1)[0]
        if module not in MODULE_SERVICES:
            raise KeyError(f"{token}: module {module!r} has no IAM services in bootstrap/permissions.py")
        services.update(MODULE_SERVICES[module])
    return services


def _stack_tags(prefix: str, pipeline: Pipeline) -> dict[str, str]:
    return {f"{prefix}/{PROJECT_TAG}": pipeline.project, f"{prefix}/{STACK_TAG}": pipeline.stack}


def state_objects(pipeline: Pipeline, bucket: str) -> list[str]:
    """The object ARNs of one stack in a self-managed backend (`.pulumi/<kind>/<project>/<stack>`; locks
    under `.pulumi/locks/organization/`). A preview reads them and writes none, not even a lock."""
    base = f"arn:{pipeline.partition}:s3:::{bucket}/.pulumi"
    project, stack = pipeline.project, pipeline.stack
    return [
        f"{base}/stacks/{project}/{stack}.json*",
        f"{base}/history/{project}/{stack}/*",
        f"{base}/backups/{project}/{stack}/*",
        f"{base}/journal/{project}/{stack}/*",
        # Locks sit under the backend's one organization, `organization`.
        f"{base}/locks/organization/{project}/{stack}/*",
    ]


def _state_statements(pipeline: Pipeline, *, write: bool) -> list[dict]:
    if not pipeline.state_bucket:
        return []
    bucket = f"arn:{pipeline.partition}:s3:::{pipeline.state_bucket}"
    meta = f"{bucket}/.pulumi/meta.yaml"
    objects = state_objects(pipeline, pipeline.state_bucket)
    statements: list[dict] = [
        {
            "Sid": "TheStacksState",
            "Effect": "Allow",
            "Action": list(STATE_ACTIONS) if write else ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [*objects, meta],
        },
        {
            "Sid": "ListTheStateBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": bucket,
        },
    ]
    if pipeline.state_key_arn:
        statements.append(
            {
                "Sid": "StateKey",
                "Effect": "Allow",
                # SSE-KMS: a put asks for a data key, a get decrypts it.
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"],
                "Resource": pipeline.state_key_arn,
            }
        )
    return statements


def deploy_policy(pipeline: Pipeline, services: Iterable[str]) -> dict:
    """The deploy role's policy for a program that uses `services` (IAM prefixes)."""
    arn = f"arn:{pipeline.partition}"
    account = pipeline.account_id
    used = set(services)
    regional = sorted(used - set(GLOBAL_SERVICES) - set(SCOPED_SERVICES))
    global_ = sorted(used & set(GLOBAL_SERVICES) - ({"route53"} if pipeline.hosted_zone_id else set()))
    regions = list(dict.fromkeys(pipeline.regions))
    # The dashboard's certificate lives in us-east-1 whatever the stack's region.
    global_regions = [GLOBAL_REGION]
    statements: list[dict] = [
        {
            "Sid": "StackServicesInItsRegions",
            "Effect": "Allow",
            "Action": [f"{s}:*" for s in regional] + [a for a in LOOKUP_ACTIONS if a.split(":")[0] not in regional],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": regions}},
        }
    ]
    if global_ or "acm" in used:
        statements.append(
            {
                "Sid": "GlobalServicesOfTheStack",
                "Effect": "Allow",
                "Action": [f"{s}:*" for s in sorted({*global_, *(["acm"] if "acm" in used else [])})],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": global_regions}},
            }
        )
    if "route53" in used and pipeline.hosted_zone_id:
        statements.append(
            {
                "Sid": "TheDashboardsZone",
                "Effect": "Allow",
                "Action": [
                    "route53:ChangeResourceRecordSets",
                    "route53:ListResourceRecordSets",
                    "route53:GetHostedZone",
                    "route53:ListTagsForResource",
                ],
                "Resource": f"{arn}:route53:::hostedzone/{pipeline.hosted_zone_id}",
            }
        )
        statements.append(
            {
                "Sid": "Route53Changes",
                "Effect": "Allow",
                "Action": ["route53:GetChange", "route53:ListHostedZones", "route53:ListHostedZonesByName"],
                "Resource": "*",
            }
        )
    roles = f"{arn}:iam::{account}:role/*"
    policies = f"{arn}:iam::{account}:policy/*"
    statements += [
        {
            "Sid": "ReadIam",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
                "iam:ListRoleTags",
                "iam:ListPolicyTags",
            ],
            "Resource": "*",
        },
        {
            "Sid": "CreateTheStacksIam",
            "Effect": "Allow",
            "Action": ["iam:CreateRole", "iam:CreatePolicy", "iam:TagRole", "iam:TagPolicy"],
            "Resource": [roles, policies],
            "Condition": {"StringEquals": _stack_tags("aws:RequestTag", pipeline)},
        },
        {
            "Sid": "ChangeTheStacksIam",
            "Effect": "Allow",
            "Action": [
                "iam:DeleteRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:DeletePolicy",
                "iam:CreatePolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            ],
            "Resource": [roles, policies],
            "Condition": {"StringEquals": _stack_tags("aws:ResourceTag", pipeline)},
        },
        {
            "Sid": "AttachKnownPolicies",
            "Effect": "Allow",
            "Action": "iam:AttachRolePolicy",
            "Resource": roles,
            "Condition": {
                "StringEquals": _stack_tags("aws:ResourceTag", pipeline),
                "ArnLike": {
                    "iam:PolicyARN": [f"{arn}:iam::aws:policy/{name}" for name in sorted(pipeline.managed_policies)]
                    + [policies]
                },
            },
        },
        {
            "Sid": "PassTheStacksRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": roles,
            "Condition": {
                "StringEquals": {**_stack_tags("aws:ResourceTag", pipeline), "iam:PassedToService": list(PASSED_TO)}
            },
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": f"{arn}:iam::{account}:role/aws-service-role/*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED)}},
        },
    ]
    if "kms" in used:
        statements += [
            {
                "Sid": "CreateTheStacksKeys",
                "Effect": "Allow",
                "Action": ["kms:CreateKey", "kms:TagResource"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {**_stack_tags("aws:RequestTag", pipeline), "aws:RequestedRegion": regions}
                },
            },
            {
                "Sid": "UseTheStacksKeys",
                "Effect": "Allow",
                "Action": "kms:*",
                "Resource": f"{arn}:kms:*:{account}:key/*",
                "Condition": {"StringEquals": _stack_tags("aws:ResourceTag", pipeline)},
            },
            {
                "Sid": "TheStacksAliases",
                "Effect": "Allow",
                "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
                "Resource": f"{arn}:kms:*:{account}:alias/{pipeline.project}-{pipeline.stack}-*",
            },
            {"Sid": "ListKeys", "Effect": "Allow", "Action": ["kms:ListAliases", "kms:ListKeys"], "Resource": "*"},
        ]
    if pipeline.secrets_key_arn:
        statements.append(
            {
                "Sid": "TheStacksSecretsKey",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": pipeline.secrets_key_arn,
            }
        )
    statements += _state_statements(pipeline, write=True)
    return _document(statements)


def preview_policy(pipeline: Pipeline, invokes: Iterable[str]) -> dict:
    """The preview role's policy: the actions of the program's `invokes`, the stack's state read
    (and its lock), its secrets decrypted."""
    actions = sorted({a for token in invokes for a in INVOKE_ACTIONS[token]})
    statements: list[dict] = []
    if actions:
        statements.append(
            {
                "Sid": "TheProgramsLookups",
                "Effect": "Allow",
                "Action": actions,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": list(dict.fromkeys(pipeline.regions))}},
            }
        )
    if pipeline.secrets_key_arn:
        statements.append(
            {
                "Sid": "DecryptTheStacksSecrets",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": pipeline.secrets_key_arn,
            }
        )
    statements += _state_statements(pipeline, write=False)
    return _document(statements)


def runner_policy(
    partition: str, region: str, account_id: str, log_group_arn: str, subnet_arns: Sequence[str], connection_arn: str
) -> dict:
    """The CodeBuild runner's service role: its logs, the network interfaces CodeBuild makes in
    the stack's private subnets, the GitHub connection's token. Nothing in the stack."""
    return _document(
        [
            {
                "Sid": "ItsLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            },
            {
                "Sid": "DescribeTheNetwork",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcs",
                ],
                "Resource": "*",
            },
            {
                "Sid": "InterfacesInItsSubnets",
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterfacePermission",
                "Resource": f"arn:{partition}:ec2:{region}:{account_id}:network-interface/*",
                "Condition": {
                    "StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                    "ArnEquals": {"ec2:Subnet": list(subnet_arns)},
                },
            },
            {
                "Sid": "TheGitHubConnection",
                "Effect": "Allow",
                "Action": [
                    "codeconnections:GetConnectionToken",
                    "codeconnections:GetConnection",
                    "codestar-connections:GetConnectionToken",
                    "codestar-connections:GetConnection",
                ],
                "Resource": connection_arn,
            },
        ]
    )


def github_trust(provider_arn: str, repository: str, subjects: Sequence[str], operators: Sequence[str] = ()) -> dict:
    """Trust of a role GitHub's OIDC tokens for `repository` may assume, only from the given
    `sub` claims (`environment:production`, `pull_request`); `operators` (role ARNs) may
    assume it too, for the first deploy from outside the VPC."""
    statements: list[dict] = [
        {
            "Sid": "GitHubActions",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                    "token.actions.githubusercontent.com:sub": [f"repo:{repository}:{s}" for s in subjects],
                }
            },
        }
    ]
    if operators:
        statements.append(
            {"Sid": "Operators", "Effect": "Allow", "Principal": {"AWS": list(operators)}, "Action": "sts:AssumeRole"}
        )
    return _document(statements)


def state_bucket_policy(partition: str, bucket: str, stacks: Sequence[tuple[Pipeline, Sequence[str]]]) -> dict:
    """The state bucket's own policy: TLS only; each stack's roles (ARNs) refused every object but
    their stack's and the bucket's settings (so `s3:*` on the stack's own buckets never reaches
    another stack's state or the bucket itself)."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    statements: list[dict] = [
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    for pipeline, roles in stacks:
        if not roles:
            continue
        statements += [
            {
                "Sid": f"OnlyItsState{_sid(pipeline.stack)}",
                "Effect": "Deny",
                "Principal": {"AWS": list(roles)},
                "Action": ["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:RestoreObject"],
                "NotResource": [*state_objects(pipeline, bucket), f"{bucket_arn}/.pulumi/meta.yaml"],
            },
            {
                "Sid": f"NotTheBucket{_sid(pipeline.stack)}",
                "Effect": "Deny",
                "Principal": {"AWS": list(roles)},
                "NotAction": [*STATE_ACTIONS, "s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
            },
        ]
    return _document(statements)


def _sid(stack: str) -> str:
    """A stack name as a Sid part (Sids are alphanumeric)."""
    return "".join(part.capitalize() for part in stack.replace("_", "-").split("-") if part.isalnum()) or "Stack"


def size(document: dict) -> int:
    """The characters IAM counts against a policy's quota: every one but whitespace."""
    return len("".join(json.dumps(document).split()))


def codebuild_trust(account_id: str, project_arn: str) -> dict:
    """A role CodeBuild may take for one project of this account only."""
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": project_arn},
                },
            }
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print a stack's deploy or preview policy, as the bootstrap program writes it."""
    import argparse
    import re
    import sys

    from bootstrap import settings

    class BadArguments(Exception):
        pass

    class Parser(argparse.ArgumentParser):
        def error(self, message: str):  # one line, no usage dump
            raise BadArguments(message)

    parser = Parser(prog="python -m bootstrap.permissions", description=main.__doc__)
    parser.add_argument("--stack", default="prod", help="main stack (its Pulumi.<stack>.yaml gives the regions)")
    parser.add_argument("--role", choices=["deploy", "preview"], default="deploy")
    parser.add_argument("--account", default="123456789012", help="12-digit account id; default a placeholder")
    parser.add_argument("--partition", default="aws", choices=["aws", "aws-cn", "aws-us-gov"])
    parser.add_argument("--state-bucket", help="the self-managed backend's bucket; default none (Pulumi Cloud)")
    try:
        args = parser.parse_args(argv)
    except BadArguments as exc:
        print(f"error: arguments: {exc}", file=sys.stderr)
        return 2
    if not re.fullmatch(r"\d{12}", args.account):
        print(f"error: --account: {args.account!r} is not a 12-digit account id", file=sys.stderr)
        return 2
    try:
        found = settings.main_stack_file(args.stack, settings.MAIN_DIR)
    except ValueError as exc:
        print(f"error: --stack: {exc}", file=sys.stderr)
        return 2
    regions = (found["region"], found["backup_region"]) if found["backup_region"] else (found["region"],)
    pipeline = Pipeline(
        stack=args.stack,
        account_id=args.account,
        partition=args.partition,
        regions=regions,
        managed_policies=PROGRAM_MANAGED_POLICIES,
        state_bucket=args.state_bucket,
        hosted_zone_id=found["hosted_zone_id"],
    )
    document = (
        deploy_policy(pipeline, PROGRAM_SERVICES)
        if args.role == "deploy"
        else preview_policy(pipeline, PROGRAM_INVOKES)
    )
    print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
