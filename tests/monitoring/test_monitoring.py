"""The monitoring components in the recorded stacks: the alarms as the plan has them, with their
tags, actions and dependencies on what they watch; the composites over them; a publisher function
in the private subnet of every zone with a role that can do nothing else; encrypted topics only the
account's alarms and cost services publish to; the budget, the add-on and the dashboard."""

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import by_urn, of_type, one, run

from components.common import versions
from components.monitoring import alarm_plan, insights, publisher
from components.monitoring.dashboard_plan import GRID
from policies.common import contract

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
FUNCTION = "aws:lambda/function:Function"
TOPIC = "aws:sns/topic:Topic"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
SCHEMA = json.loads((Path(__file__).parent / "dashboard_body.schema.json").read_text())


def test_every_alarm_is_tagged_acts_on_its_severity_s_topic_and_recovers_there(prod_update):
    topics = {t["inputs"]["name"]: t["outputs"]["arn"] for t in of_type(prod_update, TOPIC)}
    alarms = of_type(prod_update, ALARM)
    assert len(alarms) == 74
    for alarm in alarms:
        inputs = alarm["inputs"]
        tags = inputs["tags"]
        assert tags[contract.TIER_TAG] in {"data", "scans", "network", "cluster", "services", "edge"}, alarm["name"]
        severity = tags[contract.SEVERITY_TAG]
        assert inputs["alarmActions"] == inputs["okActions"] == [topics[f"scanner-prod-{severity}"]], alarm["name"]
        assert inputs["alarmDescription"].startswith(f"[{severity}] ")
        assert inputs["name"] == "scanner-prod-" + alarm["name"].removeprefix("alarms-")


def test_alarms_depend_on_what_they_watch(prod_preview):
    """The dimension is the resource's own output: the dependency the coverage policy reads."""
    urns = by_urn(prod_preview)
    watched = {
        "alarms-database-primary-cpu": "postgres-primary",
        "alarms-database-replica-lag": "postgres-replica",
        "alarms-broker-cpu": "rabbitmq-broker",
        "alarms-cache-memory-us-east-1b": "redis-group",
        "alarms-nat-port-allocation-us-east-1c": "network-nat-us-east-1c",
        "alarms-repo-cache-io-limit": "repo-cache-fs",
        "alarms-database-proxy-auth-failures": "postgres-proxy",
    }
    for alarm, resource in watched.items():
        record = one(prod_preview, ALARM, alarm)
        deps = record["propertyDependencies"].get("dimensions") or record["propertyDependencies"].get("metricQueries")
        assert resource in {urns[d]["name"] for d in deps}, (alarm, deps)


def test_the_load_balancer_is_looked_up_by_name_after_the_ingress_and_watched_per_zone(prod_update):
    ingress = one(prod_update, "kubernetes:networking.k8s.io/v1:Ingress")
    name = ingress["inputs"]["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-name"]
    for zone in ZONES:
        errors = one(prod_update, ALARM, f"alarms-api-5xx-{zone}")
        assert errors["inputs"]["dimensions"]["AvailabilityZone"] == zone
        assert errors["inputs"]["dimensions"]["LoadBalancer"].startswith(f"app/{name}/")
        # The look-up waits for the Ingress: the alarm depends on it.
        assert errors["propertyDependencies"]["dimensions"] == [ingress["urn"]]
        slow = one(prod_update, ALARM, f"alarms-api-response-time-{zone}")["inputs"]
        assert slow["extendedStatistic"] == "p99" and "statistic" not in slow
        [query] = one(prod_update, ALARM, f"alarms-api-unhealthy-targets-{zone}")["inputs"]["metricQueries"]
        assert (
            f"LoadBalancer = 'app/{name}/" in query["expression"]
            and f"AvailabilityZone = '{zone}'" in query["expression"]
        )
        assert query["period"] == 60 and query["returnData"] is True


