"""Stand-ins and fixtures' makings shared by the drill's AWS tests (moto has no ARC zonal shift)."""

from __future__ import annotations

import datetime as dt

PREFIX = "scanner-prod"
CLUSTER = "arn:aws:eks:us-east-1:123456789012:cluster/scanner-prod"
ELSEWHERE = "arn:aws:eks:us-east-1:123456789012:cluster/another-team"


def alarm(cloudwatch, name, metric="CPUUtilization", threshold=90.0):
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/RDS",
        MetricName=metric,
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "scanner-prod-postgres"}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=5,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:scanner-prod-page"],
    )


class Shifts:
    """The two ARC zonal shift calls revert makes, over a list of shifts."""

    def __init__(self, shifts):
        self.shifts = shifts
        self.cancelled = []

    def list_zonal_shifts(self, status, nextToken=None):  # noqa: N803 (boto3's names)
        return {"items": [s for s in self.shifts if s["status"] == status]}

    def cancel_zonal_shift(self, zonalShiftId):  # noqa: N803
        self.cancelled.append(zonalShiftId)
        for s in self.shifts:
            if s["zonalShiftId"] == zonalShiftId:
                s["status"] = "CANCELED"


def drill_template(fis, zone="us-east-1a", prefix=PREFIX):
    return fis.create_experiment_template(
        clientToken=f"{prefix}-{zone}",
        description="zone drill",
        roleArn="arn:aws:iam::123456789012:role/drill",
        stopConditions=[{"source": "none"}],
        targets={
            "shift-away": {
                "resourceType": "aws:arc:zonal-shift-managed-resource",
                "resourceArns": [CLUSTER if prefix == PREFIX else ELSEWHERE],
                "selectionMode": "ALL",
            }
        },
        actions={
            "shift-away": {
                "actionId": "aws:arc:start-zonal-autoshift",
                "parameters": {"availabilityZoneIdentifier": zone, "duration": "PT30M"},
                "targets": {"ManagedResources": "shift-away"},
            }
        },
        tags={"Name": f"{prefix}-drill-{zone}"},
    )["experimentTemplate"]["id"]


def tagged_database(rds, name: str, tag: str) -> None:
    # moto places a new instance in the region's first zone, us-east-1a.
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.m7g.large",
        Engine="postgres",
        MultiAZ=True,
        AllocatedStorage=20,
        MasterUsername="scanner",
        MasterUserPassword="not-a-real-one",
        Tags=[{"Key": "scanner.io/drill-target", "Value": tag}],
    )


def queue_datum(cloudwatch, queue: str, minutes_ago: float) -> None:
    cloudwatch.put_metric_data(
        Namespace="Scanner/RabbitMQ",
        MetricData=[
            {
                "MetricName": "ReadyMessages",
                "Dimensions": [{"Name": "VHost", "Value": "scanner"}, {"Name": "Queue", "Value": queue}],
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago),
                "Value": 0.0,
            }
        ],
    )
