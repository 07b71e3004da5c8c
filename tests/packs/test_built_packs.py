"""`make packs` (offline/packs.py): each pack built into a directory of its own, with the shared
helpers copied in, runs through the gate of record exactly as its source does, imports nothing
from outside its directory, and carries a version that moves whenever what it ships changes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import PACKS, run

from offline import packs
from offline.gate import PolicyGate

pytestmark = pytest.mark.xdist_group("built-packs")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("packs")
    return {p.name: p for p in packs.build(out)}


def test_every_pack_is_built_with_its_files_and_the_shared_helpers(built):
    assert set(built) == {p.name for p in PACKS}
    for name, target in built.items():
        names = {f.name for f in target.iterdir()}
        assert {"PulumiPolicy.yaml", "__main__.py", "requirements.txt", "contract.py", "stack_graph.py"} <= names
        assert packs.version(target) == packs.version(packs.POLICIES / name)
    assert "prices.json" in {f.name for f in built["cost"].iterdir()}


@pytest.mark.parametrize("pack", [p.name for p in PACKS])
def test_each_built_pack_imports_nothing_from_outside_its_directory(built, pack):
    """Every module of the pack imported in an isolated interpreter (no project on the path, no
    working directory), with the pack's folder first, as the engine runs it."""
    target = built[pack]
    modules = sorted(f.stem for f in target.glob("*.py") if f.name != "__main__.py")
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "assert not any(p.endswith('/main') or p.endswith('policies/common') for p in sys.path), sys.path\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "assert 'policies' not in sys.modules, 'imported the project'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=target.parent, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.gate
def test_the_gate_answers_the_same_from_the_built_packs(built):
    """prod over its budget (an advisory), through the pack processes: the built packs and the
    sources say exactly the same."""
    record = run("prod", "preview", **{"scanner:monthlyBudgetUsd": "1000"})

    def answer(dirs):
        gate = PolicyGate(dirs, project=record.project, stack=record.stack, dry_run=True, stack_config=record.config)
        gate.start()
        try:
            result = gate.analyze(record.resources)
        finally:
            gate.close()
        return sorted((d.pack, d.policy, d.level, d.message) for d in result.diagnostics), [
            (p.name, p.version) for p in result.packs
        ]

    from_sources = answer(list(PACKS))
    from_built = answer([built[p.name] for p in PACKS])
    assert from_built == from_sources
    assert any(policy == "within-monthly-budget" for _, policy, _, _ in from_built[0])


def test_every_pack_s_version_moves_with_what_it_ships():
    recorded = json.loads(packs.LOCK.read_text())
    assert packs.stale(recorded) == []


def test_a_changed_pack_with_the_same_version_is_caught(monkeypatch):
    recorded = json.loads(packs.LOCK.read_text())
    recorded["cost"]["digest"] = "0" * 64
    [problem] = packs.stale(recorded)
    assert problem.startswith("cost: its policies changed but its version is still ")
    recorded = json.loads(packs.LOCK.read_text())
    recorded["cost"] = {"digest": "0" * 64, "version": "0.0.1"}
    assert packs.stale(recorded) == ["cost: policies/versions.json is out of date (python -m offline.packs --lock)"]


def test_the_changelog_names_the_project_s_and_every_pack_s_version():
    text = (packs.ROOT / "CHANGELOG.md").read_text()
    project = (packs.ROOT / "VERSION").read_text().strip()
    assert project.count(".") == 2 and f"## {project} " in text
    for pack in packs.pack_dirs():
        name = (pack / "PulumiPolicy.yaml").read_text()
        assert name and f"{packs.version(pack)}" in text, pack.name
    # The newest entry is the project's version.
    assert text.split("\n## ", 2)[1].startswith(project)


def test_lock_refuses_to_record_a_change_under_the_same_version(tmp_path, monkeypatch, capsys):
    recorded = json.loads(packs.LOCK.read_text())
    recorded["cost"]["digest"] = "0" * 64
    lock = tmp_path / "versions.json"
    lock.write_text(json.dumps(recorded))
    monkeypatch.setattr(packs, "LOCK", lock)
    assert packs.main(["--lock"]) == 2
    assert "cost: its policies changed but its version is still" in capsys.readouterr().err
    assert json.loads(lock.read_text()) == recorded


def test_a_built_pack_keeps_its_virtualenv_out_of_what_it_publishes(built):
    for target in built.values():
        assert (target / ".gitignore").read_text().splitlines()[0] == "venv/"
