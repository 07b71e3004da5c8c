"""One source of truth for what an environment demands: the config and the packs read the same
table, overrides are chosen by environment first, and a copied stack is judged by its
environment, never by its name."""

import json

import pytest
from conftest import DATA_SAFETY, DEV, PLACEMENT, ROOT, SECURITY, gate, mandatory, run

from offline import preview
from offline.gate import PolicyConfigError
from offline.policy_config import layers


def test_a_copy_of_dev_passes_as_dev_does(stack_file, capsys, tmp_path):
    name = stack_file("sandbox", DEV)
    status = preview.main(["--stack", name, "--mode", "both", "--quiet", "--diagram", str(tmp_path / "d.md")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.count("Result: PASS") == 2
    assert "environment development:" in out


def test_the_same_copy_as_production_fails_naming_every_rule_and_key_at_once(stack_file, capsys, tmp_path):
    name = stack_file("sandbox", DEV.replace("scanner:environment: development", "scanner:environment: production"))
    status = preview.main(["--stack", name, "--diagram", str(tmp_path / "d.md")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert [line.split(": ")[1] for line in err] == [
        "scanner:natMode",
        "scanner:protectStatefulResources",
        "scanner:databaseBackupRetentionDays",
        "scanner:backupCopyRegion",
        "scanner:dashboardDomain",
    ], err
    assert all("a production stack" in line for line in err)


def test_packs_judge_declared_resources_by_the_stack_environment():
    """dev's own resources, analysed as if its stack said `production`: every relaxed rule of
    development is a violation, each message naming the key to change."""
    record = run("dev", "update")
    assert gate(record, packs=(PLACEMENT, DATA_SAFETY, SECURITY)).passed
    as_production = dict(record.config, **{"scanner:environment": "production"})
    record.config = as_production
    result = gate(record, packs=(PLACEMENT, DATA_SAFETY, SECURITY))
    assert mandatory(result) == [
        "backup-copy-other-region",
        "backup-retention",
        "cloudfront-https-only",
        "network-nat-per-az",
        "rds-deletion-protection",
        "stateful-resources-protected",
    ]
    messages = {d.policy: d.message for d in result.diagnostics}
    for policy, key in [
        ("network-nat-per-az", "scanner:natMode"),
        ("stateful-resources-protected", "scanner:protectStatefulResources"),
        ("backup-retention", "scanner:databaseBackupRetentionDays"),
        ("backup-copy-other-region", "scanner:backupCopyRegion"),
        ("cloudfront-https-only", "scanner:dashboardDomain"),
    ]:
        assert key in messages[policy], (policy, messages[policy])
    assert "keeps them at least 7 (" in messages["backup-retention"]  # an integer, not 7.0


def test_an_unknown_environment_gets_the_strictest_rules():
    from policies.common import environments

    assert environments.rules_for("qa")[0] == "production"
    assert environments.rules_for(None) == ("production", environments.RULES["production"])


def test_overrides_come_from_the_environment_then_the_stack(tmp_path):
    (tmp_path / "development").mkdir()
    (tmp_path / "development" / "placement.json").write_text(json.dumps({"network-nat-per-az": "advisory"}))
    (tmp_path / "stacks" / "dev").mkdir(parents=True)
    (tmp_path / "stacks" / "dev" / "placement.json").write_text(
        json.dumps({"network-subnet-tiers-every-az": "disabled"})
    )
    found = layers("dev", "development", tmp_path)
    assert found == {
        "placement": [tmp_path / "development" / "placement.json", tmp_path / "stacks" / "dev" / "placement.json"]
    }
    # Another stack of the environment gets the environment's file only.
    assert layers("sandbox", "development", tmp_path) == {"placement": [tmp_path / "development" / "placement.json"]}
    assert layers("prod", "production", tmp_path) == {}


def test_an_override_file_that_names_no_pack_is_bad_input(tmp_path):
    (tmp_path / "production").mkdir()
    (tmp_path / "production" / "placment.json").write_text("{}")
    with pytest.raises(
        PolicyConfigError,
        match=r"placment.json: names no policy pack \(packs: cost, data-safety, "
        r"placement, security\)",
    ):
        layers("prod", "production", tmp_path)


def test_stack_override_applies_on_top_of_the_environment(tmp_path, monkeypatch, capsys):
    from components.network import plan as network_plan
    from offline import policy_config

    (tmp_path / "production").mkdir()
    (tmp_path / "production" / "placement.json").write_text(json.dumps({"all": "advisory"}))
    (tmp_path / "stacks" / "prod").mkdir(parents=True)
    (tmp_path / "stacks" / "prod" / "placement.json").write_text(
        json.dumps({"network-subnet-tiers-every-az": "mandatory"})
    )
    monkeypatch.setattr(
        policy_config, "stack_layers", lambda stack, config: layers(stack, config.get("scanner:environment"), tmp_path)
    )
    # No private subnet in one zone: the network rule and every tier that uses the subnet object.
    original = network_plan.plan_subnets
    monkeypatch.setattr(
        network_plan,
        "plan_subnets",
        lambda *a, **k: [s for s in original(*a, **k) if not (s.tier == "private" and s.zone.endswith("b"))],
    )
    status = preview.main(["--stack", "prod", "--policy-pack", str(PLACEMENT), "--diagram", str(tmp_path / "d.md")])
    out = capsys.readouterr().out
    assert status == 1
    mandatory_lines = [line for line in out.splitlines() if line.startswith("  [mandatory] ")]
    assert [line.split(":")[0] for line in mandatory_lines] == ["  [mandatory] network-subnet-tiers-every-az"]
    assert "  [advisory] eks-node-group-every-az: " in out


def test_write_merges_the_layers_into_one_file_per_pack(tmp_path, monkeypatch, capsys):
    from offline import policy_config

    (tmp_path / "cfg" / "development").mkdir(parents=True)
    (tmp_path / "cfg" / "development" / "placement.json").write_text(json.dumps({"network-nat-per-az": "advisory"}))
    monkeypatch.setattr(
        policy_config,
        "stack_layers",
        lambda stack, config: layers(stack, config.get("scanner:environment"), tmp_path / "cfg"),
    )
    assert policy_config.main(["--stack", "dev", "--write", str(tmp_path / "out")]) == 0
    flags = capsys.readouterr().out.split()
    assert flags.count("--policy-pack") == flags.count("--policy-pack-config") == 4
    assert json.loads((tmp_path / "out" / "placement.json").read_text()) == {"network-nat-per-az": "advisory"}
    assert json.loads((tmp_path / "out" / "cost.json").read_text()) == {}


def test_the_project_ships_no_stack_named_override():
    assert not (ROOT / "policies" / "config" / "stacks").exists()
