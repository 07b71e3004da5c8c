"""Which policy overrides apply to a stack: its environment's first, then the stack's own.

    policies/config/<environment>/<pack-dir>.json     every stack of that environment
    policies/config/stacks/<stack>/<pack-dir>.json    one stack, on top

Each file is in the format `pulumi preview --policy-pack-config` takes. A stack copied to a new
name is judged by its `scanner:environment` alone; only a deliberate per-stack file changes
that. The Pulumi CLI takes one file per pack, so `--write DIR` merges the layers into one file
per pack and prints the flags that use them:

    python -m offline.policy_config --stack prod --write build/policy-config
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from offline.gate import PolicyConfigError, load_policy_config, overlay_policy_config
from offline.program import PROJECT_DIR, StackFileError, load_stack_config

CONFIG_DIR = PROJECT_DIR / "policies" / "config"
ENVIRONMENT_KEY = "scanner:environment"


def pack_dirs(project_dir: Path = PROJECT_DIR) -> list[Path]:
    """Every policy pack of the project (a directory under policies/ with a PulumiPolicy.yaml)."""
    return sorted(p.parent for p in (project_dir / "policies").glob("*/PulumiPolicy.yaml"))


def layers(
    stack: str, environment: str | None, config_dir: Path = CONFIG_DIR, packs: list[Path] | None = None
) -> dict[str, list[Path]]:
    """Pack directory name -> its override files for this stack, environment first. A file that
    names no pack is an error (a typo would silently apply nothing)."""
    names = {p.name for p in (packs if packs is not None else pack_dirs())}
    found: dict[str, list[Path]] = {}
    folders = [config_dir / environment] if environment else []
    folders.append(config_dir / "stacks" / stack)
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix != ".json" or path.stem not in names:
                raise PolicyConfigError(
                    f"{path}: names no policy pack (packs: {', '.join(sorted(names))}); name it <pack-dir>.json"
                )
            found.setdefault(path.stem, []).append(path)
    return found


def stack_layers(stack: str, config: dict[str, str], config_dir: Path = CONFIG_DIR) -> dict[str, list[Path]]:
    return layers(stack, config.get(ENVIRONMENT_KEY), config_dir)


def merged(files: list[Path]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for path in files:
        result = overlay_policy_config(result, load_policy_config(path))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.policy_config", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--write", type=Path, metavar="DIR", help="write one merged file per pack into DIR")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        found = stack_layers(args.stack, load_stack_config(args.stack))
        flags = []
        # One file per pack, `{}` where nothing applies: the CLI pairs each --policy-pack-config
        # with the --policy-pack at the same position.
        for pack in [p.name for p in pack_dirs()] if args.write else sorted(found):
            files = found.get(pack, [])
            document = json.dumps(merged(files), indent=2, sort_keys=True) + "\n"
            if args.write:
                target = args.write / f"{pack}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(document)
                flags.append(f"--policy-pack policies/{pack} --policy-pack-config {target}")
            else:
                print(f"# {pack}: {' + '.join(str(f) for f in files)}\n{document}", end="")
    except (StackFileError, PolicyConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: --write: cannot write {exc.filename} ({exc.strerror})", file=sys.stderr)
        return 2
    if args.write:
        print(" ".join(flags))
    elif not found:
        print(f"# no policy overrides apply to stack {args.stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
