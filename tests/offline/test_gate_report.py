"""What the gate says when it refuses: where (resource name and URN), what to change (the stack
key), numbers as written; and rules that decide on values as well as on dependencies."""

import re

import pulumi
import pulumi_aws as aws
import pytest
from conftest import DATA_SAFETY, PLACEMENT, SECURITY, change, gate, mandatory, run

from offline import mocks, preview


def _preview(capsys, tmp_path, *packs):
    argv = ["--stack", "prod", "--mode", "update", "--diagram", str(tmp_path / "d.md")]
    for pack in packs:
        argv += ["--policy-pack", str(pack)]
    status = preview.main(argv)
    return status, capsys.readouterr().out


def test_a_resource_violation_names_the_resource_its_urn_and_the_key(monkeypatch, capsys, tmp_path):
    change(aws.rds.Instance, "postgres-primary", deletion_protection=False, backup_retention_period=3)(monkeypatch)
    status, out = _preview(capsys, tmp_path, DATA_SAFETY)
    assert status == 1
    section = out[out.index("Policy gate") :]
    lines = section.splitlines()
    index = lines.index(
        next(line for line in lines if line.startswith("  [mandatory] rds-deletion-protection: 1 resource"))
    )
    assert "scanner:protectStatefulResources" in lines[index]
    assert lines[index + 1] == (
        "      Instance postgres-primary  "
        "urn:pulumi:prod::scanner::scanner:data:Postgres$aws:rds/instance:Instance::postgres-primary"
    )
    backup = next(line for line in lines if line.startswith("  [mandatory] backup-retention: 1 resource"))
    assert "kept 3 day(s); a production stack keeps them at least 7 (" in backup
    # No number printed as a float ("7.0"); versions such as "scanner-data-safety 0.3.0" are not numbers.
    assert not re.search(r"(?<![\d.])\d+\.0(?![\d.])", section), section


def test_repeated_diagnostics_of_one_policy_are_grouped_under_it(monkeypatch, capsys, tmp_path):
    # Nothing protected: one group, every stateful resource listed once under it.
    monkeypatch.setattr(pulumi.ResourceOptions, "__init__", _without_protect(pulumi.ResourceOptions.__init__))
    status, out = _preview(capsys, tmp_path, DATA_SAFETY)
    assert status == 1
    headers = [line for line in out.splitlines() if line.startswith("  [mandatory] stateful-resources-protected")]
    assert len(headers) == 1
    found = re.search(r": (\d+) resources: ", headers[0])
    assert found is not None, headers[0]
    count = int(found.group(1))
    start = out.splitlines().index(headers[0])
    listed = [line for line in out.splitlines()[start + 1 : start + 1 + count]]
    assert all(line.startswith("      ") and "  urn:pulumi:prod::scanner::" in line for line in listed)
    assert count >= 15


def _without_protect(original):
    def init(self, *args, **kwargs):
        kwargs["protect"] = False
        original(self, *args, **kwargs)

    return init


def test_hop_limit_prints_as_written(monkeypatch):
    change(
        aws.ec2.LaunchTemplate,
        "cluster-system-node",
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=2
        ),
    )(monkeypatch)
    result = gate(run("prod", "update"), packs=(SECURITY,))
    [message] = [d.message for d in result.diagnostics if d.policy == "ec2-imdsv2-required"]
    assert "the metadata hop limit is 2," in message and "httpPutResponseHopLimit to 1." in message


def test_a_configured_minimum_prints_as_an_integer(tmp_path):
    import json

    override = tmp_path / "placement.json"
    override.write_text(json.dumps({"network-subnet-tiers-every-az": {"minimumZones": 4}}))
    result = gate(run("prod", "preview"), packs=(PLACEMENT,), policy_config=override)
    assert mandatory(result) == ["network-subnet-tiers-every-az"]
    [message] = [d.message for d in result.diagnostics]
    assert "needs at least 4 so it survives the loss of one (scanner:availabilityZones)" in message


# ----- values as well as dependencies (an update, every id known) ---------------------------------


def _mock_id(type_: str, name: str, prefix: str) -> str:
    """The id the offline mocks give a resource (they derive it from its type and name)."""
    return prefix + mocks._hex(f"{type_}::{name}", 17)


def route_to_next_zone_nat_by_id(monkeypatch):
    """The route still depends on its own zone's NAT gateway, but its value names another's."""
    other = _mock_id("aws:ec2/natGateway:NatGateway", "network-nat-us-east-1b", "nat-")
    original = aws.ec2.Route.__init__

    def init(self, name, /, opts=None, **kwargs):
        if name == "network-private-default-us-east-1a":
            kwargs["nat_gateway_id"] = pulumi.Output.from_input(kwargs["nat_gateway_id"]).apply(lambda _: other)
        original(self, name, opts=opts, **kwargs)

    monkeypatch.setattr(aws.ec2.Route, "__init__", init)


