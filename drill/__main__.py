"""The zone drill, from where `pulumi up` runs.

    python -m drill plan    --stack prod --zone us-east-1b [--record build/prod.json] [--json PATH]
    python -m drill plan    --stack prod --zone random [--seed N]
    python -m drill report  --prefix scanner-prod [--minutes 60] --out build/pre.json [--region R]
    python -m drill compare build/pre.json build/post.json [--out build/comparison.md]
    python -m drill revert  --prefix scanner-prod [--region R] [--dry-run]
    python -m drill run     --prefix scanner-prod --zone us-east-1b|random [--mute-alerts] --out-dir build/drill
                            --outputs build/prod-outputs.json --kubeconfig build/prod-kubeconfig.json
                            --image-tag TAG [--probes job|local|none] [--no-verdicts]
    python -m drill probe   --run ID [--max-minutes N]      (inside the probe Job: DRILL_PROBES)
    python -m drill ready                                   (the scan pool's start check)

`plan` works offline, from the record the offline preview writes (`make preview STACK=prod`
writes build/prod.json): what the zone's experiment takes out of each tier, the resources it
targets, when it stops, and what must keep serving from the other zones. `report`, `compare`
and `revert` act on the deployed stack (drill/aws.py).

`run` chains them in the runbook's order (drill/run.py). Its probes run in a Job inside the
cluster (`--probes job`, the default: drill/remote.py), in this process when it runs inside the
VPC (`--probes local`), or not at all (`--probes none`: the drill then proves nothing about data).
`--outputs` is `pulumi stack output --json` (its `drill` output says where the probes write
and which secrets they read); `--kubeconfig` is `pulumi stack output kubeconfig --show-secrets`.

Exit status: 0 done, 1 `compare` found an alarm in ALARM after that was not before or `run`'s
drill did not complete or lost a canary, 2 bad arguments, record or report (one line), 3 AWS
refused a call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from policies.common import contract

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_AWS = 0, 1, 2, 3
GLOBAL_REGION = "us-east-1"
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
    rep = sub.add_parser("report", help="every alarm's state and metric over a window")
    rep.add_argument("--prefix", required=True, help="the stack's name prefix (scanner-<stack>)")
    rep.add_argument("--minutes", type=int, default=60, help="the window, ending now (default 60)")
    rep.add_argument("--out", type=Path, required=True, help="the report's JSON (a .md beside it)")
    rep.add_argument("--region", help="the stack's AWS region (default: the environment's)")
    cmp = sub.add_parser("compare", help="two reports side by side")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    cmp.add_argument("--out", type=Path, help="also write the comparison as Markdown here")
    rev = sub.add_parser("revert", help="stop the drills, cancel their zonal shifts, unmute the alarms")
    rev.add_argument("--prefix", required=True, help="the stack's name prefix (scanner-<stack>)")
    rev.add_argument("--region", help="the stack's AWS region (default: the environment's)")
    rev.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    go = sub.add_parser("run", help="report, mute if asked, run the zone's experiment, revert, report, compare")
    go.add_argument("--prefix", required=True, help="the stack's name prefix (scanner-<stack>)")
    go.add_argument("--zone", required=True, help="the zone to take out, or random")
    go.add_argument("--out-dir", type=Path, required=True, help="where the reports and the summary go")
    go.add_argument("--mute-alerts", action="store_true", help="mute the stack's alarms for the drill")
    go.add_argument("--region", help="the stack's AWS region (default: the environment's)")
    go.add_argument("--poll", type=float, default=10.0, help="seconds between looks at the experiment (default 10)")
    go.add_argument("--timeout-minutes", type=int, default=120, help="stop the experiment after this (default 120)")
    go.add_argument("--seed", type=int, help="seed for --zone random")
    go.add_argument(
        "--probes",
        choices=("job", "local", "none"),
        default="job",
        help="where the stores are probed: a Job in the cluster (default), here, or nowhere",
    )
    go.add_argument(
        "--outputs", type=Path, help="pulumi stack output --json (needed unless --probes none --no-verdicts)"
    )
    go.add_argument("--kubeconfig", type=Path, help="the cluster's kubeconfig (for --probes job and the verdicts)")
    go.add_argument(
        "--image-tag", help="tag of the scanner/drill-probe image to run (for --probes job and the verdicts)"
    )
    go.add_argument("--no-verdicts", action="store_true", help="take no verdict while the zone is out")
    go.add_argument(
        "--verify-after-minutes", type=float, help="when the verdicts are taken (default: 2/3 of the outage)"
    )
    pr = sub.add_parser("probe", help="(inside the probe Job) probe every store until the runner says stop")
    pr.add_argument("--run", required=True, help="the drill run's id (the runner names the Job after it)")
    pr.add_argument("--max-minutes", type=int, default=180, help="stop by then, whatever happens (default 180)")
    pr.add_argument("--settings", type=Path, help="the probe settings (default: the DRILL_PROBES variable)")
    pr.add_argument("--poll", type=float, default=5.0, help="seconds between looks for the stop marker (default 5)")
    sub.add_parser("ready", help="(the scan pool's start check) say ready and exit 0")
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


def _prefix(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", value):
        raise BadInput(f"--prefix: {value!r} is not a stack name prefix such as scanner-prod")
    return value


def _writable(path: Path, flag: str) -> Path:
    if not path.parent.is_dir():
        raise BadInput(f"{flag}: {path.parent} is not a directory")
    return path


def _load_report(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no such report (python -m drill report writes one)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: not a drill report ({exc})") from None
    if not isinstance(found, dict) or not isinstance(found.get("alarms"), dict):
        raise BadInput(f"{path}: not a drill report (no alarms)")
    return found


def _outputs(path: Path | None, need: str) -> dict[str, Any]:
    if path is None:
        raise BadInput(f"--outputs: required for {need} (pulumi stack output --json > build/<stack>-outputs.json)")
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"--outputs: {path} does not exist (pulumi stack output --json writes it)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"--outputs: {path} is not the stack's outputs ({exc})") from None
    drill = found.get("drill") if isinstance(found, dict) else None
    if not isinstance(drill, dict) or not isinstance(drill.get("probes"), dict) or not drill.get("probeImage"):
        raise BadInput(f"--outputs: {path} has no drill.probes and drill.probeImage (is the stack up to date?)")
    return found


def _probe_settings(args: argparse.Namespace) -> dict[str, Any]:
    from drill import stores

    try:
        text = args.settings.read_text() if args.settings else os.environ["DRILL_PROBES"]
    except KeyError:
        raise BadInput("DRILL_PROBES: not set (the probe Job sets it; or give --settings)") from None
    except OSError as exc:
        raise BadInput(f"--settings: {exc}") from None
    try:
        return stores.settings(json.loads(text))
    except json.JSONDecodeError as exc:
        raise BadInput(f"{'--settings' if args.settings else 'DRILL_PROBES'}: not JSON ({exc})") from None
    except stores.BadSettings as exc:
        raise BadInput(str(exc)) from None


def main(
    argv: list[str] | None = None,
    out=None,
    clients: dict[str, Any] | None = None,
    kube: Any = None,
    root: Path | None = None,
) -> int:
    """`clients`: AWS clients by service (`cloudwatch`, `fis`, `arc-zonal-shift`, `s3`, …) to use
    instead of boto3's; `kube`: the cluster's API instead of drill/kube.py's; `root`: where the
    probe's file stores live (the tests' stand-ins)."""
    out = out or sys.stdout
    try:
        args = parser().parse_args(argv)
        if args.command == "ready":
            print("ready", file=out)
            return EXIT_OK
        if args.command == "probe":
            if not re.fullmatch(r"[a-z0-9]{1,32}", args.run):
                raise BadInput(f"--run: {args.run!r} is not a run id (lower-case letters and digits)")
            if not 1 <= args.max_minutes <= 24 * 60:
                raise BadInput(f"--max-minutes: {args.max_minutes} is not between 1 and 1440")
            if not 0 < args.poll <= 60:
                raise BadInput(f"--poll: {args.poll} is not between 0 and 60 seconds")
            settings = _probe_settings(args)
        elif args.command == "plan":
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", args.stack):
                raise BadInput(f"--stack: {args.stack!r} is not a stack name")
            record = load_record(args.record or Path("build") / f"{args.stack}.json")
            zone, plan, template = zone_plan(record, args.zone, args.seed)
            if args.json is not None:
                _writable(args.json, "--json")
        elif args.command == "report":
            _prefix(args.prefix)
            _writable(args.out, "--out")
            if not 1 <= args.minutes <= 1440:
                raise BadInput(f"--minutes: {args.minutes} is not between 1 and 1440")
        elif args.command == "compare":
            before, after = _load_report(args.before), _load_report(args.after)
            if args.out is not None:
                _writable(args.out, "--out")
        elif args.command == "run":
            _prefix(args.prefix)
            _writable(args.out_dir, "--out-dir")
            if not 1 <= args.timeout_minutes <= 24 * 60:
                raise BadInput(f"--timeout-minutes: {args.timeout_minutes} is not between 1 and 1440")
            if not 0 < args.poll <= 300:
                raise BadInput(f"--poll: {args.poll} is not between 0 and 300 seconds")
            if args.verify_after_minutes is not None and not 0 <= args.verify_after_minutes <= 24 * 60:
                raise BadInput(f"--verify-after-minutes: {args.verify_after_minutes} is not between 0 and 1440")
            needs_cluster = args.probes == "job" or not args.no_verdicts
            if args.probes != "none" or not args.no_verdicts:
                args.stack_outputs = _outputs(args.outputs, "the probes and the verdicts")
            if needs_cluster:
                if kube is None and (args.kubeconfig is None or not args.kubeconfig.is_file()):
                    raise BadInput(
                        "--kubeconfig: required for the probe Job and the verdicts (a file: "
                        "pulumi stack output kubeconfig --show-secrets)"
                    )
                if not args.image_tag or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", args.image_tag):
                    raise BadInput(
                        "--image-tag: required for the probe Job and the verdicts (the tag of the "
                        "scanner/drill-probe image you pushed)"
                    )
        else:
            _prefix(args.prefix)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "plan":
        print("\n".join(describe(args.stack, zone, plan, template)), file=out)
        if args.json is not None:
            args.json.write_text(json.dumps({"stack": args.stack, **plan}, indent=2) + "\n")
        return EXIT_OK
    if args.command == "compare":
        from drill import aws as steps

        rows, regressions = steps.compare(before, after)
        text = steps.markdown_comparison(rows, regressions)
        print(text, file=out)
        if args.out is not None:
            args.out.write_text(text + "\n")
        if regressions:
            print(f"{len(regressions)} alarm(s) in ALARM after and not before: {', '.join(regressions)}", file=out)
            return EXIT_REGRESSION
        return EXIT_OK
    if args.command == "probe":
        return _probe(args, settings, out, clients or {}, root)
    return _on_aws(args, out, clients or {}, kube)


def _probe(args: argparse.Namespace, settings: dict[str, Any], out, clients: dict[str, Any], root: Path | None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from drill import remote, stores

    def client(service: str):
        if service in clients:
            return clients[service]
        import boto3

        return boto3.client(service)

    try:
        probed = remote.probe(
            settings,
            args.run,
            client("s3"),
            stores.secrets_reader(client("secretsmanager")),
            args.max_minutes,
            poll_s=args.poll,
            root=root,
        )
    except stores.BadSettings as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS: {exc}", file=sys.stderr)
        return EXIT_AWS
    print(f"probed {len(probed.survivors)} store(s), {len(probed.samples)} sample(s)", file=out)
    return EXIT_OK


def _on_aws(args: argparse.Namespace, out, clients: dict[str, Any], kube: Any = None) -> int:
    import datetime as dt

    from botocore.exceptions import BotoCoreError, ClientError

    from drill import aws as steps

    def client(service: str, region: str | None = None):
        if service in clients:
            return clients[service]
        import boto3

        return boto3.client(service, region_name=region or args.region)

    try:
        if args.command == "report":
            end = dt.datetime.now(dt.UTC)
            found = steps.report(client("cloudwatch"), args.prefix, end - dt.timedelta(minutes=args.minutes), end)
            args.out.write_text(json.dumps(found, indent=2) + "\n")
            args.out.with_suffix(".md").write_text(steps.markdown_report(found) + "\n")
            print(f"{len(found['alarms'])} alarm(s) reported to {args.out} and {args.out.with_suffix('.md')}", file=out)
            return EXIT_OK
        if "cloudwatch" in clients:
            watches = [clients["cloudwatch"]]
        else:
            import boto3

            home = args.region or boto3.session.Session().region_name
            watches = [boto3.client("cloudwatch", region_name=r) for r in dict.fromkeys((home, GLOBAL_REGION))]
        if args.command == "run":
            from drill import run as runner

            options = runner.RunOptions(
                prefix=args.prefix,
                zone=args.zone,
                out_dir=args.out_dir,
                mute=args.mute_alerts,
                poll_s=args.poll,
                timeout_s=args.timeout_minutes * 60,
                seed=args.seed,
                verify_after_s=None if args.verify_after_minutes is None else args.verify_after_minutes * 60,
            )
            try:
                zone, _ = runner.template_of(client("fis"), args.prefix, args.zone, args.seed)
                options.zone = zone
                probes, checks = _drill_parts(args, zone, client, kube)
                result = runner.run(
                    client("fis"), client("arc-zonal-shift"), watches, options, probes=probes, checks=checks
                )
            except runner.NoDrill as exc:
                print(f"error: --zone: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(runner.markdown(result), file=out)
            return result.exit_status
        done = steps.revert(client("fis"), client("arc-zonal-shift"), watches, args.prefix, args.dry_run)
        for line in done:
            print(line, file=out)
        print(f"revert: {len(done)} change(s){' (dry run)' if args.dry_run else ''}", file=out)
        return EXIT_OK
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS: {exc}", file=sys.stderr)
        return EXIT_AWS


def _drill_parts(args: argparse.Namespace, zone: str, client, kube: Any):
    """The run's probes (a Job in the cluster, here, or none) and its verdicts."""
    from drill import probe_job, remote, stores, verdicts

    region = client("fis").meta.region_name
    drill = args.stack_outputs["drill"] if hasattr(args, "stack_outputs") else {}
    settings = stores.settings(drill["probes"]) if drill else {}
    image = f"{drill.get('probeImage')}:{args.image_tag}" if drill else ""
    if (args.probes == "job" or not args.no_verdicts) and kube is None:
        from drill.kube import ClusterApi

        kube = ClusterApi(str(args.kubeconfig))
    minutes = args.timeout_minutes
    probes: Any = ()
    if args.probes == "job":
        probes = remote.JobProbes(kube, client("s3"), settings, image, zone, region, minutes)
    elif args.probes == "local":
        kept, left_out = stores.for_zone(settings, zone)
        probes = remote.LocalProbes(
            stores.build(kept, stores.secrets_reader(client("secretsmanager"))), left_out=left_out
        )
    if args.no_verdicts:
        return probes, None
    services_namespace = (args.stack_outputs.get("services") or {}).get("namespace", "scanner-services")
    run_id = getattr(probes, "run_id", None) or uuid.uuid4().hex[:10]

    def checks(drilled: str, started_at: dt.datetime, remaining_s: float | None) -> list[Any]:
        now = dt.datetime.now(dt.UTC)
        # The scan Job must start while the zone is still out: a start after it is back proves nothing.
        budget = (
            verdicts.SCAN_START_TIMEOUT_S if remaining_s is None else min(verdicts.SCAN_START_TIMEOUT_S, remaining_s)
        )
        manifest = probe_job.scan_start_manifest(settings, image, run_id)
        return [
            verdicts.safely("database", lambda: verdicts.database(client("rds"), args.prefix, drilled)),
            verdicts.safely("cache", lambda: verdicts.cache(client("elasticache"), args.prefix, drilled)),
            verdicts.safely("broker", lambda: verdicts.broker(client("cloudwatch"), now, before=started_at)),
            verdicts.safely("services", lambda: verdicts.services(kube, services_namespace, drilled)),
            verdicts.safely("scans", lambda: verdicts.scans(kube, manifest, drilled, timeout_s=budget)),
        ]

    return probes, checks


if __name__ == "__main__":
    sys.exit(main())
