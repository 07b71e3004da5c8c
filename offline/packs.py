"""`python -m offline.packs`: the policy packs as self-contained directories, and their versions
kept honest.

    python -m offline.packs [--out build/packs]     # make packs
    python -m offline.packs --lock                  # record the packs' versions and contents

A pack in `policies/<pack>/` imports the helpers every pack shares from `policies/common/` (its
`__main__.py` puts both folders on `sys.path`). `pulumi policy publish` uploads one directory,
so the built pack holds its own files and a copy of `policies/common/`'s modules and data beside
them: it runs from `pulumi preview --policy-pack build/packs/<pack>` and publishes unchanged.

`policies/versions.json` records, per pack, its version and a digest of what it enforces (its
files and the shared helpers it ships). A pack whose digest changed while its version did not
fails the tests (tests/packs/test_built_packs.py): a team enforcing version 0.7.0 must get the
same rules from every copy of 0.7.0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
COMMON = POLICIES / "common"
LOCK = POLICIES / "versions.json"
EXIT_OK, EXIT_BAD_INPUT = 0, 2
SHIPPED = ("*.py", "*.json", "*.yaml", "*.txt")


def pack_dirs() -> list[Path]:
    return sorted(p.parent for p in POLICIES.glob("*/PulumiPolicy.yaml"))


def version(pack: Path) -> str:
    found = re.search(r"^version:\s*(\S+)\s*$", (pack / "PulumiPolicy.yaml").read_text(), flags=re.M)
    if not found:
        raise ValueError(f"{pack.name}/PulumiPolicy.yaml: no version")
    return found.group(1)


def _files(folder: Path) -> list[Path]:
    return sorted({f for pattern in SHIPPED for f in folder.glob(pattern) if f.is_file()})


def shipped(pack: Path) -> dict[str, Path]:
    """What a built pack holds: name in the pack -> source file (the pack's own win a clash)."""
    files = {f.name: f for f in _files(COMMON)}
    files.update({f.name: f for f in _files(pack)})
    return files


def digest(pack: Path) -> str:
    sha = hashlib.sha256()
    for name, source in sorted(shipped(pack).items()):
        if name == "PulumiPolicy.yaml":
            # The version line is what the digest is compared with: leave it out.
            text = re.sub(r"^version:.*$", "", source.read_text(), flags=re.M).encode()
        else:
            text = source.read_bytes()
        sha.update(name.encode() + b"\0" + text + b"\0")
    return sha.hexdigest()


def build(out: Path, with_venv: bool = False) -> list[Path]:
    """Each pack into `out/<pack>`. The Pulumi CLI runs a local pack with the virtualenv its
    PulumiPolicy.yaml names (`venv`) and does not make one: `with_venv` makes it, with the pack's
    pinned requirements (as `pulumi install -C <pack>` would); `.gitignore` keeps it out of what
    `pulumi policy publish` uploads."""
    built = []
    for pack in pack_dirs():
        target = out / pack.name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name, source in shipped(pack).items():
            shutil.copyfile(source, target / name)
        (target / ".gitignore").write_text("venv/\n__pycache__/\n")
        if with_venv:
            import subprocess

            subprocess.run([sys.executable, "-m", "venv", str(target / "venv")], check=True)
            pip = [str(target / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            subprocess.run(
                [*pip, "-r", str(target / "requirements.txt"), "-c", str(ROOT / "constraints.txt")], check=True
            )
        built.append(target)
    return built


def lock() -> dict[str, dict[str, str]]:
    return {pack.name: {"version": version(pack), "digest": digest(pack)} for pack in pack_dirs()}


def stale(recorded: dict[str, dict[str, str]]) -> list[str]:
    """Packs whose contents changed since their version was recorded, without a new version."""
    problems = []
    for name, now in lock().items():
        before = recorded.get(name)
        if before is None:
            problems.append(f"{name}: not in policies/versions.json (python -m offline.packs --lock)")
        elif now["digest"] != before["digest"] and now["version"] == before["version"]:
            problems.append(
                f"{name}: its policies changed but its version is still {now['version']}: raise the version in "
                f"policies/{name}/PulumiPolicy.yaml, add a CHANGELOG.md entry, then python -m offline.packs --lock"
            )
        elif now["digest"] != before["digest"] or now["version"] != before["version"]:
            problems.append(f"{name}: policies/versions.json is out of date (python -m offline.packs --lock)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.packs", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "packs", help="where (default build/packs)")
    parser.add_argument("--lock", action="store_true", help="record the packs' versions and digests")
    parser.add_argument("--venv", action="store_true", help="give each built pack its virtualenv (needs the index)")
    args = parser.parse_args(argv)
    if args.lock:
        recorded = json.loads(LOCK.read_text()) if LOCK.exists() else {}
        unbumped = [p for p in stale(recorded) if "its version is still" in p]
        if unbumped:
            # Recording a change under a version already recorded would hide it.
            for problem in unbumped:
                print(f"error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        LOCK.write_text(json.dumps(lock(), indent=2, sort_keys=True) + "\n")
        print(f"wrote {LOCK.relative_to(ROOT)}")
        return EXIT_OK
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out: {args.out} is not a directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    for target in build(args.out, with_venv=args.venv):
        print(f"{target}: {version(target)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
