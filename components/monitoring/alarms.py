"""The alarm plan (alarm_plan.py) as CloudWatch alarms, its composites and the stack's dashboard.

Each alarm is named `<prefix>-<plan name>`, tagged with its tier and, where it has one, its zone
(`ops/alarms.py` mutes and unmutes by these tags), and acts on the topic of its severity when it
goes into alarm and when it recovers. Dimension values the plan writes as `{ref}` placeholders, and
any literal value with a resource behind it (a database identifier), are replaced by the outputs
in `values`: the alarm then depends on what it watches, which is how the coverage policy finds
the alarms of each resource.

CloudFront publishes its metrics in us-east-1 only, and an alarm acts only on topics of its own
region: alarms on global metrics (and a composite all of whose children are such) are declared in
us-east-1 (the provider's per-resource `region`), acting on `global_topic_arns`, when the stack
lives elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext
from components.monitoring import dashboard_plan
from components.monitoring.alarm_plan import Alarm, AlarmPlan, Composite, Metric
from policies.common import contract

#: A `{ref}` placeholder in a dimension value or a query.
PLACEHOLDER = re.compile(r"\{[a-z][\w:.-]*\}")
#: Namespaces whose metrics exist in us-east-1 only.
GLOBAL_NAMESPACES = ("AWS/CloudFront",)
GLOBAL_REGION = "us-east-1"
#: Severity of each kind of composite: a zone impaired pages; a tier degraded is already paged
#: or ticketed by its own alarms, and its composite opens a ticket.
COMPOSITE_SEVERITY = {"zone": "page", "tier": "ticket", "drill": "page"}


@dataclass(frozen=True)
class AlarmsArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    plan: AlarmPlan
    topic_arns: Mapping[str, pulumi.Input[str]]
    """Severity -> topic of the stack's region."""
    values: Mapping[str, pulumi.Input[str]]
    """What a dimension value stands for, as an output: by `<dimension>=<value>`
    (`ProxyName=scanner-prod-postgres`), or by the value alone (a `{ref}` placeholder)."""
    global_topic_arns: Mapping[str, pulumi.Input[str]] | None = None
    """Severity -> topic in us-east-1, for the global metrics' alarms. Default: `topic_arns` (a
    stack in us-east-1)."""


def is_global(alarm: Alarm) -> bool:
    metrics = [alarm.metric] if alarm.metric else [m for _, m in alarm.inputs]
    return any(m.namespace in GLOBAL_NAMESPACES for m in metrics)


