"""What every component of one stack shares, built once in `__main__.py` and passed as is.

Without it the region, account, zones, name prefix and protection switch were threaded through
every component's arguments one by one (the account id alone through nine of them), and one
component could be handed a value the others did not get.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StackContext:
    stack: str
    """Stack name (`prod`)."""
    region: str
    """AWS region of the stack's provider."""
    account_id: str
    """Account the stack deploys into (from the caller-identity look-up)."""
    partition: str
    """AWS partition (`aws`, `aws-cn`, `aws-us-gov`), for ARNs."""
    zones: tuple[str, ...]
    """Every zone of the stack, in order; each tier places something in each."""
    name_prefix: str
    """Prefix of the names AWS shows (`scanner-prod`): database identifiers, buckets, secrets."""
    cluster_name: str
    """The EKS cluster's name as a plain string (discovery tags, IAM conditions). Resources that
    must wait for the cluster take the cluster component's output instead."""
    protect: bool = True
    """Deletion protection, Pulumi `protect` and `retainOnDelete` on stateful resources. Default on."""
    tags: dict[str, str] = field(default_factory=dict)
    """The stack's default tags (the provider adds them to AWS resources; Karpenter's nodes get
    them through their node class). Default none."""
