"""EKS cluster across every zone: control plane, core add-ons and the system node group.

Built on pulumi-eks with its opinions turned the other way where they cost availability or
safety: API authentication with access entries (no aws-auth ConfigMap to lose), a private
endpoint (public only from listed CIDRs), every control-plane log type, envelope encryption
of secrets with a KMS key, pinned versions, no default node group.

Zonal shift: pulumi-eks does not expose `zonalShiftConfig`, so a resource transform sets it on
the component's `aws:eks/cluster:Cluster` child. Transforms (unlike the older transformations)
are run by the engine for the children of packaged components, so this works under a real
`pulumi up`, and it keeps pulumi-eks for everything else (kubeconfig, security group outputs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components.common import versions
from components.common.context import StackContext
from components.common.sg_rules import allow_in
from components.eks import karpenter_plan
from components.eks.node_role import node_role

#: Every control-plane log type EKS offers.
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
EKS_CLUSTER_TYPE = "aws:eks/cluster:Cluster"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def enable_zonal_shift(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Transform for the pulumi-eks component: turn on EKS zonal shift on its cluster child, so
    ARC can move traffic and new nodes away from an impaired zone. Props are in engine form."""
    if args.type_ != EKS_CLUSTER_TYPE:
        return None
    props = dict(args.props)
    props["zonalShiftConfig"] = {"enabled": True}
    return pulumi.ResourceTransformResult(props=props, opts=args.opts)


