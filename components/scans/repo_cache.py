"""The repository cache: one EFS file system, mounted read-write by every scan job in every zone.

Regional (not One Zone) storage with a mount target in the private subnet of every zone, so a
job on any node in any zone mounts it and a zone loss leaves the cache whole. Encrypted with a
KMS key, TLS required by the file system policy, elastic throughput (bursts with the scan load
and costs nothing idle), files not read for 30 days move to Infrequent Access and come back on
first access, AWS Backup on. The EFS CSI driver (EKS managed add-on, credentials through EKS
Pod Identity) mounts it through one access point that fixes the POSIX owner of everything the
jobs write, bound to one ReadWriteMany claim in the scan namespace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common import versions
from components.common.context import StackContext
from components.common.iam import pod_identity_trust
from components.common.sg_rules import allow_in
from components.eks import karpenter_plan

NFS_PORT = 2049
ROOT_DIRECTORY = "/repo-cache"
STORAGE_CLASS = "efs-repo-cache"
CSI_SERVICE_ACCOUNT = "efs-csi-controller-sa"
#: Scan nodes start with this taint and the driver removes it (see karpenter_plan).
STARTUP_TAINT = karpenter_plan.EFS_STARTUP_TAINT


@dataclass(frozen=True)
class RepositoryCacheArgs:
    stack: StackContext
    """The stack's region, account, zones, name prefix and protection."""
    cluster_name: pulumi.Input[str]
    """The cluster (its output: the CSI add-on waits for it)."""
    kubernetes_version: str
    """Picks the pinned EFS CSI add-on build."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    """Zone -> private subnet id (where the nodes are)."""
    client_security_group_id: pulumi.Input[str]
    """Security group of the nodes; the only source admitted on NFS."""
    namespace: str
    """Namespace of the scan jobs, where the claim lives."""
    replica_region: str | None
    """Region to replicate the file system to; none: no replication."""
    claim_name: str = "repo-cache"
    """The ReadWriteMany claim the scan Jobs mount. Default repo-cache."""
    capacity: str = "1Ti"
    """Nominal size of the claim (EFS is elastic; Kubernetes requires a number). Default 1Ti."""
    owner_uid: int = 10001
    """POSIX owner of the cache (the scan containers' user). Default 10001."""
    owner_gid: int = 10001
    """POSIX group of the cache. Default 10001."""
    after: tuple[pulumi.Resource, ...] = ()
    """What must exist first (the scan namespace, for the claim). Applied to the children that need it: a component's
    `depends_on` does not reach its children. Default nothing."""
    driver_after: tuple[pulumi.Resource, ...] = ()
    """What the CSI add-on waits for (the system nodes its controller runs on, the Pod Identity
    agent for its credentials). Default nothing."""


class RepositoryCache(pulumi.ComponentResource):
    file_system_id: pulumi.Output[str]
    access_point_id: pulumi.Output[str]
    claim_name: str

    def __init__(self, name: str, args: RepositoryCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "scanner:storage:RepositoryCache",
            name,
            {"availabilityZones": list(args.stack.zones), "replicaRegion": args.replica_region},
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=args.stack.protect, retain_on_delete=args.stack.protect)

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.stack.name_prefix} repository cache (EFS)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        file_system = aws.efs.FileSystem(
            f"{name}-fs",
            creation_token=f"{args.stack.name_prefix}-repo-cache",
            encrypted=True,
            kms_key_id=key.arn,
            performance_mode="generalPurpose",
            throughput_mode="elastic",
            # One transition per entry: the API refuses both in one.
            lifecycle_policies=[
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_ia="AFTER_30_DAYS"),
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_primary_storage_class="AFTER_1_ACCESS"),
            ],
            tags={"Name": f"{args.stack.name_prefix}-repo-cache"},
            opts=keep,
        )
        aws.efs.BackupPolicy(
            f"{name}-backup",
            file_system_id=file_system.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="ENABLED"),
            opts=pulumi.ResourceOptions(parent=file_system),
        )
        aws.efs.FileSystemPolicy(
            f"{name}-policy",
            file_system_id=file_system.id,
            policy=file_system.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=pulumi.ResourceOptions(parent=file_system),
        )

        security_group = aws.ec2.SecurityGroup(
            f"{name}-mount",
            vpc_id=args.vpc_id,
            description="NFS to the repository cache from the cluster nodes",
            opts=child,
        )
        allow_in(
            f"{name}-mount-from-nodes",
            security_group.id,
            NFS_PORT,
            from_group=args.client_security_group_id,
            description="NFS (TLS) from EKS nodes",
            parent=security_group,
        )
        mount_targets = [
            aws.efs.MountTarget(
                f"{name}-mount-{zone}",
                file_system_id=file_system.id,
                subnet_id=args.subnet_ids[zone],
                security_groups=[security_group.id],
                opts=pulumi.ResourceOptions(parent=file_system),
            )
            for zone in args.stack.zones
            if zone in args.subnet_ids
        ]
        access_point = aws.efs.AccessPoint(
            f"{name}-access-point",
            file_system_id=file_system.id,
            posix_user=aws.efs.AccessPointPosixUserArgs(uid=args.owner_uid, gid=args.owner_gid),
            root_directory=aws.efs.AccessPointRootDirectoryArgs(
                path=ROOT_DIRECTORY,
                creation_info=aws.efs.AccessPointRootDirectoryCreationInfoArgs(
                    owner_uid=args.owner_uid, owner_gid=args.owner_gid, permissions="0750"
                ),
            ),
            opts=pulumi.ResourceOptions(parent=file_system),
        )
        if args.replica_region:
            replica_key = aws.kms.Key(
                f"{name}-replica-key",
                region=args.replica_region,
                description=f"{args.stack.name_prefix} repository cache replica",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                opts=keep,
            )
            aws.efs.ReplicationConfiguration(
                f"{name}-replication",
                source_file_system_id=file_system.id,
                destination=aws.efs.ReplicationConfigurationDestinationArgs(
                    region=args.replica_region, kms_key_id=replica_key.arn
                ),
                opts=pulumi.ResourceOptions(parent=file_system),
            )

        driver = self._csi_driver(name, args)

        in_cluster = pulumi.ResourceOptions(parent=self, depends_on=[driver, *mount_targets])
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=STORAGE_CLASS),
            provisioner="efs.csi.aws.com",
            # Dynamic claims get an access point each under /dynamic; the cache itself is the
            # static volume below, so its data outlives any claim.
            parameters=pulumi.Output.from_input(file_system.id).apply(
                lambda fs: {
                    "provisioningMode": "efs-ap",
                    "fileSystemId": fs,
                    "directoryPerms": "700",
                    "basePath": "/dynamic",
                    "uid": str(args.owner_uid),
                    "gid": str(args.owner_gid),
                }
            ),
            # Dynamic claims are scratch: their access points go with them (the quota is 1,000).
            reclaim_policy="Delete",
            volume_binding_mode="Immediate",
            opts=in_cluster,
        )
        volume = k8s.core.v1.PersistentVolume(
            f"{name}-volume",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{args.claim_name}-{args.stack.name_prefix}"),
            spec=k8s.core.v1.PersistentVolumeSpecArgs(
                capacity={"storage": args.capacity},
                access_modes=["ReadWriteMany"],
                persistent_volume_reclaim_policy="Retain",
                # The static pair has no class and the volume is reserved for its claim, so no
                # other claim can take it and a re-created claim binds to it again.
                storage_class_name="",
                claim_ref=k8s.core.v1.ObjectReferenceArgs(namespace=args.namespace, name=args.claim_name),
                csi=k8s.core.v1.CSIPersistentVolumeSourceArgs(
                    driver="efs.csi.aws.com",
                    # An access point in the handle mounts through it, with TLS.
                    volume_handle=pulumi.Output.all(file_system.id, access_point.id).apply(lambda v: f"{v[0]}::{v[1]}"),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[storage_class]),
        )
        k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.claim_name, namespace=args.namespace),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                volume_name=volume.metadata.name,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": args.capacity}),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )

        self.file_system_id = file_system.id
        self.access_point_id = access_point.id
        self.claim_name = args.claim_name
        self.register_outputs(
            {
                "fileSystemId": file_system.id,
                "accessPointId": access_point.id,
                "claim": f"{args.namespace}/{args.claim_name}",
            }
        )

    def _csi_driver(self, name: str, args: RepositoryCacheArgs) -> aws.eks.Addon:
        role = aws.iam.Role(
            f"{name}-csi",
            assume_role_policy=pod_identity_trust(namespace="kube-system", service_account=CSI_SERVICE_ACCOUNT),
            description="EFS CSI driver controller (EKS Pod Identity)",
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-csi",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy",
            opts=pulumi.ResourceOptions(parent=role),
        )
        return aws.eks.Addon(
            f"{name}-csi-driver",
            cluster_name=args.cluster_name,
            addon_name="aws-efs-csi-driver",
            addon_version=versions.ADDON_VERSIONS[args.kubernetes_version]["aws-efs-csi-driver"],
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account=CSI_SERVICE_ACCOUNT)
            ],
            # The controller is cluster-critical: on the system nodes. The node agent tolerates
            # every taint by default, so it also runs on the tainted scan nodes.
            configuration_values=json.dumps(
                {
                    "controller": {
                        "nodeSelector": karpenter_plan.SYSTEM_LABEL,
                        "tolerations": [karpenter_plan.SYSTEM_TOLERATION],
                    }
                }
            ),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment, *args.driver_after]),
        )


def tls_only_policy(file_system_arn: str) -> dict:
    """Mounts through a mount target are allowed, and nothing without TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyWithoutTls",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "*",
                "Resource": file_system_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "AllowMountThroughMountTargets",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                "Resource": file_system_arn,
                "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
            },
        ],
    }
