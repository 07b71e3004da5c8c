"""Every policy is tested in both layers that judge it: in process on a hand-made edit (the
tests/<tier>/test_<tier>_policy_units.py modules, their CASES) and through the real program and
the gRPC gate's pack processes (the fault tables of the whole-program modules, each run in preview
and update mode; their tests are marked `gate` or use the whole-program helpers of conftest).
A new policy without a case in either fails here, naming it."""

import importlib.util
from pathlib import Path

import pytest
from conftest import ROOT, all_policies

TESTS = ROOT / "tests"
#: The whole-program fault tables: each entry names the policies it must trip.
PROGRAM_TABLES = ("FAULTS", "SECURITY_FAULTS", "ADVISORY_FAULTS")
PROGRAM_MODULES = [
    "cost/test_cost_policies.py",
    "data/test_data_policies.py",
    "drill/test_drill_policies.py",
    "eks/test_eks_policies.py",
    "monitoring/test_monitoring_policies.py",
    "network/test_placement_policies.py",
    "offline/test_first_deploy.py",
    "scans/test_scan_scaling.py",
    "scans/test_storage_policies.py",
    "services/test_services.py",
]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"layer_{path.parent.name}_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _policy_names(value, known: set[str]) -> set[str]:
    """Policy names anywhere in a table entry (a set, a tuple, a string)."""
    if isinstance(value, str):
        return {value} & known
    if isinstance(value, dict):
        return set().union(*(_policy_names(v, known) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple, set, frozenset)):
        return set().union(*(_policy_names(v, known) for v in value)) if value else set()
    return set()


def test_every_policy_has_a_unit_case():
    known = all_policies()
    covered: dict[str, list[str]] = {}
    for path in sorted(TESTS.glob("*/test_*_policy_units.py")):
        for policy, cases in _load(path).CASES.items():
            assert policy in known, f"{path.name}: no pack defines {policy!r}"
            assert cases, f"{path.name}: {policy} has no case"
            covered.setdefault(policy, []).append(path.name)
    assert sorted(known - set(covered)) == [], "policies without a unit case"
    assert {p: f for p, f in covered.items() if len(f) > 1} == {}, "a policy's cases belong in one module"


def test_every_policy_has_a_fault_through_the_program():
    known = all_policies()
    covered: set[str] = set()
    for name in PROGRAM_MODULES:
        module = _load(TESTS / name)
        tables = [getattr(module, t) for t in PROGRAM_TABLES if hasattr(module, t)]
        assert tables, f"{name} has no fault table"
        for table in tables:
            covered |= _policy_names(list(table.values()), known)
    assert sorted(known - covered) == [], "policies without a fault through the real program and gate"


@pytest.mark.parametrize("module", PROGRAM_MODULES)
def test_program_fault_modules_run_both_modes(module):
    """Each module runs its faults in both modes itself, or hands its representatives to the gate
    of record (tests/packs/test_gate_of_record.py), which does."""
    text = (TESTS / module).read_text()
    if "def representative_faults(" in text:
        text = (TESTS / "packs" / "test_gate_of_record.py").read_text()
        assert module.removesuffix(".py") in text, f"{module} hands representatives to a gate that does not list it"
    assert '"preview"' in text and '"update"' in text, f"{module} must run its faults in both modes"
