"""Stack config: one line naming the key and the rule for each bad input, nothing registered."""

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run

import stack_config
from stack_config import ConfigError, StackConfig, parse

BASE = {
    "aws:region": "us-east-1",
    "scanner:environment": "production",
    "scanner:owner": "platform-team",
    "scanner:costCenter": "cc-1",
    "scanner:backupCopyRegion": "us-west-2",
    "scanner:clusterApiAccessCidrs": '["10.0.0.0/20"]',
    "scanner:dashboardDomain": "dashboard.example.com",
    "scanner:dashboardHostedZoneId": "Z0EXAMPLE1234567890ABC",
}

#: (config change, the error message it starts); a None value leaves the key out.
BAD: list[tuple[dict[str, str | None], str]] = [
    (
        {"scanner:alarmThresholds": '{"databaseCpu": 80}'},
        "scanner:alarmThresholds: 'databaseCpu' is no alarm threshold (thresholds: ",
    ),
    (
        {"scanner:alarmThresholds": '{"databaseFreeStorageFraction": 1.5}'},
        "scanner:alarmThresholds: databaseFreeStorageFraction: 1.5 is not a fraction in (0, 1]",
    ),
    (
        {"scanner:alarmThresholds": '{"databaseCpuPercent": 120}'},
        "scanner:alarmThresholds: databaseCpuPercent: 120 is not a percentage in (0, 100]",
    ),
    ({"scanner:alarmThresholds": "[80]"}, "scanner:alarmThresholds: must be an object (name: value), got '[80]'"),
    (
        {"scanner:pageSubscriptions": '["ops@example.com"]'},
        "scanner:pageSubscriptions: 'ops@example.com' is neither email:<address> nor an https:// endpoint",
    ),
    (
        {"scanner:monthlyBudgetUsd": "5000"},
        "scanner:monthlyBudgetUsd: alerts the ticket subscriptions, and ticketSubscriptions is empty",
    ),
    ({"scanner:monthlyBudgetUsd": "0"}, "scanner:monthlyBudgetUsd: Input should be greater than or equal to 1"),
    (
        {"scanner:scanQueueDeliveryLimit": "0"},
        "scanner:scanQueueDeliveryLimit: Input should be greater than or equal to 1",
    ),
    (
        {"scanner:scanQueueMaxLength": "50"},
        "scanner:scanQueueMaxLength: Input should be greater than or equal to 100",
    ),
    ({"scanner:vpcCidr": "10.0.0.0/33"}, "scanner:vpcCidr: '10.0.0.0/33' is not a valid IPv4 network CIDR"),
    (
        {"scanner:vpcCidr": "10.0.0.5/16"},
        "scanner:vpcCidr: '10.0.0.5/16' is not a valid IPv4 network CIDR (10.0.0.5/16 has host bits set)",
    ),
    (
        {"scanner:vpcCidr": "8.8.0.0/16"},
        "scanner:vpcCidr: 8.8.0.0/16 is not a private (RFC 1918) or shared (100.64.0.0/10) address range",
    ),
    (
        {"scanner:vpcCidr": "10.0.0.0/12"},
        "scanner:vpcCidr: 10.0.0.0/12 must have a prefix between /16 and /28 (AWS VPC limits)",
    ),
    (
        {"scanner:vpcCidr": "10.0.0.0/21"},
        "scanner:vpcCidr: 10.0.0.0/21 is too small for the subnet plan: a zone slot of /24 cannot hold the private /20, the public /24, the isolated /24",
    ),
    (
        {"scanner:podCidr": "100.64.0.0/16", "scanner:vpcCidr": "100.64.0.0/16"},
        "scanner:podCidr: 100.64.0.0/16 overlaps vpcCidr 100.64.0.0/16",
    ),
    ({"scanner:podCidr": "192.168.0.0/16"}, "scanner:podCidr: 192.168.0.0/16 must lie inside 100.64.0.0/10"),
    (
        {"scanner:availabilityZones": '["us-east-1a", "us-west-2b", "us-east-1c"]'},
        "scanner:availabilityZones: 'us-west-2b' is not a zone of region us-east-1",
    ),
    (
        {"scanner:availabilityZones": '["us-east-1a", "us-east-1b"]'},
        "scanner:availabilityZones: a production stack needs at least 3 zones (to survive the loss of one), got 2",
    ),
    (
        {"scanner:availabilityZones": '["us-east-1a", "us-east-1a", "us-east-1b"]'},
        "scanner:availabilityZones: lists us-east-1a more than once",
    ),
    ({"scanner:availabilityZones": "us-east-1a"}, "scanner:availabilityZones: must be a list, got 'us-east-1a'"),
    (
        {"scanner:natMode": "single"},
        "scanner:natMode: 'single' is a single point of failure; a production stack needs 'per-az' or 'regional'",
    ),
    ({"scanner:natMode": "two"}, "scanner:natMode: Input should be 'per-az', 'single' or 'regional'"),
    ({"scanner:natMod": "per-az"}, "scanner:natMod: unknown key (did you mean scanner:natMode?)"),
    (
        {"scanner:privateSubnetPrefix": "twenty"},
        "scanner:privateSubnetPrefix: Input should be a valid integer, unable to parse string as an integer",
    ),
    ({"scanner:privateSubnetPrefix": "0"}, "scanner:privateSubnetPrefix: Input should be greater than 0"),
    ({"scanner:targetPodsPerZone": "-5"}, "scanner:targetPodsPerZone: Input should be greater than 0"),
    (
        {"scanner:targetPodsPerZone": "5000"},
        "scanner:targetPodsPerZone: 5000 pods do not fit the private /20 of a zone (4091 addresses); set podCidr (a secondary CIDR in 100.64.0.0/10) or a shorter privateSubnetPrefix",
    ),
    ({"scanner:flowLogRetentionDays": "0"}, "scanner:flowLogRetentionDays: Input should be greater than 0"),
    (
        {"scanner:flowLogRetentionDays": "45"},
        "scanner:flowLogRetentionDays: 45 is not a retention CloudWatch Logs accepts",
    ),
    (
        {"scanner:interfaceEndpoints": '["ecr.api", "ecr.dkr"]'},
        "scanner:interfaceEndpoints: must include secretsmanager: the RDS Proxy reads its login",
    ),
    (
        {"scanner:interfaceEndpoints": '["s3"]'},
        "scanner:interfaceEndpoints: 's3' is served by the gateway endpoint the network always creates",
    ),
    ({"scanner:clusterName": "-bad"}, "scanner:clusterName: '-bad' must be 1-100 letters, digits, '-' or '_'"),
    ({"scanner:environment": "prod"}, "scanner:environment: Input should be 'production', 'staging' or 'development'"),
    ({"scanner:owner": ""}, "scanner:owner: String should have at least 1 character"),
    # cluster
    (
        {"scanner:clusterPublicAccessCidrs": '["0.0.0.0/0"]'},
        "scanner:clusterPublicAccessCidrs: 0.0.0.0/0 opens the Kubernetes API to a large part of the internet",
    ),
    (
        {"scanner:clusterPublicAccessCidrs": '["10.0.0.0/8"]'},
        "scanner:clusterPublicAccessCidrs: 10.0.0.0/8 is not a public range",
    ),
    (
        {"scanner:clusterAdminRoleArns": '["arn:aws:iam::123456789012:user/bob"]'},
        "scanner:clusterAdminRoleArns: 'arn:aws:iam::123456789012:user/bob' is not an IAM role ARN",
    ),
    (
        {"scanner:kubernetesVersion": "1.29"},
        "scanner:kubernetesVersion: '1.29' has no pinned add-on versions (supported: 1.35)",
    ),
    (
        {"scanner:systemNodeInstanceTypes": "[]"},
        "scanner:systemNodeInstanceTypes: must list at least one instance type",
    ),
    ({"scanner:systemNodesPerZone": "11"}, "scanner:systemNodesPerZone: 11 system nodes per zone is more than the 10"),
    (
        {"scanner:scanOnDemandFallbackPercent": "101"},
        "scanner:scanOnDemandFallbackPercent: Input should be less than or equal to 100",
    ),
    (
        {"scanner:scanPoolConsolidateAfter": "one minute"},
        "scanner:scanPoolConsolidateAfter: 'one minute' is not a duration",
    ),
    (
        {"scanner:controlPlaneLogRetentionDays": "10"},
        "scanner:controlPlaneLogRetentionDays: 10 is not a retention CloudWatch Logs accepts",
    ),
    # data tier
    (
        {"scanner:backupCopyRegion": "us-east-1"},
        "scanner:backupCopyRegion: must be another region than the stack's own (us-east-1)",
    ),
    ({"scanner:backupCopyRegion": "west"}, "scanner:backupCopyRegion: 'west' is not an AWS region (AWS catalogue of"),
    (
        {"scanner:backupCopyRegion": "us-west-22"},
        "scanner:backupCopyRegion: 'us-west-22' is not an AWS region (AWS catalogue of 2026-12-01; `make catalogue` refreshes it); did you mean us-west-2?",
    ),
    ({"aws:region": "mars-north-1"}, "aws:region: 'mars-north-1' is not an AWS region (AWS catalogue of"),
    ({"aws:region": "42"}, "aws:region: '42' is not an AWS region"),
    (
        {"aws:regoin": "us-east-1"},
        "aws:regoin: unknown key (did you mean aws:region?); the program reads aws:region, aws:profile, aws:allowedAccountIds, aws:forbiddenAccountIds",
    ),
    (
        {"aws:skipCredentialsValidation": "true"},
        "aws:skipCredentialsValidation: unknown key; the program reads aws:region, aws:profile",
    ),
    ({"aws:allowedAccountIds": '["1234"]'}, "aws:allowedAccountIds: '1234' is not a 12-digit AWS account id"),
    ({"aws:allowedAccountIds": "123456789012"}, "aws:allowedAccountIds: must be a list, got '123456789012'"),
    ({"aws:profile": ""}, "aws:profile: String should have at least 1 character"),
    (
        {"scaner:natMode": "per-az"},
        "scaner:natMode: the program reads no 'scaner' namespace (only scanner: and aws: keys); did you mean scanner:natMode?",
    ),
    (
        {"scanner:databaseInstanceClass": "db.r7g.hyuge"},
        "scanner:databaseInstanceClass: 'db.r7g.hyuge' is not a DB instance class RDS for PostgreSQL offers (AWS catalogue of 2026-12-01; `make catalogue` refreshes it); did you mean db.r7g.large?",
    ),
    (
        {"scanner:cacheNodeType": "cache.m7g.enormous"},
        "scanner:cacheNodeType: 'cache.m7g.enormous' is not an ElastiCache node type (AWS catalogue of",
    ),
    (
        {"scanner:brokerInstanceType": "mq.m7g.xxxlarge"},
        "scanner:brokerInstanceType: 'mq.m7g.xxxlarge' is not offered for RabbitMQ 4.2 (mq.m7g.12xlarge",
    ),
    (
        {"scanner:systemNodeInstanceTypes": '["m7i.huge"]'},
        "scanner:systemNodeInstanceTypes: 'm7i.huge' is not an EC2 instance type AWS offers (AWS catalogue of",
    ),
    (
        {"scanner:clusterApiAccessCidrs": "[]"},
        "scanner:clusterApiAccessCidrs: the cluster API is private (no clusterPublicAccessCidrs) and no deploy runner is admitted to it",
    ),
    (
        {"scanner:clusterApiAccessCidrs": '["0.0.0.0/0"]'},
        "scanner:clusterApiAccessCidrs: 0.0.0.0/0 is not a private range of /16 or longer",
    ),
    (
        {"scanner:clusterApiAccessCidrs": '["8.8.8.0/24"]'},
        "scanner:clusterApiAccessCidrs: 8.8.8.0/24 is not a private range of /16 or longer",
    ),
    ({"scanner:servicesRollout": "later"}, "scanner:servicesRollout: Input should be 'await' or 'first-deploy'"),
    (
        {"scanner:dashboardDomain": None, "scanner:dashboardHostedZoneId": None},
        "scanner:dashboardDomain: a production stack serves the dashboard on its own domain: CloudFront's default *.cloudfront.net certificate always accepts TLS 1.0",
    ),
    (
        {"scanner:protectStatefulResources": "false"},
        "scanner:protectStatefulResources: a production stack keeps its data protected",
    ),
    (
        {"scanner:cacheSnapshotRetentionDays": "0"},
        "scanner:cacheSnapshotRetentionDays: Input should be greater than or equal to 1",
    ),
    (
        {"scanner:databaseBackupRetentionDays": "5"},
        "scanner:databaseBackupRetentionDays: 5 days is below the 7 a production stack needs",
    ),
    (
        {"scanner:databaseBackupRetentionDays": "36"},
        "scanner:databaseBackupRetentionDays: Input should be less than or equal to 35",
    ),
    (
        {"scanner:databaseDeployment": "single-az"},
        "scanner:databaseDeployment: Input should be 'multi-az-instance' or 'multi-az-cluster'",
    ),
    (
        {
            "scanner:databaseDeployment": "multi-az-cluster",
            "scanner:databaseInstanceClass": "db.r7g.large",
            "scanner:environment": "development",
            "scanner:backupCopyRegion": None,
            "scanner:dashboardDomain": None,
            "scanner:dashboardHostedZoneId": None,
        },
        "scanner:databaseInstanceClass: db.r7g.large cannot run a Multi-AZ DB cluster",
    ),
    (
        {"scanner:databaseDeployment": "multi-az-cluster"},
        "scanner:databaseDeployment: multi-az-cluster cannot have its backups copied to backupCopyRegion",
    ),
    (
        {"scanner:databaseEngineVersion": "12.1"},
        "scanner:databaseEngineVersion: '12.1' is not a PostgreSQL version from 14 on",
    ),
    ({"scanner:backupFrequencyHours": "5"}, "scanner:backupFrequencyHours: 5 does not divide the day"),
    (
        {"scanner:databaseMaxAllocatedStorageGib": "50"},
        "scanner:databaseMaxAllocatedStorageGib: 50 is below databaseAllocatedStorageGib 100",
    ),
    (
        {"scanner:brokerInstanceType": "mq.m5.large"},
        "scanner:brokerInstanceType: 'mq.m5.large' is not offered for RabbitMQ 4.2",
    ),
    ({"scanner:brokerEngineVersion": "3.13"}, "scanner:brokerEngineVersion: '3.13' is not a RabbitMQ 4 version"),
    ({"scanner:cacheNodeType": "m7g.large"}, "scanner:cacheNodeType: 'm7g.large' is not an ElastiCache node type"),
    ({"scanner:cacheEngineVersion": "6.2"}, "scanner:cacheEngineVersion: '6.2' is not a Redis OSS 7 version"),
    (
        {"scanner:databaseInstanceClass": "db.c6gd.large"},
        "scanner:databaseInstanceClass: db.c6gd.large runs Multi-AZ DB clusters only",
    ),
    (
        {"scanner:protectStatefulResources": "maybe"},
        "scanner:protectStatefulResources: Input should be a valid boolean",
    ),
]


