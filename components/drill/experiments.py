"""The zone drill as resources: one AWS FIS experiment template per zone (drill_plan.py says what
each does), the role FIS acts as, the log group it writes the experiment's log to, and the bucket
its experiment reports land in (the stack's dashboard captured before, during and after).

Stop condition: the `drill-stop` composite (components/monitoring/alarm_plan.py), the page-level
alarms of no zone: the service failing as a whole. Not the zone composites: one zone's loss trips
the others' too (the load balancer's nodes in a healthy zone send to targets in the lost one until
the shift; DNS still hands out the lost zone's endpoint addresses). A drill that tests the
alerting itself (`scanner:drillStopConditions: none`) runs with none, and says so in the
template's `scanner.io/drill-stop` tag, which the placement pack reads.

`emptyTargetResolutionMode: skip`: one template serves whether or not, say, the cache's primary is
in the zone; each target is by ARN or by tag and zone, so nothing resolves to another stack's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.buckets import expire, private_bucket
from components.common.context import StackContext
from components.common.iam import service_trust
from components.drill.drill_plan import Action, ZonePlan
from policies.common import contract

#: Managed policies FIS documents for the network, EC2 and RDS actions.
MANAGED_POLICIES = (
    "AWSFaultInjectionSimulatorNetworkAccess",
    "AWSFaultInjectionSimulatorEC2Access",
    "AWSFaultInjectionSimulatorRDSAccess",
)
REPORT_MINUTES = 20
REPORT_RETENTION_DAYS = 400


@dataclass(frozen=True)
class ZoneDrillsArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    plans: Sequence[ZonePlan]
    """One per zone (drill_plan.plan)."""
    arns: Mapping[str, pulumi.Input[str]]
    """Placeholder (`{subnet:public}` per zone as `{subnet:public}@<zone>`, `{database}`, ...) -> ARN."""
    stop_alarm_arns: Sequence[pulumi.Input[str]]
    """The alarms that stop a drill (the drill-stop composite), at most five."""
    dashboard_arn: pulumi.Input[str]
    """The stack's dashboard, captured in each experiment's report."""
    stop_conditions: str = "other-zones"
    """`other-zones` (default) or `none`: a drill that tests the alerting."""


class ZoneDrills(pulumi.ComponentResource):
    template_ids: dict[str, pulumi.Output[str]]
    """Zone -> experiment template id (`aws fis start-experiment --experiment-template-id`)."""

    def __init__(self, name: str, args: ZoneDrillsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:drill:ZoneDrills",
            name,
            {"availabilityZones": [p.zone for p in args.plans], "stopConditions": args.stop_conditions},
            opts,
        )
        stack = args.stack
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=stack.protect, retain_on_delete=stack.protect)
        logs = aws.cloudwatch.LogGroup(
            f"{name}-log", name=f"/aws/fis/{stack.name_prefix}", retention_in_days=400, opts=child
        )
        bucket = report_bucket(name, stack, keep)
        role = aws.iam.Role(
            name,
            # Only FIS's experiments of this account and region (the confused-deputy guard).
            assume_role_policy=service_trust(
                "fis.amazonaws.com",
                stack.account_id,
                f"arn:{stack.partition}:fis:{stack.region}:{stack.account_id}:experiment/*",
            ),
            description="AWS FIS: the zone drill's experiments",
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy}",
                role=role.name,
                policy_arn=f"arn:{stack.partition}:iam::aws:policy/service-role/{policy}",
                opts=pulumi.ResourceOptions(parent=role),
            )
            for policy in MANAGED_POLICIES
        ]
        launchers = sorted(
            {arn for p in args.plans for a in p.actions if a.name == "no-launch-capacity" for arn in a.resource_arns}
        )
        cache_tags = sorted(
            {v for p in args.plans for a in p.actions if a.name == "interrupt-cache" for v in a.resource_tags.values()}
        )
        inline = aws.iam.RolePolicy(
            name,
            role=role.id,
            policy=pulumi.Output.all(pulumi.Output.all(*(args.arns[a] for a in launchers)), bucket.arn).apply(
                lambda v: json.dumps(
                    role_policy(
                        v[0],
                        cache_tags,
                        v[1],
                        # EKS names a managed node group's Auto Scaling group eks-<node group>-<id>.
                        f"arn:{stack.partition}:autoscaling:{stack.region}:{stack.account_id}:autoScalingGroup:*:"
                        "autoScalingGroupName/eks-*",
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        self.template_ids = {}
        for zone_plan in args.plans:
            zone = zone_plan.zone
            alarms = list(args.stop_alarm_arns)[:5]
            stops = (
                [aws.fis.ExperimentTemplateStopConditionArgs(source="none")]
                if args.stop_conditions == "none" or not alarms
                else [
                    aws.fis.ExperimentTemplateStopConditionArgs(source="aws:cloudwatch:alarm", value=a) for a in alarms
                ]
            )
            template = aws.fis.ExperimentTemplate(
                f"{name}-{zone}",
                description=f"{stack.name_prefix}: take {zone} out of every tier for the zone drill"[:512],
                role_arn=role.arn,
                actions=[_action(a) for a in zone_plan.actions],
                targets=[_target(a, zone, args.arns) for a in zone_plan.actions],
                stop_conditions=stops,
                experiment_options=aws.fis.ExperimentTemplateExperimentOptionsArgs(
                    account_targeting="single-account", empty_target_resolution_mode="skip"
                ),
                log_configuration=aws.fis.ExperimentTemplateLogConfigurationArgs(
                    log_schema_version=2,
                    cloudwatch_logs_configuration=aws.fis.ExperimentTemplateLogConfigurationCloudwatchLogsConfigurationArgs(
                        log_group_arn=logs.arn.apply(lambda arn: f"{arn}:*")
                    ),
                ),
                experiment_report_configuration=aws.fis.ExperimentTemplateExperimentReportConfigurationArgs(
                    data_sources=aws.fis.ExperimentTemplateExperimentReportConfigurationDataSourcesArgs(
                        cloudwatch_dashboards=[
                            aws.fis.ExperimentTemplateExperimentReportConfigurationDataSourcesCloudwatchDashboardArgs(
                                dashboard_arn=args.dashboard_arn
                            )
                        ]
                    ),
                    outputs=aws.fis.ExperimentTemplateExperimentReportConfigurationOutputsArgs(
                        s3_configuration=aws.fis.ExperimentTemplateExperimentReportConfigurationOutputsS3ConfigurationArgs(
                            bucket_name=bucket.bucket, prefix=f"reports/{zone}"
                        )
                    ),
                    pre_experiment_duration=f"PT{REPORT_MINUTES}M",
                    post_experiment_duration=f"PT{REPORT_MINUTES}M",
                ),
                tags={
                    "Name": f"{stack.name_prefix}-drill-{zone}",
                    contract.ZONE_TAG: zone,
                    contract.DRILL_STOP_TAG: "none" if args.stop_conditions == "none" or not alarms else "drill-stop",
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, inline]),
            )
            self.template_ids[zone] = template.id
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.role_arn = role.arn
        self.register_outputs({"templateIds": self.template_ids, "reports": bucket.bucket})


def _action(a: Action) -> aws.fis.ExperimentTemplateActionArgs:
    return aws.fis.ExperimentTemplateActionArgs(
        name=a.name,
        action_id=a.action_id,
        description=a.loses[:512],
        parameters=[aws.fis.ExperimentTemplateActionParameterArgs(key=k, value=v) for k, v in a.parameters.items()]
        or None,
        target=aws.fis.ExperimentTemplateActionTargetArgs(key=a.target_key, value=a.name),
    )


def _target(a: Action, zone: str, arns: Mapping[str, pulumi.Input[str]]) -> aws.fis.ExperimentTemplateTargetArgs:
    def arn(placeholder: str) -> pulumi.Input[str]:
        return arns.get(f"{placeholder}@{zone}", arns.get(placeholder, placeholder))

    return aws.fis.ExperimentTemplateTargetArgs(
        name=a.name,
        resource_type=a.resource_type,
        selection_mode="ALL",
        resource_arns=[arn(p) for p in a.resource_arns] or None,
        resource_tags=[
            aws.fis.ExperimentTemplateTargetResourceTagArgs(key=k, value=v) for k, v in a.resource_tags.items()
        ]
        or None,
        filters=[aws.fis.ExperimentTemplateTargetFilterArgs(path=k, values=list(v)) for k, v in a.filters.items()]
        or None,
        parameters=dict(a.target_parameters) or None,
    )


def role_policy(launcher_arns: list[str], cache_tags: list[str], bucket_arn: str, node_group_asgs: str = "*") -> dict:
    """What the managed policies do not grant: the insufficient-capacity errors on the launchers
    only (Karpenter's role, the node group's Auto Scaling group), the cache's power interruption
    on the stack's cache only (by its drill tag), zonal shifts, logging and the experiment report."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InsufficientCapacityForTheLaunchers",
                "Effect": "Allow",
                "Action": "ec2:InjectApiError",
                "Resource": "*",
                "Condition": {
                    "ForAnyValue:StringEquals": {
                        "ec2:FisActionId": ["aws:ec2:api-insufficient-instance-capacity-error"]
                    },
                    "ForAllValues:StringEquals": {"ec2:FisTargetArns": launcher_arns},
                },
            },
            {
                "Sid": "InsufficientCapacityForTheNodeGroup",
                "Effect": "Allow",
                "Action": "ec2:InjectApiError",
                "Resource": "*",
                "Condition": {
                    "ForAnyValue:StringEquals": {
                        "ec2:FisActionId": ["aws:ec2:asg-insufficient-instance-capacity-error"]
                    },
                    # The FIS reference: ec2:FisTargetArns set to the target Auto Scaling groups.
                    "ForAllValues:ArnLike": {"ec2:FisTargetArns": node_group_asgs},
                },
            },
            {
                "Sid": "FindTheNodeGroup",
                "Effect": "Allow",
                "Action": "autoscaling:DescribeAutoScalingGroups",
                "Resource": "*",
            },
            {
                "Sid": "CachePowerInterruption",
                "Effect": "Allow",
                "Action": "elasticache:InterruptClusterAzPower",
                "Resource": "*",
                "Condition": {"StringEquals": {f"aws:ResourceTag/{contract.DRILL_TARGET_TAG}": cache_tags}},
            },
            {
                "Sid": "FindTheCache",
                "Effect": "Allow",
                "Action": "elasticache:DescribeReplicationGroups",
                "Resource": "*",
            },
            {
                "Sid": "ZonalShifts",
                "Effect": "Allow",
                "Action": [
                    "arc-zonal-shift:StartZonalShift",
                    "arc-zonal-shift:GetManagedResource",
                    "arc-zonal-shift:UpdateZonalShift",
                    "arc-zonal-shift:CancelZonalShift",
                    "arc-zonal-shift:ListManagedResources",
                ],
                "Resource": "*",
            },
            {
                "Sid": "FindTargets",
                "Effect": "Allow",
                "Action": ["tag:GetResources", "autoscaling:DescribeTags"],
                "Resource": "*",
            },
            {
                "Sid": "ExperimentLog",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogDelivery",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ExperimentReport",
                "Effect": "Allow",
                "Action": ["cloudwatch:GetDashboard", "cloudwatch:GetMetricWidgetImage"],
                "Resource": "*",
            },
            {
                "Sid": "ExperimentReportObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"{bucket_arn}/reports/*",
            },
        ],
    }


def report_bucket(name: str, stack: StackContext, keep: pulumi.ResourceOptions) -> aws.s3.Bucket:
    """Private, versioned, encrypted, kept with the stack's data; old reports expire."""
    bucket = aws.s3.Bucket(f"{name}-reports", bucket_prefix=f"{stack.name_prefix}-drill-", opts=keep)
    under = pulumi.ResourceOptions(parent=bucket)
    private_bucket(f"{name}-reports", bucket, under)
    expire(
        f"{name}-reports",
        bucket,
        under,
        rule_id="expire-old-reports",
        prefix="reports/",
        days=REPORT_RETENTION_DAYS,
        noncurrent_days=30,
    )
    return bucket
