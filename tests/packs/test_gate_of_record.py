"""The gate of record: one fault for every policy, through the real program and the gRPC gate's
pack processes, in preview and in update mode. The tiers' representative faults act on different
resources, so they share one run of the program per mode (each tier module's
`representative_faults`); the few that would hide another's, or be hidden by one, share a second
run (`apart_faults`: a zone without its private subnet; a private API without runner access). The further variations on the
tables (`variation_groups`) share runs the same way and are judged by the same packs in process;
the unit layer varies each policy further on recorded stacks."""

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
    "monitoring/test_monitoring_policies",
    "drill/test_drill_policies",
)


def tier_module(path: str):
    """A tier's test module, under the name pytest gives it (its file name, its folder on
    sys.path), so a module pytest has collected is not loaded a second time."""
    folder, name = path.split("/")
    if str(ROOT / "tests" / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / folder))
    return importlib.import_module(name)


def faults_of(kind: str) -> dict:
    """Every tier's faults of one kind (`representative_faults` or `apart_faults`), by tier."""
    faults: dict[str, tuple] = {}
    for path in TIERS:
        found: dict = getattr(tier_module(path), kind, dict)()
        faults |= {f"{path}:{name}": fault for name, fault in found.items()}
    return faults


KINDS = ("representative_faults", "apart_faults")


def test_every_tier_hands_representatives_to_the_gate():
    for path in TIERS:
        assert tier_module(path).representative_faults(), f"{path}: no representative fault"


@pytest.mark.gate
@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_tier_s_faults_are_refused_by_their_policies_alone(kind, mode, monkeypatch):
    """Exactly the union of the faults' policies is refused, each fault has a diagnostic of its
    own, and nothing else is reported, not even as advisory."""
    result = assert_gate_refuses_all(faults_of(kind), mode, monkeypatch, PACKS)
    assert [d for d in result.diagnostics if d.level != "mandatory"] == []


@pytest.mark.parametrize(
    "tier, mode", [(tier, ("preview", "update")[i % 2]) for i, tier in enumerate(TIERS)], ids=lambda v: str(v)
)
def test_each_tier_s_representatives_alone_refuse_exactly_their_policies(tier, mode, monkeypatch):
    """The shared run cannot tell a fault that also trips another tier's policy (the union is
    the same); a tier's faults alone, judged by every pack in process, can. One mode per tier,
    the modes alternating over the tiers: the shared runs already judge every fault in both."""
    assert_gate_refuses_all(tier_module(tier).representative_faults(), mode, monkeypatch, PACKS, representative=False)


@pytest.mark.gate
@pytest.mark.parametrize("kind", KINDS)
def test_preview_command_exits_non_zero_naming_each_policy_of_every_tier(kind, monkeypatch, capsys, tmp_path):
    """`offline.preview --stack prod` with the same faults: exit 1, and each policy named, in its
    section and in the verdict line."""
    assert_preview_refuses_all(faults_of(kind), monkeypatch, capsys, tmp_path)


def variation_runs() -> list[dict]:
    """Run i holds every tier's i-th variation group."""
    runs: list[dict] = []
    for path in TIERS:
        groups: list[dict] = getattr(tier_module(path), "variation_groups", list)()
        runs += [{} for _ in range(len(groups) - len(runs))]
        for i, group in enumerate(groups):
            assert group, f"{path}: an empty variation group"
            runs[i] |= {f"{path}:{name}": fault for name, fault in group.items()}
    return runs


#: How many runs the variations take (the most groups any tier has).
VARIATION_RUNS = 3


def test_the_variations_take_the_runs_declared():
    assert len(variation_runs()) == VARIATION_RUNS


@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("index", range(VARIATION_RUNS))
def test_every_tier_s_variations_are_refused_by_their_policies_alone(index, mode, monkeypatch):
    result = assert_gate_refuses_all(variation_runs()[index], mode, monkeypatch, PACKS, representative=False)
    assert [d for d in result.diagnostics if d.level != "mandatory"] == []
