"""Emulated children of remote (packaged) components, for the offline run.

Under mocks a remote component such as pulumi-eks's `eks:index:Cluster` registers alone: its
provider, which would create the children, is not running. The policies must still be written
for what the real engine shows, the `aws:eks/cluster:Cluster` child with the program's
transforms applied. This module builds that child from the component's inputs, following
pulumi-eks's documented mapping of its arguments onto `aws.eks.Cluster`, runs the transforms
the program passed, and registers it with the mock monitor so the component's `eksCluster`
output can be a real resource reference.

Only the cluster child is emulated (the one the program's policies and transforms reach). The
record carries `"emulated": True` so reports can say so.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from google.protobuf import json_format

EKS_CLUSTER = "eks:index:Cluster"
EKS_CLUSTER_CHILD = "aws:eks/cluster:Cluster"
_RESOURCE_SIG_KEY = "4dabf18193072939515e22adb298388d"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
#: Pulumi's wire sentinel for a value unknown during preview.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def child_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """pulumi-eks's arguments as the `aws.eks.Cluster` inputs it derives from them (engine form)."""
    public = inputs.get("endpointPublicAccess", True)  # pulumi-eks and EKS default to a public endpoint
    vpc_config: dict[str, Any] = {
        "subnetIds": inputs.get("subnetIds")
        or [*(inputs.get("privateSubnetIds") or []), *(inputs.get("publicSubnetIds") or [])],
        "endpointPrivateAccess": inputs.get("endpointPrivateAccess", False),
        "endpointPublicAccess": public,
    }
    if public:
        vpc_config["publicAccessCidrs"] = inputs.get("publicAccessCidrs") or ["0.0.0.0/0"]
    child: dict[str, Any] = {
        "name": inputs.get("name"),
        "version": inputs.get("version"),
        "vpcConfig": vpc_config,
        "enabledClusterLogTypes": inputs.get("enabledClusterLogTypes") or [],
        "bootstrapSelfManagedAddons": inputs.get("bootstrapSelfManagedAddons", True),
        "upgradePolicy": inputs.get("upgradePolicy") or {"supportType": "EXTENDED"},
        "deletionProtection": inputs.get("deletionProtection", False),
        "tags": inputs.get("tags") or {},
    }
    if inputs.get("authenticationMode"):  # pulumi-eks sets accessConfig only when a mode is given
        child["accessConfig"] = {
            "authenticationMode": inputs["authenticationMode"],
            "bootstrapClusterCreatorAdminPermissions": True,
        }
    key_arn = inputs.get("encryptionConfigKeyArn")
    if key_arn:
        # pulumi-eks builds this object inside an apply on the key ARN: wholly unknown until the key exists.
        child["encryptionConfig"] = (
            UNKNOWN if key_arn == UNKNOWN else {"provider": {"keyArn": key_arn}, "resources": ["secrets"]}
        )
    return {k: v for k, v in child.items() if v is not None}


def _apply_transforms(request, name: str, props: dict[str, Any]) -> dict[str, Any]:
    import pulumi
    from pulumi.runtime.mocks import _resolve_callbacks

    for transform in _resolve_callbacks(request.transforms):
        result = transform(
            pulumi.ResourceTransformArgs(
                custom=True,
                type_=EKS_CLUSTER_CHILD,
                name=name,
                props=copy.deepcopy(props),
                opts=pulumi.ResourceOptions(),
            )
        )
        if result is not None:
            props = dict(result.props)
    return props


def emulate_eks_cluster(monitor, component_urn: str, request, mocks) -> dict[str, Any]:
    """Build, register and return the record of the component's cluster child."""
    from pulumi.runtime.mocks import MockMonitor

    inputs = json_format.MessageToDict(request.object)
    name = f"{request.name}-eksCluster"
    props = _apply_transforms(request, name, child_inputs(inputs))
    urn = monitor.make_urn(component_urn, EKS_CLUSTER_CHILD, name)
    rid = "" if mocks.preview else props.get("name") or name
    state = dict(props)
    if not mocks.preview:
        computed = eks_cluster_computed(mocks.region, "123456789012", rid, urn)
        # The provider's state keeps the inputs beside what AWS computed (vpcConfig keeps its
        # subnets and endpoint settings and gains the cluster security group).
        computed["vpcConfig"] = {**(props.get("vpcConfig") or {}), **computed["vpcConfig"]}
        state.update(computed)
    monitor.resources[urn] = MockMonitor.ResourceRegistration(urn, rid, state)
    dependencies = {k: list(v.urns) for k, v in request.propertyDependencies.items()}
    child_dependencies: dict[str, list[str]] = {}
    for source, target in (
        ("subnetIds", "vpcConfig"),
        ("privateSubnetIds", "vpcConfig"),
        ("publicSubnetIds", "vpcConfig"),
        ("publicAccessCidrs", "vpcConfig"),
        ("encryptionConfigKeyArn", "encryptionConfig"),
        ("name", "name"),
        ("version", "version"),
        ("tags", "tags"),
    ):
        if dependencies.get(source):
            child_dependencies.setdefault(target, [])
            child_dependencies[target] += [u for u in dependencies[source] if u not in child_dependencies[target]]
    return {
        "urn": urn,
        "type": EKS_CLUSTER_CHILD,
        "name": name,
        "parent": component_urn,
        # A remote component hands its `providers` map to its children.
        "provider": request.providers["aws"].rsplit("::", 1)[0] if "aws" in request.providers else None,
        "custom": True,
        "id": rid or None,
        "dependencies": sorted({u for us in child_dependencies.values() for u in us}),
        "propertyDependencies": child_dependencies,
        "protect": False,
        "retainOnDelete": False,
        "inputs": props,
        "outputs": json.loads(json.dumps(state)) | ({"id": rid} if rid else {}),
        "emulated": True,
    }


def eks_cluster_computed(region: str, account: str, rid: str, seed: str) -> dict[str, Any]:
    issuer = _hex(seed, 32).upper()
    return {
        "arn": f"arn:aws:eks:{region}:{account}:cluster/{rid}",
        "endpoint": f"https://{issuer}.gr7.{region}.eks.amazonaws.com",
        "certificateAuthority": {"data": "TU9DSy1DQQ=="},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{issuer}"}]}],
        "platformVersion": "eks.1",
        "status": "ACTIVE",
        "clusterId": _hex(seed + "id", 8) + "-" + _hex(seed, 4),
        "vpcConfig": {"clusterSecurityGroupId": "sg-" + _hex(seed + "sg", 17)},
    }


def eks_cluster_outputs(child: dict[str, Any] | None, preview: bool) -> dict[str, Any]:
    """The component's outputs: unknown in preview (as on a first real preview), else a kubeconfig,
    the EKS-created security group and a reference to the emulated cluster child."""
    if preview or child is None:
        return {}
    name = child["inputs"].get("name") or child["name"]
    outputs = child["outputs"]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": outputs["endpoint"],
                    "certificate-authority-data": outputs["certificateAuthority"]["data"],
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", name],
                    }
                },
            }
        ],
    }
    security_group = outputs["vpcConfig"]["clusterSecurityGroupId"]
    return {
        "eksCluster": {_RESOURCE_SIG_KEY: _RESOURCE_SIG, "urn": child["urn"], "id": child["id"], "packageVersion": ""},
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        "clusterSecurityGroupId": security_group,
        "nodeSecurityGroupId": security_group,
        "oidcProviderArn": "",
    }
