"""RabbitMQ for scan requests: an Amazon MQ cluster of three nodes across zones.

`CLUSTER_MULTI_AZ` puts a node in each of three zones behind one endpoint; with quorum queues
(the default queue type from RabbitMQ 4.2 on Amazon MQ) a queue keeps accepting and delivering
while a majority of nodes is up, so the loss of one zone loses no acknowledged message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.common.context import StackContext
from components.common.iam import data_secret_tags
from components.common.sg_rules import allow_in
from policies.common import contract

AMQPS_PORT = 5671
MANAGEMENT_PORT = 443
#: Amazon MQ refuses ',', ':' and '=' in broker passwords.
PASSWORD_SPECIALS = "!#$%&*()-_+[]{}<>?"


@dataclass(frozen=True)
class RabbitMqArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    """Zone -> private subnet id."""
    client_security_group_id: pulumi.Input[str]
    """Security group of the clients (the EKS nodes); the only source admitted."""
    instance_type: str
    """Broker instance size (mq.m7g.* for RabbitMQ 4)."""
    engine_version: str
    """RabbitMQ version."""
    admin_username: str = "scanner_admin"
    """The broker's one administrator. Default scanner_admin."""
    deploy_cidrs: tuple[str, ...] = ()
    """Where `pulumi up` runs (the deploy runners): admitted to the management API, through which
    the stack declares the broker's queues and users (broker_clients.py)."""


class RabbitMq(pulumi.ComponentResource):
    amqps_endpoint: pulumi.Output[str]
    management_url: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    admin_username: str
    admin_password: pulumi.Output[str]
    broker: aws.mq.Broker
    security_group_id: pulumi.Output[str]
    """The broker's security group (other components admit their own clients to it)."""

    def __init__(self, name: str, args: RabbitMqArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:data:RabbitMq", name, {"availabilityZones": list(args.stack.zones)}, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)
        # One subnet per zone (the API wants them in different zones), at most the three the nodes use.
        subnet_ids = [args.subnet_ids[z] for z in args.stack.zones if z in args.subnet_ids][:3]

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.stack.name_prefix} Amazon MQ credentials",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-broker",
            vpc_id=args.vpc_id,
            description="RabbitMQ: AMQPS and management API from the cluster nodes",
            opts=child,
        )
        for port, label, what in (
            (AMQPS_PORT, "amqps", "AMQPS from EKS nodes"),
            (MANAGEMENT_PORT, "management", "management API from EKS nodes"),
        ):
            allow_in(
                f"{name}-{label}-from-nodes",
                security_group.id,
                port,
                from_group=args.client_security_group_id,
                description=what,
                parent=security_group,
            )
        for cidr in args.deploy_cidrs:
            allow_in(
                f"{name}-management-from-{cidr.replace('/', '-')}",
                security_group.id,
                MANAGEMENT_PORT,
                from_cidr=cidr,
                description=f"management API from deploy runners in {cidr}",
                parent=security_group,
            )
        # Changing the broker's users replaces the broker: rotate this password through the
        # RabbitMQ management API, not by replacing it here.
        password = random.RandomPassword(
            f"{name}-admin", length=32, special=True, override_special=PASSWORD_SPECIALS, opts=child
        )
        broker = aws.mq.Broker(
            f"{name}-broker",
            broker_name=f"{args.stack.name_prefix}-rabbitmq",
            engine_type="RabbitMQ",
            engine_version=args.engine_version,
            host_instance_type=args.instance_type,
            deployment_mode="CLUSTER_MULTI_AZ",
            subnet_ids=subnet_ids,
            security_groups=[security_group.id],
            publicly_accessible=False,
            # Required from RabbitMQ 3.13 on: AWS applies minor versions in the maintenance window.
            auto_minor_version_upgrade=True,
            maintenance_window_start_time=aws.mq.BrokerMaintenanceWindowStartTimeArgs(
                day_of_week="SUNDAY", time_of_day="04:00", time_zone="UTC"
            ),
            # General logs only: Amazon MQ has no audit log for RabbitMQ and refuses the setting.
            logs=aws.mq.BrokerLogsArgs(general=True),
            # Amazon MQ encrypts RabbitMQ brokers at rest with an AWS-owned key; its documentation
            # says customer managed keys do not apply to RabbitMQ, so none is requested here.
            users=[aws.mq.BrokerUserArgs(username=args.admin_username, password=password.result)],
            apply_immediately=False,
            opts=keep,
        )
        endpoint = broker.instances.apply(
            lambda instances: (instances or [{}])[0].endpoints[0] if instances and instances[0].endpoints else ""
        )
        console = broker.instances.apply(lambda instances: instances[0].console_url if instances else "")
        secret = aws.secretsmanager.Secret(
            f"{name}-admin",
            description=f"{args.stack.name_prefix} RabbitMQ credentials",
            kms_key_id=key.arn,
            recovery_window_in_days=30,
            tags=data_secret_tags("rabbitmq", contract.ADMINISTRATOR, ()),
            opts=keep,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-admin",
            secret_id=secret.id,
            secret_string=pulumi.Output.all(password.result, endpoint, console).apply(
                lambda v: json.dumps(
                    {"username": args.admin_username, "password": v[0], "amqpsEndpoint": v[1], "managementUrl": v[2]}
                )
            ),
            opts=pulumi.ResourceOptions(parent=secret),
        )

        self.amqps_endpoint = endpoint
        self.management_url = console
        self.secret_arn = secret.arn
        self.kms_key_arn = key.arn
        # For the management API's provider (broker_clients.py) only: no workload reads them.
        self.admin_username = args.admin_username
        self.admin_password = password.result
        self.broker = broker
        self.security_group_id = security_group.id
        self.register_outputs({"amqpsEndpoint": endpoint, "managementUrl": console, "secretArn": secret.arn})
