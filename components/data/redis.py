"""Redis for hot reads: an ElastiCache replication group with a node in every zone.

One primary and a replica in each other zone; with automatic failover and Multi-AZ on,
ElastiCache promotes a replica and repoints the primary endpoint when the primary's zone goes.

No shared AUTH token: the group takes an RBAC user group holding one user per client
(cache_users.py), each with a generated password in a secret of its own, and a `default` user
that is switched off, so a client that does not authenticate can run nothing. ElastiCache
requires a user named `default` in every user group; this one is a separate user (the built-in
one, with every right, cannot be changed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.common.context import StackContext
from components.common.iam import client_secret
from components.common.sg_rules import allow_in
from components.data import cache_users
from policies.common import contract

PORT = 6379
#: ElastiCache allows at most six nodes (a primary and five replicas) in a non-cluster group.
MAX_NODES = 6


@dataclass(frozen=True)
class RedisArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    """Zone -> isolated subnet id."""
    client_security_group_id: pulumi.Input[str]
    """Security group of the clients (the EKS nodes); the only source admitted."""
    node_type: str
    engine_version: str
    """Redis OSS version."""
    snapshot_retention_days: int
    """Days ElastiCache keeps daily snapshots."""
    users: tuple[cache_users.CacheUser, ...]
    """The cache's users (cache_users.plan): a password, a secret and an RBAC user each."""


class Redis(pulumi.ComponentResource):
    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    secret_arns: dict[str, pulumi.Output[str]]
    group_arn: pulumi.Output[str]
    node_ids: dict[str, pulumi.Output[str]]
    """Zone -> the cache cluster id of the group's node there (what its alarms watch)."""
    """Client (`service:<name>`, `drill`) -> its user's secret."""
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("scanner:data:Redis", name, {"availabilityZones": list(args.stack.zones)}, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)
        zones = [z for z in args.stack.zones if z in args.subnet_ids][:MAX_NODES]

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.stack.name_prefix} ElastiCache data, snapshots and credentials",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=[args.subnet_ids[z] for z in zones],
            description="Redis in the isolated subnet of every zone",
            opts=child,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-cache", vpc_id=args.vpc_id, description="Redis from the cluster nodes", opts=child
        )
        allow_in(
            f"{name}-cache-from-nodes",
            security_group.id,
            PORT,
            from_group=args.client_security_group_id,
            description="Redis (TLS) from EKS nodes",
            parent=security_group,
        )
        passwords = {
            u.name: random.RandomPassword(f"{name}-{u.name}", length=40, special=False, opts=child) for u in args.users
        }
        rbac_users = [
            aws.elasticache.User(
                f"{name}-user-{u.name}",
                user_id=f"{args.stack.name_prefix}-{u.name}",
                user_name=u.name,
                engine="redis",
                access_string=u.access_string,
                authentication_mode=aws.elasticache.UserAuthenticationModeArgs(
                    type="password", passwords=[passwords[u.name].result]
                ),
                opts=child,
            )
            for u in args.users
        ]
        # Every user group must hold a user named default: this one can do nothing.
        default_password = random.RandomPassword(f"{name}-default", length=40, special=False, opts=child)
        default_user = aws.elasticache.User(
            f"{name}-user-default",
            user_id=f"{args.stack.name_prefix}-default-off",
            user_name=cache_users.DEFAULT_USER,
            engine="redis",
            access_string=cache_users.DISABLED,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(
                type="password", passwords=[default_password.result]
            ),
            opts=child,
        )
        user_group = aws.elasticache.UserGroup(
            f"{name}-users",
            user_group_id=f"{args.stack.name_prefix}-redis",
            engine="redis",
            user_ids=[default_user.user_id, *(u.user_id for u in rbac_users)],
            opts=child,
        )
        snapshot_suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=child)
        slow_log = aws.cloudwatch.LogGroup(f"{name}-slow-log", retention_in_days=30, opts=child)
        group = aws.elasticache.ReplicationGroup(
            f"{name}-group",
            replication_group_id=f"{args.stack.name_prefix}-redis",
            description=f"{args.stack.name_prefix} hot-read cache",
            engine="redis",
            engine_version=args.engine_version,
            node_type=args.node_type,
            port=PORT,
            # A node in every zone, the primary in the first; any replica can take over.
            num_cache_clusters=len(zones),
            preferred_cache_cluster_azs=zones,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            subnet_group_name=subnet_group.name,
            security_group_ids=[security_group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            user_group_ids=[user_group.user_group_id],
            # A stack that had the shared AUTH token moves to the user group in one modification
            # (ElastiCache's AUTH-to-RBAC migration); not used on create.
            auth_token_update_strategy="DELETE",
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window="02:00-03:00",
            maintenance_window="sun:05:00-sun:06:00",
            final_snapshot_identifier=snapshot_suffix.hex.apply(lambda h: f"{args.stack.name_prefix}-redis-final-{h}"),
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            # The zone drill finds the group by this tag (FIS takes no ARN for it).
            tags={contract.DRILL_TARGET_TAG: f"{args.stack.name_prefix}-cache"},
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=slow_log.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                )
            ],
            opts=keep,
        )
        self.secret_arns = {}
        for u in args.users:
            secret = client_secret(
                f"{name}-{u.name}",
                parent=self,
                stack=args.stack,
                store="redis",
                user=u.name,
                readers=[u.client],
                description=f"Redis user {u.name}: {u.purpose}",
                kms_key_arn=key.arn,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{u.name}",
                secret_id=secret.id,
                secret_string=pulumi.Output.all(passwords[u.name].result, group.primary_endpoint_address).apply(
                    _user_document(u.name, u.key_prefix)
                ),
                opts=pulumi.ResourceOptions(parent=secret),
            )
            self.secret_arns[u.client] = secret.arn

        self.primary_endpoint = group.primary_endpoint_address
        self.reader_endpoint = group.reader_endpoint_address
        self.kms_key_arn = key.arn
        self.group_arn = group.arn
        # The group's nodes are <group>-001, -002, ... in the order of preferred_cache_cluster_azs.
        self.node_ids = {
            zone: group.replication_group_id.apply(lambda g, i=i: f"{g}-{i + 1:03d}") for i, zone in enumerate(zones)
        }
        self.register_outputs(
            {
                "primaryEndpoint": group.primary_endpoint_address,
                "readerEndpoint": group.reader_endpoint_address,
                "secretArns": self.secret_arns,
            }
        )


def _user_document(username: str, key_prefix: str):
    """What a client reads from its secret: where the cache is, as whom, and its keys' prefix."""

    def document(values: list) -> str:
        password, host = values
        return json.dumps(
            {
                "username": username,
                "password": password,
                "host": host,
                "port": PORT,
                "tls": True,
                "keyPrefix": f"{key_prefix}:",
            }
        )

    return document
