"""The database plan against a real PostgreSQL (Debian's, started for these tests on a loopback
port): its SQL runs as a non-superuser holding the RDS master user's rights (CREATEROLE,
CREATEDB, owner of the service database), and real connections (psycopg) as each planned role
can do what the role is for and are refused the rest, with the server's own SQLSTATE.

The Debian server is PostgreSQL 15; RDS runs 14 and later (17 by default). What these tests rely on
behaves the same from 15 on: the public schema grants PUBLIC no CREATE (on 14 it still does), and
default privileges, database CONNECT and role membership work as on RDS. The migration runs as
`scans_owner` after the grants, so every table it creates is reached through default privileges
alone, as in production.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import psycopg.errors
import pytest
import servers
from psycopg import sql

from components.data import database_roles as roles

PLAN = roles.plan(["storage-api"], ["api"])
PASSWORDS = {r.name: secrets.token_urlsafe(24) for r in PLAN.roles}
#: The master user's rights on RDS: CREATEROLE and CREATEDB, no superuser.
ADMIN = ("scanner_admin", secrets.token_urlsafe(24))
#: A login role created by hand, outside the plan.
OUTSIDER = ("scanner_outsider", secrets.token_urlsafe(24))
#: The first migration: a table with a serial key, so inserting uses its sequence.
MIGRATION = (
    "CREATE TABLE results.findings (id bigserial PRIMARY KEY, scan text NOT NULL, severity text NOT NULL)",
    "CREATE INDEX findings_scan ON results.findings (scan)",
)
#: One server for the module: its tests share one worker when the tests run in parallel.
pytestmark = pytest.mark.xdist_group("postgres")


@pytest.fixture(scope="session")
def database(tmp_path_factory) -> Iterator[servers.Postgres]:
    """One cluster for the session: the master user, the service database and the plan in it,
    then the first migration as its owner."""
    server = servers.start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        with connect(server, (server.superuser, server.password), "postgres") as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
                    sql.Identifier(ADMIN[0]), sql.Literal(ADMIN[1])
                )
            )
        with connect(server, ADMIN, "postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PLAN.database)))
        with connect(server, ADMIN) as conn:
            for statement in PLAN.statements(PASSWORDS):
                run(conn, statement)
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(OUTSIDER[0]), sql.Literal(OUTSIDER[1])
                )
            )
        with connect(server, login(roles.OWNER)) as conn:
            for statement in MIGRATION:
                run(conn, statement)
        yield server
    finally:
        server.stop()


def connect(server: servers.Postgres, user: tuple[str, str], dbname: str = PLAN.database) -> psycopg.Connection:
    """A connection over TCP with a password, as every client of the proxy connects. Autocommit:
    a refused statement does not abort the ones after it."""
    return psycopg.connect(
        host=server.host,
        port=server.port,
        user=user[0],
        password=user[1],
        dbname=dbname,
        autocommit=True,
        connect_timeout=10,
    )


def login(role: str) -> tuple[str, str]:
    return role, PASSWORDS[role]


def run(conn: psycopg.Connection, statement: str) -> None:
    """Run a statement of the plan or the migration, naming it when the server refuses it."""
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        pytest.fail(f"the server refused {statement!r}: {exc.sqlstate} {exc}", pytrace=False)


def refused(conn: psycopg.Connection, statement: str) -> str:
    """The message of the server's refusal of `statement` for want of a privilege (SQLSTATE 42501)."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        conn.execute(statement)
    assert info.value.sqlstate == "42501"
    return str(info.value)


def insert_finding(conn: psycopg.Connection, scan: str) -> int:
    row = conn.execute("INSERT INTO findings (scan, severity) VALUES (%s, 'low') RETURNING id", (scan,)).fetchone()
    assert row is not None
    return row[0]


def test_the_planned_roles_log_in_and_hold_no_role_attribute(database):
    with connect(database, ADMIN) as conn:
        rows = conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
            " FROM pg_roles WHERE rolname = ANY(%s)",
            ([r.name for r in PLAN.roles],),
        ).fetchall()
    assert {row[0]: row[1:] for row in rows} == {r.name: (True, False, False, False, False, False) for r in PLAN.roles}


def test_the_owner_creates_alters_and_drops_tables_in_the_schema(database):
    with connect(database, login(roles.OWNER)) as conn:
        conn.execute("CREATE TABLE results.scratch (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)")
        conn.execute("ALTER TABLE results.scratch ADD COLUMN seen timestamptz NOT NULL DEFAULT now()")
        conn.execute("ALTER TABLE results.scratch RENAME COLUMN note TO detail")
        # A table created now, long after the grants, is the writer's too.
        with connect(database, login(roles.WRITER)) as writer:
            writer.execute("INSERT INTO scratch (detail) VALUES ('later')")
            assert writer.execute("SELECT detail FROM scratch").fetchall() == [("later",)]
        conn.execute("DROP TABLE results.scratch")
        found = conn.execute("SELECT to_regclass('results.scratch')").fetchone()
    assert found == (None,)


