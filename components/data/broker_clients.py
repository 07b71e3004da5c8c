"""The broker plan (broker_topology.py) as Pulumi resources, through the RabbitMQ management API
of the Amazon MQ broker: the vhost, exchanges, queues and bindings, and per client a user with
its permissions, a generated password and a Secrets Manager secret of its own.

Deploy path: the provider (pulumi-rabbitmq) talks HTTPS to the broker's management endpoint,
which is private (port 443 from the cluster's security group). `pulumi up` therefore runs where
that endpoint is reachable: inside the VPC, from the deploy runner admitted by
`scanner:clusterApiAccessCidrs` (see the README's deploy section). The resources wait for the
broker; on a first `up` they are created once the broker is running.

Rotation: a user's password is a `random.RandomPassword`; `pulumi up --replace` on it (URN in
the README) sets a new password on the broker user and a new secret version, and clients pick
it up when they next read the secret.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_rabbitmq as rabbitmq
import pulumi_random as random

from components.common.context import StackContext
from components.common.iam import client_secret
from components.data.broker_topology import BrokerTopology


@dataclass(frozen=True)
class BrokerClientsArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    topology: BrokerTopology
    management_url: pulumi.Input[str]
    """The broker's management endpoint (https://b-….mq.<region>.amazonaws.com)."""
    amqps_endpoint: pulumi.Input[str]
    admin_username: str
    admin_password: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """Key the client secrets are encrypted with (the broker's credentials key)."""
    after: Sequence[pulumi.Resource] = ()
    """The broker: nothing here can be created before it runs."""
    on_broker: bool = True
    """Declare the vhost, queues and users on the broker. False in the first-deploy stage, which
    runs from outside the VPC where the management API does not answer: the users' passwords and
    secrets are made then, and the next `up` (from the runner inside the VPC) declares the rest.
    Default true."""


class BrokerClients(pulumi.ComponentResource):
    vhost: str
    secret_arns: dict[str, pulumi.Output[str]]
    """Client (`service:<name>`, `engine:<name>`, `keda`, `drill`) -> its secret's ARN."""

    def __init__(self, name: str, args: BrokerClientsArgs, opts: pulumi.ResourceOptions | None = None):
        plan = args.topology
        super().__init__(
            "scanner:data:BrokerClients",
            name,
            {"vhost": plan.vhost, "clients": sorted(u.client for u in plan.users)},
            opts,
        )
        declared = self._declare(name, args) if args.on_broker else None
        self.vhost = plan.vhost
        self.secret_arns = {}
        for user in plan.users:
            password = random.RandomPassword(
                f"{name}-{user.name}", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
            )
            broker_user = None
            if declared is not None:
                provider_opts, vhost = declared
                broker_user = rabbitmq.User(
                    f"{name}-user-{user.name}",
                    name=user.name,
                    password=password.result,
                    tags=list(user.tags),
                    opts=provider_opts,
                )
                rabbitmq.Permissions(
                    f"{name}-permissions-{user.name}",
                    user=broker_user.name,
                    vhost=vhost.name,
                    permissions=rabbitmq.PermissionsPermissionsArgs(
                        configure=user.permission.configure, write=user.permission.write, read=user.permission.read
                    ),
                    opts=provider_opts,
                )
            secret = client_secret(
                f"{name}-{user.name}",
                parent=self,
                stack=args.stack,
                store="rabbitmq",
                user=user.name,
                readers=[user.client],
                description=f"RabbitMQ user {user.name}: {user.purpose}",
                kms_key_arn=args.kms_key_arn,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{user.name}",
                secret_id=secret.id,
                secret_string=pulumi.Output.all(password.result, args.amqps_endpoint, args.management_url).apply(
                    _secret_document(user.name, plan.vhost)
                ),
                opts=pulumi.ResourceOptions(parent=secret, depends_on=[broker_user] if broker_user else []),
            )
            self.secret_arns[user.client] = secret.arn
        self.register_outputs({"secretArns": self.secret_arns})

    def _declare(self, name: str, args: BrokerClientsArgs) -> tuple[pulumi.ResourceOptions, rabbitmq.VHost]:
        """The vhost, exchanges, queues and bindings, through the broker's management API; the
        options its users take and the vhost."""
        plan = args.topology
        provider = rabbitmq.Provider(
            f"{name}-management",
            endpoint=args.management_url,
            username=args.admin_username,
            password=pulumi.Output.secret(args.admin_password),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        on_broker = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(args.after))
        # Queues hold the scan requests: never deleted with the stack, never replaced silently.
        keep = pulumi.ResourceOptions.merge(
            on_broker, pulumi.ResourceOptions(protect=args.stack.protect, retain_on_delete=args.stack.protect)
        )
        vhost = rabbitmq.VHost(f"{name}-vhost", name=plan.vhost, opts=keep)
        in_vhost = pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(depends_on=[vhost]))

        exchanges = {
            e.name: rabbitmq.Exchange(
                f"{name}-exchange-{e.name}",
                name=e.name,
                vhost=vhost.name,
                settings=rabbitmq.ExchangeSettingsArgs(type=e.type, durable=True, auto_delete=False),
                opts=in_vhost,
            )
            for e in plan.exchanges
        }
        queues = {
            q.name: rabbitmq.Queue(
                f"{name}-queue-{q.name}",
                name=q.name,
                vhost=vhost.name,
                settings=rabbitmq.QueueSettingsArgs(
                    durable=True, auto_delete=False, arguments_json=json.dumps(dict(q.arguments), sort_keys=True)
                ),
                opts=in_vhost,
            )
            for q in plan.queues
        }
        for b in plan.bindings:
            rabbitmq.Binding(
                f"{name}-binding-{b.source}-{b.destination}",
                vhost=vhost.name,
                source=exchanges[b.source].name,
                destination=queues[b.destination].name,
                destination_type="queue",
                routing_key=b.routing_key,
                opts=pulumi.ResourceOptions.merge(on_broker, pulumi.ResourceOptions(depends_on=[vhost])),
            )

        return on_broker, vhost


def _secret_document(username: str, vhost: str):
    """What a client reads from its secret: how to reach the broker, and as whom."""

    def document(values: list) -> str:
        password, amqps, management = values
        return json.dumps(
            {
                "username": username,
                "password": password,
                "vhost": vhost,
                "amqpsEndpoint": amqps,
                "managementUrl": management,
            }
        )

    return document
