"""Real servers for the tests, from Debian's packages, each started in a temporary directory on
loopback ports and stopped at the end of the session.

A server whose package is missing makes its tests skip with the command that installs it, except
in CI (`CI=true`), where that is a failure: CI installs the packages (`make servers`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: The Debian package of each server, and the program that shows it is there.
PACKAGES = {"rabbitmq": ("rabbitmq-server", Path("/usr/lib/rabbitmq/bin/rabbitmq-server"))}
START_TIMEOUT_S = 90


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

    def stop(self) -> None:
        # Killed, not shut down: its data is thrown away with its directory, and a clean stop
        # takes seconds.
        # The start script runs the Erlang VM as its child, and epmd (the port mapper, on this
        # node's own port) detaches from both: the whole session goes.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        epmd = shutil.which("epmd") or "/usr/bin/epmd"
        subprocess.run([epmd, "-kill"], env=self.env, check=False, capture_output=True, timeout=30)


def start_rabbitmq(base: Path) -> RabbitMq:
    """Start a node in `base` (its data, logs, config and Erlang cookie) and wait until its
    management API answers. The guest user (allowed from loopback only) loads the definitions."""
    program = require("rabbitmq")
    amqp, management, dist, epmd = free_port(), free_port(), free_port(), free_port()
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
        "RABBITMQ_NODENAME": f"rabbit-test-{os.getpid()}@localhost",
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
    node = RabbitMq(amqp, management, process, base, env)
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