def test_production_needs_a_backup_copy_region():
    config = {k: v for k, v in BASE.items() if k != "scanner:backupCopyRegion"}
    with pytest.raises(ConfigError, match="^scanner:backupCopyRegion: a production stack needs a second region"):
        parse(config, "prod")
    assert parse({**config, "scanner:environment": "development"}, "dev").data.backup_copy_region is None


def test_every_problem_is_reported_in_one_run_each_on_its_own_line():
    bad = {
        **BASE,
        "scanner:natMode": "single",
        "scanner:databaseBackupRetentionDays": "3",
        "scanner:protectStatefulResources": "false",
        "scanner:bogus": "1",
        "aws:proflie": "x",
    }
    bad.pop("scanner:backupCopyRegion")
    with pytest.raises(ConfigError) as caught:
        parse(bad, "prod")
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in lines] == [
        "aws:proflie",
        "scanner:bogus",
        "scanner:natMode",
        "scanner:protectStatefulResources",
        "scanner:databaseBackupRetentionDays",
        "scanner:backupCopyRegion",
    ], lines


def test_field_errors_are_all_reported_together():
    with pytest.raises(ConfigError) as caught:
        parse(
            {
                **BASE,
                "scanner:cacheNodeType": "cache.m7g.enormous",
                "scanner:databaseInstanceClass": "db.x.y",
                "scanner:vpcCidr": "10.0.0.5/16",
            },
            "prod",
        )
    keys = sorted(line.split(": ")[0] for line in str(caught.value).splitlines())
    assert keys == ["scanner:cacheNodeType", "scanner:databaseInstanceClass", "scanner:vpcCidr"]


