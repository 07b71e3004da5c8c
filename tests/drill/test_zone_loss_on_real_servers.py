"""The drill's probes against real servers arranged as three zones, and a zone taken out while
they probe: what a client sees of each store's recovery, and whether any acknowledged canary was
lost.

    zone a: RabbitMQ node a, a Redis replica
    zone b: RabbitMQ node b, the PostgreSQL primary, the Redis primary
    zone c: RabbitMQ node c, the PostgreSQL standby (synchronous streaming), a Redis replica

"Removing zone b" does what AWS does when a zone goes: its broker node stops, the database's
standby is promoted (a Multi-AZ failover), the cache's replica in c is promoted and the one in a
follows it. The database replicates synchronously, as a Multi-AZ instance's standby does (with
asynchronous streaming this test once lost an acknowledged row); the cache replicates
asynchronously, as ElastiCache does, so its probe counts a canary only once a replica has it. The probes reach each
store the way the service's clients do (read-write sessions over every host, the cache's primary
by its role, any broker node, starting with b's). A quorum queue keeps every confirmed canary
with two of three nodes; a classic, non-replicated queue on node b does not, and the runner must
say so: that is the check failing when it should.
"""

from __future__ import annotations

import secrets
import time

import pika
import pytest
import servers

from drill import measure
from drill.probes import Endpoint, PostgresProbe, Probe, Prober, QueueProbe, RedisProbe

