"""The database's roles and grants, planned without Pulumi.

No service logs in as the master user. The plan holds three login roles in the service database,
each reached through the RDS Proxy with a secret of its own:

| role | client | may |
|---|---|---|
| `scans_owner` | migrations (the `data-client` identity) | own the `results` schema and its tables |
| `scans_rw` | services listing `postgres` (the storage API) | read and write rows, use sequences |
| `scans_ro` | services listing `postgres-read` | read rows, at the read replica |
| `scans_drill` | the zone drill's probes (`drill`) | own the `drill` schema, its canary table; nothing of `results` |

`PUBLIC` loses its default CONNECT and TEMPORARY on the database, so a role this plan does not
name (or a future one created by hand) cannot even connect (and no role creates temporary
tables), and its rights on schema `public`, where PostgreSQL 14 still lets every role create.
Default privileges make every table the owner creates later readable and writable by `scans_rw`
and readable by `scans_ro` without another grant.

The plan is rendered twice: as pulumi-postgresql resources (components/data/database_clients.py)
and as SQL (`statements`), which the tests run on a real PostgreSQL as a non-superuser with the
master user's rights on RDS (CREATEROLE, CREATEDB), then prove each role's rights with real
connections.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

OWNER = "scans_owner"
WRITER = "scans_rw"
READER = "scans_ro"
DRILL = "scans_drill"
SCHEMA = "results"
#: The drill's own schema: its canaries never mix with the results.
DRILL_SCHEMA = "drill"
#: The client that runs schema migrations (the data-client identity of the services namespace).
MIGRATIONS = "migrations"

TABLE_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")
TABLE_READ = ("SELECT",)
SEQUENCE_USE = ("USAGE", "SELECT")


@dataclass(frozen=True)
class Role:
    name: str
    clients: tuple[str, ...]
    """Who reads this role's secret: `migrations` or `service:<name>`."""
    endpoint: Literal["writer", "reader"]
    """Where its clients connect: the proxy (writer) or the replica (reader)."""
    table_privileges: tuple[str, ...] = ()
    sequence_privileges: tuple[str, ...] = ()
    owns_schema: bool = False
    """Owns the plan's schema (the results)."""
    private_schema: str = ""
    """A schema of its own, which it owns and works in, with no right on the plan's schema."""
    purpose: str = ""

    def search_path(self, schema: str) -> str:
        return self.private_schema or schema


@dataclass(frozen=True)
class DatabasePlan:
    database: str
    schema: str
    roles: tuple[Role, ...]

    @property
    def owner(self) -> Role:
        return next(r for r in self.roles if r.owns_schema)

    def role(self, name: str) -> Role:
        return next(r for r in self.roles if r.name == name)

    def statements(self, passwords: Mapping[str, str]) -> list[str]:
        """The plan as SQL a non-superuser with CREATEROLE runs in the service database: the
        rights of the RDS master user. `passwords` maps each role to its password."""
        missing = sorted(r.name for r in self.roles if r.name not in passwords)
        if missing:
            raise ValueError(f"no password for database role(s) {', '.join(missing)}")
        owner, db, schema = self.owner.name, _ident(self.database), _ident(self.schema)
        out = [f"CREATE ROLE {_ident(r.name)} LOGIN PASSWORD {_literal(passwords[r.name])}" for r in self.roles]
        out += [
            f"ALTER ROLE {_ident(r.name)} SET search_path = {_ident(r.search_path(self.schema))}" for r in self.roles
        ]
        out.append(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
        # PostgreSQL 14 still lets PUBLIC create in schema public (15 stopped): no role here may.
        out.append("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        out += [f"GRANT CONNECT ON DATABASE {db} TO {_ident(r.name)}" for r in self.roles]
        # CREATE SCHEMA ... AUTHORIZATION and ALTER DEFAULT PRIVILEGES FOR ROLE need membership of
        # the owner when the caller is no superuser (pulumi-postgresql grants it the same way).
        out.append(f"GRANT {_ident(owner)} TO CURRENT_USER")
        out.append(f"CREATE SCHEMA {schema} AUTHORIZATION {_ident(owner)}")
        for r in self.roles:
            if r.private_schema:
                out.append(f"GRANT {_ident(r.name)} TO CURRENT_USER")
                out.append(f"CREATE SCHEMA {_ident(r.private_schema)} AUTHORIZATION {_ident(r.name)}")
        for r in self.roles:
            if r.owns_schema or r.private_schema:
                continue
            out.append(f"GRANT USAGE ON SCHEMA {schema} TO {_ident(r.name)}")
            for kind, privileges in (("TABLES", r.table_privileges), ("SEQUENCES", r.sequence_privileges)):
                if not privileges:
                    continue
                listed = ", ".join(privileges)
                out.append(f"GRANT {listed} ON ALL {kind} IN SCHEMA {schema} TO {_ident(r.name)}")
                out.append(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {_ident(owner)} IN SCHEMA {schema} "
                    f"GRANT {listed} ON {kind} TO {_ident(r.name)}"
                )
        return out


def plan(
    writers: Iterable[str], readers: Iterable[str] = (), *, database: str = "scans", schema: str = SCHEMA
) -> DatabasePlan:
    """The roles for the services that list `postgres` (`writers`) and `postgres-read`
    (`readers`). The owner is always there: migrations run before any service starts; so is the
    drill's role, whose canaries prove the database kept every write through a zone drill."""
    writers, readers = tuple(writers), tuple(readers)
    roles = [
        Role(
            OWNER,
            (MIGRATIONS,),
            "writer",
            owns_schema=True,
            purpose=f"schema migrations: owns the {schema} schema and its tables",
        )
    ]
    if writers:
        roles.append(
            Role(
                WRITER,
                tuple(f"service:{s}" for s in writers),
                "writer",
                TABLE_WRITE,
                SEQUENCE_USE,
                purpose=f"{', '.join(writers)} read and write rows of {schema}",
            )
        )
    if readers:
        roles.append(
            Role(
                READER,
                tuple(f"service:{s}" for s in readers),
                "reader",
                TABLE_READ,
                purpose=f"{', '.join(readers)} read rows of {schema} on the read replica",
            )
        )
    roles.append(
        Role(
            DRILL,
            ("drill",),
            "writer",
            private_schema=DRILL_SCHEMA,
            purpose=f"the zone drill's probes write canaries in the {DRILL_SCHEMA} schema, and see nothing of {schema}",
        )
    )
    return DatabasePlan(database=database, schema=schema, roles=tuple(roles))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
