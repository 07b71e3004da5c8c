"""The workflows a team adopts (.github/workflows/): actionlint finds nothing in them, every
action is pinned to a commit, and they run what the project's own commands are."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is not installed (requirements-dev.txt pins it)")
        pytest.skip("actionlint is not installed (make install)")
    return found


def test_actionlint_finds_nothing():
    done = subprocess.run([actionlint(), "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_refuses_a_broken_workflow():
    """The check can fail: a job with an unknown key and a bad expression."""
    broken = "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    step: []\n    if: ${{ github.nope( }}\n"
    done = subprocess.run([actionlint(), "-no-color", "-"], input=broken, capture_output=True, text=True)
    assert done.returncode == 1 and "step" in done.stdout, done.stdout


def test_the_workflows_are_there():
    assert {w.name for w in WORKFLOWS} == {"pull-request.yml", "deploy.yml", "zone-drill.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(workflow):
    uses = re.findall(r"uses:\s*([^\s#]+)", workflow.read_text())
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{workflow.name}: {ref} is not pinned to a commit"


def test_prod_deploys_after_dev_behind_its_environment_inside_the_vpc():
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    dev, prod = deploy["jobs"]["up-dev"], deploy["jobs"]["up-prod"]
    assert prod["needs"] == "up-dev" and "needs" not in dev
    assert (dev["environment"], prod["environment"]) == ("development", "production")
    for job, stack in ((dev, "dev"), (prod, "prod")):
        assert job["runs-on"].startswith(f"codebuild-scanner-{stack}-deploy-") and job["env"]["STACK"] == stack
        assert job["permissions"]["id-token"] == "write"
        # The same group as the drill of the stack: never both at once.
        assert job["concurrency"]["group"] == f"stack-{stack}"
    drill = yaml.safe_load((ROOT / ".github" / "workflows" / "zone-drill.yml").read_text())
    assert drill["concurrency"]["group"] == "stack-${{ inputs.stack }}"


def test_the_pull_request_gate_reports_sarif_and_junit_for_every_stack():
    pr = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())
    gate = pr["jobs"]["gate"]
    assert set(gate["strategy"]["matrix"]["stack"]) == {p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")}
    run = next(s["run"] for s in gate["steps"] if "offline.preview" in str(s.get("run", "")))
    assert "--sarif" in run and "--junit" in run and "--mode both" in run
    assert gate["permissions"]["security-events"] == "write"
    assert "make test" in str(pr["jobs"]["test"]["steps"])
