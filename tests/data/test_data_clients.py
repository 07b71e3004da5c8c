"""The database's roles and the cache's users as the program registers them: the plans
(components/data/database_roles.py, cache_users.py) on their own, then the recorded prod stack:
who logs in where, with which password, readable by whom."""

import json

import pytest
from conftest import of_type, one, run

from components.data import cache_users, database_roles
from offline.report import summary
from policies.common import contract

SECRET, VERSION = "aws:secretsmanager/secret:Secret", "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"
ROLE, GRANT = "postgresql:index/role:Role", "postgresql:index/grant:Grant"
DEFAULTS = "postgresql:index/defaultPrivileges:DefaultPrivileges"
CACHE_USER, USER_GROUP = "aws:elasticache/user:User", "aws:elasticache/userGroup:UserGroup"


def plain(value):
    """A secret output's value (the record keeps Pulumi's secret wrapper)."""
    return value.get("value") if isinstance(value, dict) and "value" in value else value


# ----- the plans -------------------------------------------------------------------------------


def test_database_plan_gives_each_store_listing_its_role():
    plan = database_roles.plan(["storage-api"], ["api", "reports"])
    assert [(r.name, r.clients, r.endpoint) for r in plan.roles] == [
        ("scans_owner", ("migrations",), "writer"),
        ("scans_rw", ("service:storage-api",), "writer"),
        ("scans_ro", ("service:api", "service:reports"), "reader"),
        ("scans_drill", ("drill",), "writer"),
    ]
    assert plan.owner.name == "scans_owner" and not plan.role("scans_ro").sequence_privileges
    # The drill's role works in a schema of its own, with no right on the results.
    drill = plan.role("scans_drill")
    assert (drill.private_schema, drill.table_privileges, drill.owns_schema) == ("drill", (), False)
    # No service listing postgres-read: no read-only role at all.
    assert [r.name for r in database_roles.plan(["storage-api"]).roles] == ["scans_owner", "scans_rw", "scans_drill"]


def test_database_sql_names_every_role_and_refuses_a_missing_password():
    plan = database_roles.plan(["storage-api"], ["api"])
    sql = plan.statements({"scans_owner": "o", "scans_rw": "it's", "scans_ro": "r", "scans_drill": "d"})
    assert "CREATE ROLE \"scans_rw\" LOGIN PASSWORD 'it''s'" in sql
    assert 'CREATE SCHEMA "results" AUTHORIZATION "scans_owner"' in sql
    assert 'REVOKE ALL ON DATABASE "scans" FROM PUBLIC' in sql
    assert 'CREATE SCHEMA "drill" AUTHORIZATION "scans_drill"' in sql
    assert 'ALTER ROLE "scans_drill" SET search_path = "drill"' in sql
    assert not any('"results" TO "scans_drill"' in line for line in sql)
    # Default privileges come after the grants on what exists, for each grantee.
    assert (
        'ALTER DEFAULT PRIVILEGES FOR ROLE "scans_owner" IN SCHEMA "results" GRANT SELECT ON TABLES TO "scans_ro"'
        in sql
    )
    with pytest.raises(ValueError, match="no password for database role.s. scans_ro"):
        plan.statements({"scans_owner": "o", "scans_rw": "w", "scans_drill": "d"})


def test_cache_plan_gives_each_service_its_prefix_and_refuses_a_shared_one():
    plan = cache_users.plan(["api", "storage-api"])
    assert [(u.name, u.client, u.key_prefix) for u in plan.users] == [
        ("svc-api", "service:api", "api"),
        ("svc-storage-api", "service:storage-api", "storage-api"),
        ("drill", "drill", "drill"),
    ]
    assert plan.user("service:api").access_string.startswith("on ~api:* -@all +@read")
    with pytest.raises(ValueError, match="drill would be shared"):
        cache_users.plan(["drill"])
    acl = plan.acl_file({"svc-api": "a", "svc-storage-api": "s", "drill": "d"})
    assert acl.splitlines()[0] == "user default off -@all"
    with pytest.raises(ValueError, match="holds white space"):
        plan.acl_file({"svc-api": "a b", "svc-storage-api": "s", "drill": "d"})


# ----- the database's roles, recorded --------------------------------------------------------


def test_roles_log_in_with_the_passwords_of_their_secrets(prod_update):
    provider = one(prod_update, "pulumi:providers:postgresql", "database-writer")["inputs"]
    primary = one(prod_update, "aws:rds/instance:Instance", "postgres-primary")
    # The writer itself, as the master user, over TLS, told that the master is no superuser.
    assert provider["host"] == primary["outputs"]["address"] and provider["database"] == "scans"
    assert provider["username"] == primary["inputs"]["username"] and provider["sslmode"] == "require"
    assert json.loads(provider["superuser"]) is False
    proxy = one(prod_update, "aws:rds/proxy:Proxy")["outputs"]["endpoint"]
    replica = one(prod_update, "aws:rds/instance:Instance", "postgres-replica")["outputs"]["address"]
    for name, host, path in (
        ("scans_owner", proxy, "results"),
        ("scans_rw", proxy, "results"),
        ("scans_ro", replica, "results"),
        ("scans_drill", proxy, "drill"),
    ):
        role = one(prod_update, ROLE, f"database-role-{name}")
        password = plain(one(prod_update, PASSWORD, f"postgres-{name}")["outputs"]["result"])
        document = json.loads(plain(one(prod_update, VERSION, f"postgres-{name}")["inputs"]["secretString"]))
        assert plain(role["inputs"]["password"]) == password == document["password"], name
        assert (document["username"], document["host"], document["dbname"]) == (name, host, "scans"), name
        assert role["inputs"]["login"] is True and role["inputs"]["searchPaths"] == [path], name
        assert role["protect"] is True, name


