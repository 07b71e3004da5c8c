"""Policy pack: nothing the scanning service stores is lost to a destroy, a deletion or a bad day.

Run with the Pulumi CLI: `pulumi preview --policy-pack policies/data-safety`.
"""

import os
import sys

# The engine starts the pack with the pack directory as the program path: make its modules and
# the helpers shared by every pack (policies/common) importable.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.join(os.path.dirname(_HERE), "common")]

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

import data_safety  # noqa: E402

PolicyPack(
    name="scanner-data-safety",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*data_safety.POLICIES],
)