def test_cache_alarms_name_the_node_of_their_zone(prod_update):
    for i, zone in enumerate(ZONES):
        alarm = one(prod_update, ALARM, f"alarms-cache-cpu-{zone}")
        assert alarm["inputs"]["dimensions"] == {"CacheClusterId": f"scanner-prod-redis-{i + 1:03d}"}
        assert alarm["inputs"]["tags"][contract.ZONE_TAG] == zone


def test_composites_cover_each_zone_and_tier_and_name_only_declared_alarms(prod_update):
    names = {a["inputs"]["name"] for a in of_type(prod_update, ALARM)}
    composites = {c["name"]: c["inputs"] for c in of_type(prod_update, COMPOSITE)}
    assert set(composites) == {f"alarms-zone-{z}" for z in ZONES} | {
        f"alarms-tier-{t}" for t in ("data", "scans", "network", "cluster", "services", "edge")
    } | {"alarms-drill-stop"}
    for name, inputs in composites.items():
        children = inputs["alarmRule"].split(" OR ")
        assert children and all(c.startswith('ALARM("') and c.endswith('")') for c in children), name
        assert {c[7:-2] for c in children} <= names, name
        assert len(inputs["alarmRule"]) <= 10240 and len(children) <= 100
    zone_a = composites["alarms-zone-us-east-1a"]
    assert zone_a["tags"] == {
        contract.COMPOSITE_TAG: "zone",
        contract.ZONE_TAG: "us-east-1a",
        contract.SEVERITY_TAG: "page",
    }
    health = ("cache-replication-lag", "nat-port-allocation", "nat-dropped-packets", "queue-metrics-silent",
              "queue-metrics-failures", "api-5xx", "api-unhealthy-targets")  # fmt: skip
    assert {c[7:-2] for c in zone_a["alarmRule"].split(" OR ")} == {f"scanner-prod-{k}-us-east-1a" for k in health}


def test_a_publisher_in_the_private_subnet_of_every_zone_on_a_one_minute_schedule(prod_preview):
    urns = by_urn(prod_preview)
    functions = {f["inputs"]["environment"]["variables"]["ZONE"]: f for f in of_type(prod_preview, FUNCTION)}
    assert set(functions) == set(ZONES)
    for zone, fn in functions.items():
        subnets = [
            urns[d] for d in fn["propertyDependencies"]["vpcConfig"] if urns[d]["type"] == "aws:ec2/subnet:Subnet"
        ]
        assert [(s["inputs"]["availabilityZone"], s["inputs"]["tags"][contract.TIER_TAG]) for s in subnets] == [
            (zone, "private")
        ]
        inputs = fn["inputs"]
        assert (inputs["runtime"], inputs["handler"]) == (publisher.RUNTIME, "handler.handler")
        # No reservation: Lambda refuses one that leaves an account under 100 unreserved.
        assert "reservedConcurrentExecutions" not in inputs
        assert inputs["timeout"] < 60
    invoke = [
        c["inputs"] for c in of_type(prod_preview, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    ]
    assert [(c["maximumRetryAttempts"], c["maximumEventAgeInSeconds"]) for c in invoke] == [(0, 60)] * 3
    rules = of_type(prod_preview, "aws:cloudwatch/eventRule:EventRule")
    assert (
        sorted(r["inputs"]["scheduleExpression"] for r in rules if "queue-metrics" in r["name"])
        == ["rate(1 minute)"] * 3
    )
    permissions = [p for p in of_type(prod_preview, "aws:lambda/permission:Permission") if "queue-metrics" in p["name"]]
    assert {p["inputs"]["principal"] for p in permissions} == {"events.amazonaws.com"}
    assert all(p["propertyDependencies"]["sourceArn"] for p in permissions)


def test_the_publisher_s_code_is_the_handler_in_the_project(prod_update):
    fn = one(prod_update, FUNCTION, "queue-metrics-us-east-1a")
    assets = fn["inputs"]["code"]["assets"]
    assert list(assets) == ["handler.py"]
    assert Path(assets["handler.py"]["path"]).resolve() == publisher.HANDLER.resolve()


def test_the_publisher_may_put_only_its_namespace_and_read_only_its_own_secret(prod_update):
    policy = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "queue-metrics")["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["PutItsNamespaceOnly"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": alarm_plan.QUEUE_NAMESPACE}
    }
    secret = one(prod_update, "aws:secretsmanager/secret:Secret", "broker-queue-metrics")
    assert by_sid["ReadItsSecret"]["Resource"] == secret["outputs"]["arn"]
    assert secret["inputs"]["tags"][contract.SECRET_READERS_TAG] == "queue-metrics"
    role = one(prod_update, "aws:iam/role:Role", "queue-metrics")
    assert role["inputs"]["tags"] == {contract.CLIENT_TAG: "queue-metrics"}
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    # Nothing else but logs and the VPC attachment's network interfaces.
    assert set(by_sid) == {
        "PutItsNamespaceOnly",
        "ReadItsSecret",
        "DecryptItThroughSecretsManager",
        "WriteItsLogs",
        "VpcNetworkInterfaces",
    }
    assert all(
        a.startswith("ec2:") and "NetworkInterface" in a or "Subnets" in a or "PrivateIp" in a
        for a in by_sid["VpcNetworkInterfaces"]["Action"]
    )


