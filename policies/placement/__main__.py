"""Policy pack: every tier of the scanning service placed in every availability zone.

Run with the Pulumi CLI: `pulumi preview --policy-pack policies/placement`.
"""

import os
import sys

# The engine starts the pack with the pack directory as the program path; make its modules importable.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

import network_policies  # noqa: E402

PolicyPack(
    name="scanner-placement",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*network_policies.POLICIES],
)
