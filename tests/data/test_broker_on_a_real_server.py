"""The broker plan against a real RabbitMQ (Debian's rabbitmq-server, started for these tests on
loopback ports): the rendered definitions load, and real clients (pika over AMQP, the management
API over HTTP) can do what their user is for and are refused everything else.

The Debian server is RabbitMQ 3.10; Amazon MQ runs 4.2. What these tests rely on behaves the same
on both: quorum queues, `x-delivery-limit` with dead-lettering, `x-max-length` with
`reject-publish`, the configure / write / read permission patterns and the `monitoring` tag. (On
4.x a quorum queue without `x-delivery-limit` gets a default limit of 20; the plan always sets one.
A quorum queue enforces its length limit once it is over it, so it may hold one message more.)
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
import servers

from components.data import broker_topology as topology

ENGINES = ("sast", "secrets")
PUBLISHERS = ("api", "webhooks")
DELIVERY_LIMIT = 2
MAX_LENGTH = 3
PLAN = topology.plan(ENGINES, PUBLISHERS, delivery_limit=DELIVERY_LIMIT, max_length=MAX_LENGTH)
PASSWORDS = {u.name: secrets.token_urlsafe(24) for u in PLAN.users}
ADMIN = ("scanner_admin", secrets.token_urlsafe(24))
#: One server for the module: its tests share one worker when the tests run in parallel.
pytestmark = pytest.mark.xdist_group("rabbitmq")


@pytest.fixture(scope="session")
def broker(rabbitmq_node) -> Iterator[servers.RabbitMq]:
    """The session's node (tests/conftest.py) with the plan's definitions loaded, once."""
    status, body = rabbitmq_node.api("POST", "/api/definitions", ("guest", "guest"), PLAN.definitions(PASSWORDS, ADMIN))
    assert status in (200, 201, 204), (status, body)
    yield rabbitmq_node


def connect(broker: servers.RabbitMq, client: str) -> pika.BlockingConnection:
    user = PLAN.user(client).name
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            port=broker.amqp_port,
            virtual_host=PLAN.vhost,
            credentials=pika.PlainCredentials(user, PASSWORDS[user]),
            connection_attempts=3,
            retry_delay=0.5,
        )
    )


def admin_channel(broker):
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            port=broker.amqp_port,
            virtual_host=PLAN.vhost,
            credentials=pika.PlainCredentials(*ADMIN),
        )
    )
    return connection, connection.channel()


def publish(channel, exchange: str, routing_key: str, body: bytes = b"scan") -> None:
    """A confirmed, mandatory publish: raises when the broker nacks or cannot route it."""
    channel.basic_publish(exchange, routing_key, body, properties=pika.BasicProperties(delivery_mode=2), mandatory=True)


def refused(action) -> bool:
    """Whether the broker closes the channel with 403 ACCESS_REFUSED for `action`."""
    try:
        action()
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 403, exc
        return True
    return False


def purge(broker, *queues: str) -> None:
    connection, channel = admin_channel(broker)
    with connection:
        for queue in queues:
            channel.queue_purge(queue)


def count(broker, queue: str) -> int:
    """The queue's message count now (a passive declare: the queue itself answers)."""
    connection, channel = admin_channel(broker)
    with connection:
        return channel.queue_declare(queue, passive=True).method.message_count


def depth(broker, queue: str, expected: int, user=ADMIN) -> int | None:
    """The queue's message count as the management API reports it, as KEDA reads it (its
    statistics lag the queue by up to the collection interval): polled until it is `expected`,
    for up to 10 s."""
    found = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body = broker.api("GET", f"/api/queues/{PLAN.vhost}/{urllib.parse.quote(queue, safe='')}", user)
        assert status == 200, (status, body)
        found = body.get("messages")
        if found == expected:
            break
        time.sleep(0.2)
    return found


