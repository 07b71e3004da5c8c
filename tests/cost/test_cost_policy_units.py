"""Policy unit layer for the budget rule (policies/cost: within-monthly-budget): in process, on
the recorded stacks with one hand-made edit; the whole-program case is test_cost_policies.py."""

import json

import pytest
from conftest import assert_refused, run, set_value, unit_cases, verdict

BUDGET = "scanner:monthlyBudgetUsd"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
DATABASE = "aws:rds/instance:Instance"


def budget(amount):
    def edit(record):
        record.config[BUDGET] = str(amount)

    return edit


def then(*edits):
    def edit(record):
        for one in edits:
            one(record)

    return edit


CASES = {
    "within-monthly-budget": [
        # prod's estimate is about $5,000 a month (python -m cost --stack prod --capacity fluid).
        ("budget-below-the-estimate", budget(1000), "over its budget of $1,000 (scanner:monthlyBudgetUsd)"),
        (
            # Nine more cache nodes (+ about $1,000) take a budget the stack met over it, and
            # the cache is named among the largest.
            "cache-grown-past-the-budget",
            then(budget(5500), lambda r: set_value(r, CACHE, "redis-group", "numCacheClusters", 12)),
            "redis $1,",
        ),
        (
            # The primary (Multi-AZ) and the replica a size up: about $520 more, and the proxy's
            # vCPUs with them.
            "a-larger-database",
            then(budget(5500), lambda r: set_value(r, DATABASE, "postgres-*", "instanceClass", "db.r7g.xlarge")),
            "over its budget of $5,500",
        ),
    ],
}

UNIT_FAULTS = unit_cases(CASES)


@pytest.mark.parametrize("policy, edit, message, mode", UNIT_FAULTS)
def test_fault_is_reported(policy, edit, message, mode):
    """Advisory unless the policy config makes it mandatory (test_cost_policies.py)."""
    record = run("prod", mode)
    edit(record)
    assert_refused(record, policy, message, level="advisory")


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("mode", ["preview", "update"])
def test_clean_stacks_pass(stack, mode):
    assert verdict(run(stack, mode), "within-monthly-budget") == []


def test_the_budget_that_holds_is_met_and_one_dollar_less_is_not():
    """The rule's figure is the fluid estimate's total, to the dollar."""
    from cost import __main__ as cost_cli
    from policies.common import costing

    record = run("prod", "update")
    resources = cost_cli.resources_of("prod", cost_cli._config("prod", {}))
    total = costing.estimate(resources, "us-east-1").total
    budget(int(total) + 1)(record)
    assert verdict(record, "within-monthly-budget") == []
    budget(int(total) - 1)(record)
    [found] = verdict(record, "within-monthly-budget")
    assert f"the stack's monthly estimate is ${total:,.0f}" in found.message


def test_no_budget_no_verdict():
    record = run("prod", "preview")
    record.config.pop(BUDGET, None)
    set_value(record, CACHE, "redis-group", "numCacheClusters", 60)
    assert verdict(record, "within-monthly-budget") == []


def test_usage_from_the_policy_config_moves_the_estimate(tmp_path):
    record = run("prod", "preview")
    budget(5500)(record)
    assert verdict(record, "within-monthly-budget") == []
    heavy = tmp_path / "cost.json"
    heavy.write_text(json.dumps({"within-monthly-budget": {"usage": {"natGbPerGateway": 20000}}}))
    [found] = verdict(record, "within-monthly-budget", heavy)
    assert "NAT gateway data" in found.message or "network $" in found.message


def test_a_class_the_table_cannot_price_is_reported_not_free(monkeypatch):
    """Fail closed: a database of a family the table lacks would read as $0 and pass any budget."""
    record = run("prod", "preview")
    budget(100_000)(record)
    set_value(record, DATABASE, "postgres-*", "instanceClass", "db.z9q.large")
    [found] = verdict(record, "within-monthly-budget")
    assert "the stack's monthly estimate is partial: 2 item(s) have no price" in found.message
    assert "postgres-primary: no rdsHour price for db.z9q.large" in found.message
