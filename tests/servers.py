"""Real servers for the tests, from Debian's packages, each started in a temporary directory on
loopback ports and stopped at the end of the session.

A server whose package is missing makes its tests skip with the command that installs it, except
in CI (`CI=true`), where that is a failure: CI installs the packages (`make servers`).
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_S = 90
#: Debian installs each PostgreSQL major side by side, under /usr/lib/postgresql/<major>/bin.
POSTGRES_LIB = Path("/usr/lib/postgresql")


def postgres_bin() -> Path:
    """The newest PostgreSQL installed (a pattern that exists nowhere when there is none)."""
    majors = [p.parent for p in POSTGRES_LIB.glob("*/bin/postgres") if p.parent.parent.name.isdigit()]
    if not majors:
        return POSTGRES_LIB / "*" / "bin"
    return max(majors, key=lambda d: int(d.parent.name))


#: The Debian package of each server, and the program that shows it is there.
PACKAGES = {
    "rabbitmq": ("rabbitmq-server", Path("/usr/lib/rabbitmq/bin/rabbitmq-server")),
    "postgres": ("postgresql", postgres_bin() / "postgres"),
    "redis": ("redis-server", Path("/usr/bin/redis-server")),
}


def require(server: str) -> Path:
    package, program = PACKAGES[server]
    if program.exists():
        return program
    message = f"{package} is not installed (apt-get install -y --no-install-recommends {package}, or make servers)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RabbitMq:
    """A RabbitMQ node with the management plugin, its AMQP and HTTP ports on 127.0.0.1."""

    amqp_port: int
    management_port: int
    process: subprocess.Popen[bytes]
    base: Path
    env: dict[str, str]
    name: str = ""
    """The Erlang node name (`rabbit-test-<pid>@localhost`)."""

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def api(self, method: str, path: str, user: tuple[str, str], body: Any = None) -> tuple[int, Any]:
        """A management API call: the HTTP status and the decoded JSON body (or None)."""
        request = urllib.request.Request(
            self.management_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode(),
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text) if text else None
            except ValueError:
                return exc.code, text.decode(errors="replace")

    def log_tail(self) -> str:
        logs = sorted((self.base / "log").glob("*.log"))
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in logs)

    def stop(self, epmd: bool = True) -> None:
        # Killed, not shut down: its data is thrown away with its directory, and a clean stop
        # takes seconds.
        # The start script runs the Erlang VM as its child, and epmd (the port mapper, on this
        # node's own port) detaches from both: the whole session goes. A cluster's nodes share
        # one epmd: the last node stopped takes it (epmd=False for the others).
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if epmd:
            program = shutil.which("epmd") or "/usr/bin/epmd"
            subprocess.run([program, "-kill"], env=self.env, check=False, capture_output=True, timeout=30)

    def ctl(self, *args: str) -> str:
        """rabbitmqctl against this node, as it (its cookie, its epmd)."""
        program = require("rabbitmq").parent / "rabbitmqctl"
        done = subprocess.run(
            [str(program), "-n", self.name, *args], env=self.env, capture_output=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {(done.stdout + done.stderr).decode()[-2000:]}")
        return done.stdout.decode()


def start_rabbitmq(
    base: Path, label: str = "", cookie: str | None = None, epmd: int | None = None, peers: Sequence[str] = ()
) -> RabbitMq:
    """Start a node in `base` (its data, logs, config and Erlang cookie) and wait until its
    management API answers. The guest user (allowed from loopback only) loads the definitions.
    The nodes of one cluster share a `cookie` and an `epmd` port, differ by `label`, and find each
    other at boot among `peers` (their node names: RabbitMQ's classic peer discovery)."""
    program = require("rabbitmq")
    amqp, management, dist = free_port(), free_port(), free_port()
    epmd = epmd or free_port()
    if cookie is not None:
        base.mkdir(parents=True, exist_ok=True)
        (base / ".erlang.cookie").write_text(cookie)
        (base / ".erlang.cookie").chmod(0o400)
    (base / "log").mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq.conf").write_text(
        "\n".join(
            [
                f"listeners.tcp.default = 127.0.0.1:{amqp}",
                "management.tcp.ip = 127.0.0.1",
                f"management.tcp.port = {management}",
                # Queue depths in the management API every half second, not every five.
                "collect_statistics_interval = 500",
                # Room for the tests' small disks and machines: no alarm blocks a publisher here.
                "disk_free_limit.absolute = 50MB",
                "vm_memory_high_watermark.relative = 0.6",
                *(["cluster_formation.peer_discovery_backend = classic_config"] if peers else []),
                *(f"cluster_formation.classic_config.nodes.{i} = {peer}" for i, peer in enumerate(peers, 1)),
                "",
            ]
        )
    )
    # A quorum queue reports its length on its tick (default every 5 s).
    (base / "advanced.config").write_text("[{rabbit, [{quorum_tick_interval, 500}]}].\n")
    (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
    env = {
        **os.environ,
        "HOME": str(base),  # the Erlang cookie goes here
        "RABBITMQ_NODENAME": f"rabbit-test-{os.getpid()}{'-' + label if label else ''}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
    }
    process = subprocess.Popen(
        [str(program)],
        env=env,
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so `stop` reaches the Erlang VM too
    )
    node = RabbitMq(amqp, management, process, base, env, env["RABBITMQ_NODENAME"])
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited with {process.returncode}:\n{node.log_tail()}")
        try:
            status, _ = node.api("GET", "/api/overview", ("guest", "guest"))
            if status == 200:
                return node
        except OSError:
            pass
        time.sleep(0.5)
    node.stop()
    raise RuntimeError(f"rabbitmq-server did not answer within {START_TIMEOUT_S} s:\n{node.log_tail()}")


def start_rabbitmq_cluster(base: Path, labels: Sequence[str]) -> list[RabbitMq]:
    """Nodes that form one cluster, in `labels`' order, each in a directory of its own under
    `base`: started side by side, they find each other at boot (classic peer discovery)."""
    from concurrent.futures import ThreadPoolExecutor

    cookie = base64.b32encode(os.urandom(15)).decode()
    epmd = free_port()
    nodes: list[RabbitMq] = []
    try:
        # Started side by side, each finding the others at boot (classic peer discovery).
        names = [f"rabbit-test-{os.getpid()}-{label}@localhost" for label in labels]
        with ThreadPoolExecutor(max_workers=len(labels)) as pool:
            starts = [pool.submit(start_rabbitmq, base / label, label, cookie, epmd, names) for label in labels]
            for start in starts:
                try:
                    nodes.append(start.result())
                except BaseException:
                    for other in starts:
                        if other is not start and other.exception() is None:
                            nodes.append(other.result())
                    raise
        deadline = time.monotonic() + START_TIMEOUT_S
        body: Any = None
        while time.monotonic() < deadline:
            try:
                status, body = nodes[0].api("GET", "/api/nodes?columns=name,running", ("guest", "guest"))
            except OSError:  # the API can stall while the nodes join: ask again
                status = 0
            if status == 200 and sorted(n["name"] for n in body if n.get("running")) == sorted(names):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the nodes did not form one cluster: {body}")
        return nodes
    except BaseException:
        for node in reversed(nodes):
            node.stop(epmd=node is nodes[0])
        raise


@dataclass
class Postgres:
    """A PostgreSQL cluster listening on `host` (127.0.0.1) only; `superuser` is its bootstrap
    superuser, who logs in with `password` like everyone else (scram-sha-256)."""

    host: str
    port: int
    superuser: str
    password: str
    process: subprocess.Popen[bytes]
    base: Path
    cluster: Path
    """The data directory's parent (and the unix socket's): `base`, or a directory of its own when
    the cluster runs as the postgres user (see `start_postgres`)."""

    def log_tail(self) -> str:
        log = self.base / "postgres.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def connect(self, dbname: str = "postgres") -> Any:
        """A superuser's autocommit connection over TCP (a `psycopg.Connection`)."""
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.superuser, password=self.password, dbname=dbname, autocommit=True
        )

    def promote(self) -> None:
        """A standby made primary (what RDS does to the standby on a failover)."""
        with self.connect() as connection:
            connection.execute("SELECT pg_promote(wait => true, wait_seconds => 30)")

    def stop(self) -> None:
        # SIGQUIT is pg_ctl's immediate stop: the postmaster ends its backends and frees its shared
        # memory at once, without a checkpoint (the data goes with its directory). The process
        # group is killed after it, in case a backend outlived it.
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if self.cluster != self.base:
            shutil.rmtree(self.cluster, ignore_errors=True)


