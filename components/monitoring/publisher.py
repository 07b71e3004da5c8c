"""The queue-metrics publisher as resources: one Lambda function in the private subnet of every
zone, each run every minute by an EventBridge rule of its own (queue_metrics/handler.py says what
it reads and puts).

One function per zone, not one function in several subnets: Lambda picks the subnet of a run
itself, and a zone's alarms (`queue-metrics-silent-<zone>`) must say which zone's publisher has
stopped. All of them put the same queue metrics; the alarms read the maximum, so any one zone's
function keeps the queue alarms fed.

Least privilege: the functions share a role that may put metric data in the publisher's namespace
only (the `cloudwatch:namespace` condition key), read its one broker secret (and decrypt it only
through Secrets Manager), write its own log groups, and manage the network interfaces a function in
a VPC needs (EC2 grants those on `*` only). The role is tagged as the data-tier client
`queue-metrics`, so the security pack checks it reads that user's secret and no other.

Network: a security group of its own, admitted to the broker's management API (443) by a rule on
the broker's group; out on 443 only (the broker, and Secrets Manager and CloudWatch through the
interface endpoints or the NAT gateways).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext
from components.common.iam import service_trust
from components.common.sg_rules import allow_in
from components.monitoring.alarm_plan import QUEUE_NAMESPACE
from policies.common import contract

HANDLER = Path(__file__).parent / "queue_metrics" / "handler.py"
#: The newest Python runtime Lambda runs on arm64 (Graviton: about 20 % cheaper per GB-second).
RUNTIME = "python3.13"
CLIENT = "queue-metrics"
#: A run reads two management API pages and puts a few hundred data: well under the minute.
TIMEOUT_SECONDS = 50
LOG_RETENTION_DAYS = 14


@dataclass(frozen=True)
class QueueMetricsPublisherArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    """Zone -> private subnet id: one function in each."""
    broker_security_group_id: pulumi.Input[str]
    """The broker's security group: the functions are admitted to its management API."""
    secret_arn: pulumi.Input[str]
    """The publisher's own broker user's secret (the management URL, vhost and login)."""
    secret_key_arn: pulumi.Input[str]
    """The key that secret is encrypted with."""
    schedule: str = "rate(1 minute)"
    """When each function runs. Default every minute (the alarms' period)."""


class QueueMetricsPublisher(pulumi.ComponentResource):
    function_names: dict[str, str]
    """Zone -> function name (known before deploy: the alarms name them)."""
    functions: dict[str, aws.lambda_.Function]

    def __init__(self, name: str, args: QueueMetricsPublisherArgs, opts: pulumi.ResourceOptions | None = None):
        zones = [z for z in args.stack.zones if z in args.subnet_ids]
        super().__init__(
            "scanner:monitoring:QueueMetricsPublisher",
            name,
            {"availabilityZones": zones, "namespace": QUEUE_NAMESPACE},
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.stack.name_prefix
        self.function_names = {zone: f"{prefix}-queue-metrics-{zone}"[:64] for zone in zones}
        logs = {
            zone: aws.cloudwatch.LogGroup(
                f"{name}-{zone}",
                name=f"/aws/lambda/{function}",
                retention_in_days=LOG_RETENTION_DAYS,
                tags={contract.ZONE_TAG: zone},
                opts=child,
            )
            for zone, function in self.function_names.items()
        }
        role = aws.iam.Role(
            name,
            assume_role_policy=service_trust("lambda.amazonaws.com", args.stack.account_id),
            description="queue-metrics publisher: put its namespace's metrics, read its broker secret",
            tags={contract.CLIENT_TAG: CLIENT},
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            name,
            role=role.id,
            policy=pulumi.Output.all(
                args.secret_arn, args.secret_key_arn, pulumi.Output.all(*(g.arn for g in logs.values()))
            ).apply(lambda v: publisher_policy(v[0], v[1], v[2])),
            opts=pulumi.ResourceOptions(parent=role),
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-functions",
            vpc_id=args.vpc_id,
            description="queue-metrics publisher: HTTPS out only (broker management API, AWS APIs)",
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-https-out",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            description="HTTPS to the broker's management API, Secrets Manager and CloudWatch",
            opts=pulumi.ResourceOptions(parent=group),
        )
        allow_in(
            f"{name}-management",
            args.broker_security_group_id,
            443,
            from_group=group.id,
            description="management API from the queue-metrics publisher",
            parent=group,
        )
        code = pulumi.AssetArchive({"handler.py": pulumi.FileAsset(str(HANDLER))})
        self.functions = {}
        for zone, function in self.function_names.items():
            fn = aws.lambda_.Function(
                f"{name}-{zone}",
                name=function,
                description=f"Puts the broker's per-queue metrics to {QUEUE_NAMESPACE} from {zone}",
                runtime=RUNTIME,
                architectures=["arm64"],
                handler="handler.handler",
                code=code,
                role=role.arn,
                timeout=TIMEOUT_SECONDS,
                memory_size=128,
                # No reserved concurrency: Lambda refuses a reservation that leaves the account
                # under 100 unreserved, which new accounts (a quota of 10 or 50) always would.
                # Runs do not overlap anyway: each ends within TIMEOUT_SECONDS, under the minute.
                vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                    subnet_ids=[args.subnet_ids[zone]], security_group_ids=[group.id]
                ),
                environment=aws.lambda_.FunctionEnvironmentArgs(
                    variables={"BROKER_SECRET_ARN": args.secret_arn, "ZONE": zone}
                ),
                logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=logs[zone].name),
                tags={contract.ZONE_TAG: zone},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, logs[zone]]),
            )
            # EventBridge hands the run to Lambda's asynchronous queue, which retries twice after an
            # error and for hours after throttling: a missed minute stays a missing point instead.
            aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-{zone}",
                function_name=fn.name,
                maximum_retry_attempts=0,
                maximum_event_age_in_seconds=60,
                opts=pulumi.ResourceOptions(parent=fn),
            )
            rule = aws.cloudwatch.EventRule(
                f"{name}-{zone}",
                description=f"Runs the queue-metrics publisher of {zone}",
                schedule_expression=args.schedule,
                tags={contract.ZONE_TAG: zone},
                opts=pulumi.ResourceOptions(parent=fn),
            )
            permission = aws.lambda_.Permission(
                f"{name}-{zone}",
                action="lambda:InvokeFunction",
                function=fn.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                opts=pulumi.ResourceOptions(parent=fn),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{zone}",
                rule=rule.name,
                arn=fn.arn,
                # Nor does EventBridge retry a delivery it could not make.
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=60, maximum_retry_attempts=0
                ),
                opts=pulumi.ResourceOptions(parent=fn, depends_on=[permission]),
            )
            self.functions[zone] = fn
        self.security_group_id = group.id
        self.register_outputs({"functionNames": self.function_names, "roleArn": role.arn})


def publisher_policy(secret_arn: str, key_arn: str, log_group_arns: list[str]) -> str:
    """The publisher role's one policy document."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PutItsNamespaceOnly",
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": QUEUE_NAMESPACE}},
                },
                {
                    "Sid": "ReadItsSecret",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": secret_arn,
                },
                {
                    "Sid": "DecryptItThroughSecretsManager",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key_arn,
                    "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
                },
                {
                    "Sid": "WriteItsLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": sorted(f"{arn}:*" for arn in log_group_arns),
                },
                {
                    # Lambda's VPC attachment: EC2 takes no resource narrower than * for these.
                    "Sid": "VpcNetworkInterfaces",
                    "Effect": "Allow",
                    "Action": [
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    "Resource": "*",
                },
            ],
        }
    )
