"""`python -m cost`: what a stack costs a month, offline, before it is deployed.

    python -m cost --stack prod [--json build/cost-prod.json] [--usage natGbPerGateway=500 ...]
    python -m cost --stack prod --compare dev                 # prod against dev, line by line
    python -m cost --stack prod --compare -c scanner:databaseReadReplica=false
                                                              # prod against itself, changed

The stack's resources come from its program run under the offline mocks (as `make preview`
records them), priced with the dated table in policies/common/prices.json by
policies/common/costing.py; the scan pool's week comes from the capacity model
(benchmarks/capacity.py, seeded) unless `--capacity fluid` asks for its quick approximation, the
one the cost pack's budget rule uses. Every usage assumption is printed beside its value.

Exit 0; 1 when something has no price in the table (the estimate is partial, and says what);
2 on a bad flag, stack, override or usage value, with one line naming it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"arguments: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m cost", description="Monthly cost estimate of a stack, offline.")
    p.add_argument("--stack", default="prod", help="the stack (Pulumi.<stack>.yaml); default prod")
    p.add_argument(
        "--compare",
        nargs="?",
        const="",
        default=None,
        metavar="STACK",
        help="the difference to STACK, or with no STACK to this stack with the -c overrides",
    )
    p.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a stack key's value (namespace:key=value); with --compare, for the compared side only",
    )
    p.add_argument("--usage", action="append", default=[], metavar="KEY=N", help="a usage assumption's value")
    p.add_argument(
        "--capacity",
        choices=("model", "fluid"),
        default="model",
        help="the scan pool's week: the capacity model's simulation (default) or its fluid approximation",
    )
    p.add_argument("--top", type=int, default=10, help="how many line items to list (default 10)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the estimate as JSON")
    return p


def _pairs(items: list[str], flag: str, needs_namespace: bool) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or (needs_namespace and ":" not in key):
            example = "scanner:natMode=regional" if needs_namespace else "natGbPerGateway=500"
            raise BadInput(
                f"{flag}: {item!r} must be {'namespace:key' if needs_namespace else 'key'}=value, e.g. {example}"
            )
        out[key] = value
    return out


def _config(stack: str, overrides: dict[str, str], flag: str = "--stack") -> dict[str, str]:
    from offline.program import StackFileError, load_stack_config, stack_names

    if stack not in stack_names():
        raise BadInput(f"{flag}: {stack!r} has no Pulumi.{stack}.yaml (stacks: {', '.join(stack_names())})")
    try:
        config = load_stack_config(stack)
    except StackFileError as exc:
        raise BadInput(str(exc)) from None
    config.update(overrides)
    return config


def resources_of(stack: str, config: dict[str, str]) -> list[Any]:
    """The stack's declared resources, as costing reads them."""
    import pulumi

    from offline.program import run_program

    try:
        record = run_program(stack, "preview", config=config)
    except pulumi.RunError as exc:
        raise BadInput("; ".join(str(exc).splitlines())) from None
    return from_record(record.resources)


def from_record(resources: list[dict[str, Any]]) -> list[Any]:
    """The record's resources as costing reads them (an input unknown at preview as None)."""
    from policies.common import costing

    return [
        costing.Resource(
            r["type"],
            r["name"],
            r["urn"],
            r.get("parent"),
            _known(r.get("inputs") or {}),
            r.get("propertyDependencies") or {},
        )
        for r in resources
    ]


def _known(value: Any) -> Any:
    """Inputs with a value unknown at preview as None, as the policy engine hands them to the
    cost pack: both judge the same stack the same way."""
    from pulumi.runtime.rpc import UNKNOWN

    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_known(v) for v in value]
    return None if value == UNKNOWN else value


