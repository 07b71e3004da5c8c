"""Karpenter on the system nodes: IAM, interruption handling, the Helm release, the node class
and the node pools. What the pools contain is planned in `karpenter_plan`; this module only
declares it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common.context import StackContext
from components.common.helm import pinned_chart
from components.common.iam import pod_identity
from components.common.peak_window import PeakWindow
from components.eks import karpenter_plan as plan
from components.eks.node_role import node_role as make_node_role


@dataclass(frozen=True)
class KarpenterArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """Name of the EKS cluster (an output of the cluster, so Karpenter waits for it)."""
    ami_alias: str
    """Pinned EC2NodeClass AMI alias, e.g. `al2023@v20260930`."""
    scan_limits: plan.PoolLimits
    services_limits: plan.PoolLimits
    scan_consolidate_after: str
    """How long a scan node stays empty or underused before it goes."""
    scan_fallback_percent: int
    """Share of the scan limits the on-demand fallback pool may use; 0 removes the pool."""
    peak: PeakWindow
    """Weekday peak window: no disruptive consolidation or drift replacement while it is open."""
    custom_networking: bool
    """Whether pods use the VPC CNI's custom networking (one ENI per node reserved for the node)."""
    after: tuple[pulumi.Resource, ...] = ()
    """What must exist first (system nodes, CoreDNS and the Pod Identity agent, for the release).
    Applied to the children that need it: a component's `depends_on` does not reach its
    children. Default nothing."""


