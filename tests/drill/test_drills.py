"""The zone drill in the recorded stacks: an FIS experiment template per zone with its targets on
that zone's resources, stop conditions on the other zones' composites, logs and reports; the FIS
role; zonal autoshift; and `python -m drill plan` from the preview's record."""

import json

import pytest
from conftest import of_type, one, run

from drill import __main__ as drill_cli
from policies.common import contract

TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def templates(record):
    return {t["inputs"]["tags"][contract.ZONE_TAG]: t for t in of_type(record, TEMPLATE)}


def test_one_template_per_zone_disrupting_that_zone_s_subnets_only(prod_update):
    subnets = {
        s["outputs"]["arn"]: s["inputs"]["availabilityZone"] for s in of_type(prod_update, "aws:ec2/subnet:Subnet")
    }
    found = templates(prod_update)
    assert set(found) == set(ZONES)
    for zone, template in found.items():
        [network] = [t for t in template["inputs"]["targets"] if t["name"] == "disrupt-network"]
        assert {subnets[a] for a in network["resourceArns"]} == {zone}
        assert len(network["resourceArns"]) == 3  # public, private, isolated
        options = template["inputs"]["experimentOptions"]
        assert options == {"accountTargeting": "single-account", "emptyTargetResolutionMode": "skip"}