def last_value_dropped(cls, resource_name: str, argument: str, what: str):
    """A fault described by `what`: the resource still depends on every item of a list argument,
    but its value leaves the last one out."""

    def inject(monkeypatch):
        original = cls.__init__

        def init(self, name, /, opts=None, **kwargs):
            if name == resource_name:
                kwargs[argument] = pulumi.Output.all(*kwargs[argument]).apply(lambda ids: list(ids)[:-1])
            original(self, name, opts=opts, **kwargs)

        monkeypatch.setattr(cls, "__init__", init)

    inject.__doc__ = what
    return inject


endpoint_missing_a_table_by_value = last_value_dropped(
    aws.ec2.VpcEndpoint, "network-s3", "route_table_ids", "the S3 endpoint lacks a route table by value"
)
subnet_group_missing_a_zone_by_value = last_value_dropped(
    aws.rds.SubnetGroup, "postgres-subnets", "subnet_ids", "the database subnet group lacks a zone by value"
)


VALUE_FAULTS = {
    "route-to-other-zone-nat-by-id": (
        route_to_next_zone_nat_by_id,
        "network-nat-per-az",
        "sends 0.0.0.0/0 to NatGateway 'network-nat-us-east-1b' in zone us-east-1b",
    ),
    "endpoint-missing-table-by-value": (
        endpoint_missing_a_table_by_value,
        "network-s3-endpoint-every-route-table",
        "RouteTable 'network-isolated-rt-us-east-1c' is not attached to an S3 gateway endpoint",
    ),
    "subnet-group-missing-zone-by-value": (
        subnet_group_missing_a_zone_by_value,
        "data-subnet-groups-every-az",
        "but not in us-east-1c",
    ),
}


def test_a_fault_in_the_value_alone_is_refused_on_update(monkeypatch):
    """The three faults at once (on different resources): each refused by its own policy."""
    for inject, _, _ in VALUE_FAULTS.values():
        inject(monkeypatch)
    result = gate(run("prod", "update"), packs=(PLACEMENT,))
    assert mandatory(result) == sorted(policy for _, policy, _ in VALUE_FAULTS.values()), [
        (d.policy, d.message) for d in result.diagnostics
    ]
    for fault, (_, policy, message) in VALUE_FAULTS.items():
        assert any(message in d.message for d in result.diagnostics if d.policy == policy), (
            fault,
            [d.message for d in result.diagnostics],
        )


def test_the_same_faults_are_not_guessed_at_on_a_first_preview(monkeypatch):
    """Ids are unknown on a first preview: the dependencies, which are right, decide."""
    for inject, _, _ in VALUE_FAULTS.values():
        inject(monkeypatch)
    assert gate(run("prod", "preview"), packs=(PLACEMENT,)).passed


def test_a_route_to_a_nat_gateway_the_stack_does_not_declare_is_refused(monkeypatch):
    original = aws.ec2.Route.__init__

    def init(self, name, /, opts=None, **kwargs):
        if name == "network-private-default-us-east-1b":
            kwargs["nat_gateway_id"] = "nat-0123456789abcdef0"  # a literal: no dependency at all
        original(self, name, opts=opts, **kwargs)

    monkeypatch.setattr(aws.ec2.Route, "__init__", init)
    result = gate(run("prod", "update"), packs=(PLACEMENT,))
    assert mandatory(result) == ["network-nat-per-az"]
    assert any("nat-0123456789abcdef0, which is no NAT gateway of this stack" in d.message for d in result.diagnostics)


# ----- the pack processes' own start-up ----------------------------------------------------------


def test_a_directory_without_a_pack_manifest_is_refused_before_anything_starts(tmp_path):
    from offline.gate import PackStartError, PolicyGate

    with pytest.raises(PackStartError, match="not a policy pack directory"):
        PolicyGate([tmp_path], project="scanner", stack="prod", dry_run=True, stack_config={}).start()


def test_a_pack_that_cannot_start_is_named_with_its_last_line_of_output(tmp_path):
    from offline.gate import PackStartError, PolicyGate

    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\nversion: 0.0.1\n")
    (tmp_path / "__main__.py").write_text("raise SystemExit('policy module missing: cost_policies')\n")
    gate_ = PolicyGate([tmp_path], project="scanner", stack="prod", dry_run=True, stack_config={})
    try:
        with pytest.raises(PackStartError, match=f"policy pack {tmp_path.name} did not start: policy module missing"):
            gate_.analyze([])
    finally:
        gate_.close()
