"""The queue-metrics publisher (components/monitoring/queue_metrics/handler.py) against a real
RabbitMQ started by the tests, as KEDA's monitoring user, putting to CloudWatch under moto: the
numbers it puts for queues of known depth, consumers and age are those, and a broker it cannot
reach costs one error metric and no exception."""

from __future__ import annotations

import secrets
import time

import boto3
import pika
import pytest
from moto import mock_aws

from components.monitoring.queue_metrics import handler

VHOST = "metrics"
USER = ("metrics-monitor", secrets.token_urlsafe(24))
ADMIN = ("metrics-admin", secrets.token_urlsafe(24))
QUEUES = {"scans.sast": 4, "scans.secrets": 0, "scans.consumed": 2}
AGE = 300
pytestmark = pytest.mark.xdist_group("rabbitmq")


@pytest.fixture(scope="module")
def node(rabbitmq_node):
    """The session's node with a vhost of this module's: three quorum queues, a monitoring user
    with no rights on them (as KEDA's), and messages published `AGE` seconds in the past."""
    definitions = {
        "users": [
            {"name": USER[0], "password": USER[1], "tags": "monitoring"},
            {"name": ADMIN[0], "password": ADMIN[1], "tags": "administrator"},
        ],
        "vhosts": [{"name": VHOST}],
        "permissions": [
            {"user": USER[0], "vhost": VHOST, "configure": "^$", "write": "^$", "read": "^$"},
            {"user": ADMIN[0], "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"},
        ],
        "queues": [
            {"name": q, "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum"}}
            for q in QUEUES
        ],
    }
    status, body = rabbitmq_node.api("POST", "/api/definitions", ("guest", "guest"), definitions)
    assert status in (200, 201, 204), (status, body)
    params = pika.ConnectionParameters(
        host="127.0.0.1",
        port=rabbitmq_node.amqp_port,
        virtual_host=VHOST,
        credentials=pika.PlainCredentials(*ADMIN),
    )
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    published = int(time.time()) - AGE
    for queue, count in QUEUES.items():
        for _ in range(count):
            channel.basic_publish("", queue, b"scan", pika.BasicProperties(delivery_mode=2, timestamp=published))
    # One consumer holds one of scans.consumed's messages unacknowledged.
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume("scans.consumed", lambda *args: None, auto_ack=False)
    connection.process_data_events(time_limit=1)
    wait_for(rabbitmq_node, {"scans.sast": (4, 0, 0), "scans.secrets": (0, 0, 0), "scans.consumed": (1, 1, 1)})
    yield rabbitmq_node, published
    connection.close()


def wait_for(node, expected: dict[str, tuple[int, int, int]]) -> None:
    """Until the management API reports (ready, unacknowledged, consumers) per queue (its
    statistics lag the queues), for up to 15 s."""
    deadline = time.monotonic() + 15
    seen = None
    while time.monotonic() < deadline:
        queues = handler.read_queues(node.management_url, *ADMIN, VHOST)
        seen = {
            q["name"]: (q.get("messages_ready"), q.get("messages_unacknowledged"), q.get("consumers")) for q in queues
        }
        if all(seen.get(name) == value for name, value in expected.items()):
            return
        time.sleep(0.25)
    raise AssertionError(f"the management API reports {seen}, not {expected}")