def test_environment_rules_and_config_read_one_table():
    from policies.common import environments

    for name in ("production", "staging", "development"):
        assert name in environments.RULES
    # Every key the rules (and the packs' messages) name is a key of the model.
    model_keys = {f"scanner:{key}" for key in stack_config.KNOWN_KEYS}
    assert set(environments.KEYS.values()) <= model_keys
    # A development stack may use one NAT gateway and drop protection; a staging stack may not.
    dev = {
        **BASE,
        "scanner:environment": "development",
        "scanner:natMode": "single",
        "scanner:protectStatefulResources": "false",
        "scanner:databaseBackupRetentionDays": "1",
    }
    assert parse(dev, "dev").network.nat_mode == "single"
    with pytest.raises(ConfigError, match="a staging stack needs 'per-az' or 'regional'"):
        parse({**dev, "scanner:environment": "staging"}, "staging")


def test_rollout_values_match_the_component():
    from typing import get_args

    from components.services import services

    assert get_args(stack_config.ServicesRollout) == get_args(services.Rollout)


def test_instance_types_must_be_offered_in_every_zone_of_the_stack():
    """Offerings are per zone id: the same zone name is another zone in another account."""
    import catalogue

    offered_everywhere_but: dict[str, str] = {}
    ids = sorted(catalogue.region_zone_ids("us-east-1"))
    for name in sorted(catalogue.instance_types()):
        missing = set(ids) - catalogue.instance_type_zone_ids("us-east-1", name)
        if len(missing) == 1 and catalogue.instance_type_zone_ids("us-east-1", name):
            offered_everywhere_but[name] = missing.pop()
    name, lacking = next(iter(sorted(offered_everywhere_but.items())))
    others = [i for i in ids if i != lacking]
    parsed = parse({**BASE, "scanner:systemNodeInstanceTypes": f'["{name}"]'}, "prod")
    # This account calls the lacking zone us-east-1b: refused, naming the zone and its id.
    account = {"us-east-1a": others[0], "us-east-1b": lacking, "us-east-1c": others[1]}
    with pytest.raises(
        ConfigError, match=rf"^scanner:systemNodeInstanceTypes: {name} is not offered in us-east-1b \({lacking}\)"
    ):
        parsed.resolve_zones(list(account), account)
    # Another account's us-east-1b is another zone: accepted.
    assert parsed.resolve_zones(list(account), {**account, "us-east-1b": others[2]}) == list(account)


