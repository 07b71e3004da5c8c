"""Security rules for the EKS tier: API exposure, secrets encryption, instance metadata."""

from __future__ import annotations

import ipaddress

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from environments import KEYS
from stack_graph import (
    EKS_CLUSTER,
    EKS_COMPONENT,
    NODE_GROUP,
    UNKNOWN,
    Report,
    StackGraph,
    known,
    path,
    present,
    setting,
    short,
)

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def _too_wide(cidrs, minimum_prefix: int) -> list[str]:
    wide = []
    for cidr in cidrs:
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen < minimum_prefix:
                wide.append(str(cidr))
        except ValueError:
            continue
    return wide


def endpoint_not_world_open(args: ResourceValidationArgs, report: Report) -> None:
    # Both pulumi-eks and EKS default to a public endpoint open to 0.0.0.0/0 when nothing is said.
    if args.resource_type == EKS_COMPONENT:
        prefix = ""
    elif args.resource_type == EKS_CLUSTER:
        prefix = "vpcConfig."
    else:
        return
    public = path(args.props, f"{prefix}endpointPublicAccess", True, unknown=UNKNOWN)
    cidrs = path(args.props, f"{prefix}publicAccessCidrs", None, unknown=UNKNOWN)
    if public is UNKNOWN or cidrs is UNKNOWN or not public:
        return  # computed during preview: decided on the update, and on the component's own inputs
    minimum = setting(args, "minimumPrefixLength", 8)
    cidrs = list(cidrs) if cidrs is not None else ["0.0.0.0/0"]
    wide = _too_wide(cidrs, minimum)
    if wide:
        report(
            f"the public API endpoint is open to {', '.join(wide)}; turn the public endpoint off or list "
            f"only your own egress ranges (/{minimum} or narrower) in publicAccessCidrs ({KEYS['public_api']})."
        )


