"""Queue metrics for RabbitMQ 4 on Amazon MQ, which publishes none per queue: a Lambda function,
one in the private subnet of every zone, run every minute, reads each queue of the service's
vhost from the broker's management API as KEDA's monitoring user and puts, per queue:

- `ReadyMessages`, `UnacknowledgedMessages`, `Consumers`;
- `EstimatedWaitSeconds`: how long the ready messages will wait at the rate the queue delivered
  over the last `WINDOW` seconds (ready / deliveries per second, Little's law), 0 for an empty
  queue, and nothing when requests wait and nothing was delivered in the window (the rate says
  nothing then: every Job may be busy with a long scan; the no-consumer and backlog alarms judge
  that case). A scan Job holds its message for minutes, so the instantaneous rate is mostly 0: the
  average over the window is what says whether the queue drains. The window is short so that a
  burst after a quiet spell is judged by the rate its Jobs drain it at, not by the quiet. Quorum queues do not report
  their head message's timestamp (rabbitmq-server#6813), so the true age of the oldest message is
  not there to read;
- `OldestReadyAgeSeconds` where the queue does report it (classic queues: now minus the head
  message's AMQP `timestamp`);

in the namespace `Scanner/RabbitMQ` with dimensions `VHost` and `Queue`; for the broker (dimension
`VHost`), the fullest node's memory against its high watermark (`NodeMemoryUsedPercentMax`) and
the lowest node's free disk over its limit (`NodeDiskFreeRatioMin`): Amazon MQ's broker-level
metrics sum the three nodes, and one node at its watermark blocks publishers on all of them; and
`PublisherErrors`
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
    "message_stats.deliver_get_details.avg_rate,message_stats.deliver_get_details.rate"
)
#: The window the delivery rate is averaged over, in seconds (five of the management API's one-minute samples).
WINDOW = 300
#: A run must end well inside the function's 50 s: a broker or an AWS API that does not answer
#: costs seconds, not the run (boto3's defaults wait 60 s per connection and per read).
AWS_TIMEOUTS = {"connect_timeout": 3, "read_timeout": 5, "retries": {"total_max_attempts": 2}}
NODE_COLUMNS = "name,mem_used,mem_limit,disk_free,disk_free_limit,running"


def _get(management_url: str, path: str, username: str, password: str, timeout: float) -> list[dict]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(management_url.rstrip("/") + path, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the broker's own URL)
        answer = json.loads(response.read())
    if not isinstance(answer, list):
        raise ValueError(f"the management API answered {type(answer).__name__} for {path.split('?')[0]}, not a list")
    return answer


def read_queues(management_url: str, username: str, password: str, vhost: str, timeout: float = 10) -> list[dict]:
    """Each queue of `vhost` as the management API reports it (the columns the metrics need), its
    delivery rate averaged over `WINDOW` seconds."""
    path = (
        f"/api/queues/{urllib.parse.quote(vhost, safe='')}?columns={COLUMNS}&msg_rates_age={WINDOW}&msg_rates_incr=60"
    )
    return _get(management_url, path, username, password, timeout)


def read_nodes(management_url: str, username: str, password: str, timeout: float = 10) -> list[dict]:
    return _get(management_url, f"/api/nodes?columns={NODE_COLUMNS}", username, password, timeout)


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
        details = (queue.get("message_stats") or {}).get("deliver_get_details") or {}
        rate = details.get("avg_rate", details.get("rate")) or 0
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


def node_datums(nodes: list[dict], vhost: str, now: float) -> list[dict[str, Any]]:
    """The fullest node's memory (percent of its watermark) and the lowest node's free disk (over
    its limit), of the nodes that run."""
    running = [n for n in nodes if n.get("running", True) and n.get("mem_limit") and n.get("disk_free_limit")]
    if not running:
        return []
    dimensions = [{"Name": "VHost", "Value": vhost}]
    values = {
        "NodeMemoryUsedPercentMax": max(100.0 * n["mem_used"] / n["mem_limit"] for n in running),
        "NodeDiskFreeRatioMin": min(n["disk_free"] / n["disk_free_limit"] for n in running),
    }
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": "None", "Timestamp": now}
        for name, value in values.items()
    ]


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
        nodes = read_nodes(credentials["managementUrl"], credentials["username"], credentials["password"], timeout)
        at = now()
        publish(cloudwatch, datums(queues, vhost, at) + node_datums(nodes, vhost, at))
        count = len(queues)
    except Exception as exc:  # noqa: BLE001 (a failed run reports itself in a metric, never raises)
        error = f"{type(exc).__name__}: {exc}"
    try:
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
    except Exception as exc:  # noqa: BLE001 (CloudWatch unreachable: only the run's log can say so)
        error = (
            f"{error}; and the error metric: {type(exc).__name__}: {exc}" if error else f"{type(exc).__name__}: {exc}"
        )
    return {"queues": count, "error": error}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point: the secret's ARN and the zone come from the environment."""
    import boto3
    from botocore.config import Config

    config = Config(**AWS_TIMEOUTS)
    secrets = boto3.client("secretsmanager", config=config)
    result = run(
        lambda: json.loads(secrets.get_secret_value(SecretId=os.environ["BROKER_SECRET_ARN"])["SecretString"]),
        boto3.client("cloudwatch", config=config),
        os.environ.get("ZONE", "unknown"),
    )
    print(json.dumps(result))
    return result
