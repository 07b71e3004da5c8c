"""PostgreSQL for scan results: Multi-AZ, encrypted, backed up, behind an RDS Proxy.

Two deployments, chosen in stack config:

- `multi-az-instance` (default): a primary with a synchronous standby in another zone
  (failover typically 60-120 s), plus an asynchronous read replica in a third zone for
  read-heavy paths (dashboard queries);
- `multi-az-cluster`: a Multi-AZ DB cluster, a writer and two readable standbys in three zones
  (failover typically under 35 s). It cannot autoscale storage and AWS Backup cannot copy its
  snapshots to another region, so region-level recovery is weaker.

Clients never use the master user: each login role of the database plan (database_roles.py)
gets a generated password and a secret of its own here, and an auth entry on the proxy, which
logs in as that role; database_clients.py creates the roles and grants inside the database.
No workload reads the master secret, and neither does the proxy when there are roles: it is for
operators and for the deploy path (database_clients.py).

Master credentials: RDS can keep the master password in Secrets Manager itself, but it refuses
to create a read replica of an instance whose password it manages. The password is therefore
generated here (pulumi-random), kept in a Secrets Manager secret under the database's KMS key,
and given to the primary only; the replica inherits it through physical replication and is
never given one. RDS Proxy reads it only in a stack without roles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.common.context import StackContext
from components.common.iam import client_secret, data_secret_tags, secret_read_policy
from components.common.sg_rules import allow_in, allow_out
from components.data import database_roles
from policies.common import contract

PORT = 5432
#: Every log type RDS for PostgreSQL exports.
LOG_EXPORTS = ("postgresql", "upgrade", "iam-db-auth-error")
#: Characters RDS refuses in a master password: '/', '"', '@' and space.
PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"


@dataclass(frozen=True)
class PostgresArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    """Zone -> isolated (data) subnet id."""
    client_security_group_id: pulumi.Input[str]
    """Security group of the clients (the EKS nodes); the only source admitted."""
    endpoint_security_group_id: pulumi.Input[str]
    """Security group of the VPC's interface endpoints: the proxy reaches Secrets Manager through it."""
    engine_version: str
    """Major version (minor versions arrive through automatic minor upgrades), or major.minor."""
    deployment: Literal["multi-az-instance", "multi-az-cluster"]
    """A Multi-AZ instance with a read replica, or a Multi-AZ DB cluster."""
    instance_class: str
    allocated_storage_gib: int
    max_allocated_storage_gib: int
    """Storage autoscaling ceiling (instance deployment)."""
    backup_retention_days: int
    """Automated backups (point-in-time recovery window)."""
    read_replica: bool
    """A read replica pinned to the last zone (instance deployment)."""
    database_name: str = "scans"
    """Database created with the instance. Default scans."""
    master_username: str = "scanner_admin"
    """Master user. Default scanner_admin."""
    roles: tuple[database_roles.Role, ...] = ()
    """The database's login roles (database_roles.plan): a password, a secret and a proxy auth
    entry each. Default none: the proxy then logs in as the master user only."""
    deploy_cidrs: tuple[str, ...] = ()
    """Where `pulumi up` runs (the deploy runners): admitted to the writer on 5432, through which
    the stack creates the roles and grants (database_clients.py). Default none."""


