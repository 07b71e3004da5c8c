"""The gate's verdicts as SARIF 2.1.0 and JUnit XML (offline/reports.py, `python -m offline.preview
--sarif PATH --junit PATH`), and in the --json record: validated against the SARIF schema the
project ships, and counted against what the gate said."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from offline import preview, reports


@pytest.fixture
def broken(tmp_path, capsys):
    """prod over a budget made mandatory: one mandatory violation, located by its stack key."""
    config = tmp_path / "policy-config"
    config.mkdir()
    (config / "cost.json").write_text(json.dumps({"within-monthly-budget": "mandatory"}))
    paths = {k: tmp_path / f"gate.{k}" for k in ("sarif", "xml", "json")}
    argv = [
        "--stack",
        "prod",
        "-c",
        "scanner:monthlyBudgetUsd=1000",
        "--policy-config-dir",
        str(config),
        "--sarif",
        str(paths["sarif"]),
        "--junit",
        str(paths["xml"]),
        "--json",
        str(paths["json"]),
        "--diagram",
        str(tmp_path / "d.md"),
    ]
    status = preview.main(argv)
    capsys.readouterr()
    return status, paths


def test_the_sarif_report_is_valid_and_locates_each_violation(broken):
    status, paths = broken
    assert status == 1
    document = json.loads(paths["sarif"].read_text())
    jsonschema.validate(document, json.loads(reports.SCHEMA_PATH.read_text()))
    (run,) = document["runs"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert len(rules) >= 50 and all(r["shortDescription"]["text"] for r in rules.values())
    # The rule's default is the pack's (advisory); the policy config made this run's mandatory.
    assert rules["scanner-cost/within-monthly-budget"]["defaultConfiguration"]["level"] == "warning"
    assert rules["scanner-cost/scan-jobs-on-spot-pool"]["defaultConfiguration"]["level"] == "error"
    # Code review shows each rule's help: who enforces it and where its level is changed.
    budget = rules["scanner-cost/within-monthly-budget"]
    assert "scanner-cost" in budget["help"]["text"] and "advisory" in budget["help"]["text"]
    assert "policies/config/<environment>/cost.json" in budget["help"]["markdown"]
    assert budget["properties"]["tags"] == ["infrastructure", "pulumi-policy", "cost"]
    assert {r["properties"]["tags"][-1] for r in rules.values()} == {"placement", "security", "data-safety", "cost"}
    (result,) = run["results"]
    assert result["ruleId"] in rules and result["level"] == "error"
    [location] = result["locations"]
    physical = location["physicalLocation"]
    # At the line of the key that controls it, in the stack file.
    lines = (reports.ROOT / "Pulumi.prod.yaml").read_text().splitlines()
    assert physical["artifactLocation"]["uri"] == "Pulumi.prod.yaml"
    assert lines[physical["region"]["startLine"] - 1].strip().startswith("scanner:monthlyBudgetUsd:")


def test_the_junit_report_counts_what_the_gate_said(broken):
    status, paths = broken
    record = json.loads(paths["json"].read_text())
    gate = record["gate"]
    assert gate["passed"] is False and [d["policy"] for d in gate["diagnostics"] if d["level"] == "mandatory"] == [
        "within-monthly-budget"
    ]
    suites = ET.fromstring(paths["xml"].read_text())
    (suite,) = suites.findall("testsuite")
    policies = sum(len(p["policies"]) for p in gate["packs"])
    assert suite.get("name") == "prod/preview" and int(suite.get("tests", "")) == policies
    refused = {d["policy"] for d in gate["diagnostics"] if d["level"] == "mandatory"}
    assert int(suite.get("failures", "")) == len(refused) == int(suites.get("failures", ""))
    [failed] = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed.get("name") == "within-monthly-budget" and failed.get("classname") == "prod.preview.scanner-cost"


def test_a_clean_stack_reports_no_result_and_no_failure(tmp_path, capsys):
    sarif, junit = tmp_path / "g.sarif", tmp_path / "g.xml"
    argv = ["--stack", "dev", "--sarif", str(sarif), "--junit", str(junit), "--diagram", str(tmp_path / "d.md")]
    assert preview.main(argv) == 0
    capsys.readouterr()
    assert json.loads(sarif.read_text())["runs"][0]["results"] == []
    assert ET.fromstring(junit.read_text()).get("failures") == "0"


def test_reports_without_a_gate_are_refused_in_one_line(tmp_path, capsys):
    assert preview.main(["--stack", "dev", "--no-gate", "--sarif", str(tmp_path / "g.sarif")]) == 2
    err = capsys.readouterr().err
    assert err == "error: arguments: --sarif and --junit report the gate; drop --no-gate\n"
    assert not (tmp_path / "g.sarif").exists()


def test_a_violation_in_both_modes_is_one_result_with_a_stable_fingerprint(tmp_path, capsys):
    config = tmp_path / "policy-config"
    config.mkdir()
    (config / "cost.json").write_text(json.dumps({"within-monthly-budget": "mandatory"}))
    sarif = tmp_path / "g.sarif"
    argv = ["--stack", "prod", "--mode", "both", "-c", "scanner:monthlyBudgetUsd=1000"]
    argv += ["--policy-config-dir", str(config), "--sarif", str(sarif), "--diagram", str(tmp_path / "d.md")]
    assert preview.main(argv) == 1
    capsys.readouterr()
    (result,) = json.loads(sarif.read_text())["runs"][0]["results"]
    assert result["properties"]["modes"] == ["preview", "update"]
    assert len(result["partialFingerprints"]["primaryLocationLineHash"]) == 34


def test_a_run_that_did_not_reach_a_verdict_writes_no_report(tmp_path, capsys):
    config = tmp_path / "policy-config"
    config.mkdir()
    (config / "cost.json").write_text(json.dumps({"no-such-policy": "mandatory"}))
    sarif = tmp_path / "g.sarif"
    argv = [
        "--stack",
        "dev",
        "--policy-config-dir",
        str(config),
        "--sarif",
        str(sarif),
        "--diagram",
        str(tmp_path / "d.md"),
    ]
    assert preview.main(argv) == 2
    assert "not written, a run did not reach the gate's verdict" in capsys.readouterr().err
    assert not sarif.exists()
