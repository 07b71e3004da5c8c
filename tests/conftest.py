"""Shared fixtures: programs run under the offline mocks, and the policy gate."""

from __future__ import annotations

import copy
import json
import sys
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from offline.gate import GateResult, PolicyGate  # noqa: E402
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




#: Records of runs without a fault, per (stack, mode, overrides): the program is deterministic,
#: so tests that inject nothing share one run (each gets its own copy).
_RECORDS: dict[tuple, StackRecord] = {}
#: Whether the running test may inject a fault (it asked for monkeypatch): then nothing is shared.
_FAULTS = {"possible": True}


@pytest.fixture(autouse=True)
def _faults_possible(request):
    _FAULTS["possible"] = "monkeypatch" in request.fixturenames
    yield
    _FAULTS["possible"] = True


def run(stack: str = "prod", mode: str = "update", **overrides: str) -> StackRecord:
    """The program's registrations for a stack, under the mocks."""
    key = (stack, mode, tuple(sorted(overrides.items())))
    if not _FAULTS["possible"] and key in _RECORDS:
        return copy.deepcopy(_RECORDS[key])
    config = load_stack_config(stack)
    config.update(overrides)
    record = run_program(stack, mode, config=config)  # type: ignore[arg-type]
    if not _FAULTS["possible"]:
        _RECORDS[key] = copy.deepcopy(record)
    return record


#: Started pack processes, one gate per pack and per stack, mode and stack config, reused across
#: tests: a pack analyses any number of stacks; only its stack config (the environment, read
#: from its process environment) and the mode are fixed when it starts.
_GATES: "OrderedDict[tuple, PolicyGate]" = OrderedDict()
_MAX_GATES = 24


def _pack_gate(pack: Path, stack: str, mode: str, config: dict, project: str = "scanner") -> PolicyGate:
    key = (str(pack), stack, mode, json.dumps(config, sort_keys=True))
    started = _GATES.pop(key, None)
    if started is None:
        started = PolicyGate([pack], project=project, stack=stack, dry_run=mode == "preview", stack_config=config)
        started.start()
    _GATES[key] = started
    while len(_GATES) > _MAX_GATES:
        _GATES.popitem(last=False)[1].close()
    return started


def analyze(resources, packs, stack: str, mode: str, config: dict, policy_configs=None, project: str = "scanner"):
    """What the gate answers for these resources, from started packs, side by side."""
    gates = [_pack_gate(Path(p), stack, mode, config, project) for p in packs]
    configs = {Path(k).resolve(): v for k, v in (policy_configs or {}).items()}
    with ThreadPoolExecutor(max_workers=len(gates)) as pool:
        results = list(pool.map(lambda g: g.analyze(resources, policy_configs={
            d: configs.get(d) for d in g.pack_dirs}), gates))
    return GateResult([p for r in results for p in r.packs], [d for r in results for d in r.diagnostics],
                      [m for r in results for m in r.engine_log])


def gate(record: StackRecord, packs=(PLACEMENT,), policy_config: Path | None = None):
    return analyze(record.resources, packs, record.stack, record.mode, record.config,
                   {Path(p): policy_config for p in packs}, record.project)


class _PooledGate:
    """What `offline.preview` gets in the tests instead of a new gate: the same analysis, by
    packs that are already running."""

    def __init__(self, pack_dirs, *, project, stack, dry_run, stack_config, policy_configs=None, **_):
        self.pack_dirs, self.project, self.stack = [Path(p) for p in pack_dirs], project, stack
        self.mode, self.config, self.policy_configs = "preview" if dry_run else "update", stack_config, policy_configs

    def start(self):
        pass

    def close(self):
        pass

    def analyze(self, resources, policy_configs=None):
        return analyze(resources, self.pack_dirs, self.stack, self.mode, self.config,
                       policy_configs or self.policy_configs, self.project)


@pytest.fixture(autouse=True, scope="session")
def _pooled_gates_for_the_command():
    """The preview command's gate boots its packs for each run; in the tests, started packs answer
    instead (the gate's start-up and its errors are tested on PolicyGate itself)."""
    from offline import preview

    original = preview.gate_class
    preview.gate_class = lambda: _PooledGate
    yield
    preview.gate_class = original


def pytest_sessionfinish(session):
    for started in _GATES.values():
        started.close()
    _GATES.clear()


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


def assert_gate_refuses_all(faults: dict, mode: str, monkeypatch, packs, stack: str = "prod") -> None:
    """Inject every fault of `faults` (name -> (inject, policies, message)) into one run of the
    program (the faults are independent: they touch different resources or arguments): exactly
    the union of their policies is violated, and each fault's message is among its policies'."""
    for inject, _, _ in faults.values():
        inject(monkeypatch)
    result = gate(run(stack, mode), packs=packs)
    expected = sorted({p for _, policies, _ in faults.values() for p in policies})
    assert mandatory(result) == expected, [(d.policy, d.message) for d in result.diagnostics]
    for name, (_, policies, message) in faults.items():
        assert any(message in d.message for d in result.diagnostics if d.policy in policies), \
            (name, message, [d.message for d in result.diagnostics if d.policy in policies])


def assert_preview_refuses_all(faults: dict, monkeypatch, capsys, tmp_path) -> None:
    """The command a user runs, with every fault injected at once: exit 1, each policy named."""
    for inject, _, _ in faults.values():
        inject(monkeypatch)
    assert_preview_refuses(sorted({p for _, policies, _ in faults.values() for p in policies}), capsys, tmp_path)


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