def test_the_writer_reads_and_writes_rows_of_a_table_the_migration_created(database):
    with connect(database, login(roles.WRITER)) as conn:
        first = insert_finding(conn, "writer-rows")
        second = insert_finding(conn, "writer-rows")
        assert second > first  # the serial key's sequence, through USAGE on it
        conn.execute("UPDATE findings SET severity = 'high' WHERE id = %s", (first,))
        rows = conn.execute("SELECT id, severity FROM findings WHERE scan = 'writer-rows' ORDER BY id").fetchall()
        assert rows == [(first, "high"), (second, "low")]
        deleted = conn.execute("DELETE FROM findings WHERE scan = 'writer-rows'")
        assert deleted.rowcount == 2
        (next_id,) = conn.execute("SELECT nextval('findings_id_seq')").fetchone() or (None,)
        assert next_id is not None and next_id > second


def test_the_writer_cannot_change_the_schema(database):
    with connect(database, login(roles.WRITER)) as conn:
        assert "permission denied for schema results" in refused(conn, "CREATE TABLE results.mine (id int)")
        assert "must be owner of table findings" in refused(conn, "DROP TABLE findings")
        assert "must be owner of table findings" in refused(conn, "ALTER TABLE findings ADD COLUMN mine int")
        assert "permission denied for table findings" in refused(conn, "TRUNCATE findings")
        assert "permission denied for schema public" in refused(conn, "CREATE TABLE public.mine (id int)")
        assert "permission denied for sequence findings_id_seq" in refused(conn, "SELECT setval('findings_id_seq', 1)")
        # PUBLIC lost TEMPORARY on the database with CONNECT.
        assert "permission denied to create temporary tables" in refused(conn, "CREATE TEMP TABLE mine (id int)")


def test_the_reader_reads_rows_and_writes_none(database):
    with connect(database, login(roles.WRITER)) as writer:
        written = insert_finding(writer, "reader-rows")
    with connect(database, login(roles.READER)) as conn:
        assert conn.execute("SELECT scan FROM findings WHERE id = %s", (written,)).fetchall() == [("reader-rows",)]
        assert "permission denied for table findings" in refused(
            conn, "INSERT INTO findings (scan, severity) VALUES ('mine', 'low')"
        )
        assert "permission denied for table findings" in refused(conn, "UPDATE findings SET severity = 'high'")
        assert "permission denied for table findings" in refused(conn, "DELETE FROM findings")
        assert "permission denied for sequence findings_id_seq" in refused(conn, "SELECT nextval('findings_id_seq')")
        assert "permission denied for schema results" in refused(conn, "CREATE TABLE results.mine (id int)")


def test_a_role_outside_the_plan_cannot_connect_to_the_database(database):
    # The same login reaches the maintenance database (PUBLIC keeps CONNECT there): only the
    # service database refuses it. A refusal at connection time carries no SQLSTATE in psycopg;
    # the server's message is that of 42501.
    with connect(database, OUTSIDER, "postgres") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (OUTSIDER[0],)
    with pytest.raises(psycopg.OperationalError) as info:
        connect(database, OUTSIDER)
    assert f'permission denied for database "{PLAN.database}"' in str(info.value)
    assert "User does not have CONNECT privilege" in str(info.value)


@pytest.mark.parametrize("role", [r.name for r in PLAN.roles if not r.private_schema])
def test_every_role_resolves_unqualified_names_in_the_schema(database, role):
    with connect(database, login(role)) as conn:
        assert conn.execute("SHOW search_path").fetchone() == (PLAN.schema,)
        schema = conn.execute("SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'findings'::regclass")
        assert schema.fetchone() == (PLAN.schema,)
        conn.execute("SELECT count(*) FROM findings")


def test_the_drill_role_keeps_canaries_in_its_own_schema_and_reads_no_result(database):
    """What the drill's database probe does (drill/probes.py), as the drill's role: its table goes
    to its own schema, and the results stay out of its reach."""
    with connect(database, login(roles.WRITER)) as writer:
        insert_finding(writer, "not-for-the-drill")
    with connect(database, login(roles.DRILL)) as conn:
        assert conn.execute("SELECT current_schema()").fetchone() == (roles.DRILL_SCHEMA,)
        conn.execute("CREATE TABLE IF NOT EXISTS drill_canary (key text PRIMARY KEY, at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO drill_canary (key) VALUES ('c-1')")
        table = conn.execute(
            "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'drill_canary'::regclass"
        )
        assert table.fetchone() == (roles.DRILL_SCHEMA,)
        assert "permission denied for schema results" in refused(conn, "SELECT count(*) FROM results.findings")
        assert "permission denied for schema results" in refused(conn, "CREATE TABLE results.canary (id int)")


def test_no_planned_role_logs_in_with_another_s_password(database):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(database, (roles.OWNER, PASSWORDS[roles.WRITER]))
