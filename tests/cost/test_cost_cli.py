"""`python -m cost` as a user runs it: the estimate's tables and assumptions, its JSON, the
comparison of two stacks or of a stack with itself changed, and one-line errors."""

from __future__ import annotations

import json

import pytest

from cost import __main__ as cost_cli
from policies.common import costing


def test_the_estimate_prints_every_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "cost-dev.json"
    assert cost_cli.main(["--stack", "dev", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    found = json.loads(out.read_text())
    total = sum(line["monthly"] for line in found["lines"])
    assert found["monthlyUsd"] == pytest.approx(total, abs=0.01)
    assert sum(found["byZone"].values()) == pytest.approx(total, abs=0.05)
    assert sum(found["byComponent"].values()) == pytest.approx(total, abs=0.05)
    assert text.startswith(
        f"Monthly estimate of dev (eu-west-1, 730 h, prices of {found['pricesDate']}): ${total:,.2f}"
    )
    for title in (
        "By component:",
        "By zone:",
        "Top 10 items:",
        "Commitments for the always-on baseline",
        "Usage assumptions",
    ):
        assert title in text
    top = text.split("Top 10 items:\n")[1].split("\n\n")[0].splitlines()
    assert len(top) == 10
    # Every assumption is printed with its value; the scan week says where it came from.
    for key in costing.USAGE:
        assert f"  {key} " in text
    assert "from the capacity model's week (seed 7)" in text and found["scans"]["source"].startswith(
        "the capacity model"
    )
    assert found["unpriced"] == [] and "Not priced" not in text


def test_a_usage_flag_is_printed_beside_its_default(capsys):
    assert cost_cli.main(["--stack", "dev", "--capacity", "fluid", "--usage", "natGbPerGateway=900"]) == 0
    text = capsys.readouterr().out
    [row] = [line for line in text.splitlines() if line.startswith("  natGbPerGateway")]
    assert "900" in row and "(default 200)" in row
    assert "from the fluid approximation" in text


def test_a_stack_compared_with_itself_differs_by_nothing(tmp_path, capsys):
    out = tmp_path / "same.json"
    assert cost_cli.main(["--stack", "dev", "--capacity", "fluid", "--compare", "dev", "--json", str(out)]) == 0
    assert "no line differs" in capsys.readouterr().out
    assert json.loads(out.read_text())["differenceUsd"] == 0


def test_a_change_is_priced_line_by_line(tmp_path, capsys):
    """dev with its read replica: one instance of its class more, and its storage."""
    out = tmp_path / "replica.json"
    argv = [
        "--stack",
        "dev",
        "--capacity",
        "fluid",
        "--compare",
        "-c",
        "scanner:databaseReadReplica=true",
        "--json",
        str(out),
    ]
    assert cost_cli.main(argv) == 0
    text = capsys.readouterr().out
    found = json.loads(out.read_text())
    assert found["differenceUsd"] == pytest.approx(
        found["after"]["monthlyUsd"] - found["before"]["monthlyUsd"], abs=0.01
    )
    assert "+52.56  database instance [postgres-replica]" in text  # 730 h x $0.072
    assert text.startswith("dev -> dev with scanner:databaseReadReplica=true:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "staging"], "--stack: 'staging' has no Pulumi.staging.yaml"),
        (["-c", "natMode=single"], "-c: 'natMode=single' must be namespace:key=value"),
        (["--usage", "natGB=1"], "--usage natGB: not a usage key"),
        (["--usage", "cdnGb"], "--usage: 'cdnGb' must be key=value"),
        (["--compare"], "--compare: give a stack, or -c overrides"),
        (["--top", "0"], "--top: must be at least 1"),
        (["--capacity", "guess"], "arguments: argument --capacity: invalid choice"),
        (["--stack", "dev", "--capacity", "fluid", "-c", "scanner:natMode=none"], "scanner:natMode"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert cost_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--usage", "natGbPerGateway=inf"], "--usage natGbPerGateway: 'inf' is not a finite number"),
        (["--compare", "nope"], "--compare: 'nope' has no Pulumi.nope.yaml"),
        (["--json", "/proc/version/x.json"], "--json: cannot write /proc/version/x.json"),
    ],
)
def test_more_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert cost_cli.main(["--stack", "dev", "--capacity", "fluid", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_the_table_s_spot_discount_may_be_asked_for_by_its_default(capsys):
    assert cost_cli.main(["--stack", "dev", "--capacity", "fluid", "--usage", "spotDiscount=-1"]) == 0


def test_a_class_without_a_price_makes_a_partial_estimate_that_says_so(capsys, monkeypatch):
    """A family the table does not hold: the total leaves it out, says so, and exits 1."""
    prices = costing.load_prices()
    for column in prices["rdsHour"].values():
        if isinstance(column, dict):
            for name in [n for n in column if n.startswith("db.t4g.")]:
                del column[name]
    monkeypatch.setattr(costing, "load_prices", lambda path=costing.PRICES_PATH: prices)
    assert cost_cli.main(["--stack", "dev", "--capacity", "fluid"]) == 1
    out = capsys.readouterr().out
    assert "Not priced (the total leaves them out: it is partial):" in out
    assert "postgres-primary: no rdsHour price for db.t4g.medium in eu-west-1" in out