def test_grants_give_each_role_its_rights_and_public_nothing(prod_update):
    grants = {(g["inputs"]["role"], g["inputs"]["objectType"]): g["inputs"] for g in of_type(prod_update, GRANT)}
    assert grants[("public", "database")]["privileges"] == []
    assert grants[("public", "schema")]["schema"] == "public" and grants[("public", "schema")]["privileges"] == []
    assert {r for r, kind in grants if kind == "database"} == {
        "public",
        "scans_owner",
        "scans_rw",
        "scans_ro",
        "scans_drill",
    }
    # The drill's role has CONNECT and its own schema, nothing on the results.
    assert not [g for (r, kind), g in grants.items() if r == "scans_drill" and kind != "database"]
    assert sorted(grants[("scans_rw", "table")]["privileges"]) == ["DELETE", "INSERT", "SELECT", "UPDATE"]
    assert grants[("scans_ro", "table")]["privileges"] == ["SELECT"] and ("scans_ro", "sequence") not in grants
    defaults = {(d["inputs"]["role"], d["inputs"]["objectType"]): d["inputs"] for d in of_type(prod_update, DEFAULTS)}
    assert set(defaults) == {("scans_rw", "table"), ("scans_rw", "sequence"), ("scans_ro", "table")}
    assert {d["owner"] for d in defaults.values()} == {"scans_owner"}
    schema = one(prod_update, "postgresql:index/schema:Schema", "database-schema")
    assert (schema["inputs"]["name"], schema["inputs"]["owner"], schema["protect"]) == ("results", "scans_owner", True)
    drill = one(prod_update, "postgresql:index/schema:Schema", "database-schema-drill")
    assert (drill["inputs"]["name"], drill["inputs"]["owner"]) == ("drill", "scans_drill")


def test_no_role_without_a_service_listing_it():
    """dev's services list postgres but not postgres-read: no read-only role, no secret for one."""
    record = run("dev", "preview")
    assert sorted(r["inputs"]["name"] for r in of_type(record, ROLE)) == ["scans_drill", "scans_owner", "scans_rw"]
    assert not [s for s in of_type(record, SECRET) if s["name"] == "postgres-scans_ro"]


# ----- the cache's users, recorded ------------------------------------------------------------


def test_cache_users_each_have_their_own_password_and_the_default_is_off(prod_update):
    group = one(prod_update, USER_GROUP)["inputs"]
    users = {u["inputs"]["userName"]: u for u in of_type(prod_update, CACHE_USER)}
    assert set(users) == {"default", "svc-api", "svc-storage-api", "drill"}
    assert sorted(group["userIds"]) == sorted(u["outputs"]["userId"] for u in users.values())
    assert users["default"]["inputs"]["accessString"] == "off -@all"
    passwords = set()
    for name in ("svc-api", "svc-storage-api", "drill"):
        user = users[name]["inputs"]
        document = json.loads(plain(one(prod_update, VERSION, f"redis-{name}")["inputs"]["secretString"]))
        assert plain(user["authenticationMode"]["passwords"][0]) == document["password"], name
        assert document["username"] == name and document["tls"] is True
        assert user["accessString"].split()[1] == f"~{document['keyPrefix']}*", name
        passwords.add(document["password"])
    assert len(passwords) == 3


# ----- who reads what ------------------------------------------------------------------------


def test_every_data_secret_names_its_readers(prod_update):
    tags = {
        s["name"]: s["inputs"]["tags"]
        for s in of_type(prod_update, SECRET)
        if contract.DATA_SECRET_TAG in (s["inputs"].get("tags") or {})
    }
    readers = {name: t[contract.SECRET_READERS_TAG] for name, t in tags.items()}
    assert readers["postgres-master"] == readers["rabbitmq-admin"] == "none"
    assert readers["postgres-scans_owner"] == "migrations"
    assert readers["postgres-scans_rw"] == "service:storage-api"
    assert readers["postgres-scans_ro"] == "service:api"
    assert readers["redis-svc-api"] == readers["broker-svc-api"] == "service:api"
    assert readers["scan-access-github-tokens"] == "engine:dependencies engine:sast engine:secrets"
    assert not [s for s in of_type(prod_update, SECRET) if s["name"] == "redis-token"]


def test_the_summary_lists_roles_users_and_readers(prod_preview):
    text = summary(prod_preview, None)
    assert (
        "role scans_ro: CONNECT on database scans; USAGE on schema results; SELECT on tables in schema results" in text
    )
    assert "user default: off -@all" in text and "user svc-api: on ~api:* " in text
    assert "postgres/administrator: read by none" in text and "redis/svc-api: read by service:api" in text


def test_the_first_deploy_stage_declares_nothing_inside_the_servers_but_makes_their_secrets():
    """It runs from outside the VPC, where neither the database nor the management API answers."""
    from conftest import verdict

    record = run("prod", "preview", **{"scanner:servicesRollout": "first-deploy"})
    inside = [
        r["type"]
        for r in record.resources
        if r["type"].startswith(
            ("rabbitmq:", "postgresql:", "pulumi:providers:rabbitmq", "pulumi:providers:postgresql")
        )
    ]
    assert inside == []
    names = {s["name"] for s in of_type(record, SECRET)}
    assert {"postgres-scans_rw", "broker-svc-api", "broker-keda", "redis-svc-api"} <= names
    # The queue rule lets this stage through, and only while it declares no queue at all.
    assert verdict(record, "scan-queues-quorum-dead-lettered") == []
    assert verdict(run("prod", "preview"), "scan-queues-quorum-dead-lettered") == []
