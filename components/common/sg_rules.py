"""Security-group rules as resources of their own.

A rule written inline on a security group makes the whole group wait for every group the rule
names: the database's group would wait for the EKS cluster (about 11 minutes) only because it
admits the cluster's nodes, and the database would wait for its group. Created empty, a group
is ready in seconds and what uses it starts at once; each rule is its own resource that waits
only for the two groups it joins.

Do not mix these with inline `ingress` / `egress` on the same group: the provider would treat
the separate rules as drift of the inline ones and remove them on the next update.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def allow_in(
    name: str,
    group: pulumi.Input[str],
    port: int,
    *,
    description: str,
    parent: pulumi.Resource,
    from_group: pulumi.Input[str] | None = None,
    from_cidr: str | None = None,
) -> aws.vpc.SecurityGroupIngressRule:
    """TCP on `port` into `group` from another security group or from a CIDR (exactly one)."""
    if (from_group is None) == (from_cidr is None):
        raise ValueError("allow_in needs exactly one of from_group and from_cidr")
    return aws.vpc.SecurityGroupIngressRule(
        name,
        security_group_id=group,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        referenced_security_group_id=from_group,
        cidr_ipv4=from_cidr,
        description=description,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def allow_out(
    name: str,
    group: pulumi.Input[str],
    port: int,
    *,
    to_group: pulumi.Input[str],
    description: str,
    parent: pulumi.Resource,
) -> aws.vpc.SecurityGroupEgressRule:
    """TCP on `port` out of `group` to another security group only."""
    return aws.vpc.SecurityGroupEgressRule(
        name,
        security_group_id=group,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        referenced_security_group_id=to_group,
        description=description,
        opts=pulumi.ResourceOptions(parent=parent),
    )
