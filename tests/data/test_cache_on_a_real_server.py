"""The cache plan against a real Redis (Debian's redis-server, started for these tests on a
loopback port with the plan's ACL file and nothing else): a client that does not authenticate is
refused everything, and a real client (redis-py) as each planned user reaches its own keys, with
the commands a client needs, and is refused other keys and the operator's commands.

The Debian server is Redis 7.0; ElastiCache runs Redis OSS 7.1. The ACL rules these tests rely on
(key patterns, command categories, `off` users) are the same on both. The server is started with
`enable-debug-command local`, so DEBUG reaches the ACL and the tests show the user's rules refuse
it (a stock server refuses DEBUG to everyone before it looks at the ACL).

Three tests hold what key patterns alone do not stop, which the plan refuses by name: scripting
(function libraries are the server's, not a service's), SCAN/RANDOMKEY (no key argument to
filter) and CLIENT TRACKING (broadcast invalidations name other services' keys).
"""

from __future__ import annotations

import functools
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.exceptions
import servers
from redis.backoff import NoBackoff
from redis.retry import Retry

from components.data import cache_users as users

PLAN = users.plan(["api", "storage-api"])
PASSWORDS = {u.name: secrets.token_urlsafe(24) for u in PLAN.users}
#: Commands only an operator should run, each refused to a service's user.
OPERATOR_COMMANDS = (
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("KEYS", "*"),
    ("CONFIG", "GET", "*"),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("ACL", "SETUSER", "svc-api", "+@all", "~*"),
    ("ACL", "LIST"),
    ("SCRIPT", "FLUSH"),
    ("EVAL", "return redis.call('FLUSHALL')", "0"),
    ("SWAPDB", "0", "1"),
    ("MONITOR",),
    ("CLIENT", "LIST"),
    ("CLIENT", "KILL", "ID", "1"),
    ("CLIENT", "PAUSE", "1"),
    ("INFO",),
    ("SAVE",),
    ("BGSAVE",),
    ("REPLICAOF", "NO", "ONE"),
    ("MIGRATE", "127.0.0.1", "1", "api:key", "0", "1"),
    ("RESTORE", "api:restored", "0", "payload"),
    ("SORT", "api:list"),
    ("MODULE", "LIST"),
    ("PUBLISH", "api:channel", "message"),
    ("SUBSCRIBE", "api:channel"),
)
#: Keys outside svc-api's `api:*`: another service's, the drill's, none, and neighbours of the prefix.
FOREIGN_KEYS = ("storage-api:scan:1", "drill:canary", "other", "api", "apix:1", "api-x:1", "API:1", "xapi:1")
#: One server for the module: its tests share one worker when the tests run in parallel.
pytestmark = pytest.mark.xdist_group("redis")


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Iterator[servers.Redis]:
    """One server for the session, its users loaded from the plan's ACL file."""
    server = servers.start_redis(tmp_path_factory.mktemp("redis"), PLAN.acl_file(PASSWORDS))
    try:
        yield server
    finally:
        server.stop()


def client(cache: servers.Redis, who: str, **options: Any) -> redis.Redis:
    """A redis-py client logged in as the user of `who` (`service:<name>` or `drill`)."""
    user = PLAN.user(who).name
    return redis.Redis(
        host=cache.host,
        port=cache.port,
        username=user,
        password=PASSWORDS[user],
        decode_responses=True,
        socket_timeout=10,
        **options,
    )


def refused(action: Callable[[], object]) -> str:
    """The message of the server's NOPERM refusal of `action`."""
    with pytest.raises(redis.exceptions.NoPermissionError) as info:
        action()
    return str(info.value)


KEY_REFUSED = "no permissions to access one of the keys"
#: For a client that is to be refused: redis-py retries an AuthenticationError (a ConnectionError)
#: with backoff by default, for seconds.
NO_RETRY = Retry(NoBackoff(), 0)


def test_a_client_that_does_not_authenticate_is_refused(cache):
    anonymous = redis.Redis(host=cache.host, port=cache.port, socket_timeout=10, retry=NO_RETRY)
    with pytest.raises(redis.exceptions.AuthenticationError, match="Authentication required"):
        anonymous.ping()
    with pytest.raises(redis.exceptions.AuthenticationError, match="Authentication required"):
        anonymous.get("api:key")


