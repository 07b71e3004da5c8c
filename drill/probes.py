"""Probes: a client of each store that writes a canary and checks the store serves, once a second,
during a drill, the way the service's own clients would reach it (the database through the
proxy's endpoint, read-write sessions only; the broker through any node; the cache's primary,
found by its role; a file system through its mount).

Each probe owns one connection and reconnects on failure, with timeouts of a second or two, so a
store that does not answer costs the probe a failed sample, never a hung drill. Every probe runs
in a thread of its own (`Prober`): one store's outage never delays another's samples.

Canary keys are `<store>-<run>-<n>`; after the drill, `survivors` reads back which of them the
store still holds: an acknowledged canary that is gone is data lost.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from drill.measure import Sample

TIMEOUT_S = 2.0
#: How long a cache canary lives (SET ... EX).
CANARY_TTL_S = 24 * 3600


class Probe(Protocol):
    store: str
    writes: bool
    """False for a store the drill only reads (a read replica): no canary, checks only."""

    def write(self, key: str) -> None:
        """Write one canary; raises when the store does not acknowledge it."""

    def check(self) -> None:
        """Prove the store serves (a read); raises when it does not."""

    def survivors(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` the store holds now."""

    def close(self) -> None: ...


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200]


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


class PostgresProbe:
    """Writes a row per canary to `drill_canary` through read-write sessions only (libpq tries the
    hosts in turn, as the proxy's endpoint follows the primary). `read_only`: a read replica,
    checked with a query in any session, written never. `tls`: the server's TLS required (RDS)."""

    def __init__(
        self,
        store: str,
        endpoints: Sequence[Endpoint],
        user: str,
        password: str,
        dbname: str,
        read_only: bool = False,
        tls: bool = False,
    ):
        self.store = store
        self.writes = not read_only
        self._conninfo: dict[str, Any] = dict(
            host=",".join(e.host for e in endpoints),
            port=",".join(str(e.port) for e in endpoints),
            user=user,
            password=password,
            dbname=dbname,
            target_session_attrs="any" if read_only else "read-write",
            sslmode="require" if tls else "prefer",
            connect_timeout=int(TIMEOUT_S),
            # The server enforces the statement timeout; a blackholed zone is the client's to
            # notice: keepalives and a TCP user timeout end a dead connection in seconds.
            tcp_user_timeout=int(TIMEOUT_S * 1000),
            keepalives=1,
            keepalives_idle=1,
            keepalives_interval=1,
            keepalives_count=2,
        )
        self._connection: Any = None

    def _connect(self):
        import psycopg

        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(**self._conninfo, autocommit=True)
            # A statement, not a startup option: RDS Proxy refuses command-line options.
            self._connection.execute(f"SET statement_timeout = {int(TIMEOUT_S * 1000)}")
            if self.writes:
                self._connection.execute(
                    "CREATE TABLE IF NOT EXISTS drill_canary (key text PRIMARY KEY, at timestamptz DEFAULT now())"
                )
        return self._connection

    def _do(self, call: Callable[[Any], Any]) -> Any:
        try:
            return call(self._connect())
        except Exception:
            self.close()
            raise

    def write(self, key: str) -> None:
        if not self.writes:
            raise RuntimeError(f"{self.store} is read only: the drill writes no canary there")
        self._do(lambda c: c.execute("INSERT INTO drill_canary (key) VALUES (%s)", (key,)))

    def check(self) -> None:
        # A replica answers a query (its copy of the canary table may not exist yet).
        query = "SELECT count(*) FROM drill_canary" if self.writes else "SELECT pg_is_in_recovery()"
        self._do(lambda c: c.execute(query).fetchone())

    def survivors(self, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        if not self.writes or not wanted:
            return set()
        rows = self._do(lambda c: c.execute("SELECT key FROM drill_canary WHERE key = ANY(%s)", (wanted,)).fetchall())
        return {r[0] for r in rows}

    def clean(self, keys: Iterable[str]) -> None:
        """This run's canary rows removed once read."""
        wanted = list(keys)
        if self.writes and wanted:
            self._do(lambda c: c.execute("DELETE FROM drill_canary WHERE key = ANY(%s)", (wanted,)))

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 (a dead connection closes as it can)
                pass
        self._connection = None


class RedisProbe:
    """Sets a key per canary on the replication group's primary, found by its role. Replication is
    asynchronous: a write the primary acknowledged can be lost with it. With `replicas`, a canary
    counts as acknowledged only once that many replicas have it (WAIT), which is what a failover
    can keep; without, the drill measures what the cache's own clients get."""

    def __init__(
        self,
        store: str,
        endpoints: Sequence[Endpoint],
        username: str | None,
        password: str | None,
        replicas: int = 0,
        tls: bool = False,
    ):
        self.store = store
        self.writes = True
        self._endpoints = list(endpoints)
        self._auth: dict[str, Any] = dict(username=username, password=password, ssl=tls)
        self._replicas = replicas
        self._client: Any = None

    def _primary(self):
        import redis

        if self._client is not None:
            return self._client
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        for e in self._endpoints:
            client = redis.Redis(
                host=e.host,
                port=e.port,
                socket_timeout=TIMEOUT_S,
                socket_connect_timeout=TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),  # one try per sample: a dead node costs seconds, not 15
                **self._auth,
            )
            if len(self._endpoints) == 1:
                # One endpoint: ElastiCache's primary endpoint, whose name follows the primary (and
                # ROLE is no client's command there).
                self._client = client
                return client
            try:
                if client.execute_command("ROLE")[0] in (b"master", "master"):
                    self._client = client
                    return client
            except Exception:  # noqa: BLE001 (that node is down or a replica: try the next)
                pass
            client.close()
        raise ConnectionError("no primary among the cache's endpoints")

    def _do(self, call: Callable[[Any], Any]) -> Any:
        try:
            return call(self._primary())
        except Exception:
            self.close()
            raise

    def write(self, key: str) -> None:
        # A day's expiry: a canary outlives any drill, never the next week's.
        if not self._do(lambda c: c.set(f"drill:canary:{key}", key, ex=CANARY_TTL_S)):
            raise RuntimeError("SET was not acknowledged")
        if self._replicas:
            # WAIT gives up well within the socket's timeout, so a slow replica is a refused
            # canary, not a broken connection.
            copies = self._do(lambda c: c.execute_command("WAIT", self._replicas, int(TIMEOUT_S * 500)))
            if int(copies) < self._replicas:
                raise RuntimeError(f"SET reached {copies} of {self._replicas} replica(s)")

    def check(self) -> None:
        self._do(lambda c: c.get("drill:canary:check"))

    def survivors(self, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        values = self._do(lambda c: c.mget([f"drill:canary:{k}" for k in wanted])) if wanted else []
        return {k for k, v in zip(wanted, values, strict=True) if v is not None}

    def clean(self, keys: Iterable[str]) -> None:
        wanted = [f"drill:canary:{k}" for k in keys]
        if wanted:
            self._do(lambda c: c.delete(*wanted))

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass
        self._client = None


class QueueProbe:
    """Publishes a persistent message per canary to a queue, with publisher confirms (the broker
    acknowledges only what it has stored), through whichever node answers."""

    def __init__(
        self,
        store: str,
        endpoints: Sequence[Endpoint],
        vhost: str,
        user: str,
        password: str,
        queue: str,
        tls: bool = False,
        exchange: str = "",
        routing_key: str | None = None,
    ):
        """`exchange`, `routing_key`: where canaries are published (default: the default exchange,
        straight to `queue`); a user with write on one exchange only publishes through it."""
        self.store = store
        self.writes = True
        self._endpoints = list(endpoints)
        self._login = (vhost, user, password)
        self.queue = queue
        self._route = (exchange, queue if routing_key is None else routing_key)
        self._tls = tls
        self._connection: Any = None
        self._channel: Any = None

    def _open(self):
        import pika

        if self._channel is not None and self._channel.is_open:
            return self._channel
        vhost, user, password = self._login
        parameters = [
            pika.ConnectionParameters(
                host=e.host,
                port=e.port,
                virtual_host=vhost,
                credentials=pika.PlainCredentials(user, password),
                socket_timeout=TIMEOUT_S,
                stack_timeout=TIMEOUT_S * 2,
                blocked_connection_timeout=TIMEOUT_S * 2,
                connection_attempts=1,
                heartbeat=5,
                # Amazon MQ speaks AMQPS only (5671).
                ssl_options=pika.SSLOptions(ssl.create_default_context(), e.host) if self._tls else None,
            )
            for e in self._endpoints
        ]
        self._connection = pika.BlockingConnection(parameters)
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()
        return self._channel

    def _do(self, call: Callable[[Any], Any]) -> Any:
        try:
            return call(self._open())
        except Exception:
            self.close()
            raise

    def write(self, key: str) -> None:
        import pika

        # mandatory: a message no queue takes (its queue gone with its node) is refused, not dropped.
        self._do(
            lambda ch: ch.basic_publish(
                *self._route, key.encode(), pika.BasicProperties(delivery_mode=2), mandatory=True
            )
        )

    def check(self) -> None:
        self._do(lambda ch: ch.queue_declare(self.queue, passive=True))

    def survivors(self, keys: Iterable[str]) -> set[str]:
        wanted = set(keys)
        found: set[str] = set()

        def drain(channel) -> None:
            # Acknowledged together at the end: a connection lost halfway returns every message
            # to the queue, so the next attempt reads them all again.
            last = None
            while True:
                method, _, body = channel.basic_get(self.queue, auto_ack=False)
                if method is None:
                    break
                found.add(body.decode())
                last = method.delivery_tag
            if last is not None:
                channel.basic_ack(last, multiple=True)

        self._do(drain)
        return found & wanted

    def close(self) -> None:
        for thing in (self._connection,):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001
                    pass
        self._connection = self._channel = None


class FileProbe:
    """Writes a file per canary in a directory of the shared file system, synced to it."""

    def __init__(self, store: str, directory: Path):
        self.store = store
        self.writes = True
        self._directory = directory

    def write(self, key: str) -> None:
        import os

        path = self._directory / f"{key}.canary"
        with path.open("w") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())

    def check(self) -> None:
        next(iter(self._directory.iterdir()), None)

    def survivors(self, keys: Iterable[str]) -> set[str]:
        return {k for k in keys if (self._directory / f"{k}.canary").exists()}

    def clean(self, keys: Iterable[str]) -> None:
        """Remove this run's canaries once read: the scans' cache keeps no drill's leftovers."""
        for key in keys:
            (self._directory / f"{key}.canary").unlink(missing_ok=True)

    def close(self) -> None:
        pass


