"""PostgreSQL, RabbitMQ, Redis, backups and their wiring, as the program registers them."""

import json

import pytest
from conftest import by_urn, ingress_of, of_type, one, run, stack_config

from components.data.data_access import CONFIG_MAP, NAMESPACE, SERVICE_ACCOUNT
from components.data.database_roles import OWNER, READER, WRITER

#: The database roles of prod (its services list postgres and postgres-read).
ROLES = (OWNER, WRITER, READER, "scans_drill")

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
SUBNET = "aws:ec2/subnet:Subnet"
DB = "aws:rds/instance:Instance"


def subnet_zones(record, resource, prop="subnetIds", tier=None):
    resources = by_urn(record)
    subnets = [resources[u] for u in resource["propertyDependencies"][prop] if resources[u]["type"] == SUBNET]
    if tier:
        assert {s["inputs"]["tags"]["scanner.io/tier"] for s in subnets} == {tier}
    return sorted(s["inputs"]["availabilityZone"] for s in subnets)


def plain(value):
    """A wire value with its secret wrapper removed (random results and what embeds them are secrets)."""
    if isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
        return value["value"]
    return value


def cluster_sg(record):
    return one(record, "aws:ec2/tag:Tag")["inputs"]["resourceId"]


# ----- PostgreSQL ------------------------------------------------------------------------------


def test_primary_is_multi_az_encrypted_backed_up_and_private(prod_update):
    primary = one(prod_update, DB, "postgres-primary")["inputs"]
    key = one(prod_update, "aws:kms/key:Key", "postgres-key")
    # Multi-AZ, zones left to AWS (it refuses a fixed zone on a Multi-AZ instance).
    assert primary["multiAz"] is True and "availabilityZone" not in primary
    assert primary["storageEncrypted"] is True and primary["kmsKeyId"] == key["outputs"]["arn"]
    assert primary["maxAllocatedStorage"] > primary["allocatedStorage"]
    assert primary["backupRetentionPeriod"] == 14
    assert primary["publiclyAccessible"] is False
    assert primary["iamDatabaseAuthenticationEnabled"] is True
    assert primary["performanceInsightsEnabled"] is True and primary["monitoringInterval"] > 0
    assert primary["engineVersion"] == "17" and primary["autoMinorVersionUpgrade"] is True
    group = one(prod_update, "aws:rds/subnetGroup:SubnetGroup")
    assert primary["dbSubnetGroupName"] == group["outputs"]["name"]
    assert subnet_zones(prod_update, group, tier="isolated") == ZONES


def test_replica_is_in_another_zone_and_gets_no_password(prod_update):
    primary = one(prod_update, DB, "postgres-primary")
    replica = one(prod_update, DB, "postgres-replica")["inputs"]
    assert replica["replicateSourceDb"] == primary["outputs"]["identifier"]
    # Pinned to a zone of its own; the primary and its standby are kept in two zones by AWS.
    assert replica["availabilityZone"] == ZONES[-1]
    assert replica["maxAllocatedStorage"] == primary["inputs"]["maxAllocatedStorage"]
    # The password lives on the primary only: RDS refuses a replica of a managed-password source
    # and refuses a password change on a replica.
    assert not {"password", "manageMasterUserPassword", "username", "dbName", "finalSnapshotIdentifier"} & set(replica)
    assert "manageMasterUserPassword" not in primary["inputs"]
    assert replica["storageEncrypted"] is True


def test_parameter_group_forces_tls_and_logs_slow_queries(prod_update):
    params = {
        p["name"]: p["value"] for p in one(prod_update, "aws:rds/parameterGroup:ParameterGroup")["inputs"]["parameters"]
    }
    assert params["rds.force_ssl"] == "1"
    assert int(params["log_min_duration_statement"]) > 0
    assert one(prod_update, "aws:rds/parameterGroup:ParameterGroup")["inputs"]["family"] == "postgres17"


