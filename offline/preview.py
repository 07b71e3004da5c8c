"""Offline preview: run the program for a stack under mocks, then gate it with the policy packs.

    python -m offline.preview --stack prod [--mode preview|update|both] [--json PATH]
    python -m offline.preview --all-stacks

Exit status: 0 when every mandatory policy passes, 1 when one is violated, 2 on bad input
(stack config, policy config, arguments), with a one-line message naming the key and rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from offline.program import PROJECT_DIR, StackFileError, load_project, load_stack_config, stack_names

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise _BadInput(f"arguments: {message}")


class _BadInput(Exception):
    pass


def default_packs(project_dir: Path = PROJECT_DIR) -> list[Path]:
    return sorted(p.parent for p in (project_dir / "policies").glob("*/PulumiPolicy.yaml"))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m offline.preview", description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--stack", default="prod", help="stack to preview (Pulumi.<stack>.yaml); default prod")
    target.add_argument("--all-stacks", action="store_true", help="every Pulumi.<stack>.yaml in the project")
    parser.add_argument("--mode", choices=["preview", "update", "both"], default="preview",
                        help="preview: ids and computed outputs unknown, as in a first `pulumi preview`; "
                             "update: everything known, as after `pulumi up`; default preview")
    parser.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE",
                        help="override a stack config value for this run, as `pulumi preview -c` would "
                             "(lists as JSON), e.g. -c scanner:natMode=regional")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every registered resource to PATH")
    parser.add_argument("--diagram", type=Path, metavar="PATH",
                        help="write the Mermaid diagram to PATH (default build/<stack>-diagram.md)")
    parser.add_argument("--policy-pack", type=Path, action="append", metavar="DIR",
                        help="policy pack directory (repeatable); default every pack under policies/")
    parser.add_argument("--policy-config-dir", type=Path, metavar="DIR",
                        help="directory of <pack-dir>.json enforcement overrides (the --policy-pack-config "
                             "format); default policies/config/<stack>")
    parser.add_argument("--no-gate", action="store_true", help="record and summarise only, run no policy pack")
    parser.add_argument("--quiet", action="store_true", help="print only the gate result lines")
    return parser


def preview_stack(stack: str, mode: str, args, out) -> int:
    """One stack in one mode. Returns the exit status."""
    import pulumi

    from offline import report
    from offline.gate import PolicyGate
    from offline.program import run_program

    config = load_stack_config(stack)
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or ":" not in key:
            raise _BadInput(f"--config: {item!r} must be namespace:key=value, e.g. scanner:natMode=regional")
        config[key] = value
    packs = [] if args.no_gate else [p.resolve() for p in (args.policy_pack or default_packs())]
    if args.policy_config_dir and not args.policy_config_dir.is_dir():
        raise _BadInput(f"--policy-config-dir: {args.policy_config_dir} is not a directory")
    config_dir = args.policy_config_dir or PROJECT_DIR / "policies" / "config" / stack
    policy_configs = {}
    for pack in packs:
        candidate = config_dir / f"{pack.name}.json"
        policy_configs[pack] = candidate if candidate.exists() else None

    gate = PolicyGate(packs, project=load_project()["name"], stack=stack, dry_run=mode == "preview",
                      stack_config=config, policy_configs=policy_configs) if packs else None
    try:
        if gate:
            gate.start()  # packs boot while the program runs
        try:
            record = run_program(stack, mode, config=config)  # type: ignore[arg-type]
        except pulumi.RunError as exc:
            raise _BadInput(str(exc)) from None
        result = gate.analyze(record.resources) if gate else None
    finally:
        if gate:
            gate.close()

    text = report.summary(record, result)
    if args.quiet:
        text = "\n".join(line for line in text.splitlines() if line.startswith(("  [", "Result", "Stack ")))
    print(text, file=out)
    diagram_path = args.diagram or PROJECT_DIR / "build" / f"{stack}-diagram.md"
    diagram_path.parent.mkdir(parents=True, exist_ok=True)
    diagram_path.write_text(report.diagram(record))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record.to_json(), indent=2, sort_keys=False) + "\n")
    return EXIT_OK if result is None or result.passed else EXIT_VIOLATION


def main(argv: list[str] | None = None, out=None) -> int:
    from offline.gate import GateError, PolicyConfigError

    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
        stacks = stack_names() if args.all_stacks else [args.stack]
        if args.all_stacks and (args.json or args.diagram):
            raise _BadInput("arguments: --json and --diagram take one stack; drop --all-stacks")
        modes = ["preview", "update"] if args.mode == "both" or args.all_stacks else [args.mode]
        status = EXIT_OK
        for stack in stacks:
            for mode in modes:
                if len(stacks) * len(modes) > 1:
                    print(f"=== {stack} / {mode}", file=out)
                status = max(status, preview_stack(stack, mode, args, out))
        return status
    except (_BadInput, StackFileError, PolicyConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except GateError as exc:
        print(f"error: policy gate: {exc}", file=sys.stderr)
        return EXIT_VIOLATION


if __name__ == "__main__":
    sys.exit(main())
