"""Where alarms go: an SNS topic per severity (`page`, `ticket`), encrypted with a key of the
stack's, the subscriptions from the stack config, and the cost alerts (an AWS Budgets monthly
budget and a Cost Anomaly Detection monitor) to the ticket topic.

The topics take messages from CloudWatch alarms, AWS Budgets and Cost Anomaly Detection of this
account only (each service principal with an `aws:SourceAccount` condition), and are managed by the
account; nothing else may publish or subscribe. The key lets those services encrypt what they
publish (SNS encrypts at rest with it, and a publisher needs `kms:GenerateDataKey*` and
`kms:Decrypt` on a topic's key).

A stack outside us-east-1 has a second `Alerting` there (`region`): CloudFront's metrics exist in
us-east-1 only, an alarm acts only on topics of its own region, and Cost Anomaly Detection, whose
resources live in us-east-1, alerts that copy's ticket topic. The budget and the anomaly monitor are
declared once per stack (`cost_alerts`).

CloudWatch is admitted by the ARN of the account's alarms in the topic's region (`aws:SourceArn`,
which AWS's examples use for CloudWatch); Budgets and Cost Anomaly Detection by `aws:SourceAccount`
(a `aws:SourceArn` condition has stopped Budgets from publishing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext

SEVERITIES = ("page", "ticket")
#: Services that publish alerts to the topics.
PUBLISHERS = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com", "costalerts.amazonaws.com")
#: Percentages of the budget that alert: actual spend at each, and the month's forecast at 100.
BUDGET_ACTUAL_PERCENTS = (80, 100)
BUDGET_FORECAST_PERCENT = 100
#: A cost anomaly alerts when its total impact reaches this many dollars.
ANOMALY_IMPACT_USD = 100


@dataclass(frozen=True)
class AlertingArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    subscriptions: dict[str, tuple[str, ...]]
    """Severity -> endpoints (`email:<address>` or an `https://` URL)."""
    monthly_budget_usd: int | None = None
    """The monthly budget (actual and forecast alerts to the ticket topic). Default none."""
    cost_alerts: bool = True
    """Declare the budget and the anomaly monitor (once per stack, in its home region). Default true."""
    region: str | None = None
    """Region of the topics and their key, for the us-east-1 copy. Default: the provider's."""
    suffix: str = ""
    """Appended to the topics' names (`-global` for the us-east-1 copy). Default none."""


