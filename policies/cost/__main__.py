"""Policy pack: scan capacity stays on spot and within the limits it was sized for.

Run with the Pulumi CLI: `pulumi preview --policy-pack policies/cost`.
"""

import os
import sys

# The engine starts the pack with the pack directory as the program path: make its modules and
# the helpers shared by every pack (policies/common) importable.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.join(os.path.dirname(_HERE), "common")]

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

import cost_policies  # noqa: E402

PolicyPack(
    name="scanner-cost",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*cost_policies.POLICIES],
)
