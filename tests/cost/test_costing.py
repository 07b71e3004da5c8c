"""The cost estimate (policies/common/costing.py) on hand-made resources, where every figure is
worked out here by hand, and on the program's own stacks: every type priced or free, one more
zone costing exactly one zone's network, the commitment advice, the fluid approximation of the
scan pool's week next to the capacity model's."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import run

from cost import __main__ as cost_cli
from policies.common import costing

PRICES = costing.load_prices()


def resource(type_: str, name: str, inputs=None, parent=None, **deps) -> costing.Resource:
    return costing.Resource(
        type_, name, f"urn:{name}", parent, inputs or {}, {k: [f"urn:{v}" for v in vs] for k, vs in deps.items()}
    )


def small_stack() -> list[costing.Resource]:
    """One NAT gateway with its address in zone a, an interface endpoint in a and b, a cluster
    with two m7i.large system nodes over a and b (50 GB volumes), all in a `network` and a
    `cluster` component."""
    return [
        resource("scanner:network:Network", "network"),
        resource("scanner:eks:Cluster", "cluster"),
        resource("aws:ec2/subnet:Subnet", "public-a", {"availabilityZone": "us-east-1a"}, "urn:network"),
        resource("aws:ec2/subnet:Subnet", "private-a", {"availabilityZone": "us-east-1a"}, "urn:network"),
        resource("aws:ec2/subnet:Subnet", "private-b", {"availabilityZone": "us-east-1b"}, "urn:network"),
        resource("aws:ec2/eip:Eip", "nat-ip-a", {"domain": "vpc"}, "urn:network"),
        resource(
            "aws:ec2/natGateway:NatGateway",
            "nat-a",
            {},
            "urn:network",
            subnetId=["public-a"],
            allocationId=["nat-ip-a"],
        ),
        resource(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "sts",
            {"vpcEndpointType": "Interface", "subnetIds": [None, None]},
            "urn:network",
            subnetIds=["private-a", "private-b"],
        ),
        resource("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}, "urn:network"),
        resource("aws:eks/cluster:Cluster", "eks", {}, "urn:cluster"),
        resource(
            "aws:ec2/launchTemplate:LaunchTemplate",
            "system-node",
            {"blockDeviceMappings": [{"ebs": {"volumeSize": 50.0, "volumeType": "gp3"}}]},
            "urn:cluster",
        ),
        resource(
            "aws:eks/nodeGroup:NodeGroup",
            "system",
            {"instanceTypes": ["m7i.large", "m6i.large"], "scalingConfig": {"desiredSize": 2.0}},
            "urn:cluster",
            subnetIds=["private-a", "private-b"],
            launchTemplate=["system-node"],
        ),
    ]


def test_a_small_stack_costs_what_the_hand_computation_says():
    found = costing.estimate(small_stack(), "us-east-1")
    # By hand, us-east-1, 730 h: NAT 730 x 0.045 + 200 GB x 0.045; its address 730 x 0.005; the
    # endpoint 2 zones x 730 x 0.01 + 20 GB x 0.01; the control plane 730 x 0.10; two nodes
    # 2 x 730 x 0.1008 and their volumes 2 x 50 GB x 0.08. The gateway endpoint is free.
    nat, address, endpoint = 730 * 0.045 + 200 * 0.045, 730 * 0.005, 2 * 730 * 0.01 + 20 * 0.01
    control, nodes, volumes = 730 * 0.10, 2 * 730 * 0.1008, 2 * 50 * 0.08
    assert found.total == pytest.approx(nat + address + endpoint + control + nodes + volumes)
    assert found.total == pytest.approx(288.468)
    assert found.by("component") == pytest.approx(
        {"cluster": control + nodes + volumes, "network": nat + address + endpoint}
    )
    assert found.by("zone") == pytest.approx(
        {
            "us-east-1a": nat + address + 7.30 + nodes / 2 + volumes / 2,
            "us-east-1b": 7.30 + nodes / 2 + volumes / 2,
            "regional": 0.20 + control,
        }
    )
    assert found.unpriced == []
    # The same stack in Ireland: every rate from that region's column.
    ireland = costing.estimate(small_stack(), "eu-west-1")
    assert ireland.total == pytest.approx(
        730 * 0.048 + 200 * 0.048 + 730 * 0.005 + 2 * 730 * 0.011 + 0.20 + 73 + 2 * 730 * 0.1124 + 100 * 0.088
    )


def test_usage_changes_what_rests_on_it_and_nothing_else():
    base = costing.estimate(small_stack(), "us-east-1")
    busier = costing.estimate(small_stack(), "us-east-1", usage={"natGbPerGateway": 1200})
    assert busier.total - base.total == pytest.approx(1000 * 0.045)
    [line] = [line for line in busier.lines if line.item == "NAT gateway data"]
    assert line.usage == "natGbPerGateway" and line.quantity == 1200


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"natGB": 1}, "usage natGB: not a usage key"),
        ({"natGbPerGateway": "lots"}, "usage natGbPerGateway: 'lots' is not a number"),
        ({"repoCacheIaShare": 1.5}, "usage repoCacheIaShare: 1.5 must be at least 0 and at most 1"),
        ({"cdnGb": -1}, "usage cdnGb: -1 must be at least 0"),
    ],
)
def test_bad_usage_names_the_key(usage, message):
    with pytest.raises(costing.PriceError, match=message.replace("(", r"\(")):
        costing.estimate(small_stack(), "us-east-1", usage=usage)


def test_a_region_without_prices_is_refused_naming_the_key():
    with pytest.raises(costing.PriceError, match="aws:region: ap-south-2 has no prices in the table"):
        costing.estimate(small_stack(), "ap-south-2")


def test_an_unpriced_class_or_type_is_named():
    stack = small_stack() + [
        resource("aws:rds/instance:Instance", "db", {"instanceClass": "db.x2g.16xlarge", "allocatedStorage": 10}),
        resource("aws:neptune/cluster:Cluster", "graph"),
    ]
    found = costing.estimate(stack, "us-east-1")
    assert found.unpriced == [
        "db: no rdsHour price for db.x2g.16xlarge in us-east-1",
        "graph: aws:neptune/cluster:Cluster is neither priced nor free in the table",
    ]


def test_the_price_table_is_dated_and_every_region_prices_the_same_things():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES["date"]) and PRICES["source"]
    regions = PRICES["regions"]
    assert set(regions) == {"us-east-1", "us-west-2", "eu-west-1"}
    keys = {frozenset(v) for v in regions.values()}
    assert len(keys) == 1
    for section in ("ec2Hour", "ec2VcpuHour", "rdsHour", "mqHour", "elasticacheHour"):
        columns = {frozenset(v) for k, v in PRICES[section].items() if k != "note"}
        assert len(columns) == 1 and set(PRICES[section]) - {"note"} == set(regions), section
    assert all(0 < v < 1 for v in PRICES["commitments"].values() if isinstance(v, float))


# ----- the program's stacks ------------------------------------------------------------------


def as_resources(record) -> list[costing.Resource]:
    """As `python -m cost` reads a record."""
    return cost_cli.from_record(record.resources)


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_a_first_preview_and_an_update_cost_the_same(stack):
    """What an id or ARN unknown at preview hides must not change the price: the budget rule
    judges both."""
    preview = costing.estimate(as_resources(run(stack, "preview")), run(stack, "preview").config["aws:region"])
    update = costing.estimate(as_resources(run(stack, "update")), run(stack, "update").config["aws:region"])
    assert preview.total == pytest.approx(update.total)


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("mode", ["preview", "update"])
def test_every_type_the_program_declares_is_priced_or_free(stack, mode):
    record = run(stack, mode)
    found = costing.estimate(as_resources(record), record.config["aws:region"])
    assert found.unpriced == []
    # And priced ones really are: the types with a line, and the free ones, cover every type.
    priced = {r.type for r in as_resources(record) for line in found.lines if line.resource == r.name}
    free = {t for t in {r["type"] for r in record.resources} if costing.free_reason(PRICES, t)}
    assert {r["type"] for r in record.resources} <= priced | free | {"kubernetes:karpenter.sh/v1:NodePool"}
    assert found.total > 0 and all(line.monthly >= 0 for line in found.lines)


def test_a_multi_az_cluster_database_is_priced_too():
    record = run(
        "dev",
        "preview",
        **{"scanner:databaseDeployment": "multi-az-cluster", "scanner:databaseInstanceClass": "db.r6gd.large"},
    )
    found = costing.estimate(as_resources(record), "eu-west-1")
    assert found.unpriced == []
    assert any(line.item.startswith("database cluster") and line.baseline == "rds" for line in found.lines)


def network_lines(found: costing.Estimate) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in found.lines:
        if line.item.startswith(("NAT gateway", "public IPv4", "interface endpoint hours")):
            out[line.item] = out.get(line.item, 0.0) + line.monthly
    return out


def test_one_more_zone_costs_exactly_one_zone_of_network():
    """dev (eu-west-1) with a NAT gateway per zone, in two zones and in three."""
    per_az = {"scanner:natMode": "per-az"}
    two = run("dev", "preview", **per_az, **{"scanner:availabilityZones": json.dumps(["eu-west-1a", "eu-west-1b"])})
    three = run(
        "dev",
        "preview",
        **per_az,
        **{"scanner:availabilityZones": json.dumps(["eu-west-1a", "eu-west-1b", "eu-west-1c"])},
    )
    before = network_lines(costing.estimate(as_resources(two), "eu-west-1"))
    after = network_lines(costing.estimate(as_resources(three), "eu-west-1"))
    interfaces = sum(
        1
        for r in three.resources
        if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint" and r["inputs"].get("vpcEndpointType") == "Interface"
    )
    assert interfaces >= 5
    assert after["NAT gateway hours"] - before["NAT gateway hours"] == pytest.approx(730 * 0.048)
    assert after["NAT gateway data"] - before["NAT gateway data"] == pytest.approx(200 * 0.048)
    assert after["public IPv4 address"] - before["public IPv4 address"] == pytest.approx(730 * 0.005)
    assert after["interface endpoint hours"] - before["interface endpoint hours"] == pytest.approx(
        interfaces * 730 * 0.011
    )


def test_the_commitment_advice_names_every_always_on_item(prod_preview):
    found = costing.estimate(as_resources(prod_preview), "us-east-1")
    advice = {(c.component, c.item): c for c in costing.commitments(found)}
    # Each row names its resource: the primary and the replica are two rows.
    by_resource = {c.resource for c in costing.commitments(found) if c.component == "postgres"}
    assert by_resource == {"postgres-primary", "postgres-replica"}
    assert set(advice) == {
        ("cluster", "system nodes (m7i.large)"),
        ("karpenter", next(i for c, i in advice if i.startswith("services pool at its floor"))),
        ("postgres", "database instance (db.r7g.large, Multi-AZ)"),
        ("postgres", "database instance (db.r7g.large)"),
        ("redis", "cache node (cache.m7g.large)"),
        ("rabbitmq", "broker node (mq.m7g.large)"),
    }
    rates = PRICES["commitments"]
    primary = advice[("postgres", "database instance (db.r7g.large, Multi-AZ)")]
    assert primary.on_demand == pytest.approx(2 * 730 * 0.239)
    assert primary.committed == pytest.approx(primary.on_demand * (1 - rates["rdsReserved"]))
    cache = advice[("redis", "cache node (cache.m7g.large)")]
    assert cache.on_demand == pytest.approx(3 * 730 * 0.158) and cache.saving == pytest.approx(
        cache.on_demand * rates["elasticacheReserved"]
    )
    nodes = advice[("cluster", "system nodes (m7i.large)")]
    assert nodes.on_demand == pytest.approx(3 * 730 * 0.1008) and nodes.saving == pytest.approx(
        nodes.on_demand * rates["computeSavingsPlan"]
    )
    broker = advice[("rabbitmq", "broker node (mq.m7g.large)")]
    assert broker.on_demand == pytest.approx(3 * 730 * 0.277)
    assert broker.saving == 0 and "no reservations" in broker.how
    # The scan pool is never offered a commitment.
    assert not any("scan" in item for _, item in advice)


def test_the_services_floor_is_the_minimum_replicas_packed(prod_preview):
    found = costing.estimate(as_resources(prod_preview), "us-east-1")
    [floor] = [line for line in found.lines if line.item.startswith("services pool at its floor")]
    # api 3 x 1 vCPU, webhooks 3 x 0.5, storage-api 3 x 1 (Pulumi.prod.yaml), at 75 % packing, c family.
    assert "7.5 vCPU requested, c family" in floor.item
    assert floor.quantity == pytest.approx(7.5 / 0.75 * 730) and floor.rate == PRICES["ec2VcpuHour"]["us-east-1"]["c"]


def test_the_fluid_scan_week_stays_near_the_capacity_model_s():
    """The cost pack prices the scan pool by the fluid approximation, `make cost` by the capacity
    model's simulated week: they must not drift apart (a small pool idles more between scans, so
    the fluid figure runs low there: within a quarter)."""
    for stack in ("prod", "dev"):
        config = cost_cli._config(stack, {})
        modelled = cost_cli.modelled_scans(stack, config)
        fluid = costing.fluid_scan_capacity(as_resources(run(stack, "preview")))
        assert modelled.vcpu_hours_per_week > 0
        assert math.isclose(fluid.vcpu_hours_per_week, modelled.vcpu_hours_per_week, rel_tol=0.25), (
            stack,
            fluid,
            modelled,
        )
        assert fluid.spot_share == (1.0 if stack == "dev" else 0.95)


def test_a_class_the_table_lacks_is_priced_from_its_family_or_named():
    """db.r7g.2xlarge is four db.r7g.large: priced by size within the family, never as free."""
    base = costing.estimate(
        [resource("aws:rds/instance:Instance", "db", {"instanceClass": "db.r7g.large"})], "us-east-1"
    )
    big = costing.estimate(
        [resource("aws:rds/instance:Instance", "db", {"instanceClass": "db.r7g.2xlarge"})], "us-east-1"
    )
    assert big.total == pytest.approx(4 * base.total) and big.unpriced == []
    assert costing.class_vcpus("db.r7g.2xlarge") == 8 and costing.class_vcpus("db.t4g.medium") == 2
    unknown = costing.estimate(
        [resource("aws:rds/instance:Instance", "db", {"instanceClass": "db.z9q.large"})], "us-east-1"
    )
    assert unknown.unpriced == ["db: no rdsHour price for db.z9q.large in us-east-1"]