class Alerting(pulumi.ComponentResource):
    topic_arns: dict[str, pulumi.Output[str]]
    """Severity -> topic ARN."""
    topics: dict[str, aws.sns.Topic]

    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:monitoring:Alerting",
            name,
            {"severities": list(SEVERITIES), "subscriptions": {k: list(v) for k, v in args.subscriptions.items()}},
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        stack = args.stack
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{stack.name_prefix} alert topics{args.suffix}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(key_policy(stack.partition, stack.account_id)),
            region=args.region,
            # A deleted key makes what SNS still holds unreadable: kept with the stack's data.
            opts=pulumi.ResourceOptions(parent=self, protect=stack.protect, retain_on_delete=stack.protect),
        )
        self.topics = {}
        self._policies: list[aws.sns.TopicPolicy] = []
        for severity in SEVERITIES:
            topic = aws.sns.Topic(
                f"{name}-{severity}",
                name=f"{stack.name_prefix}-{severity}{args.suffix}",
                kms_master_key_id=key.arn,
                region=args.region,
                opts=child,
            )
            policy = aws.sns.TopicPolicy(
                f"{name}-{severity}",
                arn=topic.arn,
                policy=topic.arn.apply(
                    lambda arn: json.dumps(
                        topic_policy(arn, stack.partition, args.region or stack.region, stack.account_id)
                    )
                ),
                region=args.region,
                opts=pulumi.ResourceOptions(parent=topic),
            )
            self._policies.append(policy)
            for endpoint in args.subscriptions.get(severity, ()):
                protocol, _, address = endpoint.partition(":")
                protocol, address = ("https", endpoint) if protocol == "https" else (protocol, address)
                aws.sns.TopicSubscription(
                    f"{name}-{severity}-{_label(address)}",
                    topic=topic.arn,
                    protocol=protocol,
                    endpoint=address,
                    region=args.region,
                    opts=pulumi.ResourceOptions(parent=topic),
                )
            self.topics[severity] = topic
        self.topic_arns = {s: t.arn for s, t in self.topics.items()}
        if args.cost_alerts:
            self._cost_alerts(name, args)
        self.register_outputs({"topicArns": self.topic_arns})

    def _cost_alerts(self, name: str, args: AlertingArgs) -> None:
        stack = args.stack
        ticket = self.topics["ticket"]
        # The services may publish only once the topic's policy lets them.
        policies = list(self._policies)
        # The stack's cost: what carries its `stack` tag (a cost allocation tag once activated).
        tag = {"Tags": {"Key": "stack", "Values": [stack.stack], "MatchOptions": ["EQUALS"]}}
        if args.monthly_budget_usd is not None:
            notifications = [
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    notification_type="ACTUAL",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[ticket.arn],
                )
                for percent in BUDGET_ACTUAL_PERCENTS
            ]
            notifications.append(
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    notification_type="FORECASTED",
                    threshold=BUDGET_FORECAST_PERCENT,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[ticket.arn],
                )
            )
            aws.budgets.Budget(
                f"{name}-monthly",
                name=f"{stack.name_prefix}-monthly",
                budget_type="COST",
                limit_amount=str(args.monthly_budget_usd),
                limit_unit="USD",
                time_unit="MONTHLY",
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:stack${stack.stack}"])
                ],
                notifications=notifications,
                opts=pulumi.ResourceOptions(parent=self, depends_on=policies),
            )
        monitor = aws.costexplorer.AnomalyMonitor(
            f"{name}-anomalies",
            name=f"{stack.name_prefix}-spend",
            monitor_type="CUSTOM",
            monitor_specification=json.dumps(tag),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.costexplorer.AnomalySubscription(
            f"{name}-anomalies",
            name=f"{stack.name_prefix}-spend",
            frequency="IMMEDIATE",
            monitor_arn_lists=[monitor.arn],
            subscribers=[aws.costexplorer.AnomalySubscriptionSubscriberArgs(type="SNS", address=ticket.arn)],
            threshold_expression=aws.costexplorer.AnomalySubscriptionThresholdExpressionArgs(
                dimension=aws.costexplorer.AnomalySubscriptionThresholdExpressionDimensionArgs(
                    key="ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                    match_options=["GREATER_THAN_OR_EQUAL"],
                    values=[str(ANOMALY_IMPACT_USD)],
                )
            ),
            opts=pulumi.ResourceOptions(parent=monitor, depends_on=policies),
        )


def _label(address: str) -> str:
    """A resource-name-safe form of an endpoint."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in address.split("://")[-1]).strip("-")[:60]


def key_policy(partition: str, account_id: str) -> dict:
    """The account administers the key; the alert publishers may encrypt with it for this account."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                # SNS asks for these on the publisher's behalf when it encrypts what they publish.
                "Sid": "AlertPublishersEncrypt",
                "Effect": "Allow",
                "Principal": {"Service": list(PUBLISHERS)},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    }


def topic_policy(topic_arn: str, partition: str, region: str, account_id: str) -> dict:
    """The account manages the topic; the alert publishers of this account may publish to it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountManages",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": [
                    "SNS:GetTopicAttributes",
                    "SNS:SetTopicAttributes",
                    "SNS:AddPermission",
                    "SNS:RemovePermission",
                    "SNS:DeleteTopic",
                    "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic",
                    "SNS:Publish",
                ],
                "Resource": topic_arn,
            },
            {
                "Sid": "AccountAlarms",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"}
                },
            },
            {
                "Sid": "AccountCostAlerts",
                "Effect": "Allow",
                "Principal": {"Service": ["budgets.amazonaws.com", "costalerts.amazonaws.com"]},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