def test_the_default_user_cannot_log_in(cache):
    # With its name, and with the single-password AUTH that logs in as `default`; whatever the
    # password, as the default user is off (and has none). Redis gives one answer for a wrong
    # password and a disabled user.
    for username in ("default", None):
        for password in ("x", PASSWORDS["svc-api"], "nopass"):
            with pytest.raises(redis.exceptions.AuthenticationError, match="user is disabled"):
                redis.Redis(
                    host=cache.host, port=cache.port, username=username, password=password, retry=NO_RETRY
                ).ping()


def test_no_user_logs_in_with_another_s_password(cache):
    with pytest.raises(redis.exceptions.AuthenticationError, match="invalid username-password pair"):
        redis.Redis(
            host=cache.host, port=cache.port, username="svc-api", password=PASSWORDS["drill"], retry=NO_RETRY
        ).ping()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_connects_with_what_it_sends_on_connect(cache, protocol):
    """AUTH (RESP2) or HELLO with AUTH (RESP3), CLIENT SETNAME, CLIENT SETINFO (from Redis 7.2;
    redis-py ignores its refusal), SELECT and PING."""
    with client(cache, "service:api", protocol=protocol, client_name="api-worker", db=0) as api:
        assert api.ping() is True
        assert api.client_getname() == "api-worker"
        assert isinstance(api.client_id(), int)
        assert api.echo("hello") == "hello"


def test_a_service_reads_and_writes_its_own_keys(cache):
    with client(cache, "service:api") as api:
        assert api.set("api:session:1", "value") is True
        assert api.get("api:session:1") == "value"
        assert api.expire("api:session:1", 60) is True
        assert 0 < api.ttl("api:session:1") <= 60
        assert api.incr("api:counter") == 1
        assert api.incrby("api:counter", 2) == 3
        api.hset("api:scan:1", mapping={"state": "queued", "engine": "sast"})
        assert api.hgetall("api:scan:1") == {"state": "queued", "engine": "sast"}
        assert api.mget("api:session:1", "api:counter") == ["value", "3"]
        assert api.exists("api:session:1", "api:counter") == 2
        assert api.delete("api:session:1", "api:counter", "api:scan:1") == 3
        assert api.get("api:session:1") is None


def test_a_service_runs_transactions_on_its_own_keys(cache):
    with client(cache, "service:api") as api:
        with api.pipeline(transaction=True) as multi:
            multi.set("api:tx", 1).incr("api:tx").expire("api:tx", 60).get("api:tx")
            assert multi.execute() == [True, 2, True, "2"]
        # WATCH, and a transaction that a write by another client aborts.
        with api.pipeline(transaction=True) as multi:
            multi.watch("api:tx")
            api.set("api:tx", 10)
            multi.multi()
            multi.incr("api:tx")
            with pytest.raises(redis.exceptions.WatchError):
                multi.execute()
        assert api.get("api:tx") == "10"
        api.delete("api:tx")


@pytest.mark.parametrize("key", FOREIGN_KEYS)
def test_a_service_reaches_no_key_outside_its_prefix(cache, key):
    with client(cache, "service:api") as api:
        assert KEY_REFUSED in refused(lambda: api.get(key))
        assert KEY_REFUSED in refused(lambda: api.set(key, "mine"))
        assert KEY_REFUSED in refused(lambda: api.delete(key))
        assert KEY_REFUSED in refused(lambda: api.exists(key))
        # One foreign key among its own is enough for a refusal.
        assert KEY_REFUSED in refused(lambda: api.mget("api:own", key))
        assert KEY_REFUSED in refused(lambda: api.copy("api:own", key))