def _capacity_module():
    spec = importlib.util.spec_from_file_location("capacity_model", ROOT / "benchmarks" / "capacity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["capacity_model"] = module
    spec.loader.exec_module(module)
    return module


def modelled_scans(stack: str, config: dict[str, str]):
    """The capacity model's week for this stack (its default workload, seed 7)."""
    from dataclasses import replace

    from policies.common import costing
    from stack_config import ConfigError, parse

    capacity = _capacity_module()
    try:
        typed = parse(config, stack)
    except ConfigError as exc:
        raise BadInput("; ".join(str(exc).splitlines())) from None
    model = capacity.model_from_config(typed)
    workload = capacity.Workload(peak_rate_per_min=0.0)
    workload = replace(workload, peak_rate_per_min=capacity.default_peak_rate(model, workload))
    result = capacity.simulate(
        model, capacity.generate(workload, model.engines, capacity.WEEK, model.seed), capacity.WEEK
    )
    figures = capacity.summarize(model, result)
    # The spot share of vCPU-hours (what is priced), not of node-hours.
    spot_vcpu = sum((n.ended - n.launched) * n.vcpu for n in result.nodes if n.capacity_type == "spot") / 3600
    share = spot_vcpu / figures["vcpu_hours"] if figures["vcpu_hours"] else 1.0
    return costing.ScanCapacity(
        figures["vcpu_hours"], share, "c", "the capacity model's week (seed 7)", figures["node_hours"]
    )


def estimate_stack(stack: str, config: dict[str, str], usage: dict[str, str], capacity: str):
    from policies.common import costing

    resources = resources_of(stack, config)
    scans = modelled_scans(stack, config) if capacity == "model" else None
    try:
        return costing.estimate(resources, config.get("aws:region", "us-east-1"), usage=usage, scans=scans)
    except costing.PriceError as exc:
        raise BadInput(str(exc)) from None


# ----- output --------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:,.2f}"


def render(stack: str, found, top: int) -> str:
    from policies.common import costing

    prices = costing.load_prices()
    lines = [
        f"Monthly estimate of {stack} ({found.region}, {prices['hoursPerMonth']} h, prices of {prices['date']}): "
        f"{_money(found.total)}",
        "",
    ]
    for title, key in (("By component", "component"), ("By zone", "zone")):
        lines += [f"{title}:"] + [f"  {name:<28}{_money(v):>14}" for name, v in found.by(key).items()] + [""]
    lines.append(f"Top {top} items:")
    for line in found.top(top):
        lines.append(
            f"  {_money(line.monthly):>12}  {line.item} [{line.resource}, {line.zone}]: "
            f"{line.quantity:,.1f} {line.unit} x ${line.rate:g}"
        )
    lines += ["", "Commitments for the always-on baseline (one year, no upfront):"]
    saved = 0.0
    for c in costing.commitments(found, prices):
        saved += c.saving
        lines.append(
            f"  {c.item} [{c.resource}]: {_money(c.on_demand)} on demand, {_money(c.committed)} committed "
            f"({c.how}), saves {_money(c.saving)}"
        )
    lines.append(f"  together they save {_money(saved)} a month; the scan pool stays on spot")
    lines += ["", "Usage assumptions (--usage KEY=N):"]
    for key, spec in costing.USAGE.items():
        value = found.usage[key]
        marker = "" if value == spec.default else f" (default {spec.default:g})"
        shown = "the table's" if key == "spotDiscount" and value < 0 else f"{value:g}"
        lines.append(f"  {key:<30}{shown:>10} {spec.unit:<16}{spec.meaning}{marker}")
    if found.scans is not None:
        lines.append(
            f"  scan pool: {found.scans.vcpu_hours_per_week:,.0f} vCPU-hours a week, "
            f"{found.scans.spot_share:.1%} on spot, from {found.scans.source}"
        )
    lines += _unpriced(found)
    return "\n".join(lines)


def _unpriced(found) -> list[str]:
    if not found.unpriced:
        return []
    return ["", "Not priced (the total leaves them out: it is partial):"] + [f"  {u}" for u in found.unpriced]


def as_json(stack: str, found) -> dict[str, Any]:
    from policies.common import costing

    prices = costing.load_prices()
    return {
        "stack": stack,
        "region": found.region,
        "pricesDate": prices["date"],
        "monthlyUsd": round(found.total, 2),
        "byComponent": {k: round(v, 2) for k, v in found.by("component").items()},
        "byZone": {k: round(v, 2) for k, v in found.by("zone").items()},
        "lines": [{**asdict(line), "monthly": round(line.monthly, 4)} for line in found.lines],
        "usage": found.usage,
        "scans": asdict(found.scans) if found.scans else None,
        "commitments": [{**asdict(c), "saving": round(c.saving, 2)} for c in costing.commitments(found, prices)],
        "unpriced": found.unpriced,
    }


def render_difference(label: str, before, after) -> str:
    from policies.common import costing

    rows = costing.difference(before, after)
    partial = " (partial: see Not priced)" if before.unpriced or after.unpriced else ""
    lines = [
        f"{label}: {_money(before.total)} -> {_money(after.total)} a month "
        f"({after.total - before.total:+,.2f}){partial}",
        "",
    ]
    for component, zone, item, a, b in sorted(rows, key=lambda r: -abs(r[4] - r[3])):
        lines.append(f"  {b - a:+12,.2f}  {item} [{component}, {zone}]: {_money(a)} -> {_money(b)}")
    if not rows:
        lines.append("  no line differs")
    lines += _unpriced(before) + _unpriced(after)
    return "\n".join(lines)


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
        overrides = _pairs(args.config, "-c", True)
        usage = _pairs(args.usage, "--usage", False)
        from policies.common import costing

        try:
            costing.usage_values(usage)  # a bad usage value stops here, before any program runs
        except costing.PriceError as exc:
            raise BadInput(f"--{exc}") from None
        if args.top < 1:
            raise BadInput("--top: must be at least 1")
        if args.json is not None:
            _check_writable(args.json)
        if args.compare is not None:
            other = args.compare or args.stack
            if not args.compare and not overrides:
                raise BadInput("--compare: give a stack, or -c overrides to compare the stack with")
            before_config = _config(args.stack, {})
            after_config = _config(other, overrides, "--compare")
            before = estimate_stack(args.stack, before_config, usage, args.capacity)
            after = estimate_stack(other, after_config, usage, args.capacity)
            partial = bool(before.unpriced or after.unpriced)
            label = f"{args.stack} -> {other}" + (f" with {', '.join(args.config)}" if overrides else "")
            print(render_difference(label, before, after), file=out)
            document: dict[str, Any] = {
                "before": as_json(args.stack, before),
                "after": as_json(other, after),
                "differenceUsd": round(after.total - before.total, 2),
            }
        else:
            found = estimate_stack(args.stack, _config(args.stack, overrides), usage, args.capacity)
            print(render(args.stack, found, args.top), file=out)
            document = as_json(args.stack, found)
            partial = bool(found.unpriced)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    # A partial estimate is no estimate to gate on.
    return EXIT_PARTIAL if partial else EXIT_OK


def _check_writable(path: Path) -> None:
    """Before anything runs: the file can be written (its folder made)."""
    import os

    if path.exists() and path.is_dir():
        raise BadInput(f"--json: {path} is a directory")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise BadInput(f"--json: cannot write {path} ({folder} is not a writable directory)")


if __name__ == "__main__":
    sys.exit(main())