def test_the_publisher_reaches_the_broker_s_management_api_only_through_its_own_group(prod_preview):
    urns = by_urn(prod_preview)
    rule = one(prod_preview, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "queue-metrics-management")
    assert (rule["inputs"]["fromPort"], rule["inputs"]["toPort"]) == (443, 443)
    into = {urns[d]["name"] for d in rule["propertyDependencies"]["securityGroupId"]}
    source = {urns[d]["name"] for d in rule["propertyDependencies"]["referencedSecurityGroupId"]}
    assert (into, source) == ({"rabbitmq-broker"}, {"queue-metrics-functions"})


def test_topics_are_encrypted_and_only_the_account_s_alarms_and_cost_services_publish(prod_update):
    key = one(prod_update, "aws:kms/key:Key", "alerting-key")
    assert key["protect"] and key["inputs"]["enableKeyRotation"]
    statements = {s["Sid"]: s for s in json.loads(key["inputs"]["policy"])["Statement"]}
    assert set(statements["AlertPublishersEncrypt"]["Principal"]["Service"]) == {
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
        "costalerts.amazonaws.com",
    }
    for topic in of_type(prod_update, TOPIC):
        assert topic["inputs"]["kmsMasterKeyId"] == key["outputs"]["arn"], topic["name"]
    for policy in of_type(prod_update, "aws:sns/topicPolicy:TopicPolicy"):
        document = json.loads(policy["inputs"]["policy"])
        principals = [s["Principal"] for s in document["Statement"] if s["Effect"] == "Allow"]
        assert principals == [
            {"AWS": "arn:aws:iam::123456789012:root"},
            {"Service": "cloudwatch.amazonaws.com"},
            {"Service": ["budgets.amazonaws.com", "costalerts.amazonaws.com"]},
        ]
        alarms = next(s for s in document["Statement"] if s.get("Sid") == "AccountAlarms")
        assert alarms["Condition"] == {
            "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"}
        }
        assert all(s["Resource"] == policy["inputs"]["arn"] for s in document["Statement"])