class Karpenter(pulumi.ComponentResource):
    node_role_name: pulumi.Output[str]
    controller_role_arn: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    node_pools: dict[str, k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:eks:Karpenter",
            name,
            {
                "availabilityZones": list(args.stack.zones),
                "version": plan.KARPENTER_VERSION,
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        in_cluster = pulumi.ResourceOptions(parent=self)

        queue = self._interruption_queue(name, child)

        node_role, node_policies = make_node_role(
            f"{name}-node",
            f"Nodes Karpenter launches for EKS cluster {args.stack.cluster_name}",
            self,
            args.stack.partition,
        )
        # Without this entry the nodes Karpenter launches can never join the cluster.
        node_access = aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=args.cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            # A node must not boot before its role can pull images and run the CNI.
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies),
        )

        controller = pod_identity(
            f"{name}-controller",
            parent=self,
            account_id=args.stack.account_id,
            cluster_name=args.cluster_name,
            namespace=plan.KARPENTER_NAMESPACE,
            service_account=plan.KARPENTER_SERVICE_ACCOUNT,
            description=f"Karpenter controller of EKS cluster {args.stack.cluster_name} (EKS Pod Identity)",
        )
        controller_role, identity = controller.role, controller.association
        documents = pulumi.Output.all(queue.arn, node_role.arn).apply(
            lambda arns: plan.controller_policies(
                partition=args.stack.partition,
                region=args.stack.region,
                account_id=args.stack.account_id,
                cluster_name=args.stack.cluster_name,
                queue_arn=arns[0],
                node_role_arn=arns[1],
            )
        )
        attachments = []
        for part in ("node-lifecycle", "iam-integration", "cluster-and-queue", "resource-discovery"):

            def policy_json(docs: dict[str, dict[str, Any]], p: str = part) -> str:
                return json.dumps(docs[p])

            policy = aws.iam.Policy(
                f"{name}-controller-{part}",
                description=f"Karpenter controller ({part}) for {args.stack.cluster_name}",
                policy=documents.apply(policy_json),
                opts=pulumi.ResourceOptions(parent=controller_role),
            )
            attachments.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-controller-{part}",
                    role=controller_role.name,
                    policy_arn=policy.arn,
                    opts=pulumi.ResourceOptions(parent=controller_role),
                )
            )

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.KARPENTER_NAMESPACE),
            opts=in_cluster,
        )
        flow_schemas = self._flow_schemas(name, in_cluster)
        crds = k8s.helm.v3.Release(
            f"{name}-crd",
            name="karpenter-crd",
            chart=plan.KARPENTER_CHART + "-crd",
            version=plan.KARPENTER_VERSION,
            namespace=plan.KARPENTER_NAMESPACE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *args.after]),
        )
        release = pinned_chart(
            f"{name}-controller",
            chart=plan.KARPENTER_CHART,
            version=plan.KARPENTER_VERSION,
            namespace=plan.KARPENTER_NAMESPACE,
            # The CRDs come from the karpenter-crd release, which (unlike a chart's crds/) upgrades them.
            skip_crds=True,
            values=queue.name.apply(
                lambda q: plan.helm_values(
                    args.stack.cluster_name, q, args.stack.region, custom_networking=args.custom_networking
                )
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[crds, identity, node_access, *attachments, *flow_schemas, *args.after]
            ),
        )

        after_release = pulumi.ResourceOptions(parent=self, depends_on=[release])
        node_class_manifest = node_role.name.apply(
            lambda role: plan.node_class(args.stack.cluster_name, role, args.ami_alias, dict(args.stack.tags or {}))
        )
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": plan.NODE_CLASS},
            spec=node_class_manifest.apply(lambda m: m["spec"]),
            opts=after_release,
        )
        pools = plan.scan_pools(
            args.stack.zones, args.scan_limits, args.scan_consolidate_after, args.scan_fallback_percent, peak=args.peak
        )
        pools.append(plan.services_pool(args.stack.zones, args.services_limits, peak=args.peak))
        self.node_pools = {}
        for manifest in pools:
            pool_name = manifest["metadata"]["name"]
            self.node_pools[pool_name] = k8s.apiextensions.CustomResource(
                f"{name}-pool-{pool_name}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release, node_class]),
            )

        self.node_role_name = node_role.name
        self.controller_role_arn = controller_role.arn
        self.queue_name = queue.name
        self.register_outputs(
            {
                "nodeRoleName": node_role.name,
                "controllerRoleArn": controller_role.arn,
                "interruptionQueue": queue.name,
                "nodePools": sorted(self.node_pools),
            }
        )

    def _interruption_queue(self, name: str, child: pulumi.ResourceOptions) -> aws.sqs.Queue:
        """Spot interruption warnings, rebalance recommendations, instance state changes and AWS
        Health events, delivered to a queue Karpenter drains before the instance goes."""
        queue = aws.sqs.Queue(
            f"{name}-interruption",
            message_retention_seconds=plan.QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruption",
            queue_url=queue.url,
            policy=queue.arn.apply(lambda arn: json.dumps(plan.queue_policy(arn))),
            opts=pulumi.ResourceOptions(parent=queue),
        )
        for suffix, source, detail_type in plan.INTERRUPTION_EVENTS:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{suffix}",
                description=f"{detail_type} events for Karpenter",
                event_pattern=plan.event_pattern(source, detail_type),
                opts=pulumi.ResourceOptions(parent=queue),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{suffix}",
                rule=rule.name,
                arn=queue.arn,
                target_id="karpenter-interruption-queue",
                opts=pulumi.ResourceOptions(parent=rule),
            )
        return queue

    def _flow_schemas(self, name: str, in_cluster: pulumi.ResourceOptions) -> list[k8s.flowcontrol.v1.FlowSchema]:
        """API priority for Karpenter outside kube-system: its leader election and its work get
        the levels kube-system service accounts get by default, so a busy API server does not
        starve the component that adds capacity."""
        subject = k8s.flowcontrol.v1.SubjectArgs(
            kind="ServiceAccount",
            service_account=k8s.flowcontrol.v1.ServiceAccountSubjectArgs(
                name=plan.KARPENTER_SERVICE_ACCOUNT, namespace=plan.KARPENTER_NAMESPACE
            ),
        )
        schemas = []
        everything = [k8s.flowcontrol.v1.NonResourcePolicyRuleArgs(non_resource_urls=["*"], verbs=["*"])]
        for schema_name, priority, precedence, rule, non_resource in (
            (
                "karpenter-leader-election",
                "leader-election",
                200,
                k8s.flowcontrol.v1.ResourcePolicyRuleArgs(
                    api_groups=["coordination.k8s.io"],
                    namespaces=["*"],
                    resources=["leases"],
                    verbs=["get", "create", "update"],
                ),
                None,
            ),
            (
                "karpenter-workload",
                "workload-high",
                1000,
                k8s.flowcontrol.v1.ResourcePolicyRuleArgs(
                    api_groups=["*"], cluster_scope=True, namespaces=["*"], resources=["*"], verbs=["*"]
                ),
                everything,
            ),
        ):
            schemas.append(
                k8s.flowcontrol.v1.FlowSchema(
                    f"{name}-{schema_name}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=schema_name),
                    spec=k8s.flowcontrol.v1.FlowSchemaSpecArgs(
                        distinguisher_method=k8s.flowcontrol.v1.FlowDistinguisherMethodArgs(type="ByUser"),
                        matching_precedence=precedence,
                        priority_level_configuration=k8s.flowcontrol.v1.PriorityLevelConfigurationReferenceArgs(
                            name=priority
                        ),
                        rules=[
                            k8s.flowcontrol.v1.PolicyRulesWithSubjectsArgs(
                                resource_rules=[rule], non_resource_rules=non_resource, subjects=[subject]
                            )
                        ],
                    ),
                    opts=in_cluster,
                )
            )
        return schemas
