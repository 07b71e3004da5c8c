"""The budget rule through the real program and the gate's pack processes: a stack whose
estimate exceeds its budget (`scanner:monthlyBudgetUsd`, the key AWS Budgets alerts on too) is
reported, advisory by default; where the policy config makes it mandatory, `make preview`
refuses it, naming the largest contributors."""

import json

import pytest
from conftest import COST, assert_advisory_fault

ADVISORY_FAULTS = {
    "over-budget": (
        {"scanner:monthlyBudgetUsd": "1000"},
        {"within-monthly-budget"},
        "over its budget of $1,000 (scanner:monthlyBudgetUsd); the largest components: karpenter $",
    ),
}


@pytest.mark.gate
@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("fault", sorted(ADVISORY_FAULTS))
def test_over_budget_is_reported_and_passes(fault, mode):
    assert_advisory_fault(ADVISORY_FAULTS[fault], mode, (COST,))


@pytest.mark.gate
def test_a_mandatory_budget_refuses_the_preview(tmp_path, capsys):
    """The command a user runs in CI, with the rule made mandatory for the stack."""
    from offline import preview

    config = tmp_path / "policy-config"
    config.mkdir()
    (config / "cost.json").write_text(json.dumps({"within-monthly-budget": "mandatory"}))
    argv = ["--stack", "prod", "-c", "scanner:monthlyBudgetUsd=2000", "--policy-config-dir", str(config)]
    status = preview.main([*argv, "--diagram", str(tmp_path / "d.md")])
    out = capsys.readouterr().out
    assert status == 1, out
    [line] = [x for x in out.splitlines() if x.strip().startswith("[mandatory] within-monthly-budget:")]
    assert "over its budget of $2,000" in line and "the largest items: scan nodes on spot" in line
    assert out.splitlines()[-1].startswith("Result: FAIL")
    # The same stack within its budget passes, and says nothing.
    status = preview.main(["--stack", "prod", "--policy-config-dir", str(config), "--diagram", str(tmp_path / "d.md")])
    assert status == 0 and "within-monthly-budget" not in capsys.readouterr().out
