"""The names the packs read are the names the program writes: a component that renames an
input, a tag, a label or its type token fails here, not silently in a rule that finds nothing."""

import re
from pathlib import Path

import pytest
from conftest import ROOT, of_type

from policies.common import contract

POLICY_SOURCES = sorted(p for p in (ROOT / "policies").glob("*/*.py") if p.name != "contract.py")


@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("side", ["inputs", "outputs"])
def test_the_network_component_declares_what_the_rules_read(mode, side, prod_preview, prod_update):
    """Resource rules see the component's inputs, stack rules its registered outputs: both."""
    record = prod_preview if mode == "preview" else prod_update
    [network] = [r for r in record.resources if r["type"] == contract.NETWORK_TYPE]
    assert network[side][contract.NETWORK_ZONES_INPUT] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert network[side][contract.NETWORK_NAT_MODE_INPUT] == "per-az"


def test_subnets_and_route_tables_carry_the_tags_the_rules_read(prod_preview):
    subnets = of_type(prod_preview, "aws:ec2/subnet:Subnet")
    assert subnets and all(s["inputs"]["tags"][contract.TIER_TAG] in ("public", "private", "isolated") for s in subnets)
    tables = of_type(prod_preview, "aws:ec2/routeTable:RouteTable")
    assert tables and all(t["inputs"]["tags"][contract.ZONE_TAG].startswith("us-east-1") for t in tables)
    assert {t["inputs"]["tags"][contract.TIER_TAG] for t in tables} == {"public", "private", "isolated"}


def test_the_scan_pool_and_its_jobs_use_the_label_the_rules_read(prod_preview):
    pools = {p["inputs"]["metadata"]["name"]: p for p in of_type(prod_preview, "kubernetes:karpenter.sh/v1:NodePool")}
    assert contract.SCAN_POOL in pools
    assert (
        pools[contract.SCAN_POOL]["inputs"]["spec"]["template"]["metadata"]["labels"][contract.POOL_LABEL]
        == contract.SCAN_POOL
    )
    for job in of_type(prod_preview, "kubernetes:keda.sh/v1alpha1:ScaledJob"):
        pod = job["inputs"]["spec"]["jobTargetRef"]["template"]["spec"]
        assert pod["nodeSelector"][contract.POOL_LABEL] == contract.SCAN_POOL


def test_data_secrets_and_workload_roles_carry_the_tags_the_rules_read(prod_preview):
    """The security pack's readers rules find nothing to judge if the program stops tagging."""
    tagged = {
        s["inputs"]["tags"][contract.DATA_SECRET_TAG]: s["inputs"]["tags"][contract.SECRET_READERS_TAG]
        for s in of_type(prod_preview, "aws:secretsmanager/secret:Secret")
        if contract.DATA_SECRET_TAG in (s["inputs"].get("tags") or {})
    }
    assert tagged[f"postgres/{contract.ADMINISTRATOR}"] == tagged[f"rabbitmq/{contract.ADMINISTRATOR}"]
    assert tagged[f"rabbitmq/{contract.ADMINISTRATOR}"] == contract.NO_READERS
    assert {"postgres/scans_rw", "rabbitmq/svc-api", "redis/svc-api"} <= set(tagged)
    workload = [
        r
        for r in of_type(prod_preview, "aws:iam/role:Role")
        if "pods.eks.amazonaws.com" in r["inputs"]["assumeRolePolicy"]
    ]
    clients = {(r["inputs"].get("tags") or {}).get(contract.CLIENT_TAG) for r in workload}
    assert {"service:api", "engine:sast", "keda", "migrations"} <= clients


SHARED = (
    contract.TIER_TAG,
    contract.ZONE_TAG,
    contract.NETWORK_TYPE,
    contract.POOL_LABEL,
    contract.DATA_SECRET_TAG,
    contract.SECRET_READERS_TAG,
    contract.CLIENT_TAG,
)


@pytest.mark.parametrize("source", POLICY_SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_packs_take_the_shared_names_from_the_contract(source: Path):
    text = source.read_text()
    for literal in SHARED:
        assert f'"{literal}"' not in text, f"{source.name} spells {literal!r} itself; import it from contract"


def test_components_take_the_shared_names_from_the_contract():
    for source in sorted((ROOT / "components").rglob("*.py")):
        text = source.read_text()
        for literal in SHARED:
            assert not re.search(rf'["\']{re.escape(literal)}["\']', text), (
                f"{source.relative_to(ROOT)} spells {literal!r} itself; import it from policies/common/contract.py"
            )