@pytest.mark.parametrize("change,message", BAD, ids=[next(iter(c)) + "=" + str(next(iter(c.values()))) for c, _ in BAD])
def test_bad_input_names_key_and_rule_in_one_line(change, message):
    config = {k: v for k, v in {**BASE, **change}.items() if v is not None}  # None: key left out
    with pytest.raises(ConfigError) as caught:
        parse(config, "prod")
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text  # one problem, one line


@pytest.mark.parametrize("missing", ["aws:region", "scanner:environment", "scanner:owner", "scanner:costCenter"])
def test_required_keys(missing):
    config = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=f"^{missing}: required key is missing$"):
        parse(config, "prod")


def test_alarm_thresholds_reach_the_plan_with_the_defaults_kept():
    config = {**BASE, "scanner:alarmThresholds": '{"databaseCpuPercent": 75, "queueWaitSeconds": 900}'}
    thresholds = parse(config, "prod").monitoring.thresholds()
    assert (thresholds.database_cpu_percent, thresholds.queue_wait_seconds) == (75, 900)
    assert thresholds.cache_memory_percent == 80  # untouched: the plan's default
    parsed = parse({**BASE, "scanner:ticketSubscriptions": '["email:ops@example.com", "https://hooks.example.com/x"]',
                    "scanner:monthlyBudgetUsd": "4000"}, "prod")  # fmt: skip
    assert parsed.monitoring.monthly_budget_usd == 4000
    assert parsed.monitoring.ticket_subscriptions == ("email:ops@example.com", "https://hooks.example.com/x")


