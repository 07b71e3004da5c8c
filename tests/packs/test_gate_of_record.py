"""The gate of record: one fault for every policy, through the real program and the gRPC gate's
pack processes, in preview and in update mode. The tiers' representative faults act on different
resources, so they share one run of the program per mode (each tier module's
`representative_faults`); the few that would hide another's run in their own modules (a zone
without its private subnet; a private API without runner access). Every variation on them is
judged by the same packs in process, in the tier modules and the unit layer."""

import importlib
import sys

import pytest
from conftest import PACKS, ROOT, assert_gate_refuses_all, assert_preview_refuses_all

#: The whole-program fault modules of the tiers, by path under tests/.
TIERS = (
    "network/test_placement_policies",
    "eks/test_eks_policies",
    "data/test_data_policies",
    "scans/test_storage_policies",
    "scans/test_scan_scaling",
    "services/test_services",
)


def tier_module(path: str):
    """A tier's test module, under the name pytest gives it (its file name, its folder on
    sys.path), so a module pytest has collected is not loaded a second time."""
    folder, name = path.split("/")
    if str(ROOT / "tests" / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / folder))
    return importlib.import_module(name)


def representative_faults() -> dict:
    faults: dict[str, tuple] = {}
    for path in TIERS:
        tier = tier_module(path).representative_faults()
        assert tier, f"{path}: no representative fault"
        faults |= {f"{path}:{name}": fault for name, fault in tier.items()}
    return faults


@pytest.mark.gate
@pytest.mark.parametrize("mode", ["preview", "update"])
def test_every_tier_s_representative_faults_are_refused_by_their_policies_alone(mode, monkeypatch):
    """Exactly the union of the faults' policies is refused, each fault has a diagnostic of its
    own, and nothing else is reported, not even as advisory."""
    result = assert_gate_refuses_all(representative_faults(), mode, monkeypatch, PACKS)
    assert [d for d in result.diagnostics if d.level != "mandatory"] == []


@pytest.mark.gate
def test_preview_command_exits_non_zero_naming_each_policy_of_every_tier(monkeypatch, capsys, tmp_path):
    """`offline.preview --stack prod` with the same faults: exit 1, and each policy named, in its
    section and in the verdict line."""
    assert_preview_refuses_all(representative_faults(), monkeypatch, capsys, tmp_path)