def test_every_planned_queue_is_a_quorum_queue_with_its_limits(broker):
    status, queues = broker.api("GET", f"/api/queues/{PLAN.vhost}", ADMIN)
    assert status == 200
    found = {q["name"]: q for q in queues}
    assert set(found) == {q.name for q in PLAN.queues}
    assert {q["type"] for q in queues} == {"quorum"}
    for name in PLAN.scan_queues.values():
        arguments = found[name]["arguments"]
        assert arguments["x-delivery-limit"] == DELIVERY_LIMIT
        assert arguments["x-dead-letter-exchange"] == PLAN.dead_letter_exchange
        assert arguments["x-max-length"] == MAX_LENGTH and arguments["x-overflow"] == "reject-publish"


def test_a_publisher_publishes_scan_requests_and_can_do_nothing_else(broker):
    purge(broker, *PLAN.scan_queues.values())
    with connect(broker, "service:api") as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        publish(channel, PLAN.scans_exchange, "sast")
        assert refused(lambda: connection.channel().basic_get(PLAN.scan_queues["sast"]))
        assert refused(lambda: connection.channel().queue_declare("scans.mine", durable=True))
        assert refused(lambda: connection.channel().queue_purge(PLAN.scan_queues["sast"]))
        assert refused(lambda: publish(_confirming(connection), topology.HEALTH_EXCHANGE, "canary"))
    assert count(broker, PLAN.scan_queues["sast"]) == 1


def _confirming(connection):
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


def test_each_engine_consumes_its_own_queue_only(broker):
    purge(broker, *PLAN.scan_queues.values())
    with connect(broker, "service:webhooks") as connection:
        channel = _confirming(connection)
        publish(channel, PLAN.scans_exchange, "sast", b"for sast")
        publish(channel, PLAN.scans_exchange, "secrets", b"for secrets")
    with connect(broker, "engine:sast") as connection:
        channel = connection.channel()
        method, _, body = channel.basic_get(PLAN.scan_queues["sast"])
        assert body == b"for sast"
        channel.basic_ack(method.delivery_tag)
        assert refused(lambda: connection.channel().basic_get(PLAN.scan_queues["secrets"]))
        assert refused(lambda: publish(_confirming(connection), PLAN.scans_exchange, "sast"))
        assert refused(lambda: connection.channel().queue_declare("scans.sast.mine", durable=True))
    with connect(broker, "engine:secrets") as connection:
        method, _, body = connection.channel().basic_get(PLAN.scan_queues["secrets"], auto_ack=True)
        assert body == b"for secrets"


@pytest.mark.parametrize("client", ["keda", "queue-metrics"])
def test_the_monitoring_users_read_queue_depth_and_can_neither_publish_nor_consume(broker, client):
    """KEDA and the queue-metrics publisher read depths through the management API, nothing else."""
    purge(broker, PLAN.scan_queues["sast"])
    with connect(broker, "service:api") as connection:
        channel = _confirming(connection)
        publish(channel, PLAN.scans_exchange, "sast")
        publish(channel, PLAN.scans_exchange, "sast")
    user = PLAN.user(client).name
    monitor = (user, PASSWORDS[user])
    assert depth(broker, PLAN.scan_queues["sast"], 2, user=monitor) == 2
    # Monitoring is read-only: the management API refuses it a change.
    status, _ = broker.api("DELETE", f"/api/queues/{PLAN.vhost}/{PLAN.scan_queues['sast']}/contents", monitor)
    assert status in (401, 403)
    with connect(broker, client) as connection:
        assert refused(lambda: connection.channel().basic_get(PLAN.scan_queues["sast"]))
        assert refused(lambda: publish(_confirming(connection), PLAN.scans_exchange, "sast"))


def test_a_request_rejected_past_the_delivery_limit_lands_in_the_dead_letter_queue(broker):
    queue, dead = PLAN.scan_queues["secrets"], PLAN.dead_letter_queues["secrets"]
    purge(broker, queue, dead)
    with connect(broker, "service:api") as connection:
        publish(_confirming(connection), PLAN.scans_exchange, "secrets", b"poison")
    deliveries = 0
    with connect(broker, "engine:secrets") as connection:
        channel = connection.channel()
        for _ in range(DELIVERY_LIMIT + 3):
            method, _, body = channel.basic_get(queue)
            if method is None:
                break
            assert body == b"poison"
            deliveries += 1
            channel.basic_nack(method.delivery_tag, requeue=True)  # the Job crashed
    assert deliveries == DELIVERY_LIMIT + 1  # the first delivery and DELIVERY_LIMIT redeliveries
    connection, channel = admin_channel(broker)
    with connection:
        method, _, body = channel.basic_get(dead, auto_ack=True)
    assert body == b"poison"


