"""The cache's users, planned without Pulumi (ElastiCache RBAC, Redis ACLs underneath).

No client shares a token. Each service that lists `redis` gets a user of its own that reaches only
the keys under its own prefix (`<service>:*`) with the read, write, transaction and connection
commands, minus every command Redis files as dangerous (FLUSHALL, KEYS, CONFIG, DEBUG, INFO, ...)
and three more ways to reach past its prefix that key patterns do not stop, found against a real
Redis: SCAN and RANDOMKEY (they take no key, so they list every service's key names), scripting
(FUNCTION LOAD / FLUSH act on every service's libraries) and CLIENT TRACKING (a broadcast prefix
pushes other services' key names as invalidations). What a client loses: scripts (and so
redis-py's Lock release), server-side key listing, client-side caching. The drill and health
checks get a user for the `drill:*` keys. The built-in `default` user, which every client that
does not authenticate becomes, is switched off.

ElastiCache takes the same access strings Redis takes after `ACL SETUSER <name>`, with two
differences the plan keeps to: no password inside the string (ElastiCache sets passwords
through its own API) and no `reset`. `acl_file` renders the plan as a Redis ACL file, which
the tests load into a real Redis to prove each user's reach with a real client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_USER = "default"
DRILL_USER = "drill"
DRILL_PREFIX = "drill"
#: What a client needs on its own keys, and nothing an operator alone should run.
CLIENT_COMMANDS = (
    "-@all",
    "+@read",
    "+@write",
    "+@transaction",
    "+@connection",
    "-@dangerous",
    "-@scripting",
    "-scan",
    "-randomkey",
    "-client|tracking",
)
#: The default user: off, and no command even if it were switched on.
DISABLED = "off -@all"


@dataclass(frozen=True)
class CacheUser:
    name: str
    client: str
    """Who holds the credentials: `service:<name>` or `drill`."""
    key_prefix: str
    purpose: str = ""

    @property
    def access_string(self) -> str:
        return " ".join(("on", f"~{self.key_prefix}:*", *CLIENT_COMMANDS))


@dataclass(frozen=True)
class CachePlan:
    users: tuple[CacheUser, ...]

    def user(self, client: str) -> CacheUser:
        matches = [u for u in self.users if u.client == client]
        if len(matches) != 1:
            raise KeyError(f"no cache user for client {client!r}")
        return matches[0]

    def acl_file(self, passwords: Mapping[str, str]) -> str:
        """A Redis ACL file (`aclfile` in redis.conf) holding the plan: `passwords` maps each
        user to its password."""
        missing = sorted(u.name for u in self.users if u.name not in passwords)
        if missing:
            raise ValueError(f"no password for cache user(s) {', '.join(missing)}")
        for user in self.users:
            if any(c.isspace() for c in passwords[user.name]):
                raise ValueError(f"the password of cache user {user.name} holds white space")
        lines = [f"user {DEFAULT_USER} {DISABLED}"]
        lines += [f"user {u.name} >{passwords[u.name]} {u.access_string}" for u in self.users]
        return "\n".join(lines) + "\n"


def plan(services: Iterable[str]) -> CachePlan:
    """The users for the services that list `redis`, and the drill's."""
    users = [
        CacheUser(f"svc-{s}", f"service:{s}", s, purpose=f"{s} reads and writes its own keys ({s}:*)") for s in services
    ]
    users.append(
        CacheUser(DRILL_USER, "drill", DRILL_PREFIX, purpose="health checks and the zone drill write drill:* keys")
    )
    prefixes = [u.key_prefix for u in users]
    clash = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if clash:
        raise ValueError(f"cache key prefix(es) {', '.join(clash)} would be shared by two clients")
    return CachePlan(users=tuple(users))
