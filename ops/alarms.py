"""Mute and unmute a stack's alarms: what the zone drill calls "turn off all alerts", and what a
maintenance window needs. Muting disables an alarm's actions (CloudWatch DisableAlarmActions):
the alarm keeps evaluating and changing state, and its history keeps the drill's record, but it
notifies nobody until it is unmuted. Nothing else about an alarm changes.

    python -m ops.alarms mute   --prefix scanner-prod [--tier data] [--zone us-east-1a] [--name 'queue-*'] [--dry-run]
    python -m ops.alarms unmute --prefix scanner-prod [the same selection]
    python -m ops.alarms list   --prefix scanner-prod [the same selection]

The selection: every metric and composite alarm whose name starts with `<prefix>-`, narrowed by
the alarm's `scanner.io/tier` and `scanner.io/zone` tags and by name patterns (shell-style,
matched against the name without the prefix); the selections combine with AND, repeated flags
with OR. It prints each alarm it changes, one per line. The stack's region is searched, and
us-east-1 too (`--global-region`), where a stack elsewhere keeps its CloudFront alarm and that
tier's composite.

A zone's selection (`--zone`) holds that zone's alarms and its composite, not the tier
composites, which still notify for them (they cover the other zones too); the command says so,
and a second run with `--name 'tier-*'` mutes them as well.

Exit status: 0 done (or nothing selected), 2 bad arguments (one line), 3 AWS refused a call.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from policies.common import contract

EXIT_OK, EXIT_BAD_INPUT, EXIT_AWS = 0, 2, 3
#: DisableAlarmActions and EnableAlarmActions take at most 100 alarm names a call.
BATCH = 100
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class BadInput(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise BadInput(f"arguments: {message}")


@dataclass(frozen=True)
class Alarm:
    name: str
    arn: str
    actions_enabled: bool


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m ops.alarms", description="Mute or unmute a stack's alarms (their actions).")
    p.add_argument("action", choices=("mute", "unmute", "list"))
    p.add_argument("--prefix", required=True, help="the stack's name prefix (scanner-<stack>)")
    p.add_argument("--tier", action="append", default=[], help="only alarms of this tier (repeatable)")
    p.add_argument("--zone", action="append", default=[], help="only alarms of this zone (repeatable)")
    p.add_argument("--name", action="append", default=[], help="only names matching this pattern (repeatable)")
    p.add_argument("--region", help="the stack's AWS region (default: the environment's)")
    p.add_argument(
        "--global-region",
        default="us-east-1",
        help="also searched: where CloudFront's alarm lives (default us-east-1)",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if not _PREFIX.match(args.prefix):
        raise BadInput(f"--prefix: {args.prefix!r} is not a stack name prefix such as scanner-prod")
    for zone in args.zone:
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$", zone):
            raise BadInput(f"--zone: {zone!r} is not an availability zone name such as us-east-1a")
    return args


def alarms(cloudwatch: Any, prefix: str) -> Iterator[Alarm]:
    """Every metric and composite alarm whose name starts with `<prefix>-`."""
    paginator = cloudwatch.get_paginator("describe_alarms")
    pages = paginator.paginate(AlarmNamePrefix=f"{prefix}-", AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    for page in pages:
        for kind in ("MetricAlarms", "CompositeAlarms"):
            for a in page.get(kind, []):
                yield Alarm(a["AlarmName"], a["AlarmArn"], bool(a.get("ActionsEnabled", True)))


def selected(cloudwatch: Any, found: Iterable[Alarm], args: argparse.Namespace) -> list[Alarm]:
    out = []
    for alarm in found:
        short = alarm.name[len(args.prefix) + 1 :]
        if args.name and not any(fnmatchcase(short, pattern) for pattern in args.name):
            continue
        if args.tier or args.zone:
            tags = {t["Key"]: t["Value"] for t in cloudwatch.list_tags_for_resource(ResourceARN=alarm.arn)["Tags"]}
            if args.tier and tags.get(contract.TIER_TAG) not in args.tier:
                continue
            if args.zone and tags.get(contract.ZONE_TAG) not in args.zone:
                continue
        out.append(alarm)
    return out


def apply(cloudwatch: Any, action: str, chosen: list[Alarm]) -> None:
    call = cloudwatch.disable_alarm_actions if action == "mute" else cloudwatch.enable_alarm_actions
    names = [a.name for a in chosen]
    for start in range(0, len(names), BATCH):
        call(AlarmNames=names[start : start + BATCH])


def main(argv: list[str] | None = None, cloudwatch: Any = None, out=None) -> int:
    """`cloudwatch`: one client to use instead of a client per region (the tests' stand-in)."""
    out = out or sys.stdout
    try:
        args = parse(argv)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if cloudwatch is not None:
            clients = [cloudwatch]
        else:
            import boto3

            home = boto3.session.Session(region_name=args.region).region_name
            clients = [boto3.client("cloudwatch", region_name=r) for r in dict.fromkeys((home, args.global_region))]
        found = [(client, a) for client in clients for a in selected(client, alarms(client, args.prefix), args)]
        chosen = [a for _, a in found]
        if args.action == "list":
            for a in chosen:
                print(f"{a.name}\t{'on' if a.actions_enabled else 'muted'}", file=out)
            return EXIT_OK
        change = [(client, a) for client, a in found if a.actions_enabled == (args.action == "mute")]
        if not args.dry_run:
            for client in clients:
                apply(client, args.action, [a for c, a in change if c is client])
        verb = {"mute": "muted", "unmute": "unmuted"}[args.action]
        for _, a in change:
            print(f"{'would be ' if args.dry_run else ''}{verb}: {a.name}", file=out)
        print(
            f"{len(change)} of {len(chosen)} selected alarm(s) {verb}{' (dry run)' if args.dry_run else ''}", file=out
        )
        if args.zone and args.action == "mute" and not any(a.name.startswith(f"{args.prefix}-tier-") for a in chosen):
            print(
                "note: the tier composites still notify for these alarms (they cover every zone); "
                f"python -m ops.alarms mute --prefix {args.prefix} --name 'tier-*' mutes them too",
                file=out,
            )
        return EXIT_OK
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS: {exc}", file=sys.stderr)
        return EXIT_AWS


if __name__ == "__main__":
    sys.exit(main())
