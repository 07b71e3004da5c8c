"""Shared fixtures: programs run under the offline mocks, and the policy gate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from offline.gate import PolicyGate  # noqa: E402
from offline.program import StackRecord, load_stack_config, run_program  # noqa: E402

PLACEMENT = ROOT / "policies" / "placement"
SECURITY = ROOT / "policies" / "security"
DATA_SAFETY = ROOT / "policies" / "data-safety"
COST = ROOT / "policies" / "cost"
#: CRD schemas shipped beside the checkout (CI has them; a bare clone may not).
CRD_DIR = ROOT.parent / "shared" / "schemas" / "crds"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

PROD = (ROOT / "Pulumi.prod.yaml").read_text()
DEV = (ROOT / "Pulumi.dev.yaml").read_text()


@pytest.fixture
def stack_file():
    """Write Pulumi.<name>.yaml beside the real ones for one test, and remove it after."""
    written: list[Path] = []

    def write(name: str, text: str) -> str:
        path = ROOT / f"Pulumi.{name}.yaml"
        assert not path.exists()
        path.write_text(text)
        written.append(path)
        return name

    yield write
    for path in written:
        path.unlink(missing_ok=True)




def run(stack: str = "prod", mode: str = "update", **overrides: str) -> StackRecord:
    config = load_stack_config(stack)
    config.update(overrides)
    return run_program(stack, mode, config=config)  # type: ignore[arg-type]


def gate(record: StackRecord, packs=(PLACEMENT,), policy_config: Path | None = None):
    configs = {Path(p): policy_config for p in packs}
    with PolicyGate(list(packs), project=record.project, stack=record.stack, dry_run=record.mode == "preview",
                    stack_config=record.config, policy_configs=configs) as g:
        return g.analyze(record.resources)


def one(record: StackRecord, type_: str, name: str | None = None) -> dict:
    """The single registration of a type (and name); fails naming what was found instead."""
    matches = [r for r in of_type(record, type_) if name is None or r["name"] == name]
    assert len(matches) == 1, (type_, name, [m["name"] for m in matches])
    return matches[0]


def mandatory(result) -> list[str]:
    """Names of the policies with a mandatory violation."""
    return sorted({d.policy for d in result.diagnostics if d.level == "mandatory"})


def assert_gate_refuses(fault, mode: str, monkeypatch, packs) -> None:
    """Inject `fault` (inject, policies, message) into prod, run the packs: exactly those policies
    are violated, and one of their messages says `message`."""
    inject, policies, message = fault
    inject(monkeypatch)
    result = gate(run("prod", mode), packs=packs)
    assert mandatory(result) == sorted(policies), [(d.policy, d.message) for d in result.diagnostics]
    assert any(message in d.message for d in result.diagnostics if d.policy in policies), \
        [d.message for d in result.diagnostics]


def assert_preview_refuses(policies, capsys, tmp_path) -> None:
    """`python -m offline.preview --stack prod` exits 1 and names each policy."""
    from offline import preview

    status = preview.main(["--stack", "prod", "--diagram", str(tmp_path / "d.md")])
    out = capsys.readouterr().out
    assert status == 1
    for policy in policies:
        assert f"[mandatory] {policy}:" in out
    assert out.splitlines()[-1].startswith("Result: FAIL")


def change(cls, resource_name: str, **overrides):
    """A fault: one resource of the real program declared with `overrides` (None removes an argument)."""
    def inject(monkeypatch):
        original = cls.__init__

        def init(self, registered_name, /, opts=None, **kwargs):
            if registered_name == resource_name:
                kwargs.update(overrides)
            original(self, registered_name, opts=opts, **kwargs)
        monkeypatch.setattr(cls, "__init__", init)
    return inject


def of_type(record: StackRecord, type_: str) -> list[dict]:
    return [r for r in record.resources if r["type"] == type_]


def ingress_of(record: StackRecord, group_name: str) -> list[tuple[int, str]]:
    """(port, source) of every ingress rule on the named security group, the source being the
    referenced group's id or the CIDR. The rules are resources of their own (components/sg_rules.py)."""
    group = one(record, "aws:ec2/securityGroup:SecurityGroup", group_name)
    assert "ingress" not in group["inputs"], f"{group_name} has inline rules"
    return sorted((r["inputs"]["fromPort"], r["inputs"].get("referencedSecurityGroupId") or r["inputs"]["cidrIpv4"])
                  for r in of_type(record, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                  if r["inputs"]["securityGroupId"] == group["outputs"]["id"])


def by_urn(record: StackRecord) -> dict[str, dict]:
    return {r["urn"]: r for r in record.resources}


@pytest.fixture(scope="session")
def prod_update() -> StackRecord:
    return run("prod", "update")


@pytest.fixture(scope="session")
def prod_preview() -> StackRecord:
    return run("prod", "preview")


@pytest.fixture(scope="session")
def crds():
    """The Karpenter and KEDA CRDs, or a skip that says why."""
    if not CRD_DIR.is_dir():
        pytest.skip(f"CRD schemas not found at {CRD_DIR} (they ship in ../shared beside the checkout)")
    from offline.crds import CrdSet

    return CrdSet(CRD_DIR)
