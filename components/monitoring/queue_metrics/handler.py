"""Queue metrics for RabbitMQ 4 on Amazon MQ, which publishes none per queue: a Lambda function,
one in the private subnet of every zone, run every minute, reads each queue of the service's
vhost from the broker's management API as KEDA's monitoring user and puts, per queue:

- `ReadyMessages`, `UnacknowledgedMessages`, `Consumers`;
- `EstimatedWaitSeconds`: how long the ready messages will wait at the rate the queue delivers
  them now (ready / deliveries per second, Little's law), 0 for an empty queue, and not put when
  nothing is delivered (the no-consumer alarm covers that). Quorum queues do not report their head
  message's timestamp (rabbitmq-server#6813), so the true age of the oldest message is not there
  to read;
- `OldestReadyAgeSeconds` where the queue does report it (classic queues: now minus the head
  message's AMQP `timestamp`);

in the namespace `Scanner/RabbitMQ` with dimensions `VHost` and `Queue`, and `PublisherErrors`
(dimension `Zone`): 0 after a good run, 1 when the broker or the secret could not be read. A run
that fails says so in that metric and returns; it never raises, so the schedule's retries do not
stack up behind an unreachable broker.

Every zone's function puts the same queue metrics: the alarms read their maximum, so one zone's
function is enough, and a zone's loss costs no data point.

Only the standard library and boto3 (both in the Lambda runtime): nothing to package but this file.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

NAMESPACE = "Scanner/RabbitMQ"
#: CloudWatch takes at most 1000 metric data per PutMetricData call.
BATCH = 1000
COLUMNS = (
    "name,messages_ready,messages_unacknowledged,consumers,head_message_timestamp,"
    "message_stats.deliver_get_details.rate"
)


def read_queues(management_url: str, username: str, password: str, vhost: str, timeout: float = 10) -> list[dict]:
    """Each queue of `vhost` as the management API reports it (the columns the metrics need)."""
    url = f"{management_url.rstrip('/')}/api/queues/{urllib.parse.quote(vhost, safe='')}?columns={COLUMNS}"
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the broker's own URL)
        queues = json.loads(response.read())
    if not isinstance(queues, list):
        raise ValueError(f"the management API answered {type(queues).__name__}, not a list of queues")
    return queues


def datums(queues: list[dict], vhost: str, now: float) -> list[dict[str, Any]]:
    """CloudWatch metric data for the queues, as of `now` (seconds since the epoch)."""
    out: list[dict[str, Any]] = []
    for queue in queues:
        dimensions = [{"Name": "VHost", "Value": vhost}, {"Name": "Queue", "Value": str(queue["name"])}]
        values = {
            "ReadyMessages": queue.get("messages_ready") or 0,
            "UnacknowledgedMessages": queue.get("messages_unacknowledged") or 0,
            "Consumers": queue.get("consumers") or 0,
        }
        rate = ((queue.get("message_stats") or {}).get("deliver_get_details") or {}).get("rate") or 0
        head = queue.get("head_message_timestamp")
        if values["ReadyMessages"] == 0:
            values["EstimatedWaitSeconds"] = 0
        elif rate > 0:
            values["EstimatedWaitSeconds"] = values["ReadyMessages"] / rate
        if isinstance(head, int | float) and values["ReadyMessages"]:
            values["OldestReadyAgeSeconds"] = max(0.0, now - head)
        out += [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Value": float(value),
                "Unit": "Seconds" if name.endswith("Seconds") else "Count",
                "Timestamp": now,
            }
            for name, value in values.items()
        ]
    return out


def publish(cloudwatch: Any, data: list[dict[str, Any]], namespace: str = NAMESPACE) -> None:
    for start in range(0, len(data), BATCH):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + BATCH])


def run(
    secret: Callable[[], dict],
    cloudwatch: Any,
    zone: str,
    now: Callable[[], float] = time.time,
    timeout: float = 10,
) -> dict[str, Any]:
    """One run: the queues' metrics and the error metric put; what happened, for the log."""
    error = None
    count = 0
    try:
        credentials = secret()
        vhost = credentials["vhost"]
        queues = read_queues(
            credentials["managementUrl"], credentials["username"], credentials["password"], vhost, timeout
        )
        data = datums(queues, vhost, now())
        publish(cloudwatch, data)
        count = len(queues)
    except Exception as exc:  # noqa: BLE001 (a failed run reports itself in a metric, never raises)
        error = f"{type(exc).__name__}: {exc}"
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "PublisherErrors",
                "Dimensions": [{"Name": "Zone", "Value": zone}],
                "Value": 1.0 if error else 0.0,
                "Unit": "Count",
                "Timestamp": now(),
            }
        ],
    )
    return {"queues": count, "error": error}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point: the secret's ARN and the zone come from the environment."""
    import boto3

    secrets = boto3.client("secretsmanager")
    result = run(
        lambda: json.loads(secrets.get_secret_value(SecretId=os.environ["BROKER_SECRET_ARN"])["SecretString"]),
        boto3.client("cloudwatch"),
        os.environ.get("ZONE", "unknown"),
    )
    print(json.dumps(result))
    return result
