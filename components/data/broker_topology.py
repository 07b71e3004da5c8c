"""The broker's topology and its clients' identities, planned without Pulumi.

Everything the scan request path needs on RabbitMQ, declared by the stack instead of by the first
client that happens to connect:

- one virtual host for the service;
- a direct exchange for scan requests, routed by engine name to a durable **quorum** queue per
  engine (`<prefix>.<engine>`): replicated over the broker's three nodes, so a zone's loss loses no
  acknowledged request;
- on each scan queue a delivery limit (a request that crashes its Job is redelivered that many
  times, not for ever), a dead-letter target (`<prefix>.<engine>.dead`, through the dead-letter
  exchange `<prefix>.dead`) and a length limit with `reject-publish` overflow, so publishers get a
  negative confirm (backpressure) instead of the broker running out of memory;
- a canary queue behind its own exchange for health checks, and the zone drill's own queue
  behind the same exchange: a drill publishes a canary a second for up to the whole outage, so
  its queue refuses a publish when full (`reject-publish`: a negative confirm, which the probe
  counts as a failed write) and never drops an acknowledged canary, as the health canary's
  `drop-head` would;
- one user per client, with the narrowest permissions that let it work (RabbitMQ's configure,
  write and read patterns are regular expressions over exchange and queue names):

  | client | configure | write | read | tags |
  |---|---|---|---|---|
  | a publishing service | nothing | the scans exchange | nothing | |
  | an engine's consumer | nothing | nothing | its own queue | |
  | KEDA | nothing | nothing | nothing | monitoring (queue depth over the management API) |
  | the queue-metrics publisher | nothing | nothing | nothing | monitoring (the same, and the nodes) |
  | the drill | nothing | the canary exchange | the canary and drill queues | |

The plan is rendered twice: as Pulumi resources (components/data/broker_clients.py) and as a
RabbitMQ definitions document (`definitions`), which the tests load into a real server to prove
each permission with real clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The service's virtual host.
VHOST = "scanner"
#: Exchange and queue of the canary: health checks and the drill publish and read here only.
HEALTH_EXCHANGE = "health"
CANARY_QUEUE = "health.canary"
CANARY_ROUTING_KEY = "canary"
#: The canary keeps its newest messages: an unread canary must never refuse the next check.
CANARY_MAX_LENGTH = 1000
#: The drill's canaries: a drill of two hours at one a second fits many times over.
DRILL_QUEUE = "drill.canary"
DRILL_ROUTING_KEY = "drill"
DRILL_MAX_LENGTH = 100_000
KEDA_USER = "keda"
#: The queue-metrics publisher's user (components/monitoring/queue_metrics): reads, never consumes.
QUEUE_METRICS_USER = "queue-metrics"
DRILL_USER = "drill"
#: Matches no name (RabbitMQ treats an empty pattern the same way; this one reads as intended).
NOTHING = "^$"


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str = "direct"


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: Mapping[str, Any]

    @property
    def quorum(self) -> bool:
        return self.arguments.get("x-queue-type") == "quorum"


@dataclass(frozen=True)
class Binding:
    source: str
    destination: str
    routing_key: str


@dataclass(frozen=True)
class Permission:
    configure: str = NOTHING
    write: str = NOTHING
    read: str = NOTHING


@dataclass(frozen=True)
class User:
    name: str
    client: str
    """Who holds the credentials: `service:<name>`, `engine:<name>`, `keda`, `queue-metrics` or
    `drill`."""
    permission: Permission
    tags: tuple[str, ...] = ()
    purpose: str = ""


@dataclass(frozen=True)
class BrokerTopology:
    vhost: str
    scans_exchange: str
    dead_letter_exchange: str
    exchanges: tuple[Exchange, ...]
    queues: tuple[Queue, ...]
    bindings: tuple[Binding, ...]
    users: tuple[User, ...]
    scan_queues: Mapping[str, str] = field(default_factory=dict)
    """Engine -> its scan queue."""
    dead_letter_queues: Mapping[str, str] = field(default_factory=dict)
    """Engine -> the queue its rejected requests land in."""

    def user(self, client: str) -> User:
        matches = [u for u in self.users if u.client == client]
        if len(matches) != 1:
            raise KeyError(f"no broker user for client {client!r}")
        return matches[0]

    def queue(self, name: str) -> Queue:
        return next(q for q in self.queues if q.name == name)

    def definitions(self, passwords: Mapping[str, str], admin: tuple[str, str] | None = None) -> dict[str, Any]:
        """A RabbitMQ definitions document (the format of `rabbitmqctl import_definitions` and
        the management API's POST /api/definitions) holding the whole plan: `passwords` maps each
        user's name to its password; `admin` adds an administrator (a test server's; on Amazon MQ
        the broker's own administrator already exists and is not part of the plan)."""
        missing = sorted(u.name for u in self.users if u.name not in passwords)
        if missing:
            raise ValueError(f"no password for broker user(s) {', '.join(missing)}")
        users = [{"name": u.name, "password": passwords[u.name], "tags": ",".join(u.tags)} for u in self.users]
        permissions = [
            {
                "user": u.name,
                "vhost": self.vhost,
                "configure": u.permission.configure,
                "write": u.permission.write,
                "read": u.permission.read,
            }
            for u in self.users
        ]
        if admin is not None:
            users.append({"name": admin[0], "password": admin[1], "tags": "administrator"})
            permissions.append({"user": admin[0], "vhost": self.vhost, "configure": ".*", "write": ".*", "read": ".*"})
        return {
            "users": users,
            "vhosts": [{"name": self.vhost}],
            "permissions": permissions,
            "exchanges": [
                {
                    "name": e.name,
                    "vhost": self.vhost,
                    "type": e.type,
                    "durable": True,
                    "auto_delete": False,
                    "internal": False,
                    "arguments": {},
                }
                for e in self.exchanges
            ],
            "queues": [
                {
                    "name": q.name,
                    "vhost": self.vhost,
                    "durable": True,
                    "auto_delete": False,
                    "arguments": dict(q.arguments),
                }
                for q in self.queues
            ],
            "bindings": [
                {
                    "source": b.source,
                    "vhost": self.vhost,
                    "destination": b.destination,
                    "destination_type": "queue",
                    "routing_key": b.routing_key,
                    "arguments": {},
                }
                for b in self.bindings
            ],
        }


def exactly(*names: str) -> str:
    """A permission pattern matching these names and nothing else (names may hold dots)."""
    return "^(" + "|".join(re.escape(n) for n in names) + ")$" if names else NOTHING


def plan(
    engines: Iterable[str],
    publishers: Iterable[str],
    *,
    prefix: str = "scans",
    delivery_limit: int = 5,
    max_length: int = 100_000,
    vhost: str = VHOST,
) -> BrokerTopology:
    """The topology for these engines and publishing services (the services that list rabbitmq
    among their data stores)."""
    engines, publishers = tuple(engines), tuple(publishers)
    if not engines:
        raise ValueError("the broker needs at least one scan engine")
    if delivery_limit < 1 or max_length < 1:
        raise ValueError("the delivery limit and the length limit must be positive")
    scans, dead = prefix, f"{prefix}.dead"
    scan_queues = {e: f"{prefix}.{e}" for e in engines}
    dead_queues = {e: f"{prefix}.{e}.dead" for e in engines}

    queues: list[Queue] = []
    bindings: list[Binding] = []
    for engine in engines:
        queues.append(
            Queue(
                scan_queues[engine],
                {
                    "x-queue-type": "quorum",
                    "x-delivery-limit": delivery_limit,
                    "x-dead-letter-exchange": dead,
                    "x-dead-letter-routing-key": engine,
                    "x-max-length": max_length,
                    "x-overflow": "reject-publish",
                },
            )
        )
        # Dead letters wait for a person: no limit of their own beyond the broker's alarms.
        queues.append(Queue(dead_queues[engine], {"x-queue-type": "quorum"}))
        bindings.append(Binding(scans, scan_queues[engine], engine))
        bindings.append(Binding(dead, dead_queues[engine], engine))
    queues.append(
        Queue(CANARY_QUEUE, {"x-queue-type": "quorum", "x-max-length": CANARY_MAX_LENGTH, "x-overflow": "drop-head"})
    )
    bindings.append(Binding(HEALTH_EXCHANGE, CANARY_QUEUE, CANARY_ROUTING_KEY))
    queues.append(
        Queue(DRILL_QUEUE, {"x-queue-type": "quorum", "x-max-length": DRILL_MAX_LENGTH, "x-overflow": "reject-publish"})
    )
    bindings.append(Binding(HEALTH_EXCHANGE, DRILL_QUEUE, DRILL_ROUTING_KEY))

    users = [
        User(
            f"svc-{service}",
            f"service:{service}",
            Permission(write=exactly(scans)),
            purpose=f"{service} publishes scan requests to the {scans} exchange",
        )
        for service in publishers
    ]
    users += [
        User(
            f"engine-{engine}",
            f"engine:{engine}",
            Permission(read=exactly(scan_queues[engine])),
            purpose=f"the {engine} Jobs consume {scan_queues[engine]}",
        )
        for engine in engines
    ]
    users.append(
        User(
            KEDA_USER,
            "keda",
            Permission(),
            tags=("monitoring",),
            purpose="KEDA reads the queues' depth through the management API",
        )
    )
    users.append(
        User(
            QUEUE_METRICS_USER,
            "queue-metrics",
            Permission(),
            tags=("monitoring",),
            purpose="the queue-metrics publisher reads the queues' depth and the nodes' memory and disk",
        )
    )
    users.append(
        User(
            DRILL_USER,
            "drill",
            # No configure: a passive declare (the probe's check) needs none, and configure would
            # let it delete the queues.
            Permission(write=exactly(HEALTH_EXCHANGE), read=exactly(CANARY_QUEUE, DRILL_QUEUE)),
            purpose="health checks and the zone drill publish and read their canaries",
        )
    )
    names = [u.name for u in users]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"broker user name(s) {', '.join(clash)} would be used by two clients")
    return BrokerTopology(
        vhost=vhost,
        scans_exchange=scans,
        dead_letter_exchange=dead,
        exchanges=(Exchange(scans), Exchange(dead), Exchange(HEALTH_EXCHANGE)),
        queues=tuple(queues),
        bindings=tuple(bindings),
        users=tuple(users),
        scan_queues=scan_queues,
        dead_letter_queues=dead_queues,
    )