@dataclass(frozen=True)
class ClusterArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix, cluster name and protection."""
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Mapping[str, pulumi.Input[str]]
    """Zone -> private subnet id."""
    pod_subnet_ids: Mapping[str, pulumi.Input[str]] | None
    """Zone -> pod subnet id (secondary pod CIDR). When set, the VPC CNI uses custom networking:
    pods get addresses from these subnets, nodes keep theirs in the private ones; none: pods share
    the private subnets."""
    kubernetes_version: str
    """Pinned Kubernetes version; add-on builds come from `versions.ADDON_VERSIONS`."""
    public_access_cidrs: tuple[str, ...]
    """CIDRs allowed on the public endpoint; none: private endpoint only."""
    api_access_cidrs: tuple[str, ...]
    """Private CIDRs (deploy runners in or peered to the VPC) admitted on 443 to the private endpoint.
    The cluster security group admits only itself; without a rule no runner reaches the API."""
    admin_role_arns: tuple[str, ...]
    """IAM roles given cluster-admin access entries (the deployer is admin anyway)."""
    system_instance_types: tuple[str, ...]
    """On-demand instance types of the system node group, in order of preference."""
    system_nodes_per_zone: int
    log_retention_days: int
    """Retention of the control-plane log group."""
    deletion_protection: bool
    """EKS deletion protection (on in production)."""


class Cluster(pulumi.ComponentResource):
    """The EKS control plane, its managed add-ons and the system node group."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    """The EKS cluster's ARN (zonal autoshift and the zone drill name it)."""
    kubeconfig_json: pulumi.Output[str]
    provider: k8s.Provider
    """Kubernetes provider for everything inside the cluster."""
    cluster_security_group_id: pulumi.Output[str]
    pod_identity_agent: aws.eks.Addon
    coredns: aws.eks.Addon
    system_node_group: aws.eks.NodeGroup
    ready_for_controllers: tuple[pulumi.Resource, ...]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:eks:Cluster",
            name,
            {"availabilityZones": list(args.stack.zones), "kubernetesVersion": args.kubernetes_version},
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        zones = list(args.stack.zones)
        # The zones that have a private subnet; the placement policy refuses a cluster short of one.
        subnet_ids = [args.private_subnet_ids[z] for z in zones if z in args.private_subnet_ids]
        addons = versions.ADDON_VERSIONS[args.kubernetes_version]

        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {args.stack.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect),
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{args.stack.cluster_name}-eks-secrets",
            target_key_id=secrets_key.key_id,
            opts=child,
        )
        # EKS writes to this group by name; creating it first sets the retention (EKS's own never expires).
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{args.stack.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=child,
        )

        public = bool(args.public_access_cidrs)
        self._cluster = eks.Cluster(
            f"{name}-eks",
            name=args.stack.cluster_name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            subnet_ids=subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(args.public_access_cidrs) if public else None,
            authentication_mode=eks.AuthenticationMode.API,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            encryption_config_key_arn=secrets_key.arn,
            # Nodes come from the system node group and Karpenter, never from a default group.
            skip_default_node_group=True,
            # Nodes use the security group EKS creates for the cluster (tagged for Karpenter below).
            skip_default_security_groups=True,
            # Workload IAM is EKS Pod Identity; no OIDC provider to keep in step.
            create_oidc_provider=False,
            # Core add-ons are EKS managed add-ons pinned below, not the self-managed defaults.
            bootstrap_self_managed_addons=False,
            use_default_vpc_cni=True,
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=False),
            # Standard support only: an extended-support surcharge must be a decision, not a default.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group], transforms=[enable_zonal_shift]),
        )
        cluster_name = self._cluster.eks_cluster.name
        self.cluster_security_group_id = self._cluster.cluster_security_group_id

        # Karpenter finds the node security group by this tag.
        aws.ec2.Tag(
            f"{name}-cluster-sg-discovery",
            resource_id=self._cluster.cluster_security_group_id,
            key=karpenter_plan.DISCOVERY_TAG,
            value=args.stack.cluster_name,
            opts=child,
        )

        # The private endpoint's interfaces carry the cluster security group, which admits only its
        # own members (the nodes): a deploy runner elsewhere in the VPC, or in a peered one, needs
        # its own rule on 443 or every Kubernetes call of `pulumi up` times out.
        for cidr in args.api_access_cidrs:
            allow_in(
                f"{name}-api-from-{cidr.replace('/', '-')}",
                self.cluster_security_group_id,
                443,
                from_cidr=cidr,
                description=f"Kubernetes API from deploy runners in {cidr}",
                parent=self,
            )

        for index, role_arn in enumerate(args.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{index}", cluster_name=cluster_name, principal_arn=role_arn, type="STANDARD", opts=child
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}",
                cluster_name=cluster_name,
                # Through the entry's output, so the association waits for the entry it needs.
                principal_arn=entry.principal_arn,
                policy_arn=ADMIN_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=entry),
            )

        def addon(addon_name: str, configuration: dict | None = None, depends_on=None) -> aws.eks.Addon:
            return aws.eks.Addon(
                f"{name}-{addon_name}",
                cluster_name=cluster_name,
                addon_name=addon_name,
                addon_version=addons[addon_name],
                configuration_values=json.dumps(configuration) if configuration else None,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []),
            )

        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self._cluster.kubeconfig_json,
            enable_server_side_apply=True,
            opts=child,
        )

        # Networking add-ons first: nodes cannot become Ready without them.
        custom_networking = bool(args.pod_subnet_ids)
        vpc_cni = addon(
            "vpc-cni",
            {
                "env": {
                    # Pods take addresses from the pod subnet of their node's zone (ENIConfig named after the zone).
                    "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true",
                    "ENI_CONFIG_LABEL_DEF": "topology.kubernetes.io/zone",
                }
            }
            if custom_networking
            else None,
        )
        kube_proxy = addon("kube-proxy")
        self.pod_identity_agent = addon("eks-pod-identity-agent")
        before_nodes: list[pulumi.Resource] = [vpc_cni, kube_proxy, self.pod_identity_agent]
        if custom_networking:
            before_nodes += eni_configs(self, name, args, zones, vpc_cni)

        self.system_node_group = system_nodes(self, name, args, cluster_name, subnet_ids, depends_on=before_nodes)

        # CoreDNS needs nodes to become healthy, and belongs on the system nodes.
        self.coredns = addon(
            "coredns",
            {
                "replicaCount": max(2, len(zones)),
                "nodeSelector": karpenter_plan.SYSTEM_LABEL,
                "tolerations": [
                    {"key": karpenter_plan.SYSTEM_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
            depends_on=[self.system_node_group],
        )

        self.cluster_name = cluster_name
        self.cluster_arn = self._cluster.eks_cluster.arn
        self.kubeconfig_json = self._cluster.kubeconfig_json
        # What a controller on the system nodes needs running first: the nodes, CoreDNS to
        # resolve names, and the Pod Identity agent for its credentials.
        self.ready_for_controllers = (self.system_node_group, self.coredns, self.pod_identity_agent)
        self.register_outputs(
            {
                "clusterName": cluster_name,
                "clusterSecurityGroupId": self.cluster_security_group_id,
                "systemNodeGroup": self.system_node_group.node_group_name,
            }
        )


def eni_configs(owner: Cluster, name: str, args: ClusterArgs, zones: list[str], vpc_cni) -> list[pulumi.Resource]:
    """One ENIConfig per zone, named after it, before any node starts: a node that boots
    without one puts its pods in the node subnet until it is replaced."""
    assert args.pod_subnet_ids is not None
    return [
        k8s.apiextensions.CustomResource(
            f"{name}-eniconfig-{zone}",
            api_version="crd.k8s.amazonaws.com/v1alpha1",
            kind="ENIConfig",
            metadata={"name": zone},
            spec={"subnet": args.pod_subnet_ids[zone], "securityGroups": [owner.cluster_security_group_id]},
            opts=pulumi.ResourceOptions(parent=owner, provider=owner.provider, depends_on=[vpc_cni]),
        )
        for zone in zones
        if zone in args.pod_subnet_ids
    ]


def system_nodes(
    owner: Cluster, name: str, args: ClusterArgs, cluster_name, subnet_ids, depends_on
) -> aws.eks.NodeGroup:
    """On-demand nodes in every zone for cluster-critical pods only (taint CriticalAddonsOnly)."""
    role, attachments = node_role(
        f"{name}-system-node", f"System nodes of EKS cluster {args.stack.cluster_name}", owner
    )
    launch_template = aws.ec2.LaunchTemplate(
        f"{name}-system-node",
        description="System nodes: IMDSv2 only, encrypted gp3 root volume",
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
        ),
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=50,
                    volume_type="gp3",
                    encrypted="true",
                    delete_on_termination="true",
                ),
            )
        ],
        update_default_version=True,
        opts=pulumi.ResourceOptions(parent=owner),
    )
    minimum = args.system_nodes_per_zone * len(args.stack.zones)
    return aws.eks.NodeGroup(
        f"{name}-system",
        cluster_name=cluster_name,
        node_role_arn=role.arn,
        subnet_ids=subnet_ids,
        version=args.kubernetes_version,
        ami_type="AL2023_x86_64_STANDARD",
        capacity_type="ON_DEMAND",
        instance_types=list(args.system_instance_types),
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=minimum, desired_size=minimum, max_size=2 * minimum),
        update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
        launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
            id=launch_template.id, version=launch_template.latest_version.apply(str)
        ),
        labels=karpenter_plan.SYSTEM_LABEL,
        taints=[
            aws.eks.NodeGroupTaintArgs(
                key=karpenter_plan.SYSTEM_TAINT["key"], value=karpenter_plan.SYSTEM_TAINT["value"], effect="NO_SCHEDULE"
            )
        ],
        node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[*attachments, *depends_on]),
    )
