"""Policy pack: security baseline of the scanning service (cluster API exposure, encryption,
instance metadata, data-tier exposure and TLS).

Run with the Pulumi CLI: `pulumi preview --policy-pack policies/security`.
"""

import os
import sys

# The engine starts the pack with the pack directory as the program path: make its modules and
# the helpers shared by every pack (policies/common) importable.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.join(os.path.dirname(_HERE), "common")]

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

import data_security  # noqa: E402
import eks_security  # noqa: E402
import identity_security  # noqa: E402
import storage_security  # noqa: E402
import workload_security  # noqa: E402

PolicyPack(
    name="scanner-security",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *eks_security.POLICIES,
        *data_security.POLICIES,
        *storage_security.POLICIES,
        *workload_security.POLICIES,
        *identity_security.POLICIES,
    ],
)