def test_engine_settings_are_left_alone():
    parsed = parse({**BASE, "pulumi:tags": "{}"}, "prod")
    assert parsed.region == "us-east-1"


def test_defaults_are_the_highly_available_ones():
    parsed = parse(BASE, "prod")
    assert parsed.network.nat_mode == "per-az"
    assert parsed.network.availability_zones is None  # every standard zone of the region
    assert parsed.eks_cluster_name == "scanner-prod"
    assert set(stack_config.DEFAULT_INTERFACE_ENDPOINTS) >= {
        "ecr.api",
        "ecr.dkr",
        "sts",
        "logs",
        "ec2",
        "sqs",
        "secretsmanager",
        "elasticloadbalancing",
    }
    assert parsed.default_tags()["cost-center"] == "cc-1"
    assert parsed.protect_stateful_resources is True
    assert parsed.data.database_deployment == "multi-az-instance" and parsed.data.database_read_replica is True
    assert parsed.cluster.cluster_public_access_cidrs == ()


def test_zone_the_account_does_not_offer_is_refused_after_lookup():
    # us-east-1f is a standard zone of the region, but the look-up (the account's view) lacks it.
    parsed = parse({**BASE, "scanner:availabilityZones": '["us-east-1a","us-east-1b","us-east-1f"]'}, "prod")
    with pytest.raises(
        ConfigError,
        match=r"^scanner:availabilityZones: us-east-1f is not an available standard zone of us-east-1 \(available: us-east-1a, us-east-1b\)$",
    ):
        parsed.resolve_zones(["us-east-1a", "us-east-1b"])


