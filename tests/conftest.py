"""Shared fixtures: programs run under the offline mocks, and the policy gate."""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import hashlib
import json
import os
import pickle
import sys
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from offline.gate import Diagnostic, GateResult, PolicyGate, _layers  # noqa: E402
from offline.inprocess import InProcessGate, pack_definition  # noqa: E402
from offline.program import PROJECT_DIR, StackRecord, load_stack_config  # noqa: E402
from offline.program import run_program as _RUN_PROGRAM  # noqa: E402

PLACEMENT = ROOT / "policies" / "placement"
SECURITY = ROOT / "policies" / "security"
DATA_SAFETY = ROOT / "policies" / "data-safety"
COST = ROOT / "policies" / "cost"
PACKS = (PLACEMENT, SECURITY, DATA_SAFETY, COST)
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
_RECORDS: dict[tuple, bytes] = {}
#: Whether the running test may inject a fault (it asked for monkeypatch): then nothing is shared.
_FAULTS = {"possible": True}


@pytest.fixture(autouse=True)
def _faults_possible(request):
    _FAULTS["possible"] = "monkeypatch" in request.fixturenames
    yield
    _FAULTS["possible"] = True


def pytest_collection_finish(session):
    """What is alive once the tests are collected (the SDKs, the packs' modules, the schemas)
    lives to the end: moved out of the collector's sight, and the youngest generation let grow
    larger before a collection. A program run makes some 200,000 short-lived objects, and with
    the defaults the collector walks the whole heap many times per run."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Tests that write a stack file beside the real ones, and tests that read every stack file,
    share one worker when the tests run in parallel (pytest-xdist, `--dist loadgroup`): a
    temporary Pulumi.<name>.yaml must not appear in another test's `--all-stacks`. First, so the
    mark is there when xdist reads the groups."""
    for item in items:
        if "stack_file" in getattr(item, "fixturenames", ()) or item.get_closest_marker("all_stacks"):
            item.add_marker(pytest.mark.xdist_group("stack-files"))


