"""AWS Backup for the data tier: frequent snapshots kept in this region and copied to a second
one, so a region-wide loss still leaves restorable copies.

A snapshot every few hours, each copied to the vault in the copy region. Point-in-time restore
comes from the database's own automated backups (their retention has one owner, the stack
config: an AWS Backup continuous rule would take them over and fight it). The vaults and their
keys are retained on destroy: a recovery point must outlive the stack it protects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.context import StackContext


@dataclass(frozen=True)
class BackupArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    resource_arns: list[pulumi.Input[str]]
    """What the plan backs up (the database)."""
    copy_region: str | None
    """Second region for copies; none: no copies."""
    frequency_hours: int
    """Hours between snapshots (a divisor of 24)."""
    retention_days: int
    """Days each snapshot and copy is kept."""
    copy_supported: bool = True
    """False where AWS Backup cannot copy the resource (Multi-AZ DB cluster snapshots). Default true."""


class Backup(pulumi.ComponentResource):
    vault_arn: pulumi.Output[str]
    copy_vault_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:data:Backup", name, {"copyRegion": args.copy_region, "retentionDays": args.retention_days}, opts
        )
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.stack.name_prefix} backup vault",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        # A vault holding recovery points cannot be deleted; a throwaway stack empties it on destroy.
        vault = aws.backup.Vault(
            f"{name}-vault",
            name=f"{args.stack.name_prefix}-data",
            kms_key_arn=key.arn,
            force_destroy=not args.stack.protect,
            opts=keep,
        )

        copy_actions = []
        self.copy_vault_arn = None
        if args.copy_region and args.copy_supported:
            copy_key = aws.kms.Key(
                f"{name}-copy-key",
                region=args.copy_region,
                description=f"{args.stack.name_prefix} backup copies from another region",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                opts=keep,
            )
            copy_vault = aws.backup.Vault(
                f"{name}-copy-vault",
                region=args.copy_region,
                name=f"{args.stack.name_prefix}-data-copy",
                kms_key_arn=copy_key.arn,
                force_destroy=not args.stack.protect,
                opts=keep,
            )
            self.copy_vault_arn = copy_vault.arn
            copy_actions = [
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=copy_vault.arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=args.retention_days),
                )
            ]

        plan = aws.backup.Plan(
            f"{name}-plan",
            name=f"{args.stack.name_prefix}-data",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name=f"every-{args.frequency_hours}h",
                    target_vault_name=vault.name,
                    # From 01:00 UTC, clear of the database's own backup window (00:00-00:30).
                    schedule=snapshot_schedule(args.frequency_hours),
                    start_window=60,
                    completion_window=180,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days),
                    copy_actions=copy_actions,
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "backup.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-role-{suffix}",
                role=role.name,
                policy_arn=f"arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyFor{suffix}",
                opts=pulumi.ResourceOptions(parent=role),
            )
            for suffix in ("Backup", "Restores")
        ]
        aws.backup.Selection(
            f"{name}-selection",
            name=f"{args.stack.name_prefix}-data",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=args.resource_arns,
            opts=pulumi.ResourceOptions(parent=plan, depends_on=attachments),
        )

        self.vault_arn = vault.arn
        self.register_outputs({"vaultArn": vault.arn, "copyVaultArn": self.copy_vault_arn})


def snapshot_schedule(frequency_hours: int) -> str:
    return f"cron(0 1/{frequency_hours} * * ? *)" if frequency_hours < 24 else "cron(0 1 * * ? *)"