def test_a_transaction_that_touches_another_service_s_key_is_refused_whole(cache):
    with client(cache, "service:storage-api") as storage:
        storage.set("storage-api:scan:1", "theirs")
    with client(cache, "service:api") as api:
        with api.pipeline(transaction=True) as multi:
            multi.set("api:tx-refused", "mine").get("storage-api:scan:1")
            assert KEY_REFUSED in refused(multi.execute)
        assert api.get("api:tx-refused") is None
    with client(cache, "service:storage-api") as storage:
        assert storage.get("storage-api:scan:1") == "theirs"
        storage.delete("storage-api:scan:1")


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_service_is_refused_the_operator_s_commands(cache, command):
    with client(cache, "service:api") as api:
        assert f"no permissions to run the '{command[0].lower()}" in refused(lambda: api.execute_command(*command))


def test_the_drill_reaches_its_own_keys_only(cache):
    with client(cache, "drill") as drill:
        assert drill.set("drill:canary", "tick", ex=60) is True
        assert drill.get("drill:canary") == "tick"
        assert drill.delete("drill:canary") == 1
        for key in ("api:session:1", "storage-api:scan:1", "drill", "drills:1"):
            assert KEY_REFUSED in refused(functools.partial(drill.get, key))
            assert KEY_REFUSED in refused(functools.partial(drill.set, key, "tick"))
        assert "no permissions to run the 'flushall'" in refused(drill.flushall)


def test_the_drill_s_probe_runs_as_the_drill_user(cache):
    """The probe the drill runs in the cluster (drill/probes.py), logged in as the drill's user
    through one endpoint as on ElastiCache: each command it sends (SET, WAIT, GET, MGET) is
    within the user's rights. WAIT for no replica answers at once."""
    from drill.probes import Endpoint, RedisProbe

    probe = RedisProbe("cache", [Endpoint(cache.host, cache.port)], "drill", PASSWORDS["drill"], replicas=0)
    try:
        probe.write("acl-1")
        probe.check()
        assert probe.survivors(["acl-1", "acl-2"]) == {"acl-1"}
        # A canary that must reach a replica this server does not have is refused, not counted.
        waiting = RedisProbe("cache", [Endpoint(cache.host, cache.port)], "drill", PASSWORDS["drill"], replicas=1)
        with pytest.raises(RuntimeError, match="reached 0 of 1 replica"):
            waiting.write("acl-3")
        waiting.close()
    finally:
        probe.close()


def test_a_service_cannot_load_or_flush_the_server_s_functions(cache):
    library = "#!lua name=mine\nredis.register_function('mine', function() return 1 end)"
    with client(cache, "service:api") as api:
        try:
            refused(lambda: api.function_load(library))
            refused(api.function_flush)
        finally:
            try:
                api.function_flush()
            except redis.exceptions.NoPermissionError:
                pass


def test_a_service_cannot_list_another_service_s_key_names(cache):
    with client(cache, "service:storage-api") as storage:
        storage.set("storage-api:session:secret-token", "theirs")
    try:
        with client(cache, "service:api") as api:
            refused(lambda: api.scan(0, match="storage-api:*"))
            refused(api.randomkey)
    finally:
        with client(cache, "service:storage-api") as storage:
            storage.delete("storage-api:session:secret-token")


def test_a_service_cannot_follow_another_service_s_key_names(cache):
    # Over RESP3 on a bare socket: the invalidations arrive as push messages on the same connection.
    with socket.create_connection((cache.host, cache.port), timeout=10) as raw:
        raw.sendall(f"HELLO 3 AUTH svc-api {PASSWORDS['svc-api']}\r\nPING\r\n".encode())
        read_until(raw, b"+PONG\r\n")
        raw.sendall(b"CLIENT TRACKING ON BCAST PREFIX storage-api:\r\n")
        reply = read_until(raw, b"\r\n")
        if reply.startswith(b"+OK"):
            with client(cache, "service:storage-api") as storage:
                storage.set("storage-api:session:secret-token", "theirs")
                storage.delete("storage-api:session:secret-token")
            pushed = read_until(raw, b"secret-token")
            pytest.fail(f"CLIENT TRACKING on another service's prefix was accepted, and it pushed {pushed!r}")
        assert reply.startswith(b"-NOPERM"), reply


def read_until(raw: socket.socket, marker: bytes) -> bytes:
    """What the server sends up to and with `marker` (the socket's timeout bounds the wait)."""
    data = b""
    while marker not in data:
        chunk = raw.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
