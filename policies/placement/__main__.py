"""Policy pack: every tier of the scanning service placed in every availability zone.

Run with the Pulumi CLI: `pulumi preview --policy-pack policies/placement`.
"""

import os
import sys

# The engine starts the pack with the pack directory as the program path: make its modules and
# the helpers shared by every pack (policies/common) importable.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.join(os.path.dirname(_HERE), "common")]

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

import data_policies  # noqa: E402
import drill_policies  # noqa: E402
import eks_policies  # noqa: E402
import monitoring_policies  # noqa: E402
import network_policies  # noqa: E402
import workload_policies  # noqa: E402

PolicyPack(
    name="scanner-placement",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *network_policies.POLICIES,
        *eks_policies.POLICIES,
        *data_policies.POLICIES,
        *workload_policies.POLICIES,
        *monitoring_policies.POLICIES,
        *drill_policies.POLICIES,
    ],
)