def statistic(cloudwatch, name: str, dimensions: dict[str, str], at: float) -> float | None:
    points = cloudwatch.get_metric_statistics(
        Namespace=handler.NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=at - 120,
        EndTime=at + 120,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return points[0]["Maximum"] if points else None


@mock_aws
def test_the_publisher_puts_each_queue_s_depth_consumers_and_age(node):
    broker, _ = node
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    secret = {"username": USER[0], "password": USER[1], "vhost": VHOST, "managementUrl": broker.management_url}
    now = time.time()
    result = handler.run(lambda: secret, cloudwatch, "us-east-1a", now=lambda: now)
    assert result == {"queues": 3, "error": None}

    def value(name, queue):
        return statistic(cloudwatch, name, {"VHost": VHOST, "Queue": queue}, now)

    assert value("ReadyMessages", "scans.sast") == 4
    assert value("ReadyMessages", "scans.secrets") == 0
    assert (value("ReadyMessages", "scans.consumed"), value("UnacknowledgedMessages", "scans.consumed")) == (1, 1)
    assert (value("Consumers", "scans.consumed"), value("Consumers", "scans.sast")) == (1, 0)
    # Quorum queues report no head-message timestamp: no age. Nothing was delivered from scans.sast
    # in the window while requests wait: no estimate (the rate says nothing). An empty queue waits 0.
    assert value("OldestReadyAgeSeconds", "scans.sast") is None
    assert value("EstimatedWaitSeconds", "scans.sast") is None
    assert value("EstimatedWaitSeconds", "scans.secrets") == 0
    # The one node's memory against its watermark, its free disk against its limit (50 MB here).
    memory = statistic(cloudwatch, "NodeMemoryUsedPercentMax", {"VHost": VHOST}, now)
    disk = statistic(cloudwatch, "NodeDiskFreeRatioMin", {"VHost": VHOST}, now)
    assert memory is not None and 0 < memory < 100
    assert disk is not None and disk > 1
    assert statistic(cloudwatch, "PublisherErrors", {"Zone": "us-east-1a"}, now) == 0


@mock_aws
def test_an_unreachable_broker_costs_an_error_metric_and_no_exception():
    import servers

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    closed = f"http://127.0.0.1:{servers.free_port()}"
    secret = {"username": USER[0], "password": USER[1], "vhost": VHOST, "managementUrl": closed}
    now = time.time()
    result = handler.run(lambda: secret, cloudwatch, "us-east-1b", now=lambda: now, timeout=2)
    assert result["queues"] == 0 and result["error"].startswith("URLError")
    assert statistic(cloudwatch, "PublisherErrors", {"Zone": "us-east-1b"}, now) == 1
    assert cloudwatch.list_metrics(Namespace=handler.NAMESPACE, MetricName="ReadyMessages")["Metrics"] == []


@mock_aws
def test_a_refused_login_is_an_error_too(node):
    broker, _ = node
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    secret = {"username": USER[0], "password": "not-it", "vhost": VHOST, "managementUrl": broker.management_url}
    result = handler.run(lambda: secret, cloudwatch, "us-east-1c")
    assert "401" in result["error"]


def test_the_wait_is_the_depth_over_the_delivery_rate_and_the_age_is_read_where_reported():
    now = 1_800_000_000.0
    queues = [
        # The window's average, not the last sample's rate, decides.
        {"name": "busy", "messages_ready": 600, "message_stats": {"deliver_get_details": {"rate": 0, "avg_rate": 2.0}}},
        {"name": "classic", "messages_ready": 3, "head_message_timestamp": now - 90},
        {"name": "idle", "messages_ready": 0, "head_message_timestamp": None},
    ]
    values = {(d["Dimensions"][1]["Value"], d["MetricName"]): d["Value"] for d in handler.datums(queues, VHOST, now)}
    assert values[("busy", "EstimatedWaitSeconds")] == 300
    assert values[("classic", "OldestReadyAgeSeconds")] == 90
    assert ("classic", "EstimatedWaitSeconds") not in values  # nothing delivered in the window
    assert values[("idle", "EstimatedWaitSeconds")] == 0 and ("idle", "OldestReadyAgeSeconds") not in values


def test_the_broker_s_fullest_node_and_lowest_disk_are_put():
    nodes = [
        {"name": "a", "mem_used": 40, "mem_limit": 100, "disk_free": 900, "disk_free_limit": 100, "running": True},
        {"name": "b", "mem_used": 95, "mem_limit": 100, "disk_free": 150, "disk_free_limit": 100, "running": True},
        {"name": "c", "mem_used": 99, "mem_limit": 100, "disk_free": 50, "disk_free_limit": 100, "running": False},
    ]
    values = {d["MetricName"]: d["Value"] for d in handler.node_datums(nodes, VHOST, 0.0)}
    assert values == {"NodeMemoryUsedPercentMax": 95.0, "NodeDiskFreeRatioMin": 1.5}
    assert handler.node_datums([], VHOST, 0.0) == []


def test_a_cloudwatch_that_refuses_the_error_metric_does_not_raise_either():
    class Refusing:
        def put_metric_data(self, **_):
            raise ConnectionError("no route to monitoring")

    result = handler.run(lambda: {}, Refusing(), "us-east-1a")
    assert result["error"].startswith("KeyError") and "ConnectionError: no route to monitoring" in result["error"]


def test_more_than_a_call_s_worth_of_data_goes_in_batches():
    calls = []

    class Recorder:
        def put_metric_data(self, Namespace, MetricData):  # noqa: N803 (boto3's names)
            calls.append(len(MetricData))

    draining = {"message_stats": {"deliver_get_details": {"avg_rate": 0.5}}}
    data = handler.datums([{"name": f"q{i}", "messages_ready": 1, **draining} for i in range(400)], VHOST, time.time())
    handler.publish(Recorder(), data)
    # Four metrics a queue (ready, unacknowledged, consumers, the wait; no age without a head
    # timestamp): 1600 data, in two calls.
    assert calls == [1000, 600]


def test_the_function_s_aws_clients_give_up_in_seconds(monkeypatch):
    """boto3's defaults wait 60 s per connection and per read, longer than the function's timeout:
    a zone cut off from the AWS APIs would time out before reporting anything."""
    import botocore.config

    made = {}

    def client(service, config=None, **_):
        made[service] = config
        raise RuntimeError("no AWS here")

    monkeypatch.setattr(boto3, "client", client)
    monkeypatch.setenv("BROKER_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    with pytest.raises(RuntimeError):
        handler.handler({}, None)
    config = made["secretsmanager"]
    assert isinstance(config, botocore.config.Config)
    assert (config.connect_timeout, config.read_timeout) == (3, 5) and config.retries == {"total_max_attempts": 2}
