"""Pinned versions of everything the cluster runs, in one place: Kubernetes and its managed
add-ons, the node image, and every Helm chart.

Upgrading Kubernetes means adding a row to `ADDON_VERSIONS` with the add-on builds EKS lists
for the new version (`aws eks describe-addon-versions --kubernetes-version <v> --addon-name <a>`),
then setting `scanner:kubernetesVersion`. Versions are never resolved at deploy time: a
`most_recent` look-up would change the cluster between two runs of the same commit.
"""

from __future__ import annotations

#: Kubernetes version new stacks get: in EKS standard support until 2027-03-27.
DEFAULT_KUBERNETES_VERSION = "1.35"

#: EKS managed add-on builds per Kubernetes version.
ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.35": {
        "vpc-cni": "v1.21.1-eksbuild.7",
        "kube-proxy": "v1.35.3-eksbuild.13",
        "coredns": "v1.14.3-eksbuild.3",
        "eks-pod-identity-agent": "v1.3.10-eksbuild.2",
        "aws-efs-csi-driver": "v3.3.0-eksbuild.1",
        "amazon-cloudwatch-observability": "v6.6.0-eksbuild.1",
    },
}

#: AL2023 EKS-optimised AMI release of Karpenter's node class. Pinned, not `latest`: a new AMI
#: arrives as a reviewed change that Karpenter rolls through the pools as drift, within the
#: disruption budgets. (The system node group takes the AMI release EKS offers for the
#: Kubernetes version when it is created or upgraded.)
AL2023_AMI_RELEASE = "v20260930"

# ----- Helm charts ---------------------------------------------------------------------------------
# Upgrading one is a reviewed change of this table (and, for Karpenter and KEDA, of the CRDs the
# tests validate custom resources against).

#: Karpenter chart, controller and CRDs (the v1 CRDs in ../shared are this release's).
KARPENTER_VERSION = "1.14.1"
#: KEDA chart and operator.
KEDA_VERSION = "2.20.2"
#: AWS Load Balancer Controller: chart and controller versions are equal from the 3.x line on.
LBC_VERSION = "3.5.0"
#: metrics-server chart.
METRICS_SERVER_VERSION = "3.13.0"
#: Descheduler: releases follow the Kubernetes minor they are built against (0.35 for 1.35).
DESCHEDULER_VERSION = "0.35.0"
