"""Offline preview: run the program for a stack under mocks, then gate it with the policy packs.

    python -m offline.preview --stack prod [--mode preview|update|both] [--json PATH]
    python -m offline.preview --all-stacks
    python -m offline.preview --project bootstrap --all-stacks    (the bootstrap program)

Exit status, what CI can rely on:
  0  every mandatory policy passes
  1  a mandatory policy is violated (each is named, with the resource and the key to change)
  2  bad input: stack file or config, policy config, arguments, a pack directory, or an output
     file that cannot be written; one line per problem, nothing written, no verdict printed
  3  the gate could not finish: the program or a pack failed (a defect, not a verdict)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from offline.program import PROJECT_DIR, StackFileError, load_project, load_stack_config, stack_names

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT, EXIT_BROKEN = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise BadInput(f"arguments: {message}")


class BadInput(Exception):
    """Input the user must fix; the message is one or more lines, each naming what to change."""


class Broken(Exception):
    """The program or a pack failed: no verdict could be reached."""


def default_packs(project_dir: Path = PROJECT_DIR) -> list[Path]:
    from offline.policy_config import pack_dirs

    return pack_dirs(project_dir)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m offline.preview", description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--stack", default="prod", help="stack to preview (Pulumi.<stack>.yaml); default prod")
    target.add_argument("--all-stacks", action="store_true", help="every Pulumi.<stack>.yaml in the project")
    parser.add_argument(
        "--project",
        type=Path,
        default=PROJECT_DIR,
        metavar="DIR",
        help="the Pulumi project to run (a directory with Pulumi.yaml and __main__.py); default the "
        "main program, `bootstrap` for the pipeline's",
    )
    parser.add_argument(
        "--mode",
        choices=["preview", "update", "both"],
        default="preview",
        help="preview: ids and computed outputs unknown, as in a first `pulumi preview`; "
        "update: everything known, as after `pulumi up`; default preview",
    )
    parser.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack config value for this run, as `pulumi preview -c` would "
        "(lists as JSON), e.g. -c scanner:natMode=regional",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every registered resource to PATH")
    parser.add_argument(
        "--diagram",
        type=Path,
        metavar="PATH",
        help="write the Mermaid diagram to PATH (default build/<stack>-diagram.md)",
    )
    parser.add_argument(
        "--policy-pack",
        type=Path,
        action="append",
        metavar="DIR",
        help="policy pack directory (repeatable); default every pack under policies/",
    )
    parser.add_argument(
        "--policy-config-dir",
        type=Path,
        metavar="DIR",
        help="directory of <pack-dir>.json overrides (the --policy-pack-config format) used "
        "instead of the environment's and the stack's (offline/policy_config.py)",
    )
    parser.add_argument(
        "--sarif", type=Path, metavar="PATH", help="write the gate's verdicts as SARIF 2.1.0 (every stack and mode run)"
    )
    parser.add_argument(
        "--junit", type=Path, metavar="PATH", help="write the gate's verdicts as JUnit XML (a case per policy)"
    )
    parser.add_argument("--no-gate", action="store_true", help="record and summarise only, run no policy pack")
    parser.add_argument("--quiet", action="store_true", help="print only the gate's verdict and violations")
    return parser


# ----- checks before anything runs -------------------------------------------------------------


def check_packs(packs: list[Path]) -> list[Path]:
    """Each --policy-pack must be a pack directory: refused here, before any process starts."""
    for pack in packs:
        if not pack.is_dir():
            raise BadInput(f"--policy-pack: {pack} is not a directory")
        if not (pack / "PulumiPolicy.yaml").is_file():
            raise BadInput(f"--policy-pack: {pack} is not a policy pack (no PulumiPolicy.yaml)")
    return [p.resolve() for p in packs]


def check_project(path: Path) -> Path:
    """--project must be a Pulumi project directory with its program."""
    if not path.is_dir():
        raise BadInput(f"--project: {path} is not a directory")
    if not (path / "Pulumi.yaml").is_file() or not (path / "__main__.py").is_file():
        raise BadInput(f"--project: {path} is not a Pulumi project (no Pulumi.yaml and __main__.py)")
    resolved = path.resolve()
    return PROJECT_DIR if resolved == PROJECT_DIR else resolved


def check_writable(path: Path, flag: str) -> None:
    """Refuse an output path that cannot be written, before the run (so nothing is written and
    no verdict is printed for a run whose output would be lost)."""
    if path.is_dir():
        raise BadInput(f"{flag}: {path} is a directory")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise BadInput(f"{flag}: cannot write {path} ({ancestor} is not a directory)")
    if not os.access(ancestor, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadInput(f"{flag}: cannot write {path} (permission denied)")


def write_all(files: dict[Path, tuple[str, str]]) -> None:
    """Write every output or none: each goes to a temporary file beside its target first, and
    only when all of them are written are they moved into place."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, (flag, text) in files.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle, staging_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
                with os.fdopen(handle, "w") as stream:
                    stream.write(text)
            except OSError as exc:
                raise BadInput(f"{flag}: cannot write {path} ({exc.strerror})") from None
            staged.append((Path(staging_name), path))
        for temporary, path in staged:
            os.replace(temporary, path)
        staged = []
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def config_for(stack: str, overrides: list[str], project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    config = load_stack_config(stack, project_dir)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or ":" not in key:
            raise BadInput(f"--config: {item!r} must be namespace:key=value, e.g. scanner:natMode=regional")
        config[key] = value
    return config


# ----- one stack ---------------------------------------------------------------------------------


def gate_class():
    """The gate that judges a run (imported on use: argument errors never pay for gRPC)."""
    from offline.gate import PolicyGate

    return PolicyGate


def preview_stack(stack: str, mode: str, args, out, packs: list[Path]) -> int:
    """One stack in one mode. Returns the exit status; raises BadInput or Broken."""
    import pulumi

    from offline import report, reports
    from offline.gate import GateError, PackStartError, PolicyConfigError
    from offline.policy_config import stack_layers
    from offline.program import run_program

    project_dir = args.project
    main_project = project_dir == PROJECT_DIR
    config = config_for(stack, args.config, project_dir)
    try:
        if args.policy_config_dir:
            policy_configs = {
                p: [args.policy_config_dir / f"{p.name}.json"]
                for p in packs
                if (args.policy_config_dir / f"{p.name}.json").exists()
            }
        else:
            # Another project's stacks are not the main program's: only its environment's layer.
            found = stack_layers(stack if main_project else f"{load_project(project_dir)['name']}.{stack}", config)
            policy_configs = {p: found.get(p.name, []) for p in packs}
    except PolicyConfigError as exc:
        raise BadInput(str(exc)) from None

    gate = (
        gate_class()(
            packs,
            project=load_project(project_dir)["name"],
            stack=stack,
            dry_run=mode == "preview",
            stack_config=config,
            policy_configs=policy_configs,
        )
        if packs
        else None
    )
    try:
        if gate:
            gate.start()  # packs boot while the program runs
        try:
            record = run_program(stack, mode, project_dir, config=config)  # type: ignore[arg-type]
        except pulumi.RunError as exc:
            raise BadInput(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 (a defect of the program: one line, exit 3)
            if os.environ.get("OFFLINE_TRACEBACK"):
                raise
            raise Broken(
                f"the program failed under the offline mocks: {type(exc).__name__}: {exc} "
                "(OFFLINE_TRACEBACK=1 shows where)"
            ) from None
        try:
            result = gate.analyze(record.resources) if gate else None
        except (PackStartError, PolicyConfigError) as exc:
            raise BadInput(str(exc)) from None
        except GateError as exc:
            raise Broken(f"policy gate: {exc}") from None
    finally:
        if gate:
            gate.close()

    default_diagram = (
        PROJECT_DIR / "build" / (f"{stack}-diagram.md" if main_project else f"{record.project}-{stack}-diagram.md")
    )
    outputs = {(args.diagram or default_diagram): ("--diagram", report.diagram(record))}
    if args.json:
        document = {**record.to_json(), "gate": reports.diagnostics_json(result)}
        outputs[args.json] = ("--json", json.dumps(document, indent=2, sort_keys=False) + "\n")
    if result is not None:
        JUDGED.append(reports.Judged(stack, mode, result))
    write_all(outputs)

    text = report.summary(record, result)
    if args.quiet:
        text = report.quiet(text)
    print(text, file=out)
    return EXIT_OK if result is None or result.passed else EXIT_VIOLATION


#: What the gate said in this command's runs, for --sarif and --junit.
JUDGED: list = []


def main(argv: list[str] | None = None, out=None) -> int:
    from offline.gate import PolicyConfigError

    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
        if args.all_stacks and (args.json or args.diagram):
            raise BadInput("arguments: --json and --diagram take one stack; drop --all-stacks")
        if args.policy_config_dir and not args.policy_config_dir.is_dir():
            raise BadInput(f"--policy-config-dir: {args.policy_config_dir} is not a directory")
        packs = [] if args.no_gate else check_packs(args.policy_pack or default_packs())
        for path, flag in (
            (args.json, "--json"),
            (args.diagram, "--diagram"),
            (args.sarif, "--sarif"),
            (args.junit, "--junit"),
        ):
            if path is not None:
                check_writable(path, flag)
        if args.no_gate and (args.sarif or args.junit):
            raise BadInput("arguments: --sarif and --junit report the gate; drop --no-gate")
        args.project = check_project(args.project)
        stacks = stack_names(args.project) if args.all_stacks else [args.stack]
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    JUDGED.clear()
    modes = ["preview", "update"] if args.mode == "both" or args.all_stacks else [args.mode]
    runs = [(stack, mode) for stack in stacks for mode in modes]
    verdicts: list[tuple[str, str, int]] = []
    for stack, mode in runs:
        prefix = f"{stack}/{mode}: " if len(runs) > 1 else ""
        if len(runs) > 1:
            print(f"=== {stack} / {mode}", file=out)
        try:
            status = preview_stack(stack, mode, args, out, packs)
        except (BadInput, StackFileError, PolicyConfigError) as exc:
            for line in str(exc).splitlines():
                print(f"error: {prefix}{line}", file=sys.stderr)
            status = EXIT_BAD_INPUT
        except Broken as exc:
            print(f"error: {prefix}{exc}", file=sys.stderr)
            status = EXIT_BROKEN
        verdicts.append((stack, mode, status))
    if len(runs) > 1:
        names = {
            EXIT_OK: "PASS",
            EXIT_VIOLATION: "FAIL (mandatory violations)",
            EXIT_BAD_INPUT: "BAD INPUT",
            EXIT_BROKEN: "GATE FAILED",
        }
        print("\nStacks:", file=out)
        for stack, mode, status in verdicts:
            print(f"  {stack:<12} {mode:<8} {names[status]}", file=out)
    # Reports only of runs that all reached a verdict: an empty report of a gate that could not
    # run would close every open alert and read as green.
    reached = all(status in (EXIT_OK, EXIT_VIOLATION) for _, _, status in verdicts)
    if (args.sarif or args.junit) and not reached:
        print("error: --sarif/--junit: not written, a run did not reach the gate's verdict", file=sys.stderr)
    if (args.sarif or args.junit) and reached:
        from offline import reports

        files = {}
        if args.sarif:
            files[args.sarif] = ("--sarif", json.dumps(reports.sarif(JUDGED), indent=2) + "\n")
        if args.junit:
            files[args.junit] = ("--junit", reports.junit(JUDGED))
        try:
            write_all(files)
        except BadInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    # The worst outcome decides: a gate that could not finish over a bad input over a violation.
    return max(status for _, _, status in verdicts)


if __name__ == "__main__":
    sys.exit(main())