def test_more_zones_than_the_region_has_are_refused():
    zones = ",".join(f'"us-west-2{c}"' for c in "abcde")
    with pytest.raises(ConfigError, match=r"^scanner:availabilityZones: lists 5 zones; us-west-2 has 4 standard zones"):
        parse(
            {
                **BASE,
                "aws:region": "us-west-2",
                "scanner:backupCopyRegion": "us-east-1",
                "scanner:availabilityZones": f"[{zones}]",
            },
            "prod",
        )


def test_production_with_default_zones_needs_three_in_the_region():
    parsed = parse({**BASE, "aws:region": "us-west-1"}, "prod")
    with pytest.raises(
        ConfigError,
        match=r"^scanner:availabilityZones: a production stack needs at least 3 zones \(to survive the loss of one\), got 2$",
    ):
        parsed.resolve_zones(["us-west-1a", "us-west-1c"])


def test_pulumi_yaml_declares_exactly_the_model_keys_with_matching_types():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    fields = {}
    for name, field in StackConfig.model_fields.items():
        if name in stack_config.SECTIONS:
            fields.update({f.alias: f for f in stack_config.SECTIONS[name].model_fields.values()})
        elif name not in ("region", "stack") and not (field.alias or "").startswith("aws"):
            fields[field.alias] = field
    assert set(declared) == set(fields)
    for key, field in fields.items():
        annotation = str(field.annotation)
        if "ServiceConfig" in annotation or annotation.startswith("dict"):
            # Project config cannot type a list of objects or an object: declared without a type, checked by the model.
            assert "type" not in declared[key] and declared[key]["description"], key
            continue
        expected = (
            "array"
            if "tuple" in annotation
            else "boolean"
            if "bool" in annotation
            else "string"
            if "Literal" in annotation
            else "integer"
            if "int" in annotation
            else "string"
        )
        assert declared[key]["type"] == expected, key
        assert "default" not in declared[key], f"{key}: defaults live in the stack_config package only"


