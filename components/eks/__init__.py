"""The cluster tier: the EKS control plane and system nodes, Karpenter, and the pure NodePool plan.

Kept empty: importing a pure planner must not import Pulumi."""
