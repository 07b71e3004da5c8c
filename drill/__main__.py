"""The zone drill, from where `pulumi up` runs.

    python -m drill plan --stack prod --zone us-east-1b [--record build/prod.json] [--json PATH]
    python -m drill plan --stack prod --zone random [--seed N]

`plan` works offline, from the record the offline preview writes (`make preview STACK=prod`
writes build/prod.json): what the zone's experiment takes out of each tier, the resources it
targets, when it stops, and what must keep serving from the other zones.

Exit status: 0 done, 2 bad arguments or record (one line).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from policies.common import contract

EXIT_OK, EXIT_BAD_INPUT = 0, 2
TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"


class BadInput(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise BadInput(f"arguments: {message}")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m drill", description="The zone drill.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = sub.add_parser("plan", help="what a zone's drill takes out and what keeps serving")
    plan.add_argument("--stack", required=True, help="the stack (its record is build/<stack>.json)")
    plan.add_argument("--zone", required=True, help="a zone of the stack, or random")
    plan.add_argument("--record", type=Path, help="the preview's JSON record (default build/<stack>.json)")
    plan.add_argument("--seed", type=int, help="seed for --zone random")
    plan.add_argument("--json", type=Path, help="also write the plan as JSON here")
    return p


def load_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"--record: {path} does not exist (make preview STACK=<stack> writes it)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"--record: {path} is not a preview record ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("resources"), list):
        raise BadInput(f"--record: {path} is not a preview record (no resources)")
    return record


def zone_plan(record: dict[str, Any], zone: str, seed: int | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    plans = ((record.get("outputs") or {}).get("drill") or {}).get("plans") or {}
    templates = {
        (r["inputs"].get("tags") or {}).get(contract.ZONE_TAG): r for r in record["resources"] if r["type"] == TEMPLATE
    }
    zones = sorted(z for z in plans if z in templates)
    if not zones:
        raise BadInput("--record: the record has no zone drill (an FIS experiment template per zone)")
    if zone == "random":
        zone = random.Random(seed).choice(zones)
    elif zone not in zones:
        raise BadInput(f"--zone: {zone!r} is not a zone of the stack's drills ({', '.join(zones)}, or random)")
    return zone, plans[zone], templates[zone]


#: How a preview record writes a value known only once deployed.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _targets(template: dict[str, Any], plan: dict[str, Any]) -> dict[str, str]:
    named = {a["name"]: a.get("resources") or [] for a in plan["actions"]}
    out = {}
    for target in template["inputs"].get("targets") or []:
        parts = []
        arns = list(target.get("resourceArns") or [])
        words = named.get(target["name"], [])
        for i, arn in enumerate(arns):
            what = words[i] if i < len(words) else "a resource"
            parts.append(f"{what} ({arn.split(':', 5)[-1]})" if isinstance(arn, str) and arn != UNKNOWN else what)
        for tag in target.get("resourceTags") or []:
            parts.append(f"tagged {tag['key']}={tag['value']}")
        for f in target.get("filters") or []:
            parts.append(f"{f['path']} in {', '.join(f['values'])}")
        out[target["name"]] = f"{target['resourceType']}: {'; '.join(parts) or 'all'}"
    return out


def describe(stack: str, zone: str, plan: dict[str, Any], template: dict[str, Any]) -> list[str]:
    targets = _targets(template, plan)
    stops = [c for c in template["inputs"].get("stopConditions") or [] if c.get("source") == "aws:cloudwatch:alarm"]
    lines = [f"Zone drill of {stack}, {zone}: {len(plan['actions'])} actions at once"]
    for action in plan["actions"]:
        params = ", ".join(f"{k}={v}" for k, v in sorted(action["parameters"].items()))
        lines.append(
            f"  [{action['tier']}] {action['name']}: {action['actionId']}{' (' + params + ')' if params else ''}"
        )
        lines.append(f"      loses {action['loses']}")
        lines.append(f"      targets {targets.get(action['name'], '?')}")
    lines.append("  keeps serving:")
    lines += [f"      {k}" for k in plan["keeps"]]
    if stops:
        names = [re.sub(r".*:alarm:", "", str(c.get("value"))) for c in stops if c.get("value") not in (None, UNKNOWN)]
        lines.append(
            f"  stops when any of these goes into alarm: {', '.join(names)}"
            if names
            else f"  stops when any of {len(stops)} alarms goes into alarm (the other zones' composites)"
        )
    else:
        lines.append("  no stop condition: this drill tests the alerting (scanner:drillStopConditions: none)")
    return lines


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    try:
        args = parser().parse_args(argv)
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", args.stack):
            raise BadInput(f"--stack: {args.stack!r} is not a stack name")
        record = load_record(args.record or Path("build") / f"{args.stack}.json")
        zone, plan, template = zone_plan(record, args.zone, args.seed)
        if args.json is not None and not args.json.parent.is_dir():
            raise BadInput(f"--json: {args.json.parent} is not a directory")
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(describe(args.stack, zone, plan, template)), file=out)
    if args.json is not None:
        args.json.write_text(json.dumps({"stack": args.stack, **plan}, indent=2) + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