class Alarms(pulumi.ComponentResource):
    composite_arns: dict[str, pulumi.Output[str]]
    """Composite name (`zone-us-east-1a`, `tier-data`) -> ARN: the drill's stop conditions and
    zonal autoshift's outcome alarms."""
    alarm_names: dict[str, str]
    """Plan name -> the alarm's name in CloudWatch."""
    dashboard_name: str

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        plan = args.plan
        super().__init__(
            "scanner:monitoring:Alarms",
            name,
            {
                contract.ALARMS_ZONES_INPUT: list(args.stack.zones),
                "alarmCount": len(plan.alarms),
                "compositeNames": [c.name for c in plan.composites],
            },
            opts,
        )
        stack = args.stack
        elsewhere = stack.region != GLOBAL_REGION
        global_topics = args.global_topic_arns or args.topic_arns
        child = pulumi.ResourceOptions(parent=self)
        dimension_values = {v for a in plan.alarms for m in _metrics(a) for _, v in m.dimensions}
        placeholders = {v for v in dimension_values if PLACEHOLDER.fullmatch(v)}
        placeholders |= {p for a in plan.alarms for p in PLACEHOLDER.findall(a.expression or "")}
        unresolved = sorted(placeholders - set(args.values))
        if unresolved:
            raise ValueError(f"alarm dimension placeholder(s) {', '.join(unresolved)} have no value")
        self.alarm_names = {a.name: f"{stack.name_prefix}-{a.name}" for a in plan.alarms}
        self.alarm_names |= {c.name: f"{stack.name_prefix}-{c.name}" for c in plan.composites}
        region_of = {a.name: GLOBAL_REGION if is_global(a) else stack.region for a in plan.alarms}
        declared: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for alarm in plan.alarms:
            far = is_global(alarm) and elsewhere
            topic = (global_topics if far else args.topic_arns)[alarm.severity]
            declared[alarm.name] = aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm.name}",
                name=self.alarm_names[alarm.name],
                alarm_description=f"[{alarm.severity}] {alarm.reason}",
                comparison_operator=alarm.comparison,
                threshold=alarm.threshold,
                evaluation_periods=alarm.evaluation_periods,
                datapoints_to_alarm=alarm.datapoints,
                treat_missing_data=alarm.missing,
                alarm_actions=[topic],
                ok_actions=[topic],
                tags=_tags(alarm.tier, alarm.zone, alarm.severity),
                region=GLOBAL_REGION if far else None,
                opts=child,
                **self._query(alarm, args.values),
            )
        self.composite_arns = {}
        for composite in plan.composites:
            children = [declared[c] for c in composite.children]
            far = elsewhere and all(region_of[c] == GLOBAL_REGION for c in composite.children)
            severity = COMPOSITE_SEVERITY[composite.kind]
            topic = (global_topics if far else args.topic_arns)[severity]
            region_of[composite.name] = GLOBAL_REGION if far else stack.region
            alarm = aws.cloudwatch.CompositeAlarm(
                f"{name}-{composite.name}",
                alarm_name=self.alarm_names[composite.name],
                alarm_description=_describe(composite),
                # From the children's own names: AWS refuses a rule naming an alarm that does not
                # exist yet, and the outputs make the composite wait for its children.
                alarm_rule=pulumi.Output.all(*(c.name for c in children)).apply(
                    lambda names: " OR ".join(f'ALARM("{n}")' for n in names)
                ),
                alarm_actions=[topic],
                ok_actions=[topic],
                tags=_composite_tags(composite, severity),
                region=GLOBAL_REGION if far else None,
                opts=child,
            )
            self.composite_arns[composite.name] = alarm.arn

        def arn_of(plan_name: str) -> str:
            region = region_of[plan_name]
            return f"arn:{stack.partition}:cloudwatch:{region}:{stack.account_id}:alarm:{self.alarm_names[plan_name]}"

        self.dashboard_name = stack.name_prefix
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=self.dashboard_name,
            dashboard_body=json.dumps(
                dashboard_plan.body(plan, stack.zones, lambda n: region_of[n], arn_of, stack.name_prefix)
            ),
            opts=child,
        )
        self.dashboard_arn = dashboard.dashboard_arn
        self.register_outputs({"compositeArns": self.composite_arns, "dashboard": self.dashboard_name})

    @staticmethod
    def _query(alarm: Alarm, values: Mapping[str, pulumi.Input[str]]) -> dict:
        """The metric of a one-metric alarm, or the metric math of one over its inputs."""

        def dimensions(metric: Metric) -> dict[str, pulumi.Input[str]]:
            return {k: values.get(f"{k}={v}", values.get(v, v)) for k, v in metric.dimensions}

        if alarm.metric is not None:
            m = alarm.metric
            # Percentiles (p99) are extended statistics.
            statistic = {"extended_statistic" if m.statistic.startswith("p") else "statistic": m.statistic}
            return dict(
                namespace=m.namespace, metric_name=m.name, dimensions=dimensions(m), period=alarm.period, **statistic
            )
        # A Metrics Insights query (no inputs) carries its own period; metric math takes its inputs'.
        queries = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="e1",
                expression=_fill(alarm.expression or "", values),
                label=alarm.name,
                return_data=True,
                period=None if alarm.inputs else alarm.period,
            )
        ]
        queries += [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=m.namespace,
                    metric_name=m.name,
                    dimensions=dimensions(m),
                    stat=m.statistic,
                    period=alarm.period,
                ),
            )
            for query_id, m in alarm.inputs
        ]
        return dict(metric_queries=queries)


def _fill(text: str, values: Mapping[str, pulumi.Input[str]]) -> pulumi.Input[str]:
    """`text` with its placeholders replaced by their values (an output once one is)."""
    found = sorted(set(PLACEHOLDER.findall(text)))
    if not found:
        return text

    def fill(resolved: list[str]) -> str:
        out = text
        for placeholder, value in zip(found, resolved, strict=True):
            out = out.replace(placeholder, value)
        return out

    return pulumi.Output.all(*(values[p] for p in found)).apply(fill)


def _metrics(alarm: Alarm) -> list[Metric]:
    return [alarm.metric] if alarm.metric else [m for _, m in alarm.inputs]


def _tags(tier: str, zone: str | None, severity: str) -> dict[str, str]:
    tags = {contract.TIER_TAG: tier, contract.SEVERITY_TAG: severity}
    if zone:
        tags[contract.ZONE_TAG] = zone
    return tags


def _composite_tags(composite: Composite, severity: str) -> dict[str, str]:
    tags = {contract.COMPOSITE_TAG: composite.kind, contract.SEVERITY_TAG: severity}
    if composite.kind != "drill":
        tags[contract.ZONE_TAG if composite.kind == "zone" else contract.TIER_TAG] = composite.key
    return tags


def _describe(composite: Composite) -> str:
    if composite.kind == "drill":
        return "[page] the service fails as a whole: stops a zone drill and holds back autoshift's practice runs"
    if composite.kind == "zone":
        return f"[page] zone {composite.key} impaired: an alarm of a resource in it is in alarm"
    return f"[ticket] tier {composite.key} degraded: one of its alarms is in alarm"
