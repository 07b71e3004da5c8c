"""The offline preview command as a user runs it."""

import json
import subprocess
import sys
from typing import Any

import pytest
from conftest import ROOT

from offline import preview

RESOURCE_KEYS = {
    "urn",
    "type",
    "name",
    "parent",
    "provider",
    "custom",
    "dependencies",
    "protect",
    "retainOnDelete",
    "inputs",
    "outputs",
}


def test_json_file_has_the_documented_shape(tmp_path, capsys):
    path = tmp_path / "out" / "prod.json"
    assert (
        preview.main(["--stack", "prod", "--mode", "update", "--json", str(path), "--diagram", str(tmp_path / "d.md")])
        == 0
    )
    document = json.loads(path.read_text())
    assert document["stack"] == "prod"
    resources = document["resources"]
    assert resources and all(RESOURCE_KEYS <= set(r) for r in resources)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["type"], []).append(r)
    [vpc] = by_type["aws:ec2/vpc:Vpc"]
    assert vpc["custom"] is True and vpc["inputs"]["cidrBlock"] == "10.40.0.0/16"
    assert vpc["inputs"]["enableDnsHostnames"] is True  # camelCase wire keys
    assert vpc["outputs"]["arn"].startswith("arn:aws:ec2:us-east-1:")
    [network] = by_type["scanner:network:Network"]
    assert network["custom"] is False and vpc["parent"] == network["urn"]
    assert network["outputs"]["availabilityZones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    subnet = by_type["aws:ec2/subnet:Subnet"][0]
    assert vpc["urn"] in subnet["dependencies"]
    assert subnet["provider"] == by_type["pulumi:providers:aws"][0]["urn"]
    assert all(isinstance(r["protect"], bool) and isinstance(r["retainOnDelete"], bool) for r in resources)


def test_summary_counts_by_zone_and_diagram(tmp_path, capsys):
    diagram = tmp_path / "prod.md"
    assert preview.main(["--stack", "prod", "--diagram", str(diagram)]) == 0
    out = capsys.readouterr().out
    for zone in ("us-east-1a", "us-east-1b", "us-east-1c"):
        row = next(line for line in out.splitlines() if line.strip().startswith(zone))
        public, private, isolated, pods, nat, tables = map(int, row.split()[1:7])
        assert (public, private, isolated, nat, tables) == (1, 1, 1, 1, 3), row
    assert "scanner-placement 0.7.1: 22 policies, 0 mandatory violation(s)" in out
    text = diagram.read_text()
    assert text.count('subgraph nnetworkus_east_1') == 3 and "```mermaid" in text
    # The replica is drawn in its pinned zone (the Multi-AZ primary's zones are AWS's choice).
    assert 'subgraph npostgresus_east_1c' in text
    # Each private subnet's default route goes to its own zone's NAT.
    for zone in ("us_east_1a", "us_east_1b", "us_east_1c"):
        assert f"nnetwork_private_{zone} --> nnetwork_nat_{zone}" in text


def test_summary_shows_workloads_and_their_schedules(tmp_path, capsys):
    assert preview.main(["--stack", "prod", "--diagram", str(tmp_path / "d.md")]) == 0
    out = capsys.readouterr().out
    section = out[out.index("Workloads and schedules:") : out.index("Policy gate")].splitlines()
    assert "  Helm keda keda 2.20.2 (namespace keda)" in section
    assert any(line.startswith("  Helm aws-load-balancer-controller ") for line in section)
    assert sorted(line.split(":")[0].strip() for line in section if "ScaledJob" in line) == [
        "ScaledJob scan-dependencies",
        "ScaledJob scan-sast",
        "ScaledJob scan-secrets",
    ]
    api = next(line for line in section if line.startswith("  Deployment api:"))
    for part in (
        "zone spread minDomains 3 DoNotSchedule",
        "PDB maxUnavailable 1",
        "autoscaler 3-24, 6 from '0 7 * * 1-5' to '0 19 * * 1-5' Etc/UTC",
        "internal ALB /api",
    ):
        assert part in api, api
    assert "in-cluster only" in next(line for line in section if line.startswith("  Deployment storage-api:"))
    assert "  NodePool scan-jobs: 0 node(s) for Underutilized, Drifted from '0 7 * * 1-5' for 12h (UTC)" in section


@pytest.mark.gate
@pytest.mark.all_stacks
def test_every_stack_file_passes_the_gate_in_both_modes(capsys):
    assert preview.main(["--all-stacks", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("Result: PASS") == 2 * len(list(ROOT.glob("Pulumi.*.yaml")))


@pytest.mark.all_stacks  # the --stack error lists the stack files
@pytest.mark.parametrize(
    "argv,message",
    [
        (["-c", "scanner:vpcCidr=10.0.0.0/22"], "error: scanner:vpcCidr: 10.0.0.0/22 is too small for the subnet plan"),
        (["-c", "scanner:bogus=1"], "error: scanner:bogus: unknown key"),
        (["--stack", "staging"], "error: --stack: no stack file Pulumi.staging.yaml (stacks: dev, prod)"),
        (["--mode", "apply"], "error: arguments: argument --mode: invalid choice: 'apply'"),
        (["-c", "natMode"], "error: --config: 'natMode' must be namespace:key=value"),
    ],
)
def test_bad_input_is_one_line_exit_2_without_traceback(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "offline.preview", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_committed_diagram_is_current(prod_preview):
    from offline import report

    assert (ROOT / "docs" / "prod-diagram.md").read_text() == report.diagram(prod_preview), (
        "regenerate with: python -m offline.preview --stack prod --diagram docs/prod-diagram.md"
    )