def secrets_encrypted(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == EKS_COMPONENT:
        if not present(args.props, "encryptionConfigKeyArn"):
            report("Kubernetes secrets are not envelope-encrypted; set encryptionConfigKeyArn to a KMS key.")
    elif args.resource_type == EKS_CLUSTER:
        # pulumi-eks derives the child's encryptionConfig from the key ARN, so it is unknown on a
        # first preview; the component's own input decides then.
        resources = path(args.props, "encryptionConfig.resources", [], unknown=UNKNOWN)
        if resources is not UNKNOWN and "secrets" not in list(resources or []):
            report(
                "Kubernetes secrets are not envelope-encrypted; add an encryptionConfig for 'secrets' with a KMS key."
            )


def imdsv2_required(args: ResourceValidationArgs, report: Report) -> None:
    """IMDSv1 answers any request that reaches it (an SSRF in a scan engine would hand over the
    node's credentials); a hop limit above 1 lets pods reach the node's metadata."""
    max_hops = setting(args, "maxHopLimit", 1)
    if args.resource_type in (LAUNCH_TEMPLATE, INSTANCE):
        # EC2 defaults to IMDSv1 allowed; an unset hop limit takes the AMI's default (2 on AL2023).
        tokens = path(args.props, "metadataOptions.httpTokens", "optional", unknown=UNKNOWN)
        hops = path(args.props, "metadataOptions.httpPutResponseHopLimit", 2, unknown=UNKNOWN)
    elif args.resource_type == NODE_CLASS:
        tokens = path(args.props, "spec.metadataOptions.httpTokens", "required", unknown=UNKNOWN)  # Karpenter's default
        hops = path(args.props, "spec.metadataOptions.httpPutResponseHopLimit", 1, unknown=UNKNOWN)
    elif args.resource_type == NODE_GROUP:
        if "launchTemplate" not in list(args.props):
            report(
                "the node group uses the launch template EKS generates, which allows a metadata hop limit of 2 "
                "(pods reach the node's credentials); give it a launch template with IMDSv2 and hop limit 1."
            )
        return
    else:
        return
    if tokens is UNKNOWN or hops is UNKNOWN:
        return  # computed during preview; decided on the update
    if tokens != "required":
        report(f"instance metadata accepts IMDSv1 (httpTokens '{tokens}'); set httpTokens to 'required'.")
    if hops is not None and hops > max_hops:
        report(
            f"the metadata hop limit is {int(hops)}, so pods can reach the node's credentials; set "
            f"httpPutResponseHopLimit to {max_hops}."
        )


INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"


def _admits_https(rule) -> bool:
    protocol = str(known(rule, "ipProtocol", known(rule, "protocol", "")))
    low, high = known(rule, "fromPort"), known(rule, "toPort")
    if protocol in ("-1", "all"):
        return True
    return protocol in ("tcp", "6") and isinstance(low, int) and isinstance(high, int) and low <= 443 <= high


def private_api_reachable(args: StackValidationArgs, report: Report) -> None:
    """With the public endpoint off, the API answers only what the cluster security group
    admits, and EKS creates that group admitting only itself (the nodes): a deploy runner needs
    a rule on 443, or every `pulumi up` after the cluster exists times out."""
    graph = StackGraph(args.resources)
    rules = [
        r
        for r in graph.of_type(INGRESS_RULE) + graph.of_type(LEGACY_RULE)
        if r.resource_type == INGRESS_RULE or known(r, "type") == "ingress"
    ]
    # The cluster the engine shows under pulumi-eks (its outputs carry the endpoint settings; the
    # component's own outputs do not).
    for cluster in graph.of_type(EKS_CLUSTER):
        if path(cluster.props, "vpcConfig.endpointPublicAccess", True, unknown=True) is not False:
            continue
        owners = {cluster.urn} | ({cluster.parent.urn} if cluster.parent is not None else set())
        group_id = path(cluster.props, "vpcConfig.clusterSecurityGroupId")
        # Once the group's id is known (an update) the rule must be on that very group; before,
        # on a first preview, it must take its group from the cluster.
        admitted = [
            r
            for r in rules
            if _admits_https(r)
            and (
                known(r, "securityGroupId") == group_id
                if group_id is not None and known(r, "securityGroupId")
                else any(d.urn in owners for d in r.property_dependencies.get("securityGroupId", []))
            )
        ]
        if not admitted:
            where = cluster.parent if cluster.parent is not None else cluster
            report(
                f"{short(where)} has a private API only, and its cluster security group admits only its own "
                "members: no deploy runner can reach it on 443. Admit the runners' networks "
                f"({KEYS['api_access']}) or their public addresses ({KEYS['public_api']}).",
                where.urn,
            )


POLICIES = [
    StackValidationPolicy(
        name="eks-private-api-reachable",
        description=(
            "Requires a private-only EKS API to admit deploy runners on 443 through its cluster security group."
        ),
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=private_api_reachable,
    ),
    ResourceValidationPolicy(
        name="eks-endpoint-not-world-open",
        description="Refuses a public EKS API endpoint open to 0.0.0.0/0 or any range wider than minimumPrefixLength.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=endpoint_not_world_open,
        config_schema=PolicyConfigSchema(
            properties={
                "minimumPrefixLength": {"type": "integer", "minimum": 0, "maximum": 32, "default": 8},
            }
        ),
    ),
    ResourceValidationPolicy(
        name="eks-secrets-encryption",
        description="Requires envelope encryption of Kubernetes secrets with a KMS key.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=secrets_encrypted,
    ),
    ResourceValidationPolicy(
        name="ec2-imdsv2-required",
        description="Requires IMDSv2 with a hop limit of 1 on launch templates, instances, managed node groups and "
        "Karpenter node classes.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=imdsv2_required,
        config_schema=PolicyConfigSchema(
            properties={
                "maxHopLimit": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1},
            }
        ),
    ),
]
