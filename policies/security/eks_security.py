"""Security rules for the EKS tier: API exposure, secrets encryption, instance metadata."""

from __future__ import annotations

import ipaddress

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from stack_graph import path, present

EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def _world_open(cidrs) -> list[str]:
    open_ = []
    for cidr in cidrs:
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                open_.append(str(cidr))
        except ValueError:
            continue
    return open_


def endpoint_not_world_open(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Both pulumi-eks and EKS default to a public endpoint open to 0.0.0.0/0 when nothing is said.
    if args.resource_type == EKS_COMPONENT:
        public = path(args.props, "endpointPublicAccess", True)
        cidrs = path(args.props, "publicAccessCidrs", None)
    elif args.resource_type == EKS_CLUSTER:
        public = path(args.props, "vpcConfig.endpointPublicAccess", True)
        cidrs = path(args.props, "vpcConfig.publicAccessCidrs", None)
    else:
        return
    if not public:
        return
    cidrs = list(cidrs) if cidrs is not None else ["0.0.0.0/0"]
    opened = _world_open(cidrs)
    if opened:
        report(f"the public API endpoint is open to {', '.join(opened)}; turn the public endpoint off or list "
               "only your own egress ranges in publicAccessCidrs.")


def secrets_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == EKS_COMPONENT:
        if not present(args.props, "encryptionConfigKeyArn"):
            report("Kubernetes secrets are not envelope-encrypted; set encryptionConfigKeyArn to a KMS key.")
    elif args.resource_type == EKS_CLUSTER:
        resources = path(args.props, "encryptionConfig.resources", []) or []
        if "secrets" not in list(resources):
            report("Kubernetes secrets are not envelope-encrypted; add an encryptionConfig for 'secrets' with a KMS key.")


def imdsv2_required(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """IMDSv1 answers any request that reaches it (an SSRF in a scan engine would hand over the
    node's credentials); a hop limit above 1 lets pods reach the node's metadata."""
    max_hops = (args.get_config() or {}).get("maxHopLimit", 1)
    if args.resource_type in (LAUNCH_TEMPLATE, INSTANCE):
        tokens = path(args.props, "metadataOptions.httpTokens", "optional")  # EC2 defaults to optional
        hops = path(args.props, "metadataOptions.httpPutResponseHopLimit", 1)
    elif args.resource_type == NODE_CLASS:
        tokens = path(args.props, "spec.metadataOptions.httpTokens", "required")  # Karpenter defaults to required
        hops = path(args.props, "spec.metadataOptions.httpPutResponseHopLimit", 1)
    else:
        return
    if tokens != "required":
        report(f"instance metadata accepts IMDSv1 (httpTokens '{tokens}'); set httpTokens to 'required'.")
    if hops is not None and hops > max_hops:
        report(f"the metadata hop limit is {int(hops)}, so pods can reach the node's credentials; set "
               f"httpPutResponseHopLimit to {max_hops}.")


POLICIES = [
    ResourceValidationPolicy(
        name="eks-endpoint-not-world-open",
        description="Refuses an EKS API endpoint that is public to 0.0.0.0/0.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=endpoint_not_world_open,
    ),
    ResourceValidationPolicy(
        name="eks-secrets-encryption",
        description="Requires envelope encryption of Kubernetes secrets with a KMS key.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=secrets_encrypted,
    ),
    ResourceValidationPolicy(
        name="ec2-imdsv2-required",
        description="Requires IMDSv2 with a hop limit of 1 on launch templates, instances and Karpenter node classes.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=imdsv2_required,
        config_schema=PolicyConfigSchema(properties={
            "maxHopLimit": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1},
        }),
    ),
]