def test_credentials_live_in_secrets_manager_and_reach_the_proxy(prod_update):
    secret = one(prod_update, "aws:secretsmanager/secret:Secret", "postgres-master")
    password = one(prod_update, "random:index/randomPassword:RandomPassword", "postgres-master")
    version = json.loads(
        plain(
            one(prod_update, "aws:secretsmanager/secretVersion:SecretVersion", "postgres-master")["inputs"][
                "secretString"
            ]
        )
    )
    primary = one(prod_update, DB, "postgres-primary")
    assert version["password"] == plain(password["outputs"]["result"]) == plain(primary["inputs"]["password"])
    assert version["host"] == primary["outputs"]["address"] and version["port"] == 5432
    proxy = one(prod_update, "aws:rds/proxy:Proxy")["inputs"]
    assert proxy["requireTls"] is True and proxy["engineFamily"] == "POSTGRESQL"
    # The proxy logs in as each client role, never as the master user.
    roles = [one(prod_update, "aws:secretsmanager/secret:Secret", f"postgres-{r}") for r in ROLES]
    role_arns = sorted(r["outputs"]["arn"] for r in roles)
    assert sorted(a["secretArn"] for a in proxy["auths"]) == role_arns
    assert {a["clientPasswordAuthType"] for a in proxy["auths"]} == {"POSTGRES_SCRAM_SHA_256"}
    policy = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "postgres-proxy")["inputs"]["policy"])
    assert sorted(policy["Statement"][0]["Resource"]) == role_arns
    assert secret["outputs"]["arn"] not in json.dumps(policy)
    # A wildcard only matches under StringLike: with StringEquals the proxy could never decrypt.
    assert policy["Statement"][1]["Condition"] == {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}
    resources = by_urn(prod_update)
    proxy_record = one(prod_update, "aws:rds/proxy:Proxy")
    assert "aws:iam/rolePolicy:RolePolicy" in {resources[u]["type"] for u in proxy_record["dependencies"]}
    target_record = one(prod_update, "aws:rds/proxyTarget:ProxyTarget")
    assert (
        one(prod_update, "aws:secretsmanager/secretVersion:SecretVersion", "postgres-master")["urn"]
        in target_record["dependencies"]
    )
    target = one(prod_update, "aws:rds/proxyTarget:ProxyTarget")["inputs"]
    assert target["dbInstanceIdentifier"] == primary["outputs"]["identifier"]


def test_database_admits_only_the_proxy_the_cluster_nodes_and_the_deploy_runners(prod_update):
    from conftest import stack_config

    runners = json.loads(stack_config("prod")["scanner:clusterApiAccessCidrs"])
    assert runners
    proxy_sg = one(prod_update, "aws:ec2/securityGroup:SecurityGroup", "postgres-proxy")
    assert ingress_of(prod_update, "postgres-db") == sorted(
        [(5432, proxy_sg["id"]), (5432, cluster_sg(prod_update)), *((5432, c) for c in runners)]
    )
    assert ingress_of(prod_update, "postgres-proxy") == [(5432, cluster_sg(prod_update))]