pytestmark = pytest.mark.xdist_group("zone-loss")
VHOST = "scanner"
QUORUM, CLASSIC = "health.canary", "drill.classic-on-b"
BEFORE_S, AFTER_S = 4.0, 8.0
#: A client sees each store back within this (measured locally: a second or two).
BOUND_S = 10.0


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    """The three zones started, probed, zone b removed, probed again; the probes' samples, what
    each store still holds, and when zone b went."""
    base = tmp_path_factory.mktemp("zones")
    started: list = []
    try:
        broker = servers.start_rabbitmq_cluster(base / "rabbitmq", ["a", "b", "c"])
        started += [(n, n is broker[0]) for n in reversed(broker)]
        a, b, c = broker
        password = secrets.token_urlsafe(18)
        status, body = a.api(
            "POST",
            "/api/definitions",
            ("guest", "guest"),
            {
                "vhosts": [{"name": VHOST}],
                "users": [{"name": "drill", "password": password, "tags": ""}],
                "permissions": [{"user": "drill", "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}],
            },
        )
        assert status in (200, 201, 204), (status, body)
        _vhost_running(a, [n.name for n in broker])
        # Both queues are declared on node b: the quorum queue's leader and the classic queue live
        # there, so b's loss is felt by both (the quorum queue elects a leader among a and c).
        params = pika.ConnectionParameters(
            "127.0.0.1", b.amqp_port, VHOST, pika.PlainCredentials("drill", password), connection_attempts=5
        )
        with pika.BlockingConnection(params) as connection:
            channel = connection.channel()
            channel.queue_declare(QUORUM, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_declare(CLASSIC, durable=False, arguments={"x-queue-type": "classic"})
        status, queue = a.api("GET", f"/api/queues/{VHOST}/{QUORUM}", ("guest", "guest"))
        assert status == 200 and sorted(queue["members"]) == sorted(n.name for n in broker), queue
        assert queue["leader"] == b.name, queue

        primary = servers.start_postgres(base / "postgres-b")
        started.append((primary, None))
        standby = servers.start_postgres_standby(primary, base / "postgres-c")
        started.append((standby, None))
        _synchronous(primary)

        cache_password = secrets.token_urlsafe(18)
        acl = f"user default on >{cache_password} ~* &* +@all\n"
        cache_b = servers.start_redis(base / "redis-b", acl)
        started.append((cache_b, None))
        follow = [f"replicaof 127.0.0.1 {cache_b.port}", "masteruser default", f"masterauth {cache_password}"]
        cache_a = servers.start_redis(base / "redis-a", acl, follow)
        started.append((cache_a, None))
        cache_c = servers.start_redis(base / "redis-c", acl, follow)
        started.append((cache_c, None))
        _wait_for_replica(cache_a, cache_password)
        _wait_for_replica(cache_c, cache_password)

        nodes = [Endpoint("127.0.0.1", n.amqp_port) for n in (b, a, c)]
        probes: list[Probe] = [
            PostgresProbe(
                "database",
                [Endpoint(primary.host, primary.port), Endpoint(standby.host, standby.port)],
                primary.superuser,
                primary.password,
                "postgres",
            ),
            RedisProbe(
                "cache",
                [Endpoint("127.0.0.1", cache_b.port), Endpoint("127.0.0.1", cache_c.port)],
                None,
                cache_password,
            ),
            QueueProbe("queue", nodes, VHOST, "drill", password, QUORUM),
            QueueProbe("classic-queue", nodes, VHOST, "drill", password, CLASSIC),
        ]
        prober = Prober(probes, interval_s=0.5).start()
        time.sleep(BEFORE_S)
        removed_at = prober.elapsed()
        # Zone b goes: its broker node, the database primary and the cache primary with it.
        b.stop(epmd=False)
        primary.stop()
        cache_b.stop()
        # What AWS does next: the standby and the replica take over.
        standby.promote()
        servers_redis_promote(cache_c, cache_password)
        _follow(cache_a, cache_c, cache_password)
        time.sleep(AFTER_S)
        samples = prober.stop()
        # The classic queue went with node b: asking it again for long proves nothing more.
        survivors = prober.survivors(patience_s=3)
        for probe in probes:
            probe.close()
        yield samples, survivors, removed_at, prober.ended
    finally:
        for server, is_first in started:
            try:
                server.stop(epmd=is_first) if is_first is not None else server.stop()
            except Exception:  # noqa: BLE001 (one failed stop must not keep the others running)
                pass


def _wait_for_replica(replica, password: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=replica.port, password=password)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info: dict = client.info("replication")  # type: ignore[assignment]
        if info.get("master_link_status") == "up":
            return
        time.sleep(0.2)
    raise RuntimeError("the Redis replica did not sync")


def _synchronous(primary) -> None:
    """Commits wait for the standby, as on a Multi-AZ instance (the role's setting outranks the
    server's command line, where the tests' servers turn durability off)."""
    with primary.connect() as connection:
        connection.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        connection.execute("SELECT pg_reload_conf()")
        connection.execute(f'ALTER ROLE "{primary.superuser}" SET synchronous_commit = on')
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [r[0] for r in connection.execute("SELECT sync_state FROM pg_stat_replication").fetchall()]
            if states == ["sync"]:
                return
            time.sleep(0.2)
    raise RuntimeError(f"the standby did not become synchronous: {states}")


def _follow(replica, primary, password: str) -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=replica.port, password=password).execute_command(
        "REPLICAOF", "127.0.0.1", str(primary.port)
    )


def servers_redis_promote(replica, password: str) -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=replica.port, password=password).execute_command("REPLICAOF", "NO", "ONE")


def test_the_replicated_stores_lose_nothing_and_recover_within_seconds(drill):
    samples, survivors, removed_at, end = drill
    found = measure.results([s for s in samples if s.store != "classic-queue"], survivors, end)
    assert set(found) == {"database", "cache", "queue"}
    for store, result in found.items():
        assert result.acknowledged >= 10, (store, result)
        assert result.lost == (), (store, result.lost[:5])
        assert result.write_outage_s < BOUND_S, (store, result)
        # Each store acknowledged canaries after the zone went, not only before.
        assert any(s.ok and s.at > removed_at + 1 for s in samples if s.store == store and s.operation == "write")
    # The database and the cache had a primary in zone b: their clients saw an outage.
    assert found["database"].failed_writes > 0 and found["cache"].failed_writes > 0
    assert measure.exit_status(found) == 0
    print("\n" + measure.markdown(found))


def test_the_timeline_shows_each_store_s_failures_when_the_zone_went(drill, tmp_path):
    import xml.etree.ElementTree as ElementTree

    from drill import timeline

    samples, _, removed_at, end = drill
    picture = timeline.svg(samples, end, [(removed_at, "zone b out")])
    root = ElementTree.fromstring(picture)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    rows = [t.text for t in root.findall("svg:text", ns) if t.get("class") == "store"]
    assert rows == ["cache", "classic-queue", "database", "queue"]
    marks = [r for r in root.findall("svg:rect", ns)]
    assert len(marks) == sum(1 for s in samples if s.operation == "write")
    failed = [float(r.findtext("svg:title", "", ns).split(" s:")[0]) for r in marks if r.get("class") == "failed"]
    # Red marks once the zone went: the stores that lost their primary or their queue failed then.
    assert sum(at >= removed_at - 0.01 for at in failed) >= 3, failed
    assert [e.get("class") for e in root.findall("svg:line", ns)] == ["event"]
    (tmp_path / "timeline.svg").write_text(picture)


def _vhost_running(node, names: list[str], timeout: float = 90.0) -> None:
    """Wait until the imported vhost runs on every node: a connection to a node where it has not
    started yet is closed during the handshake (on a busy machine that takes seconds)."""
    deadline = time.monotonic() + timeout
    state: object = None
    while time.monotonic() < deadline:
        status, vhost = node.api("GET", f"/api/vhosts/{VHOST}", ("guest", "guest"))
        state = vhost.get("cluster_state") if status == 200 and isinstance(vhost, dict) else (status, vhost)
        if isinstance(state, dict) and all(state.get(name) == "running" for name in names):
            return
        time.sleep(0.5)
    raise AssertionError(f"vhost {VHOST} not running on every node after {timeout:.0f} s: {state}")


def test_a_classic_queue_on_the_lost_node_loses_its_canaries_and_the_drill_fails(drill):
    samples, survivors, removed_at, end = drill
    found = measure.results(samples, survivors, end)
    classic = found["classic-queue"]
    assert classic.acknowledged > 0 and len(classic.lost) == classic.acknowledged
    # Nothing is acknowledged once its node is gone: the queue left with it.
    assert not any(
        s.ok and s.at > removed_at + 1 for s in samples if s.store == "classic-queue" and s.operation == "write"
    )
    assert measure.exit_status(found) == 1
    assert measure.as_dict(found)["classic-queue"]["passed"] is False