def test_the_drill_stops_when_the_service_fails_as_a_whole(prod_update):
    """Not on the zone composites: one zone's loss trips the others' too (cross-zone load
    balancing, stale DNS); on the page-level alarms of no zone."""
    composites = {
        c["inputs"]["alarmName"]: c for c in of_type(prod_update, "aws:cloudwatch/compositeAlarm:CompositeAlarm")
    }
    stop = composites["scanner-prod-drill-stop"]
    for template in templates(prod_update).values():
        assert [c["value"] for c in template["inputs"]["stopConditions"]] == [stop["outputs"]["arn"]]
        assert template["inputs"]["tags"][contract.DRILL_STOP_TAG] == "drill-stop"
    children = {c[7:-2] for c in stop["inputs"]["alarmRule"].split(" OR ")}
    alarms = {
        a["inputs"]["name"]: a["inputs"]["tags"] for a in of_type(prod_update, "aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    assert children
    assert all(alarms[c][contract.SEVERITY_TAG] == "page" and contract.ZONE_TAG not in alarms[c] for c in children)
    assert "scanner-prod-cluster-failed-nodes" not in children  # a drill stops nodes by design


def test_logs_and_reports_land_in_the_stack_s_log_group_and_bucket(prod_update):
    logs = one(prod_update, "aws:cloudwatch/logGroup:LogGroup", "drill-log")["outputs"]["arn"]
    bucket = one(prod_update, "aws:s3/bucket:Bucket", "drill-reports")
    dashboard = one(prod_update, "aws:cloudwatch/dashboard:Dashboard")["outputs"]["dashboardArn"]
    assert bucket["protect"]
    for zone, template in templates(prod_update).items():
        inputs = template["inputs"]
        assert inputs["logConfiguration"]["cloudwatchLogsConfiguration"]["logGroupArn"] == f"{logs}:*"
        report = inputs["experimentReportConfiguration"]
        assert report["outputs"]["s3Configuration"] == {
            "bucketName": bucket["outputs"]["bucket"],
            "prefix": f"reports/{zone}",
        }
        assert report["dataSources"]["cloudwatchDashboards"] == [{"dashboardArn": dashboard}]
    versioning = one(prod_update, "aws:s3/bucketVersioning:BucketVersioning", "drill-reports")["inputs"]
    assert versioning["versioningConfiguration"]["status"] == "Enabled"


def test_the_fis_role_injects_capacity_errors_for_the_launchers_only(prod_update):
    role = one(prod_update, "aws:iam/role:Role", "drill")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "fis.amazonaws.com"}
    # Only FIS's experiments of this account and region may take the role.
    assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:fis:us-east-1:123456789012:experiment/*"}
    policy = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "drill")["inputs"]["policy"])
    ice = next(s for s in policy["Statement"] if s["Sid"] == "InsufficientCapacityForTheLaunchers")
    karpenter = one(prod_update, "aws:iam/role:Role", "karpenter-controller")["outputs"]["arn"]
    assert ice["Condition"]["ForAllValues:StringEquals"]["ec2:FisTargetArns"] == [karpenter]
    asg = next(s for s in policy["Statement"] if s["Sid"] == "InsufficientCapacityForTheNodeGroup")
    assert asg["Condition"]["ForAllValues:ArnLike"] == {
        "ec2:FisTargetArns": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/eks-*"
    }
    cache = next(s for s in policy["Statement"] if s["Sid"] == "CachePowerInterruption")
    assert cache["Condition"] == {"StringEquals": {"aws:ResourceTag/scanner.io/drill-target": ["scanner-prod-cache"]}}
    reports = next(s for s in policy["Statement"] if s["Sid"] == "ExperimentReportObjects")
    assert reports["Resource"].endswith("/reports/*")
    attached = {
        a["inputs"]["policyArn"].rsplit("/", 1)[-1]
        for a in of_type(prod_update, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["name"].startswith("drill-")
    }
    assert attached == {
        "AWSFaultInjectionSimulatorNetworkAccess",
        "AWSFaultInjectionSimulatorEC2Access",
        "AWSFaultInjectionSimulatorRDSAccess",
    }


def test_zonal_autoshift_covers_the_cluster_and_the_load_balancer_at_weekends(prod_update):
    shifts = {
        s["name"]: s["inputs"]
        for s in of_type(prod_update, "aws:arczonalshift/zonalAutoshiftConfiguration:ZonalAutoshiftConfiguration")
    }
    assert set(shifts) == {"autoshift-cluster", "autoshift-api-load-balancer"}
    cluster = one(prod_update, "aws:eks/cluster:Cluster")["outputs"]["arn"]
    assert shifts["autoshift-cluster"]["resourceArn"] == cluster
    assert (
        shifts["autoshift-api-load-balancer"]["resourceArn"]
        .split("loadbalancer/")[1]
        .startswith("app/scanner-prod-api/")
    )
    for inputs in shifts.values():
        assert inputs["zonalAutoshiftStatus"] == "ENABLED"
        assert inputs["allowedWindows"] == ["Sat:06:00-Sat:18:00", "Sun:06:00-Sun:18:00"]
        assert [a["alarmIdentifier"].rsplit(":", 1)[-1] for a in inputs["outcomeAlarms"]] == [
            f"scanner-prod-zone-{z}" for z in ZONES
        ]


def test_the_load_balancer_takes_part_in_zonal_shift(prod_update):
    ingress = one(prod_update, "kubernetes:networking.k8s.io/v1:Ingress")
    attributes = ingress["inputs"]["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"]
    assert "zonal_shift.config.enabled=true" in attributes.split(",")


def test_autoshift_off_leaves_no_configuration_and_shifts_any_resource():
    record = run("prod", "update", **{"scanner:zonalAutoshift": "false"})
    assert of_type(record, "aws:arczonalshift/zonalAutoshiftConfiguration:ZonalAutoshiftConfiguration") == []
    shift = next(a for a in templates(record)["us-east-1a"]["inputs"]["actions"] if a["name"] == "shift-away")
    assert {p["key"]: p["value"] for p in shift["parameters"]}["zonalAutoshiftStatus"] == "ANY"


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_drill_plan_reads_the_preview_record(mode, tmp_path, capsys):
    record = run("prod", mode)
    path = tmp_path / "prod.json"
    path.write_text(json.dumps({"stack": "prod", "outputs": record.outputs, "resources": record.resources}))
    out = tmp_path / "plan.json"
    assert (
        drill_cli.main(["plan", "--stack", "prod", "--zone", "us-east-1b", "--record", str(path), "--json", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "Zone drill of prod, us-east-1b: 10 actions at once" in text
    for tier in ("[network]", "[cluster]", "[data]", "[services]"):
        assert tier in text
    assert "keeps serving:" in text and "the read replica in us-east-1c" in text
    assert json.loads(out.read_text())["zone"] == "us-east-1b"
    if mode == "update":
        assert "stops when any of these goes into alarm: scanner-prod-drill-stop" in text
    # The same seed picks the same zone.
    picks = set()
    for _ in range(2):
        drill_cli.main(["plan", "--stack", "prod", "--zone", "random", "--seed", "7", "--record", str(path)])
        picks.add(capsys.readouterr().out.splitlines()[0])
    assert len(picks) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plan", "--stack", "prod", "--zone", "us-east-1z"], "--zone: 'us-east-1z' is not a zone"),
        (["plan", "--stack", "Prod!", "--zone", "random"], "--stack: 'Prod!' is not a stack name"),
        (["plan", "--stack", "prod"], "arguments: the following arguments are required: --zone"),
        (["rehearse", "--zone", "x"], "arguments: argument command: invalid choice: 'rehearse'"),
        (["run", "--zone", "x"], "the following arguments are required: --prefix, --out-dir"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(argv, message, tmp_path, capsys):
    record = run("prod", "preview")
    path = tmp_path / "prod.json"
    path.write_text(json.dumps({"outputs": record.outputs, "resources": record.resources}))
    assert drill_cli.main([*argv, "--record", str(path)] if argv[0] == "plan" and len(argv) > 3 else argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_a_missing_or_foreign_record_is_one_line(tmp_path, capsys):
    assert drill_cli.main(["plan", "--stack", "prod", "--zone", "random", "--record", str(tmp_path / "no.json")]) == 2
    assert "make preview STACK=<stack> writes it" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"resources": []}))
    assert drill_cli.main(["plan", "--stack", "prod", "--zone", "random", "--record", str(other)]) == 2
    assert "the record has no zone drill" in capsys.readouterr().err


def test_the_database_and_the_cache_carry_the_drill_tag_the_targets_name(prod_update):
    primary = one(prod_update, "aws:rds/instance:Instance", "postgres-primary")["inputs"]["tags"]
    replica = one(prod_update, "aws:rds/instance:Instance", "postgres-replica")["inputs"].get("tags") or {}
    cache = one(prod_update, "aws:elasticache/replicationGroup:ReplicationGroup")["inputs"]["tags"]
    assert primary[contract.DRILL_TARGET_TAG] == "scanner-prod-database" and contract.DRILL_TARGET_TAG not in replica
    assert cache[contract.DRILL_TARGET_TAG] == "scanner-prod-cache"
    targets = {t["name"]: t for t in templates(prod_update)["us-east-1a"]["inputs"]["targets"]}
    tag = [{"key": contract.DRILL_TARGET_TAG, "value": "scanner-prod-cache"}]
    assert targets["interrupt-cache"]["resourceTags"] == tag
    assert "resourceArns" not in targets["interrupt-cache"] and "resourceArns" not in targets["fail-over-database"]
    assert targets["fail-over-database"]["parameters"] == {"availabilityZoneIdentifiers": "us-east-1a"}


def test_the_probes_identity_reads_the_drill_users_secrets_and_writes_its_results(prod_update):
    """Who probes during a drill: the scan namespace's `drill` account, whose role reads the
    secrets of the drill's own database role, broker user and cache user, and no other, and
    writes under probes/ of the drill's bucket; the stack tells the runner all of it."""
    secrets = {
        s["outputs"]["arn"]: s["inputs"]["tags"][contract.DATA_SECRET_TAG]
        for s in of_type(prod_update, "aws:secretsmanager/secret:Secret")
        if contract.DATA_SECRET_TAG in (s["inputs"].get("tags") or {})
    }
    role = one(prod_update, "aws:iam/role:Role", "drill-probes-role")
    assert role["inputs"]["tags"] == {contract.CLIENT_TAG: "drill"}
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert trust["aws:RequestTag/kubernetes-namespace"] == "scanner-scans"
    assert trust["aws:RequestTag/kubernetes-service-account"] == "drill"
    reads = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "drill-probes-role")["inputs"]["policy"])
    readable = reads["Statement"][0]["Resource"]
    assert sorted(secrets[a] for a in readable) == ["postgres/scans_drill", "rabbitmq/drill", "redis/drill"]
    bucket = one(prod_update, "aws:s3/bucket:Bucket", "drill-reports")["outputs"]
    results = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "drill-probes-results")["inputs"]["policy"])
    assert results["Statement"][0]["Resource"] == f"{bucket['arn']}/probes/*"
    account = one(prod_update, "kubernetes:core/v1:ServiceAccount", "drill-probes-account")["inputs"]
    assert account["metadata"]["namespace"] == "scanner-scans" and account["automountServiceAccountToken"] is False
    probes = prod_update.outputs["drill"]["probes"]
    assert probes["bucket"] == bucket["bucket"] and probes["claim"] == "repo-cache"
    kinds = {store: spec["kind"] for store, spec in probes["stores"].items()}
    assert kinds == {
        "database": "postgres",
        "database-replica": "postgres-replica",
        "broker": "rabbitmq",
        "cache": "redis",
        "repo-cache": "files",
    }
    assert {secrets[spec["secretArn"]] for spec in probes["stores"].values() if "secretArn" in spec} == {
        "postgres/scans_drill",
        "rabbitmq/drill",
        "redis/drill",
    }
    assert prod_update.outputs["drill"]["probeImage"].endswith("/scanner/drill-probe")
    # The replica lives in the last zone only: that zone's drill leaves its probe out.
    replica = one(prod_update, "aws:rds/instance:Instance", "postgres-replica")["inputs"]
    assert probes["stores"]["database-replica"]["zone"] == replica["availabilityZone"]
    assert "zone" not in probes["stores"]["database"]
    # The drill's own queue, through the exchange its user may write to.
    broker = probes["stores"]["broker"]
    assert (broker["queue"], broker["exchange"], broker["routingKey"]) == ("drill.canary", "health", "drill")
    # Three zones: a canary waits for the one replica a zone's loss leaves beside the primary.
    assert probes["stores"]["cache"]["replicas"] == 1
