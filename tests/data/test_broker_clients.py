"""The broker plan as the program declares it (components/data/broker_clients.py), under the mocks:
what the prod preview records, and who reads which broker secret."""

import json

from conftest import of_type, one

from components.data import broker_topology as topology

QUEUE = "rabbitmq:index/queue:Queue"
USER = "rabbitmq:index/user:User"
PERMISSIONS = "rabbitmq:index/permissions:Permissions"
SECRET = "aws:secretsmanager/secret:Secret"


def test_prod_records_the_vhost_quorum_queues_and_their_limits(prod_preview):
    assert one(prod_preview, "rabbitmq:index/vHost:VHost")["inputs"]["name"] == topology.VHOST
    queues = {q["inputs"]["name"]: q for q in of_type(prod_preview, QUEUE)}
    engines = ("sast", "secrets", "dependencies")
    assert set(queues) == {
        *(f"scans.{e}" for e in engines),
        *(f"scans.{e}.dead" for e in engines),
        topology.CANARY_QUEUE,
        topology.DRILL_QUEUE,
    }
    for name, queue in queues.items():
        settings = queue["inputs"]["settings"]
        arguments = json.loads(settings["argumentsJson"])
        assert arguments["x-queue-type"] == "quorum" and settings["durable"] is True, name
        assert queue["protect"] and queue["retainOnDelete"], name
    for engine in engines:
        arguments = json.loads(queues[f"scans.{engine}"]["inputs"]["settings"]["argumentsJson"])
        assert arguments["x-delivery-limit"] == 5 and arguments["x-overflow"] == "reject-publish"
        assert arguments["x-dead-letter-exchange"] == "scans.dead"
    # The drill's canaries are refused when its queue is full, never dropped once acknowledged.
    drill = json.loads(queues[topology.DRILL_QUEUE]["inputs"]["settings"]["argumentsJson"])
    assert drill["x-overflow"] == "reject-publish" and drill["x-max-length"] >= 2 * 3600


def test_one_broker_user_per_client_each_with_its_own_secret(prod_update):
    users = {u["inputs"]["name"] for u in of_type(prod_update, USER)}
    assert users == {
        "svc-api",
        "svc-webhooks",
        "engine-sast",
        "engine-secrets",
        "engine-dependencies",
        "keda",
        "queue-metrics",
        "drill",
    }
    grants = {p["inputs"]["user"]: p["inputs"]["permissions"] for p in of_type(prod_update, PERMISSIONS)}
    assert grants["svc-api"] == {"configure": "^$", "write": "^(scans)$", "read": "^$"}
    assert grants["engine-sast"] == {"configure": "^$", "write": "^$", "read": r"^(scans\.sast)$"}
    secrets = {s["name"]: s for s in of_type(prod_update, SECRET) if s["name"].startswith("broker-")}
    assert set(secrets) == {f"broker-{u}" for u in users}
    assert len({s["outputs"]["arn"] for s in secrets.values()}) == len(users)


def test_the_management_provider_speaks_to_the_broker_as_its_administrator(prod_update):
    provider = one(prod_update, "pulumi:providers:rabbitmq")
    broker = one(prod_update, "aws:mq/broker:Broker")
    assert provider["inputs"]["endpoint"] == broker["outputs"]["instances"][0]["consoleUrl"]
    assert provider["inputs"]["username"] == "scanner_admin"
    assert broker["urn"] in provider["dependencies"]


def test_scan_jobs_read_their_engine_s_secret_never_the_administrator_s(prod_update):
    admin = one(prod_update, SECRET, "rabbitmq-admin")["outputs"]["arn"]
    for job in of_type(prod_update, "kubernetes:keda.sh/v1alpha1:ScaledJob"):
        engine = job["inputs"]["metadata"]["name"].removeprefix("scan-")
        mine = one(prod_update, SECRET, f"broker-engine-{engine}")["outputs"]["arn"]
        text = json.dumps(job["inputs"])
        assert mine in text and admin not in text, engine
    engines = ("sast", "secrets", "dependencies")
    arns = {e: one(prod_update, SECRET, f"broker-engine-{e}")["outputs"]["arn"] for e in engines}
    for engine in engines:
        # Each engine's own role reads its own broker user, no other engine's and not the administrator.
        policy = one(prod_update, "aws:iam/rolePolicy:RolePolicy", f"scan-access-{engine}")["inputs"]["policy"]
        assert admin not in policy
        assert {e for e, arn in arns.items() if arn in policy} == {engine}


def test_the_deploy_runners_reach_the_management_api(prod_update):
    """The provider runs where `pulumi up` runs: the runners of clusterApiAccessCidrs."""
    from conftest import stack_config

    cidrs = json.loads(stack_config("prod")["scanner:clusterApiAccessCidrs"])
    assert cidrs
    rules = {
        r["inputs"].get("cidrIpv4"): r["inputs"]["fromPort"]
        for r in of_type(prod_update, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r["name"].startswith("rabbitmq-management-from-") and r["inputs"].get("cidrIpv4")
    }
    assert rules == dict.fromkeys(cidrs, 443)
