"""The broker plan as data: what it declares for a stack's engines and publishing services, and
the patterns that keep each client to its own names (the real server proves them in
test_broker_on_a_real_server.py)."""

import re

import pytest

from components.data import broker_topology as topology

PLAN = topology.plan(("sast", "secrets"), ("api", "webhooks"), prefix="scans", delivery_limit=5, max_length=100)


def matches(pattern: str, name: str) -> bool:
    """How RabbitMQ applies a permission pattern: a regular expression searched in the name."""
    return re.search(pattern, name) is not None


def test_every_engine_gets_a_quorum_queue_with_limits_and_a_dead_letter_queue():
    assert PLAN.scan_queues == {"sast": "scans.sast", "secrets": "scans.secrets"}
    assert PLAN.dead_letter_queues == {"sast": "scans.sast.dead", "secrets": "scans.secrets.dead"}
    for engine, name in PLAN.scan_queues.items():
        arguments = PLAN.queue(name).arguments
        assert arguments == {
            "x-queue-type": "quorum",
            "x-delivery-limit": 5,
            "x-dead-letter-exchange": "scans.dead",
            "x-dead-letter-routing-key": engine,
            "x-max-length": 100,
            "x-overflow": "reject-publish",
        }
        assert topology.Binding("scans", name, engine) in PLAN.bindings
        assert topology.Binding("scans.dead", PLAN.dead_letter_queues[engine], engine) in PLAN.bindings
    assert all(q.quorum for q in PLAN.queues)


def test_one_user_per_client_and_no_pattern_reaches_another_client_s_names():
    assert sorted(u.client for u in PLAN.users) == [
        "drill",
        "engine:sast",
        "engine:secrets",
        "keda",
        "queue-metrics",
        "service:api",
        "service:webhooks",
    ]
    names = [q.name for q in PLAN.queues] + [e.name for e in PLAN.exchanges]
    for user in PLAN.users:
        reach = {
            kind: sorted(n for n in names if matches(getattr(user.permission, kind), n))
            for kind in ("configure", "write", "read")
        }
        if user.client.startswith("service:"):
            assert reach == {"configure": [], "write": ["scans"], "read": []}, user
        elif user.client.startswith("engine:"):
            engine = user.client.split(":")[1]
            assert reach == {"configure": [], "write": [], "read": [f"scans.{engine}"]}, user
        elif user.client in ("keda", "queue-metrics"):
            assert reach == {"configure": [], "write": [], "read": []} and user.tags == ("monitoring",)
        else:
            canaries = ["drill.canary", "health.canary"]
            assert reach == {"configure": [], "write": ["health"], "read": canaries}
    assert not any("administrator" in u.tags for u in PLAN.users)


def test_a_dotted_prefix_is_matched_literally():
    plan = topology.plan(("sast",), ("api",), prefix="scan.v2")
    publisher = plan.user("service:api").permission.write
    assert matches(publisher, "scan.v2") and not matches(publisher, "scanXv2")


def test_definitions_hold_the_plan_and_refuse_a_user_without_a_password():
    passwords = {u.name: f"pw-{u.name}" for u in PLAN.users}
    document = PLAN.definitions(passwords, admin=("root", "secret"))
    assert document["vhosts"] == [{"name": "scanner"}]
    assert {q["name"] for q in document["queues"]} == {q.name for q in PLAN.queues}
    assert all(q["durable"] and not q["auto_delete"] and q["vhost"] == "scanner" for q in document["queues"])
    assert {u["name"]: u["tags"] for u in document["users"]}["keda"] == "monitoring"
    assert {u["name"] for u in document["users"]} == set(passwords) | {"root"}
    assert len(document["permissions"]) == len(PLAN.users) + 1
    del passwords["keda"]
    with pytest.raises(ValueError, match="no password for broker user"):
        PLAN.definitions(passwords)


@pytest.mark.parametrize(
    ("engines", "publishers", "limits", "message"),
    [
        ((), ("api",), {}, "at least one scan engine"),
        (("sast",), ("api",), {"delivery_limit": 0}, "must be positive"),
        (("sast",), ("api", "api"), {}, "svc-api would be used by two clients"),
    ],
)
def test_a_plan_that_cannot_work_is_refused(engines, publishers, limits, message):
    with pytest.raises(ValueError, match=message):
        topology.plan(engines, publishers, **limits)