def test_each_key_belongs_to_one_section_only():
    seen: dict[str | None, str] = {}
    for section, model in stack_config.SECTIONS.items():
        for field in model.model_fields.values():
            assert field.alias not in seen, (field.alias, section, seen.get(field.alias))
            seen[field.alias] = section
    own = {f.alias for n, f in StackConfig.model_fields.items() if n not in stack_config.SECTIONS}
    assert not own & set(seen)


@pytest.mark.parametrize("stack_file", sorted(ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_file_parses(stack_file: Path):
    from offline.program import load_stack_config

    stack = stack_file.name.split(".")[1]
    assert parse(load_stack_config(stack), stack).stack == stack


def test_bad_config_registers_nothing(monkeypatch):
    from offline import mocks

    monitors = []
    original = mocks.RecordingMonitor.__init__

    def capture(self, *args, **kwargs):
        original(self, *args, **kwargs)
        monitors.append(self)

    monkeypatch.setattr(mocks.RecordingMonitor, "__init__", capture)
    with pytest.raises(ConfigError, match="^scanner:vpcCidr: "):
        run("prod", "preview", **{"scanner:vpcCidr": "10.0.0.0/22"})
    registered = [r["type"] for r in monitors[-1].records if r["type"] != "pulumi:pulumi:Stack"]
    assert registered == []


def test_bad_zone_after_lookup_registers_nothing(monkeypatch):
    from offline import mocks

    monitors = []
    original = mocks.RecordingMonitor.__init__

    def capture(self, *args, **kwargs):
        original(self, *args, **kwargs)
        monitors.append(self)

    monkeypatch.setattr(mocks.RecordingMonitor, "__init__", capture)
    with pytest.raises(ConfigError, match="us-east-1h is not an available standard zone of us-east-1"):
        run("prod", "preview", **{"scanner:availabilityZones": '["us-east-1a","us-east-1b","us-east-1h"]'})
    assert [r for r in monitors[-1].records if r["type"] != "pulumi:pulumi:Stack"] == []


def test_aws_settings_the_program_reads_reach_its_explicit_provider():
    from conftest import one

    record = run("prod", "preview", **{"aws:profile": "scanner-prod", "aws:allowedAccountIds": '["123456789012"]'})
    provider = one(record, "pulumi:providers:aws")["inputs"]
    assert provider["profile"] == "scanner-prod"
    assert provider["allowedAccountIds"] in (["123456789012"], '["123456789012"]')
    assert "forbiddenAccountIds" not in provider