def test_a_full_scan_queue_refuses_publishes(broker):
    """A quorum queue with `reject-publish` nacks publishes once it is over its limit: it takes
    the message that carries it past x-max-length, then refuses every further one."""
    queue = PLAN.scan_queues["sast"]
    purge(broker, queue)
    accepted, refusals = 0, 0
    with connect(broker, "service:api") as connection:
        channel = _confirming(connection)
        for _ in range(MAX_LENGTH + 4):
            try:
                publish(channel, PLAN.scans_exchange, "sast")
                assert refusals == 0, "a publish was accepted after one was refused"
                accepted += 1
            except pika.exceptions.NackError:
                refusals += 1
    assert accepted in (MAX_LENGTH, MAX_LENGTH + 1) and refusals == MAX_LENGTH + 4 - accepted
    assert count(broker, queue) == accepted


def test_the_drill_owns_the_canary_and_nothing_else(broker):
    with connect(broker, "drill") as connection:
        channel = _confirming(connection)
        publish(channel, topology.HEALTH_EXCHANGE, topology.CANARY_ROUTING_KEY, b"tick")
        channel.queue_declare(topology.CANARY_QUEUE, passive=True)
        method, _, body = channel.basic_get(topology.CANARY_QUEUE, auto_ack=True)
        assert body == b"tick"
        assert refused(lambda: publish(_confirming(connection), PLAN.scans_exchange, "sast"))
        assert refused(lambda: connection.channel().basic_get(PLAN.scan_queues["sast"]))
        # It reads its canaries and checks they are there; it can neither delete nor redeclare them.
        assert refused(lambda: connection.channel().queue_delete(topology.DRILL_QUEUE))
        assert refused(lambda: connection.channel().queue_declare("drill.mine", durable=True))


def test_the_drill_s_probe_publishes_as_the_drill_user(broker):
    """The probe the drill runs in the cluster (drill/probes.py), with the settings the stack gives
    it (components/drill/probes.py): as the drill's user, through the health exchange (the
    default exchange is refused to it), confirmed, and read back from the drill's own queue; the
    health canary's queue is left alone."""
    from components.drill.probes import probe_config
    from drill.probes import Endpoint, QueueProbe

    purge(broker, topology.CANARY_QUEUE, topology.DRILL_QUEUE)
    spec = probe_config({"rabbitmq": "arn"}, "b", "c", "n", PLAN.vhost, topology.DRILL_QUEUE, None, 0)["stores"]
    broker_spec = spec["broker"]
    user = PLAN.user("drill").name
    endpoint = [Endpoint("127.0.0.1", broker.amqp_port)]
    probe = QueueProbe(
        "broker",
        endpoint,
        PLAN.vhost,
        user,
        PASSWORDS[user],
        broker_spec["queue"],
        exchange=broker_spec["exchange"],
        routing_key=broker_spec["routingKey"],
    )
    try:
        probe.write("c-1")
        probe.check()
        assert probe.survivors(["c-1", "c-2"]) == {"c-1"}
    finally:
        probe.close()
    assert count(broker, topology.CANARY_QUEUE) == 0
    direct = QueueProbe("broker", endpoint, PLAN.vhost, user, PASSWORDS[user], topology.DRILL_QUEUE)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
        direct.write("c-3")
    direct.close()


def test_no_planned_user_can_log_in_with_another_s_password(broker):
    engine = PLAN.user("engine:sast").name
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(
            pika.ConnectionParameters(
                host="127.0.0.1",
                port=broker.amqp_port,
                virtual_host=PLAN.vhost,
                credentials=pika.PlainCredentials(engine, PASSWORDS[topology.KEDA_USER]),
                connection_attempts=1,
            )
        )
