"""Zonal autoshift for the cluster and the API load balancer: AWS shifts their traffic away from a
zone it finds impaired, and practises doing so, in the allowed windows only (the service's drills
are at weekends), judging each practice run by the zone-impaired composites (outcome alarms) and
not starting one while a tier is degraded (blocking alarms).

The cluster's zonal shift is on (components/eks/cluster.py); the load balancer's is the
`zonal_shift.config.enabled` attribute its Ingress sets (components/services/manifests.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext


@dataclass(frozen=True)
class ZonalAutoshiftArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    resources: Mapping[str, pulumi.Input[str]]
    """Name (`cluster`, `api-load-balancer`) -> the managed resource's ARN."""
    outcome_alarm_arns: Sequence[pulumi.Input[str]]
    """The zone-impaired composites."""
    blocking_alarm_arns: Sequence[pulumi.Input[str]] = ()
    """Alarms that hold practice runs back while in alarm (the tier composites)."""
    allowed_windows: Sequence[str] = ()
    """`Day:HH:MM-Day:HH:MM` in UTC, when practice runs may start."""


class ZonalAutoshift(pulumi.ComponentResource):
    def __init__(self, name: str, args: ZonalAutoshiftArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:drill:ZonalAutoshift",
            name,
            {"resources": sorted(args.resources), "allowedWindows": list(args.allowed_windows)},
            opts,
        )
        for resource, arn in args.resources.items():
            aws.arczonalshift.ZonalAutoshiftConfiguration(
                f"{name}-{resource}",
                resource_arn=arn,
                zonal_autoshift_status="ENABLED",
                outcome_alarms=[
                    aws.arczonalshift.ZonalAutoshiftConfigurationOutcomeAlarmArgs(alarm_identifier=a, type="CLOUDWATCH")
                    for a in args.outcome_alarm_arns
                ],
                blocking_alarms=[
                    aws.arczonalshift.ZonalAutoshiftConfigurationBlockingAlarmArgs(
                        alarm_identifier=a, type="CLOUDWATCH"
                    )
                    for a in args.blocking_alarm_arns
                ]
                or None,
                allowed_windows=list(args.allowed_windows) or None,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