def _as_postgres_user() -> dict[str, Any]:
    """Popen's arguments that run a program as the postgres system user when this runs as root
    (initdb and postgres refuse root), or nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root, and there is no postgres user to run PostgreSQL as") from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _cluster_directory(base: Path, as_user: dict[str, Any]) -> Path:
    """Where the cluster lives: `base`, or as root a new directory owned by the postgres user
    (pytest's base directory is root's, mode 0700: the postgres user cannot enter it)."""
    if not as_user:
        return base
    cluster = Path(tempfile.mkdtemp(prefix="postgres-test-"))
    os.chown(cluster, as_user["user"], as_user["group"])
    return cluster


def _initdb(bindir: Path, cluster: Path, superuser: str, password: str, as_user: dict[str, Any]) -> None:
    """A new cluster in `cluster`/data whose connections all authenticate with scram-sha-256."""
    pwfile = cluster / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if as_user:
        os.chown(pwfile, as_user["user"], as_user["group"])
    try:
        done = subprocess.run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(cluster / "data"),
                "--username",
                superuser,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            env={**os.environ, "LC_ALL": "C"},
            cwd=cluster,
            capture_output=True,
            timeout=START_TIMEOUT_S,
            check=False,
            **as_user,
        )
    finally:
        pwfile.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"initdb exited with {done.returncode}:\n{(done.stdout + done.stderr).decode()[-3000:]}")


def start_postgres(base: Path) -> Postgres:
    """Start a new cluster of the newest PostgreSQL installed, on a free port of 127.0.0.1 with its
    unix socket in its own directory, and wait until it accepts connections. Durability is off
    (fsync and the rest): the cluster is thrown away with its directory."""
    program = require("postgres")
    bindir = program.parent
    as_user = _as_postgres_user()
    base.mkdir(parents=True, exist_ok=True)
    cluster = _cluster_directory(base, as_user)
    superuser, password = "bootstrap", base64.urlsafe_b64encode(os.urandom(18)).decode()
    try:
        _initdb(bindir, cluster, superuser, password, as_user)
        (cluster / "socket").mkdir()
        if as_user:
            os.chown(cluster / "socket", as_user["user"], as_user["group"])
    except BaseException:
        if cluster != base:
            shutil.rmtree(cluster, ignore_errors=True)
        raise
    return _launch_postgres(program, base, cluster, superuser, password, as_user)


def _launch_postgres(
    program: Path, base: Path, cluster: Path, superuser: str, password: str, as_user: dict[str, Any]
) -> Postgres:
    """postgres on a free port over `cluster`/data, waited for until it accepts connections."""
    bindir = program.parent
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(cluster / "socket"),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "50",
        "shared_buffers": "32MB",
    }
    with (base / "postgres.log").open("ab") as log:
        process = subprocess.Popen(
            [str(program), "-D", str(cluster / "data"), *(a for k, v in settings.items() for a in ("-c", f"{k}={v}"))],
            env={**os.environ, "LC_ALL": "C"},
            cwd=cluster,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so `stop` reaches every backend
            **as_user,
        )
    server = Postgres("127.0.0.1", port, superuser, password, process, base, cluster)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"postgres exited with {process.returncode}:\n{server.log_tail()}")
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "--quiet", "--host", server.host, "--port", str(port), "--timeout", "2"],
            check=False,
            timeout=30,
        )
        if ready.returncode == 0:
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"postgres did not accept connections within {START_TIMEOUT_S} s:\n{server.log_tail()}")


def start_postgres_standby(primary: Postgres, base: Path) -> Postgres:
    """A streaming standby of `primary` (pg_basebackup -R), on a port of its own; `promote` on it
    is what a Multi-AZ failover does."""
    program = require("postgres")
    as_user = _as_postgres_user()
    base.mkdir(parents=True, exist_ok=True)
    cluster = _cluster_directory(base, as_user)
    (cluster / "socket").mkdir()
    if as_user:
        os.chown(cluster / "socket", as_user["user"], as_user["group"])
    done = subprocess.run(
        [
            str(program.parent / "pg_basebackup"),
            "--pgdata",
            str(cluster / "data"),
            "--host",
            primary.host,
            "--port",
            str(primary.port),
            "--username",
            primary.superuser,
            "--write-recovery-conf",
            "--checkpoint=fast",
            "--wal-method=stream",
        ],
        env={**os.environ, "PGPASSWORD": primary.password, "LC_ALL": "C"},
        cwd=cluster,
        capture_output=True,
        timeout=START_TIMEOUT_S,
        check=False,
        **as_user,
    )
    if done.returncode != 0:
        shutil.rmtree(cluster, ignore_errors=True)
        raise RuntimeError(
            f"pg_basebackup exited with {done.returncode}:\n{(done.stdout + done.stderr).decode()[-3000:]}"
        )
    return _launch_postgres(program, base, cluster, primary.superuser, primary.password, as_user)


@dataclass
class Redis:
    """A Redis server on `host` (127.0.0.1) whose users are those of the ACL file it was started
    with."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    base: Path

    def log_tail(self) -> str:
        log = self.base / "redis.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def stop(self) -> None:
        # Killed, not shut down: it saves nothing.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def _redis_answers(port: int) -> bool:
    """Whether the server answers a PING, whatever the answer (NOAUTH when the default user is off)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(256)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def start_redis(base: Path, acl_file_text: str, extra: Sequence[str] = ()) -> Redis:
    """Start a server in `base` on a free port of 127.0.0.1 with `acl_file_text` as its ACL file,
    and wait until it answers. It keeps nothing on disk. (A system redis-server, on 6379, is
    another server: this one never uses its port or its files.) `extra`: more configuration
    lines (`replicaof 127.0.0.1 <port>` makes it a replica)."""
    program = require("redis")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    acl = base / "users.acl"
    acl.write_text(acl_file_text)
    acl.chmod(0o600)
    config = base / "redis.conf"
    config.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                "daemonize no",
                'save ""',
                "appendonly no",
                f"dir {base}",
                f"aclfile {acl}",
                'logfile ""',
                # Redis refuses DEBUG to every user by default, before it looks at the ACL; let it
                # through (from loopback) so the tests show a user's rules refuse it.
                "enable-debug-command local",
                *extra,
                "",
            ]
        )
    )
    with (base / "redis.log").open("ab") as log:
        process = subprocess.Popen(
            [str(program), str(config)],
            cwd=base,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Redis("127.0.0.1", port, process, base)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"redis-server exited with {process.returncode}:\n{server.log_tail()}")
        if _redis_answers(port):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_S} s:\n{server.log_tail()}")