class _GroupsHold:
    """In a pytest-xdist worker, after xdist has marked each grouped test's id with its group
    (`name@group`), check that it did: with a pytest whose node ids xdist cannot rewrite
    (pytest-xdist#1386, pytest 9.2) the groups are silently ignored, and the stack-file tests and
    the real servers' tests would run on any worker. Each such test then fails, saying why, before
    its fixtures start anything."""

    def __init__(self) -> None:
        self.lost: set[str] = set()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        if not config.getoption("loadgroup", default=False):
            return
        import xdist

        # Up to 3.8, xdist groups by rewriting node ids; a later one may group another way.
        if tuple(int(p) for p in xdist.__version__.split(".")[:2]) > (3, 8):
            return
        for item in items:
            groups = {
                m.args[0] if m.args else m.kwargs.get("name", "default") for m in item.iter_markers("xdist_group")
            }
            if groups and not item.nodeid.endswith("@" + "_".join(sorted(map(str, groups)))):
                self.lost.add(item.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        if item.nodeid in self.lost:
            pytest.fail(
                "--dist loadgroup did not group this test: pytest-xdist cannot rewrite this pytest's node ids "
                "(pytest-xdist#1386); install the pinned pytest (requirements-dev.txt)",
                pytrace=False,
            )


def pytest_configure(config):
    config.pluginmanager.register(_GroupsHold(), "scanner-groups-hold")


@pytest.fixture(scope="session")
def rabbitmq_node(tmp_path_factory):
    """One RabbitMQ node for the session, shared by every module that needs one (their tests
    carry `xdist_group("rabbitmq")`, so they run on one worker and the node starts once). Each
    module loads its own definitions into a vhost of its own."""
    import servers

    node = servers.start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield node
    finally:
        node.stop()


def _run_program(stack: str, mode="preview", project_dir: Path = PROJECT_DIR, config: dict | None = None):
    """`offline.program.run_program`, shared: a run without a fault is computed once per stack,
    mode and config in a session, and each caller gets its own copy (unpickled: a record is
    plain data, and unpickling is several times faster than a deep copy)."""
    if config is None:
        config = stack_config(stack, project_dir)
    if _FAULTS["possible"]:
        return _RUN_PROGRAM(stack, mode, project_dir, config)
    key = (stack, mode, str(project_dir), json.dumps(config, sort_keys=True))
    if key not in _RECORDS:
        shared = _shared_record_path(key)
        if shared is not None and shared.is_file():
            _RECORDS[key] = shared.read_bytes()
        else:
            # Pickled twice: the second form is what a copy pickles to (object sharing settles
            # after one round), so an unchanged copy can be recognised byte for byte.
            record = _RUN_PROGRAM(stack, mode, project_dir, copy.deepcopy(config))
            _RECORDS[key] = pickle.dumps(pickle.loads(pickle.dumps(record)))
            if shared is not None:
                staging = shared.with_suffix(f".{os.getpid()}")
                staging.write_bytes(_RECORDS[key])
                os.replace(staging, shared)
    return pickle.loads(_RECORDS[key])


#: Where the workers of one parallel run (pytest-xdist) share their clean runs: the run's own
#: temporary directory (pytest's, which it rotates), so no other run ever reads them.
_SHARED: dict[str, Path] = {}


@pytest.fixture(autouse=True, scope="session")
def _shared_records(tmp_path_factory):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _SHARED["records"] = tmp_path_factory.getbasetemp().parent / "clean-runs"
        _SHARED["records"].mkdir(exist_ok=True)
        _SHARED["answers"] = tmp_path_factory.getbasetemp().parent / "pack-answers"
        _SHARED["answers"].mkdir(exist_ok=True)
    yield
    _SHARED.clear()


def _shared_record_path(key: tuple) -> Path | None:
    directory = _SHARED.get("records")
    return directory / (hashlib.sha256(repr(key).encode()).hexdigest() + ".pickle") if directory else None


def stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """`load_stack_config`, parsed once per file content (a test may write a stack file)."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return load_stack_config(stack, project_dir)  # its error, as the command shows it
    return dict(_parsed_stack_config(stack, str(project_dir), path.read_text()))


@functools.lru_cache(maxsize=64)
def _parsed_stack_config(stack: str, project_dir: str, text: str) -> dict[str, str]:
    return load_stack_config(stack, Path(project_dir))


@pytest.fixture(autouse=True, scope="session")
def _shared_program_runs():
    """The commands under test (preview, deploy plan) run the program through the same cache."""
    import offline.program

    offline.program.run_program = _run_program
    yield
    offline.program.run_program = _RUN_PROGRAM


def run(stack: str = "prod", mode: str = "update", **overrides: str) -> StackRecord:
    """The program's registrations for a stack, under the mocks."""
    config = stack_config(stack)
    config.update(overrides)
    return _run_program(stack, mode, config=config)


#: Started pack processes, one gate per pack and per stack, mode and stack config, reused across
#: tests: a pack analyses any number of stacks; only its stack config (the environment, read
#: from its process environment) and the mode are fixed when it starts.
_GATES: OrderedDict[tuple, PolicyGate] = OrderedDict()
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


#: Whether the running test judges through pack processes (the gate of record) or through the
#: same packs loaded in this process. Tests marked `gate`, and the whole-program fault helpers
#: below, take the processes; every other analysis, a variation on what those tests prove,
#: takes the packs in process: same requests, same SDK servicer, no process or transport.
_THROUGH_PROCESSES = {"on": False}


@pytest.fixture(autouse=True)
def _gate_of_the_test(request):
    _THROUGH_PROCESSES["on"] = request.node.get_closest_marker("gate") is not None
    yield
    _THROUGH_PROCESSES["on"] = False


@contextlib.contextmanager
def through_processes():
    saved, _THROUGH_PROCESSES["on"] = _THROUGH_PROCESSES["on"], True
    try:
        yield
    finally:
        _THROUGH_PROCESSES["on"] = saved


def analyze(resources, packs, stack: str, mode: str, config: dict, policy_configs=None, project: str = "scanner"):
    """What the gate answers for these resources: from started pack processes, side by side, or
    from the packs loaded in this process (see `_THROUGH_PROCESSES`)."""
    configs = {Path(k).resolve(): v for k, v in (policy_configs or {}).items()}
    if not _THROUGH_PROCESSES["on"]:
        judge = InProcessGate(
            [Path(p) for p in packs], project=project, stack=stack, dry_run=mode == "preview", stack_config=config
        )
        return judge.analyze(resources, policy_configs={d: configs.get(d) for d in judge.pack_dirs})
    digest = _digest(resources)

    def one_pack(pack: Path) -> GateResult:
        key = _answer_key(pack, stack, mode, config, project, configs.get(pack), digest)
        answer = _ANSWERS.get(key) or _shared_answer(key)
        if answer is None:
            with _answering(key) as answer:
                if answer is None:
                    started = _pack_gate(pack, stack, mode, config, project)
                    answer = pickle.dumps(started.analyze(resources, policy_configs={pack: configs.get(pack)}))
                    _keep_answer(key, answer)
        return pickle.loads(answer)

    with ThreadPoolExecutor(max_workers=len(packs)) as pool:
        results = list(pool.map(one_pack, [Path(p).resolve() for p in packs]))
    return GateResult(
        [p for r in results for p in r.packs],
        [d for r in results for d in r.diagnostics],
        [m for r in results for m in r.engine_log],
    )


#: What a pack process answered, per request: a pack is a function of what it is sent (the
#: resources, the stack, the mode, the stack config, the policy config), so a request sent again,
#: by another test or on another worker, gets the same answer without the analysis.
_ANSWERS: dict[str, bytes] = {}


def _digest(resources) -> str:
    """The same stack however its registrations were ordered: the program registers concurrently,
    so two runs list resources, and a resource its dependencies, in different orders (the engine
    treats both as sets)."""

    def canonical(resource: dict) -> str:
        settled = dict(resource, dependencies=sorted(resource.get("dependencies") or []))
        if isinstance(resource.get("propertyDependencies"), dict):
            settled["propertyDependencies"] = {k: sorted(v) for k, v in resource["propertyDependencies"].items()}
        return json.dumps(settled, sort_keys=True)

    return hashlib.sha256("\n".join(sorted(canonical(r) for r in resources)).encode()).hexdigest()


def _answer_key(pack: Path, stack, mode, config, project, policy_config, digest: str) -> str:
    layers = [(str(p), Path(p).read_text() if Path(p).is_file() else None) for p in _layers(policy_config)]
    text = json.dumps([str(pack), stack, mode, config, project, layers, digest], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _shared_answer(key: str) -> bytes | None:
    directory = _SHARED.get("answers")
    path = directory / f"{key}.pickle" if directory else None
    if path is None or not path.is_file():
        return None
    _ANSWERS[key] = path.read_bytes()
    return _ANSWERS[key]


@contextlib.contextmanager
def _answering(key: str):
    """Claim a request for this worker; a worker that finds it claimed waits for the answer (two
    workers asking at once would run the same analysis twice on the same two cores). Yields the
    answer if another worker gave it, else None (then this worker answers, and releases the
    claim however it ends)."""
    directory = _SHARED.get("answers")
    if directory is None:
        yield None
        return
    claim = directory / f"{key}.claim"
    try:
        descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(descriptor, str(os.getpid()).encode())
        os.close(descriptor)
    except FileExistsError:
        deadline = time.monotonic() + 120
        while claim.exists() and time.monotonic() < deadline and _claimant_alive(claim):
            time.sleep(0.05)
        yield _shared_answer(key)
        return
    try:
        yield None
    finally:
        claim.unlink(missing_ok=True)


def _claimant_alive(claim: Path) -> bool:
    """Whether the worker that claimed a request still runs (a crashed worker leaves its claim)."""
    try:
        os.kill(int(claim.read_text() or "0"), 0)
    except (OSError, ValueError):
        return not claim.exists() or claim.read_text() == ""  # still being written, or gone
    return True


def _keep_answer(key: str, answer: bytes) -> None:
    _ANSWERS[key] = answer
    directory = _SHARED.get("answers")
    if directory is not None:
        staging = directory / f"{key}.{os.getpid()}"
        staging.write_bytes(answer)
        os.replace(staging, directory / f"{key}.pickle")


def gate(record: StackRecord, packs=(PLACEMENT,), policy_config: Path | None = None):
    return analyze(
        record.resources,
        packs,
        record.stack,
        record.mode,
        record.config,
        {Path(p): policy_config for p in packs},
        record.project,
    )


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
        return analyze(
            resources,
            self.pack_dirs,
            self.stack,
            self.mode,
            self.config,
            policy_configs or self.policy_configs,
            self.project,
        )


@pytest.fixture(autouse=True, scope="session")
def _pooled_gates_for_the_command():
    """The preview command's gate boots its packs for each run; in the tests, started packs answer
    instead (the gate's start-up and its errors are tested on PolicyGate itself, in
    tests/offline/test_gate_report.py)."""
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
    inject, policies, message, *_ = fault
    inject(monkeypatch)
    with through_processes():
        result = gate(run("prod", mode), packs=packs)
    assert mandatory(result) == sorted(policies), [(d.policy, d.message) for d in result.diagnostics]
    assert any(message in d.message for d in result.diagnostics if d.policy in policies), [
        d.message for d in result.diagnostics
    ]


def assert_gate_refuses_all(
    faults: dict, mode: str, monkeypatch, packs, stack: str = "prod", representative: bool = True
) -> GateResult:
    """Inject every fault of `faults` (name -> (inject, policies, message[, also refused])) into
    one run of the program (the faults are independent: they touch different resources or
    arguments): exactly the union of their policies (and of those they also refuse) is violated,
    and each fault's message is among its own policies' diagnostics.
    A representative group (one fault for each policy of its table) is judged by the pack
    processes; the further variations of a table by the same packs in process."""
    for inject, *_ in faults.values():
        inject(monkeypatch)
    with through_processes() if representative else contextlib.nullcontext():
        result = gate(run(stack, mode), packs=packs)
    expected = sorted({p for _, policies, _, *also in faults.values() for p in {*policies, *(also[0] if also else ())}})
    assert mandatory(result) == expected, [(d.policy, d.message) for d in result.diagnostics]
    # Each fault needs a diagnostic of its own: two faults of one policy in a group cannot both
    # be answered by one report (the more specific message is matched first).
    unused = list(result.diagnostics)
    for name, (_, policies, message, *_) in sorted(faults.items(), key=lambda item: -len(item[1][2])):
        match = next((d for d in unused if d.policy in policies and message in d.message), None)
        assert match is not None, (
            name,
            message,
            [d.message for d in result.diagnostics if d.policy in policies],
        )
        unused.remove(match)
    return result


def assert_advisory_fault(fault: tuple, mode: str, packs) -> None:
    """An advisory fault (stack overrides, policies, message) on prod through the pack
    processes: it passes, and exactly those policies report, advisory, saying `message`."""
    overrides, policies, message = fault
    result = gate(run("prod", mode, **overrides), packs=packs)
    assert result.passed
    assert {(d.policy, d.level) for d in result.diagnostics} == {(p, "advisory") for p in policies}
    assert all(message in d.message for d in result.diagnostics), [d.message for d in result.diagnostics]


def assert_preview_refuses_all(faults: dict, monkeypatch, capsys, tmp_path) -> None:
    """The command a user runs, with every fault injected at once: exit 1, each policy named."""
    for inject, *_ in faults.values():
        inject(monkeypatch)
    assert_preview_refuses(sorted({p for _, policies, *_ in faults.values() for p in policies}), capsys, tmp_path)


def assert_preview_refuses(policies, capsys, tmp_path) -> None:
    """`python -m offline.preview --stack prod` exits 1 and names each policy."""
    from offline import preview

    with through_processes():
        status = preview.main(["--stack", "prod", "--diagram", str(tmp_path / "d.md")])
    out = capsys.readouterr().out
    assert status == 1
    verdict = out.splitlines()[-1]
    assert verdict.startswith("Result: FAIL"), verdict
    for policy in policies:
        assert f"[mandatory] {policy}:" in out
        assert policy in verdict, (policy, verdict)


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
    referenced group's id or the CIDR. The rules are resources of their own (components/common/sg_rules.py)."""
    group = one(record, "aws:ec2/securityGroup:SecurityGroup", group_name)
    assert "ingress" not in group["inputs"], f"{group_name} has inline rules"
    return sorted(
        (r["inputs"]["fromPort"], r["inputs"].get("referencedSecurityGroupId") or r["inputs"]["cidrIpv4"])
        for r in of_type(record, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r["inputs"]["securityGroupId"] == group["outputs"]["id"]
    )


def by_urn(record: StackRecord) -> dict[str, dict]:
    return {r["urn"]: r for r in record.resources}


def clean_run(stack: str, mode: str, **overrides: str) -> StackRecord:
    """A run without a fault, shared, whatever the test asking for it injects later (for
    fixtures, which are set up before a test's own fixtures say whether it may inject one)."""
    saved, _FAULTS["possible"] = _FAULTS["possible"], False
    try:
        return run(stack, mode, **overrides)
    finally:
        _FAULTS["possible"] = saved


@pytest.fixture(scope="session")
def prod_update() -> StackRecord:
    return clean_run("prod", "update")


@pytest.fixture(scope="session")
def prod_preview() -> StackRecord:
    return clean_run("prod", "preview")


@pytest.fixture(scope="session")
def crds():
    """The Karpenter and KEDA CRDs, or a skip that says why."""
    if not CRD_DIR.is_dir():
        pytest.skip(f"CRD schemas not found at {CRD_DIR} (they ship in ../shared beside the checkout)")
    from offline.crds import CrdSet

    return CrdSet(CRD_DIR)


# ----- the policy unit layer: one policy, in process, on a recorded stack with an edit ----------

#: Stands for "remove this argument" in `set_value`.
DELETE = object()


@functools.cache
def policy_pack(policy: str) -> Path:
    """The pack that defines `policy`."""
    for pack in PACKS:
        if any(p.name == policy for p in pack_definition(pack)["policies"]):
            return pack
    raise KeyError(f"no pack defines a policy named {policy!r}")


def all_policies() -> set[str]:
    return {p.name for pack in PACKS for p in pack_definition(pack)["policies"]}


def verdict(record: StackRecord, policy: str, policy_config: Path | None = None) -> list[Diagnostic]:
    """What one policy says about the record's resources (its stack, mode and config), from its
    pack loaded in this process: the same requests, levels and preview unknowns as the gate."""
    if policy_config is None:
        clean = _clean_verdicts(record)
        if clean is not None:
            return clean.get(policy, [])
    pack = policy_pack(policy)
    judge = InProcessGate(
        [pack],
        only={policy},
        project=record.project,
        stack=record.stack,
        dry_run=record.mode == "preview",
        stack_config=record.config,
        policy_configs={pack: policy_config} if policy_config else None,
    )
    return [d for d in judge.analyze(record.resources).diagnostics if d.policy == policy]


#: Every policy's diagnostics on each clean run, from one analysis by all packs.
_CLEAN_VERDICTS: dict[tuple, dict[str, list[Diagnostic]]] = {}


def _clean_verdicts(record: StackRecord) -> dict[str, list[Diagnostic]] | None:
    """When `record` is a clean run unchanged (byte for byte as first recorded), what every
    policy said about it: policies judge independently, so one analysis by every pack answers
    for each of them. None for an edited record."""
    key = (record.stack, record.mode, str(PROJECT_DIR), json.dumps(record.config, sort_keys=True))
    if _RECORDS.get(key) != pickle.dumps(record):
        return None
    if key not in _CLEAN_VERDICTS:
        judge = InProcessGate(
            list(PACKS),
            project=record.project,
            stack=record.stack,
            dry_run=record.mode == "preview",
            stack_config=record.config,
        )
        found: dict[str, list[Diagnostic]] = {}
        for d in judge.analyze(record.resources).diagnostics:
            found.setdefault(d.policy, []).append(d)
        _CLEAN_VERDICTS[key] = found
    return _CLEAN_VERDICTS[key]


def named(record: StackRecord, type_: str, name: str | None = None) -> list[dict]:
    """Every registration of a type whose name is `name` or, when it ends in '*', starts with it."""
    found = [
        r
        for r in of_type(record, type_)
        if name is None or r["name"] == name or (name.endswith("*") and r["name"].startswith(name[:-1]))
    ]
    assert found, (type_, name, sorted(r["name"] for r in of_type(record, type_)))
    return found


def set_value(record: StackRecord, type_: str, name: str | None, path: str, value) -> StackRecord:
    """Set (or, with DELETE, remove) `path` ("a.b.0.c") in the inputs and the outputs of the named
    resources, as a changed argument would show in both."""
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for resource in named(record, type_, name):
        for side in ("inputs", "outputs"):
            target = resource[side]
            for key in keys[:-1]:
                if isinstance(key, str) and key not in target:
                    target[key] = {}
                target = target[key]
            if value is DELETE:
                if isinstance(target, dict):
                    target.pop(keys[-1], None)
                else:
                    del target[keys[-1]]
            else:
                target[keys[-1]] = copy.deepcopy(value)
    return record


def drop(record: StackRecord, type_: str, name: str | None = None) -> StackRecord:
    """Remove the named resources (and their children) as if they were never declared."""
    gone = {r["urn"] for r in named(record, type_, name)}
    while True:
        more = {r["urn"] for r in record.resources if r["parent"] in gone} - gone
        if not more:
            break
        gone |= more
    record.resources[:] = [r for r in record.resources if r["urn"] not in gone]
    for r in record.resources:
        r["dependencies"] = [u for u in r["dependencies"] if u not in gone]
        r["propertyDependencies"] = {k: [u for u in v if u not in gone] for k, v in r["propertyDependencies"].items()}
    return record


def unit_cases(table: dict, one_mode: dict | None = None, modes=("preview", "update")) -> list:
    """pytest params (policy, edit, fragment, mode) for a unit table {policy: [(label, edit[,
    fragment[, mode]]), ...]}: each entry in every mode, or only in the mode its fourth item or
    `one_mode[label]` names (a fault that exists in one mode only, e.g. ids unknown in preview)."""
    params = []
    for policy, entries in table.items():
        for label, edit, *rest in entries:
            fragment = rest[0] if rest else None
            only = rest[1] if len(rest) > 1 else (one_mode or {}).get(label)
            params += [
                pytest.param(policy, edit, fragment, mode, id=f"{policy}:{label}:{mode}")
                for mode in modes
                if only in (None, mode)
            ]
    return params


def assert_refused(record: StackRecord, policy: str, message: str, level: str = "mandatory") -> None:
    """The policy reports at `level`, every report at that level, one of them saying `message`."""
    found = verdict(record, policy)
    assert found, f"{policy} reported nothing"
    assert {d.level for d in found} == {level}, [(d.level, d.message) for d in found]
    assert any(message in d.message for d in found), [d.message for d in found]