class Postgres(pulumi.ComponentResource):
    writer_endpoint: pulumi.Output[str]
    """RDS Proxy endpoint: clients keep their connections through a failover."""
    reader_endpoint: pulumi.Output[str]
    primary_host: pulumi.Output[str]
    """The writer itself (not the proxy): where the deploy path creates roles and grants."""
    secret_arn: pulumi.Output[str]
    """The master user's secret."""
    master_username: str
    master_password: pulumi.Output[str]
    database: aws.rds.Instance | aws.rds.Cluster
    """The primary instance or the cluster."""
    role_secret_arns: dict[str, pulumi.Output[str]]
    """Role -> its secret's ARN."""
    identifiers: dict[str, pulumi.Output[str]]
    """`primary` (the instance's or cluster's identifier) and, with one, `replica`."""
    proxy_name: pulumi.Output[str]
    role_passwords: dict[str, pulumi.Output[str]]
    database_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:data:Postgres",
            name,
            {
                "availabilityZones": list(args.stack.zones),
                "deployment": args.deployment,
                "backupRetentionDays": args.backup_retention_days,
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        # What a careless destroy must not take with it: the data, its key and its credentials.
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)
        zones = list(args.stack.zones)
        subnet_ids = [args.subnet_ids[z] for z in zones if z in args.subnet_ids]
        cluster_mode = args.deployment == "multi-az-cluster"
        major = args.engine_version.split(".")[0]

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.stack.name_prefix} PostgreSQL storage, snapshots and credentials",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        aws.kms.Alias(
            f"{name}-key", name=f"alias/{args.stack.name_prefix}-postgres", target_key_id=key.key_id, opts=child
        )

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=subnet_ids,
            description="PostgreSQL in the isolated subnet of every zone",
            opts=child,
        )
        family = f"postgres{major}"
        parameters = [
            # TLS only (already the default from PostgreSQL 15, stated so a family change cannot drop it).
            aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
            aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="1000"),
            aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
            aws.rds.ParameterGroupParameterArgs(name="log_disconnections", value="1"),
        ]
        if cluster_mode:
            parameter_group = aws.rds.ClusterParameterGroup(
                f"{name}-params",
                family=family,
                description="TLS only, slow-query log",
                parameters=[aws.rds.ClusterParameterGroupParameterArgs(name=p.name, value=p.value) for p in parameters],
                opts=child,
            )
        else:
            parameter_group = aws.rds.ParameterGroup(
                f"{name}-params",
                family=family,
                description="TLS only, slow-query log",
                parameters=parameters,
                opts=child,
            )

        proxy_sg, db_sg = security_groups(self, name, args)

        # Not protected: rotating the password is a replacement of this resource (README).
        password = random.RandomPassword(
            f"{name}-master", length=32, special=True, override_special=PASSWORD_SPECIALS, opts=child
        )
        # Final snapshot names must be new for every database a stack ever creates.
        snapshot_suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=child)
        secret = aws.secretsmanager.Secret(
            f"{name}-master",
            description=f"{args.stack.name_prefix} PostgreSQL master credentials",
            kms_key_id=key.arn,
            recovery_window_in_days=30,
            tags=data_secret_tags("postgres", contract.ADMINISTRATOR, ()),
            opts=keep,
        )
        role_passwords: dict[str, random.RandomPassword] = {}
        role_secrets: dict[str, aws.secretsmanager.Secret] = {}
        for role in args.roles:
            # Letters and digits: a password that needs no quoting in a URL, a DSN or SQL.
            role_passwords[role.name] = random.RandomPassword(
                f"{name}-{role.name}", length=40, special=False, opts=child
            )
            role_secrets[role.name] = client_secret(
                f"{name}-{role.name}",
                parent=self,
                stack=args.stack,
                store="postgres",
                user=role.name,
                readers=role.clients,
                description=f"PostgreSQL role {role.name}: {role.purpose}",
                kms_key_arn=key.arn,
            )

        monitoring_role = aws.iam.Role(
            f"{name}-monitoring",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=child,
        )
        monitoring_policy = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=monitoring_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            opts=pulumi.ResourceOptions(parent=monitoring_role),
        )

        common = dict(
            engine="postgres",
            engine_version=args.engine_version,
            storage_encrypted=True,
            kms_key_id=key.arn,
            master_username=args.master_username,
            master_password=password.result,
            backup_retention_period=args.backup_retention_days,
            # Clear of the AWS Backup snapshots, which start at 01:00 and every few hours after.
            preferred_backup_window="00:00-00:30",
            preferred_maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            deletion_protection=args.stack.protect,
            skip_final_snapshot=False,
            final_snapshot_identifier=snapshot_suffix.hex.apply(
                lambda h: f"{args.stack.name_prefix}-postgres-final-{h}"
            ),
            iam_database_authentication_enabled=True,
            performance_insights_enabled=True,
            performance_insights_retention_period=7,
            performance_insights_kms_key_id=key.arn,
            monitoring_interval=15,
            monitoring_role_arn=monitoring_role.arn,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[db_sg.id],
            auto_minor_version_upgrade=True,
            apply_immediately=False,
        )
        # RDS refuses an enhanced-monitoring role whose policy is not attached yet.
        keep = pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(depends_on=[monitoring_policy]))
        replica = None
        if cluster_mode:
            database = aws.rds.Cluster(
                f"{name}-cluster",
                cluster_identifier=f"{args.stack.name_prefix}-postgres",
                database_name=args.database_name,
                db_cluster_instance_class=args.instance_class,
                db_cluster_parameter_group_name=parameter_group.name,
                storage_type="gp3",
                allocated_storage=args.allocated_storage_gib,
                iops=3000,
                # The zone drill finds its failover target by this tag (components/drill).
                tags={contract.DRILL_TARGET_TAG: f"{args.stack.name_prefix}-database"},
                # The subnet group must span exactly three zones; they are fixed here, as a change replaces the cluster.
                availability_zones=zones[:3],
                **_cluster_args(common),
                opts=keep,
            )
            reader_endpoint = database.reader_endpoint
        else:
            database = aws.rds.Instance(
                f"{name}-primary",
                identifier=f"{args.stack.name_prefix}-postgres",
                db_name=args.database_name,
                instance_class=args.instance_class,
                # A standby in another zone; AWS chooses both zones (it refuses a fixed zone here).
                multi_az=True,
                allocated_storage=args.allocated_storage_gib,
                max_allocated_storage=args.max_allocated_storage_gib,
                storage_type="gp3",
                parameter_group_name=parameter_group.name,
                ca_cert_identifier="rds-ca-rsa2048-g1",
                publicly_accessible=False,
                delete_automated_backups=False,
                # The zone drill finds its failover target by this tag (components/drill).
                tags={contract.DRILL_TARGET_TAG: f"{args.stack.name_prefix}-database"},
                **_instance_args(common),
                opts=keep,
            )
            reader_endpoint = database.address
            if args.read_replica and len(zones) > 1:
                replica = aws.rds.Instance(
                    f"{name}-replica",
                    identifier=f"{args.stack.name_prefix}-postgres-replica",
                    replicate_source_db=database.identifier,
                    instance_class=args.instance_class,
                    # Pinned to the last zone: any zone loss leaves either the replica or the
                    # primary with its standby, which AWS keeps in two other zones.
                    availability_zone=zones[-1],
                    multi_az=False,
                    max_allocated_storage=args.max_allocated_storage_gib,
                    # Encrypted with the primary's key: a replica in the source's region always is,
                    # and the CreateDBInstanceReadReplica reference says not to pass KmsKeyId then.
                    storage_encrypted=True,
                    copy_tags_to_snapshot=True,
                    parameter_group_name=parameter_group.name,
                    vpc_security_group_ids=[db_sg.id],
                    ca_cert_identifier="rds-ca-rsa2048-g1",
                    publicly_accessible=False,
                    # A replica is rebuilt from the primary: no backups, no final snapshot of its own.
                    backup_retention_period=0,
                    skip_final_snapshot=True,
                    deletion_protection=args.stack.protect,
                    performance_insights_enabled=True,
                    performance_insights_retention_period=7,
                    performance_insights_kms_key_id=key.arn,
                    monitoring_interval=15,
                    monitoring_role_arn=monitoring_role.arn,
                    iam_database_authentication_enabled=True,
                    enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
                    auto_minor_version_upgrade=True,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[monitoring_policy]),
                )
                reader_endpoint = replica.address

        host = database.endpoint if cluster_mode else database.address
        secret_version = aws.secretsmanager.SecretVersion(
            f"{name}-master",
            secret_id=secret.id,
            secret_string=pulumi.Output.all(password.result, host).apply(
                lambda v: json.dumps(
                    {
                        "engine": "postgres",
                        "username": args.master_username,
                        "password": v[0],
                        "host": v[1],
                        "port": PORT,
                        "dbname": args.database_name,
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=secret),
        )

        # The proxy logs in as each client's role; with no roles, as the master user.
        logins = list(role_secrets.values()) or [secret]
        proxy = rds_proxy(self, name, args, subnet_ids, proxy_sg, logins, key, database, cluster_mode, secret_version)
        for role in args.roles:
            aws.secretsmanager.SecretVersion(
                f"{name}-{role.name}",
                secret_id=role_secrets[role.name].id,
                secret_string=pulumi.Output.all(
                    role_passwords[role.name].result, proxy.endpoint if role.endpoint == "writer" else reader_endpoint
                ).apply(_role_document(role.name, args.database_name)),
                opts=pulumi.ResourceOptions(parent=role_secrets[role.name]),
            )

        self.writer_endpoint = proxy.endpoint
        self.reader_endpoint = reader_endpoint
        self.secret_arn = secret.arn
        self.primary_host = host
        self.master_username = args.master_username
        self.database = database
        self.master_password = password.result
        self.role_secret_arns = {r: v.arn for r, v in role_secrets.items()}
        self.role_passwords = {r: v.result for r, v in role_passwords.items()}
        self.database_arn = database.arn
        self.kms_key_arn = key.arn
        # What the alarms watch, as outputs: an alarm on them depends on the resource it watches.
        self.identifiers = {"primary": database.cluster_identifier if cluster_mode else database.identifier}
        self.replica_zone: str | None = None
        """The zone the read replica is pinned to; none without one (or for a cluster's readers)."""
        if replica is not None:
            self.identifiers["replica"] = replica.identifier
            self.replica_zone = zones[-1]
        self.proxy_name = proxy.name
        self.register_outputs(
            {
                "writerEndpoint": proxy.endpoint,
                "readerEndpoint": reader_endpoint,
                "secretArn": secret.arn,
                "roleSecretArns": self.role_secret_arns,
                "databaseArn": database.arn,
            }
        )


def _role_document(username: str, database: str):
    """What a client reads from its role's secret; RDS Proxy reads `username` and `password`."""

    def document(values: list) -> str:
        password, host = values
        return json.dumps(
            {
                "engine": "postgres",
                "username": username,
                "password": password,
                "host": host,
                "port": PORT,
                "dbname": database,
            }
        )

    return document


def security_groups(
    owner: Postgres, name: str, args: PostgresArgs
) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
    """The proxy's group and the database's."""
    # Empty groups and separate rules: the database does not wait for the cluster whose
    # nodes it admits (components/common/sg_rules.py).
    proxy_sg = aws.ec2.SecurityGroup(
        f"{name}-proxy",
        vpc_id=args.vpc_id,
        description="RDS Proxy: PostgreSQL from the cluster nodes",
        opts=pulumi.ResourceOptions(parent=owner),
    )
    db_sg = aws.ec2.SecurityGroup(
        f"{name}-db",
        vpc_id=args.vpc_id,
        description="PostgreSQL: from the proxy, and reads from the cluster nodes",
        opts=pulumi.ResourceOptions(parent=owner),
    )
    allow_in(
        f"{name}-proxy-from-nodes",
        proxy_sg.id,
        PORT,
        from_group=args.client_security_group_id,
        description="PostgreSQL from EKS nodes",
        parent=proxy_sg,
    )
    allow_out(
        f"{name}-proxy-to-db", proxy_sg.id, PORT, to_group=db_sg.id, description="to the database", parent=proxy_sg
    )
    # The proxy reads its login from Secrets Manager from its own interfaces in the isolated
    # subnets, which have no route out: through the interface endpoint, on HTTPS.
    allow_out(
        f"{name}-proxy-to-secrets",
        proxy_sg.id,
        443,
        to_group=args.endpoint_security_group_id,
        description="Secrets Manager through its VPC endpoint",
        parent=proxy_sg,
    )
    allow_in(
        f"{name}-db-from-proxy",
        db_sg.id,
        PORT,
        from_group=proxy_sg.id,
        description="PostgreSQL from RDS Proxy",
        parent=db_sg,
    )
    allow_in(
        f"{name}-db-from-nodes",
        db_sg.id,
        PORT,
        from_group=args.client_security_group_id,
        description="PostgreSQL reads from EKS nodes",
        parent=db_sg,
    )
    for cidr in args.deploy_cidrs:
        allow_in(
            f"{name}-db-from-{cidr.replace('/', '-')}",
            db_sg.id,
            PORT,
            from_cidr=cidr,
            description=f"roles and grants from deploy runners in {cidr}",
            parent=db_sg,
        )
    return proxy_sg, db_sg


def rds_proxy(
    owner: Postgres, name, args: PostgresArgs, subnet_ids, proxy_sg, logins, key, database, cluster_mode, secret_version
) -> aws.rds.Proxy:
    """Clients connect to the proxy, which holds their sessions while the standby takes over, so
    a failover costs a pause instead of a reconnect storm."""
    role = aws.iam.Role(
        f"{name}-proxy",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
        opts=pulumi.ResourceOptions(parent=owner),
    )
    role_policy = aws.iam.RolePolicy(
        f"{name}-proxy",
        role=role.id,
        policy=pulumi.Output.all(key.arn, *(s.arn for s in logins)).apply(
            lambda arns: secret_read_policy(list(arns[1:]), [arns[0]])
        ),
        opts=pulumi.ResourceOptions(parent=role),
    )
    proxy = aws.rds.Proxy(
        f"{name}-proxy",
        name=f"{args.stack.name_prefix}-postgres",
        engine_family="POSTGRESQL",
        role_arn=role.arn,
        vpc_subnet_ids=subnet_ids,
        vpc_security_group_ids=[proxy_sg.id],
        require_tls=True,
        idle_client_timeout=1800,
        auths=[
            aws.rds.ProxyAuthArgs(
                auth_scheme="SECRETS",
                secret_arn=login.arn,
                iam_auth="DISABLED",
                client_password_auth_type="POSTGRES_SCRAM_SHA_256",
            )
            for login in logins
        ],
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[role_policy]),
    )
    target_group = aws.rds.ProxyDefaultTargetGroup(
        f"{name}-proxy",
        db_proxy_name=proxy.name,
        connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
            max_connections_percent=90, max_idle_connections_percent=50, connection_borrow_timeout=120
        ),
        opts=pulumi.ResourceOptions(parent=proxy),
    )
    target = (
        dict(db_cluster_identifier=database.cluster_identifier)
        if cluster_mode
        else dict(db_instance_identifier=database.identifier)
    )
    # Registered once the master secret holds its value (without roles, the proxy's login). The
    # proxy does not wait for its logins to work: until the roles exist, it reports an auth failure.
    aws.rds.ProxyTarget(
        f"{name}-proxy",
        db_proxy_name=proxy.name,
        target_group_name=target_group.name,
        **target,
        opts=pulumi.ResourceOptions(parent=proxy, depends_on=[secret_version]),
    )
    return proxy


def _instance_args(common: dict) -> dict:
    out = dict(common)
    out["username"] = out.pop("master_username")
    out["password"] = out.pop("master_password")
    out["backup_window"] = out.pop("preferred_backup_window")
    out["maintenance_window"] = out.pop("preferred_maintenance_window")
    return out


def _cluster_args(common: dict) -> dict:
    out = dict(common)
    out["delete_automated_backups"] = False
    out["enabled_cloudwatch_logs_exports"] = ["postgresql"]
    return out