def test_cluster_deployment_has_two_readable_standbys_and_no_replica():
    record = run(
        "dev",
        "update",
        **{"scanner:databaseDeployment": "multi-az-cluster", "scanner:databaseInstanceClass": "db.r6gd.large"},
    )
    assert of_type(record, DB) == []
    cluster = one(record, "aws:rds/cluster:Cluster")["inputs"]
    assert cluster["dbClusterInstanceClass"] == "db.r6gd.large"
    assert cluster["availabilityZones"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert cluster["storageType"] == "gp3" and cluster["iops"] > 0 and cluster["skipFinalSnapshot"] is False
    target = one(record, "aws:rds/proxyTarget:ProxyTarget")["inputs"]
    assert "dbClusterIdentifier" in target
    plan = one(record, "aws:backup/plan:Plan")["inputs"]
    assert all(not r.get("copyActions") for r in plan["rules"])


def test_cluster_deployment_is_refused_where_backups_must_reach_another_region():
    # AWS Backup does not copy Multi-AZ DB cluster snapshots, and production requires the copies.
    from stack_config import ConfigError

    with pytest.raises(
        ConfigError, match="^scanner:databaseDeployment: multi-az-cluster cannot have its backups copied"
    ):
        run(
            "prod",
            "preview",
            **{"scanner:databaseDeployment": "multi-az-cluster", "scanner:databaseInstanceClass": "db.r6gd.large"},
        )


# ----- RabbitMQ --------------------------------------------------------------------------------


def test_broker_is_a_private_three_zone_rabbitmq_4_cluster(prod_update):
    broker = one(prod_update, "aws:mq/broker:Broker")
    inputs = broker["inputs"]
    assert (inputs["engineType"], inputs["deploymentMode"]) == ("RabbitMQ", "CLUSTER_MULTI_AZ")
    assert inputs["engineVersion"].startswith("4.") and inputs["hostInstanceType"].startswith("mq.m7g.")
    assert inputs["publiclyAccessible"] is False and inputs["autoMinorVersionUpgrade"] is True
    assert inputs["logs"] == {"general": True}  # no audit: Amazon MQ refuses it for RabbitMQ
    assert inputs["maintenanceWindowStartTime"]["dayOfWeek"] == "SUNDAY"
    assert "encryptionOptions" not in inputs  # RabbitMQ brokers are encrypted with an AWS-owned key
    assert subnet_zones(prod_update, broker, tier="private") == ZONES
    # AMQPS and the management API from the nodes; the management API also from the deploy
    # runners, which declare the queues and users through it, and from the queue-metrics publishers.
    runners = json.loads(stack_config("prod")["scanner:clusterApiAccessCidrs"])
    publishers = one(prod_update, "aws:ec2/securityGroup:SecurityGroup", "queue-metrics-functions")["outputs"]["id"]
    assert sorted(ingress_of(prod_update, "rabbitmq-broker"), key=str) == sorted(
        [
            (443, cluster_sg(prod_update)),
            (5671, cluster_sg(prod_update)),
            (443, publishers),
            *((443, cidr) for cidr in runners),
        ],
        key=str,
    )


def test_broker_password_avoids_the_characters_amazon_mq_refuses(prod_update):
    password = one(prod_update, "random:index/randomPassword:RandomPassword", "rabbitmq-admin")["inputs"]
    assert not set(",:=") & set(password["overrideSpecial"]) and password["length"] >= 12
    version = json.loads(
        plain(
            one(prod_update, "aws:secretsmanager/secretVersion:SecretVersion", "rabbitmq-admin")["inputs"][
                "secretString"
            ]
        )
    )
    assert version["amqpsEndpoint"].startswith("amqps://") and version["username"]


# ----- Redis -------------------------------------------------------------------------------------


def test_cache_has_a_node_in_every_zone_with_failover_and_encryption(prod_update):
    group = one(prod_update, "aws:elasticache/replicationGroup:ReplicationGroup")["inputs"]
    assert group["numCacheClusters"] == 3 and group["preferredCacheClusterAzs"] == ZONES
    assert group["automaticFailoverEnabled"] is True and group["multiAzEnabled"] is True
    assert group["atRestEncryptionEnabled"] is True and group["transitEncryptionEnabled"] is True
    assert group["transitEncryptionMode"] == "required"
    assert group["snapshotRetentionLimit"] >= 1 and group["finalSnapshotIdentifier"]
    # RBAC users instead of one shared AUTH token.
    assert "authToken" not in group
    users = one(prod_update, "aws:elasticache/userGroup:UserGroup")
    assert group["userGroupIds"] == [users["outputs"]["userGroupId"]]
    assert (
        subnet_zones(prod_update, one(prod_update, "aws:elasticache/subnetGroup:SubnetGroup"), tier="isolated") == ZONES
    )


# ----- backups -----------------------------------------------------------------------------------


def test_backup_plan_takes_frequent_snapshots_and_copies_them_to_the_second_region(prod_update):
    plan = one(prod_update, "aws:backup/plan:Plan")["inputs"]
    [frequent] = plan["rules"]
    assert frequent["ruleName"] == "every-4h" and frequent["schedule"] == "cron(0 1/4 * * ? *)"
    # One owner for the database's own backups (and so for point-in-time restore): the stack config.
    assert not frequent.get("enableContinuousBackup")
    assert one(prod_update, DB, "postgres-primary")["inputs"]["backupWindow"] == "00:00-00:30"
    copy_vault = one(prod_update, "aws:backup/vault:Vault", "backup-copy-vault")
    assert copy_vault["inputs"]["region"] == "us-west-2"
    assert frequent["copyActions"][0]["destinationVaultArn"] == copy_vault["outputs"]["arn"]
    assert copy_vault["outputs"]["arn"].startswith("arn:aws:backup:us-west-2:")
    copy_key = one(prod_update, "aws:kms/key:Key", "backup-copy-key")
    assert (
        copy_key["inputs"]["region"] == "us-west-2" and copy_vault["inputs"]["kmsKeyArn"] == copy_key["outputs"]["arn"]
    )
    selection = one(prod_update, "aws:backup/selection:Selection")["inputs"]
    assert selection["resources"] == [one(prod_update, DB, "postgres-primary")["outputs"]["arn"]]


# ----- nothing lost on destroy ------------------------------------------------------------------

KEPT = [
    (DB, "postgres-primary"),
    ("aws:kms/key:Key", "postgres-key"),
    ("aws:secretsmanager/secret:Secret", "postgres-master"),
    ("aws:kms/key:Key", "cluster-secrets"),
    ("aws:mq/broker:Broker", "rabbitmq-broker"),
    ("aws:kms/key:Key", "rabbitmq-key"),
    ("aws:elasticache/replicationGroup:ReplicationGroup", "redis-group"),
    ("aws:kms/key:Key", "redis-key"),
    ("aws:backup/vault:Vault", "backup-vault"),
    ("aws:backup/vault:Vault", "backup-copy-vault"),
    ("aws:kms/key:Key", "backup-key"),
    ("aws:kms/key:Key", "backup-copy-key"),
]


@pytest.mark.parametrize("type_,name", KEPT, ids=[n for _, n in KEPT])
def test_destroying_prod_keeps_the_data_its_keys_and_its_backups(prod_update, type_, name):
    resource = one(prod_update, type_, name)
    # protect: `pulumi destroy` stops before deleting it; retainOnDelete: even when protection is
    # lifted, Pulumi forgets it instead of deleting it.
    assert resource["protect"] is True and resource["retainOnDelete"] is True


def test_database_deletion_still_leaves_a_snapshot_and_the_automated_backups(prod_update):
    primary = one(prod_update, DB, "postgres-primary")["inputs"]
    assert primary["deletionProtection"] is True
    suffix = one(prod_update, "random:index/randomId:RandomId", "postgres-final-snapshot")["outputs"]["hex"]
    # A new name for every database the stack creates, so a second create-destroy cycle cannot collide.
    assert (
        primary["skipFinalSnapshot"] is False
        and primary["finalSnapshotIdentifier"] == f"scanner-prod-postgres-final-{suffix}"
    )
    assert primary["deleteAutomatedBackups"] is False and primary["copyTagsToSnapshot"] is True


def test_a_stack_opts_out_only_explicitly():
    record = run("dev", "update")
    assert record.config["scanner:protectStatefulResources"] == "false"
    primary = one(record, DB, "postgres-primary")
    assert primary["protect"] is False and primary["inputs"]["deletionProtection"] is False
    # Even a throwaway stack keeps a final snapshot and its backups.
    assert primary["inputs"]["skipFinalSnapshot"] is False and primary["inputs"]["backupRetentionPeriod"] >= 1
    assert of_type(record, DB) == [primary]  # no replica in dev
    # ...and its vaults can be emptied by a destroy.
    assert all(v["inputs"]["forceDestroy"] is True for v in of_type(record, "aws:backup/vault:Vault"))


# ----- wiring -----------------------------------------------------------------------------------


def test_services_namespace_gets_endpoints_and_secret_arns_but_no_secret_values(prod_update):
    config_map = one(prod_update, "kubernetes:core/v1:ConfigMap")["inputs"]
    assert config_map["metadata"] == {"name": CONFIG_MAP, "namespace": NAMESPACE}
    data = config_map["data"]
    assert data["POSTGRES_HOST"] == one(prod_update, "aws:rds/proxy:Proxy")["outputs"]["endpoint"]
    assert data["POSTGRES_READER_HOST"] == one(prod_update, DB, "postgres-replica")["outputs"]["address"]
    assert (
        data["REDIS_HOST"]
        == one(prod_update, "aws:elasticache/replicationGroup:ReplicationGroup")["outputs"]["primaryEndpointAddress"]
    )
    secrets = {s["name"]: s["outputs"]["arn"] for s in of_type(prod_update, "aws:secretsmanager/secret:Secret")}
    # Migrations find their role's secret here; every other client is handed its own.
    assert data["POSTGRES_MIGRATIONS_SECRET_ARN"] == secrets["postgres-scans_owner"]
    assert {k for k in data if k.endswith("_SECRET_ARN")} == {"POSTGRES_MIGRATIONS_SECRET_ARN"}
    for administrator in ("rabbitmq-admin", "postgres-master"):
        assert secrets[administrator] not in json.dumps(data)
    passwords = {
        plain(p["outputs"]["result"]) for p in of_type(prod_update, "random:index/randomPassword:RandomPassword")
    }
    assert not any(p in json.dumps(data) for p in passwords)
    assert of_type(prod_update, "kubernetes:core/v1:Secret") == []


def test_service_account_may_read_exactly_the_data_secrets(prod_update):
    association = one(prod_update, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "data-access-identity")[
        "inputs"
    ]
    assert (association["namespace"], association["serviceAccount"]) == (NAMESPACE, SERVICE_ACCOUNT)
    policy = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "data-access-secrets")["inputs"]["policy"])
    secrets = sorted(
        s["outputs"]["arn"]
        for s in of_type(prod_update, "aws:secretsmanager/secret:Secret")
        if s["name"] == "postgres-scans_owner"
    )
    # The migrations role only: not the master user, the broker's administrator or the token pool.
    assert [policy["Statement"][0]["Resource"]] == secrets
    assert policy["Statement"][0]["Action"] == ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]


def test_endpoints_and_secret_arns_are_stack_outputs(prod_update):
    data = prod_update.outputs["dataTier"]
    assert data["postgresWriterEndpoint"] == one(prod_update, "aws:rds/proxy:Proxy")["outputs"]["endpoint"]
    assert data["rabbitmqSecretArn"].startswith("arn:aws:secretsmanager:us-east-1:")
    assert data["backupVaultArn"].startswith("arn:aws:backup:us-east-1:")