class Prober:
    """Every probe in a thread of its own, a write and a check each `interval_s`, until `stop`."""

    def __init__(self, probes: Sequence[Probe], interval_s: float = 1.0):
        self.probes = list(probes)
        self.interval_s = interval_s
        self.run_id = uuid.uuid4().hex[:8]
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self.ended = 0.0

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def _loop(self, probe: Probe) -> None:
        n = 0
        while not self._stop.is_set():
            tick = time.monotonic()
            key = f"{probe.store}-{self.run_id}-{n:05d}"
            calls = [("write", lambda key=key: probe.write(key))] if getattr(probe, "writes", True) else []
            for operation, call in (*calls, ("check", probe.check)):
                begun = time.monotonic()
                at = begun - self._started
                try:
                    call()
                    took = time.monotonic() - begun
                    written = key if operation == "write" else ""
                    self._record(Sample(at, probe.store, operation, True, written, "", took))  # type: ignore[arg-type]
                except Exception as exc:  # noqa: BLE001 (a failure is the sample)
                    took = time.monotonic() - begun
                    self._record(Sample(at, probe.store, operation, False, "", _short(exc), took))  # type: ignore[arg-type]
            n += 1
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - tick)))

    def start(self) -> Prober:
        self._started = time.monotonic()
        for probe in self.probes:
            thread = threading.Thread(target=self._loop, args=(probe,), name=f"probe-{probe.store}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def stop(self) -> list[Sample]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=TIMEOUT_S * 5)
        self.ended = self.elapsed()
        with self._lock:
            return sorted(self.samples, key=lambda s: s.at)

    def acknowledged(self, store: str) -> list[str]:
        return [s.key for s in self.samples if s.store == store and s.operation == "write" and s.ok]

    def survivors(self, patience_s: float = 30.0) -> dict[str, set[str]]:
        """What each store holds of the canaries it acknowledged, read once the drill is over (a
        store just back from a failover is asked again for `patience_s`; a probe whose thread is
        still stuck in a call is not read: its store holds nothing it can prove)."""
        stuck = {t.name.removeprefix("probe-") for t in self._threads if t.is_alive()}
        out: dict[str, set[str]] = {}
        for probe in self.probes:
            out[probe.store] = set()
            if probe.store in stuck:
                continue
            deadline = time.monotonic() + patience_s
            while True:
                try:
                    out[probe.store] = probe.survivors(self.acknowledged(probe.store))
                    break
                except Exception:  # noqa: BLE001 (not back yet: again, until the patience runs out)
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1.0)
        return out
