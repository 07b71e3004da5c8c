"""The IAM role of an EKS worker node, shared by the system node group and Karpenter's nodes."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

#: AWS managed policies every node needs: join the cluster, pull images (pull only), run the
#: VPC CNI, and be reachable through Session Manager instead of SSH.
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
)


def node_role(
    name: str, description: str, parent: pulumi.Resource, partition: str = "aws"
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A role EC2 instances assume, with the node policies attached (children of the role)."""
    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
        description=description,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}",
            role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/{policy}",
            opts=pulumi.ResourceOptions(parent=role),
        )
        for policy in NODE_POLICIES
    ]
    return role, attachments