def test_subscriptions_and_the_budget_come_from_the_stack_config(prod_update):
    subscriptions = {
        (s["inputs"]["protocol"], s["inputs"]["endpoint"])
        for s in of_type(prod_update, "aws:sns/topicSubscription:TopicSubscription")
    }
    assert subscriptions == {("email", "oncall@scanner.example.com"), ("email", "platform-team@scanner.example.com")}
    budget = one(prod_update, "aws:budgets/budget:Budget")["inputs"]
    ticket = one(prod_update, TOPIC, "alerting-ticket")["outputs"]["arn"]
    assert (budget["limitAmount"], budget["timeUnit"], budget["budgetType"]) == ("12000", "MONTHLY", "COST")
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": ["user:stack$prod"]}]
    kinds = sorted((n["notificationType"], n["threshold"]) for n in budget["notifications"])
    assert kinds == [("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)]
    assert all(n["subscriberSnsTopicArns"] == [ticket] for n in budget["notifications"])
    anomaly = one(prod_update, "aws:costexplorer/anomalySubscription:AnomalySubscription")["inputs"]
    assert anomaly["frequency"] == "IMMEDIATE" and anomaly["subscribers"] == [{"type": "SNS", "address": ticket}]


def test_an_https_endpoint_subscribes_as_https_to_each_page_topic():
    """dev lives in eu-west-1: the us-east-1 copy of the topics has the same subscriptions."""
    record = run("dev", "update", **{"scanner:pageSubscriptions": '["https://events.example.com/sns"]'})
    urns = by_urn(record)
    found = {
        (urns[s["parent"]]["inputs"]["name"], s["inputs"]["protocol"], s["inputs"]["endpoint"])
        for s in of_type(record, "aws:sns/topicSubscription:TopicSubscription")
    }
    assert found == {
        (topic, "https", "https://events.example.com/sns") for topic in ("scanner-dev-page", "scanner-dev-page-global")
    }


def test_outside_us_east_1_the_cdn_alarm_its_composite_and_cost_alerts_use_a_copy_there():
    record = run("dev", "update")
    global_topics = {
        t["inputs"]["name"]: t["outputs"]["arn"]
        for t in of_type(record, TOPIC)
        if t["inputs"].get("region") == "us-east-1"
    }
    assert set(global_topics) == {"scanner-dev-page-global", "scanner-dev-ticket-global"}
    cdn = one(record, ALARM, "alarms-dashboard-5xx")["inputs"]
    assert cdn["region"] == "us-east-1" and cdn["alarmActions"] == [global_topics["scanner-dev-ticket-global"]]
    assert one(record, COMPOSITE, "alarms-tier-edge")["inputs"]["region"] == "us-east-1"
    assert one(record, COMPOSITE, "alarms-tier-data")["inputs"].get("region") is None
    anomaly = one(record, "aws:costexplorer/anomalySubscription:AnomalySubscription")["inputs"]
    assert anomaly["subscribers"][0]["address"] == global_topics["scanner-dev-ticket-global"]


def test_container_insights_add_on_is_pinned_with_its_pod_identity_and_no_container_logs(prod_update):
    addon = one(prod_update, "aws:eks/addon:Addon", "container-insights-addon")["inputs"]
    assert addon["addonVersion"] == versions.ADDON_VERSIONS["1.35"][insights.ADDON]
    assert addon["podIdentityAssociations"][0]["serviceAccount"] == "cloudwatch-agent"
    config = json.loads(addon["configurationValues"])
    assert config["containerLogs"] == {"enabled": False}
    assert config["manager"]["nodeSelector"] and config["manager"]["tolerations"]
    role = one(prod_update, "aws:iam/role:Role", "container-insights-agent")["inputs"]
    condition = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert condition["aws:RequestTag/kubernetes-namespace"] == "amazon-cloudwatch"


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_the_dashboard_body_is_valid_and_lays_zones_out_in_columns(stack):
    record = run(stack, "update")
    body = json.loads(one(record, "aws:cloudwatch/dashboard:Dashboard")["inputs"]["dashboardBody"])
    jsonschema.validate(body, SCHEMA)
    widgets = body["widgets"]
    assert all(w["x"] + w["width"] <= GRID for w in widgets)
    cells = [(w["x"], w["y"]) for w in widgets]
    assert len(cells) == len(set(cells)), "two widgets in one place"
    # The composites on top, then one graph per alarm.
    assert widgets[0]["type"] == "alarm" and len(widgets[0]["properties"]["alarms"]) == 10
    graphs = [w for w in widgets if w["type"] == "metric"]
    assert len(graphs) == len(of_type(record, ALARM))
    zones = record.outputs["availabilityZones"]
    for w in graphs:
        zone = next((z for z in zones if w["properties"]["title"].endswith(z)), None)
        if zone:
            assert w["x"] == zones.index(zone) * (GRID // len(zones)), w["properties"]["title"]
