"""The modelled first deploy: the critical path of prod, what it is made of, and that the model
notices an artificial edge."""

import json

from conftest import run

from offline import deploy_plan


def _record(urn, type_, deps=(), props=None, parent=None, custom=True, inputs=None):
    return {
        "urn": urn,
        "type": type_,
        "name": urn,
        "parent": parent,
        "custom": custom,
        "dependencies": list(deps),
        "propertyDependencies": props or {},
        "inputs": inputs or {},
    }


def test_longest_chain_wins_and_each_edge_says_why():
    resources = [
        _record("vpc", "aws:ec2/vpc:Vpc"),
        _record("subnet", "aws:ec2/subnet:Subnet", ["vpc"], {"vpcId": ["vpc"]}),
        _record(
            "db", "aws:rds/instance:Instance", ["subnet"], {"dbSubnetGroupName": ["subnet"]}, inputs={"multiAz": True}
        ),
        _record("broker", "aws:mq/broker:Broker", ["subnet"], {"subnetIds": ["subnet"]}),
        _record("late", "aws:iam/role:Role", ["db"]),  # waits without reading anything
        _record("component", "scanner:data:Thing", custom=False),
        _record("child", "aws:kms/key:Key", parent="component"),
        _record("user", "aws:iam/policy:Policy", ["component"]),  # waits for the component's children
    ]
    plan = deploy_plan.critical_path(resources, "test")
    assert [s.urn for s in plan.steps] == ["vpc", "subnet", "db", "late"]
    assert [s.why for s in plan.steps] == ["start", "data: vpcId", "data: dbSubnetGroupName", "order (depends_on)"]
    assert round(plan.minutes, 2) == round(0.33 + 0.05 + 15 + 0.05, 2)
    assert not plan.data_only
    _, waits, _ = deploy_plan._nodes(resources)
    assert waits["user"] == {"child"}


def test_prod_first_deploy_fits_32_minutes_on_data_dependencies_only(capsys, tmp_path):
    out_json = tmp_path / "plan.json"
    assert deploy_plan.main(["--stack", "prod", "--max-minutes", "32", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    plan = json.loads(out_json.read_text())
    assert plan["minutes"] <= 32 and plan["dataOnly"] is True
    names = [step["urn"].rsplit("::", 1)[-1] for step in plan["steps"]]
    # Only primary -> replica is long: everything else on the path takes seconds.
    assert "postgres-primary" in names and "postgres-replica" in names
    assert names.index("postgres-replica") == names.index("postgres-primary") + 1
    assert sum(1 for step in plan["steps"] if step["minutes"] >= 1) == 2
    assert "critical path" in out.splitlines()[0] and "(data dependencies only)" in out
    # The other tiers finish inside the path, the cluster's with a margin of a few minutes.
    ready = plan["ready"]
    assert max(ready.values()) == plan["minutes"] and plan["minutes"] - ready["Postgres postgres"] < 0.2
    assert ready["RabbitMq rabbitmq"] < ready["Redis redis"] < plan["minutes"] - 5
    assert 20 < ready["Services services"] < plan["minutes"]


def test_an_inline_rule_to_the_cluster_puts_the_cluster_back_on_the_path():
    """The old shape, recreated on the record: the database's security group names the cluster's
    group inline, so the database waits for the whole EKS cluster."""
    record = run("prod", "update", **{"scanner:servicesRollout": "first-deploy"})
    by_name = {r["name"]: r for r in record.resources}
    eks = by_name["cluster-eks"]["urn"]
    db_sg = by_name["postgres-db"]
    db_sg["dependencies"] = [*db_sg["dependencies"], eks]
    db_sg["propertyDependencies"] = {**db_sg["propertyDependencies"], "ingress": [eks]}
    plan = deploy_plan.critical_path(record.resources, "prod")
    names = [s.name for s in plan.steps]
    assert plan.minutes > 40
    assert names.index("cluster-eks") < names.index("postgres-primary") < names.index("postgres-replica")


def test_a_stack_over_budget_exits_1(capsys):
    assert deploy_plan.main(["--stack", "prod", "--max-minutes", "20"]) == 1
    assert "Over budget:" in capsys.readouterr().out


def test_bad_arguments_exit_2_in_one_line(capsys):
    assert deploy_plan.main(["--stack", "prod", "--max-minutes", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --max-minutes: must be a positive number of minutes"
    assert deploy_plan.main(["--stack", "nope"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --stack: no stack file Pulumi.nope.yaml")
