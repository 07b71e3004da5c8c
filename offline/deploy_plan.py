"""How long a first `pulumi up` of a stack takes, modelled from the program's own dependency graph.

    python -m offline.deploy_plan --stack prod [-c KEY=VALUE ...] [--max-minutes 32] [--json PATH]

The engine creates a resource once everything it depends on exists, and runs the rest in
parallel; so the first `up` lasts as long as the longest chain of dependencies, each resource
weighted by how long AWS (or the Kubernetes API) takes to create it. The chain is read from
what the program registers under the offline mocks (dependencies and custom parents, as the
SDK sends them), in the first-deploy stage the README prescribes for a new stack
(`scanner:servicesRollout=first-deploy`). Every weight comes from `CREATE_MINUTES`, each with
its source and whether it is documented, observed or assumed.

Each step of the printed path says why it waits for the one before: `data: <property>` when
it reads an output of it, `order` when it only waits (depends_on, or a parent).

Exit status: 0 within --max-minutes (when given), 1 over it, 2 bad input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Resources that take noticeably long, in minutes: (matches, minutes, kind, source). The first
#: entry whose type and test match wins; anything else takes a few seconds (DEFAULT_MINUTES).
Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class CreateTime:
    type: str
    minutes: float
    kind: str  # documented | observed | assumed
    source: str
    when: Predicate | None = None
    label: str = ""


def _inputs(pred: Callable[[dict[str, Any]], bool]) -> Predicate:
    return lambda record: pred(record.get("inputs") or {})


_SKIPS_AWAIT = _inputs(
    lambda i: (
        str(((i.get("metadata") or {}).get("annotations") or {}).get("pulumi.com/skipAwait", "")).lower() == "true"
    )
)

CREATE_MINUTES: tuple[CreateTime, ...] = (
    CreateTime(
        "eks:index:Cluster",
        12.5,
        "documented",
        "an earlier EKS CreateCluster API reference: 'Cluster creation typically takes between 10 and 15 "
        "minutes' (the current one: 'several minutes'; aws/containers-roadmap#1227 reported a 15-minute "
        "average); pulumi-eks's own children take seconds beside it",
    ),
    CreateTime(
        "aws:eks/nodeGroup:NodeGroup",
        5,
        "observed",
        "EKS User Guide: 'Node group creation takes several minutes'; 3-10 min reported in community modules",
    ),
    CreateTime(
        "aws:eks/addon:Addon",
        2,
        "observed",
        "coredns becomes ACTIVE once its pods run on nodes (pulumi-eks#1819, terraform-aws-eks#3001); "
        "created after the node group here",
        when=_inputs(lambda i: i.get("addonName") == "coredns"),
        label="coredns",
    ),
    CreateTime(
        "aws:eks/addon:Addon",
        1,
        "observed",
        "vpc-cni and kube-proxy 'are working fine' (finish quickly) in terraform-aws-eks-blueprints#642",
    ),
    CreateTime(
        "aws:rds/instance:Instance",
        15,
        "assumed",
        "no AWS figure for a read replica; RDS takes a snapshot of the source and restores it "
        "(USER_ReadRepl.Create), taken here as long as the Multi-AZ primary",
        when=_inputs(lambda i: bool(i.get("replicateSourceDb"))),
        label="read replica",
    ),
    CreateTime(
        "aws:rds/instance:Instance",
        15,
        "observed",
        "Multi-AZ 15-20 min against 5-10 single-AZ (hashicorp/terraform#498); AWS: 'can take several minutes'",
        when=_inputs(lambda i: i.get("multiAz") is True),
        label="Multi-AZ",
    ),
    CreateTime("aws:rds/instance:Instance", 7.5, "observed", "single-AZ 5-10 min (hashicorp/terraform#498)"),
    CreateTime(
        "aws:rds/cluster:Cluster",
        15,
        "assumed",
        "AWS: 'it can take several minutes'; taken as long as a Multi-AZ instance",
    ),
    CreateTime(
        "aws:rds/proxy:Proxy",
        3,
        "observed",
        "a lower bound: still creating after 2 min 30 s (turbot/steampipe-plugin-aws#1414)",
    ),
    CreateTime(
        "aws:rds/proxyTarget:ProxyTarget",
        4,
        "observed",
        "registration took over 4 min (hashicorp/terraform-provider-aws#19096)",
    ),
    CreateTime(
        "aws:mq/broker:Broker",
        15,
        "documented",
        "Amazon MQ for RabbitMQ getting started: 'Creating the broker takes about 15 minutes'",
    ),
    CreateTime(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        18,
        "observed",
        "a Multi-AZ group in 1,086 s in the provider's acceptance test (hashicorp/terraform-provider-aws#17320)",
    ),
    CreateTime(
        "aws:ec2/natGateway:NatGateway",
        3,
        "observed",
        "pending to available 'can take up to 10 min' (kubernetes/kops#944); typically a few minutes",
    ),
    CreateTime(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        2,
        "assumed",
        "no AWS figure; interface endpoints usable 20-30 s after AVAILABLE (aws-amplify/amplify-category-api#1875)",
        when=_inputs(lambda i: i.get("vpcEndpointType") == "Interface"),
        label="interface",
    ),
    CreateTime(
        "aws:efs/mountTarget:MountTarget",
        1.5,
        "documented",
        "EFS User Guide: wait 90 seconds after creating a mount target before mounting",
    ),
    CreateTime(
        "aws:cloudfront/distribution:Distribution",
        5,
        "documented",
        "AWS blog 'Slashing CloudFront change propagation times in 2020': changes within 5 minutes",
    ),
    CreateTime(
        "aws:acm/certificateValidation:CertificateValidation",
        5,
        "observed",
        "usually minutes once the DNS record exists; ACM documents 'up to several hours'",
    ),
    CreateTime(
        "aws:route53/record:Record",
        1,
        "documented",
        "ChangeResourceRecordSets: 'Changes generally propagate ... within 60 seconds'",
    ),
    CreateTime(
        "kubernetes:helm.sh/v3:Release",
        2,
        "assumed",
        "controller charts await their Deployments (pulumi-kubernetes default timeout 300 s); ~100 s "
        "for a node to start (aws/karpenter-provider-aws#3102) is not on this path: they run on system nodes",
    ),
    CreateTime(
        "kubernetes:networking.k8s.io/v1:Ingress",
        3,
        "documented",
        "EKS Workshop: 'It could take 2 or 3 minutes for the ALB to be ready'",
    ),
    CreateTime(
        "kubernetes:apps/v1:Deployment",
        0.05,
        "assumed",
        "pulumi.com/skipAwait: created without waiting for pods (first-deploy stage)",
        when=_SKIPS_AWAIT,
        label="not awaited",
    ),
    CreateTime(
        "kubernetes:apps/v1:Deployment",
        2,
        "observed",
        "a new node ~100 s to Ready (aws/karpenter-provider-aws#3102), then the image pull and probes",
    ),
    CreateTime("aws:ec2/vpc:Vpc", 0.33, "observed", "20 s in a provider log (turbot/steampipe-plugin-aws#1414)"),
)
ROLLOUT_KEY = "scanner:servicesRollout"
DEFAULT_MINUTES = 0.05
DEFAULT_SOURCE = (
    "seconds: subnets 1-5 s, security groups 4 s, rules 2 s in provider logs; IAM, KMS, secrets, "
    "Kubernetes objects taken alike"
)


def weight(record: dict[str, Any]) -> CreateTime:
    for entry in CREATE_MINUTES:
        if entry.type == record["type"] and (entry.when is None or entry.when(record)):
            return entry
    return CreateTime(record["type"], DEFAULT_MINUTES, "assumed", DEFAULT_SOURCE)


@dataclass(frozen=True)
class Step:
    urn: str
    type: str
    name: str
    minutes: float
    finish: float
    why: str
    """How this step waits for the previous one: `data: prop, ...` or `order (...)`."""
    time: CreateTime


@dataclass(frozen=True)
class Plan:
    stack: str
    steps: list[Step]
    resources: int
    ready: dict[str, float]
    """Top-level component -> when its last resource is created: the margin of each tier."""

    @property
    def minutes(self) -> float:
        return self.steps[-1].finish if self.steps else 0.0

    @property
    def data_only(self) -> bool:
        return all(step.why.startswith("data") for step in self.steps[1:])


def _nodes(
    resources: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]], Callable[[str], set[str]]]:
    """What takes time to create and what each waits for. Components (but pulumi-eks's remote one,
    which is its own unit of work) are not created: waiting for one is waiting for its children.
    The emulated child of the remote component is part of it."""
    by_urn = {r["urn"]: r for r in resources}
    children: dict[str, list[str]] = {}
    for r in resources:
        if r["parent"]:
            children.setdefault(r["parent"], []).append(r["urn"])

    def is_unit(r: dict[str, Any]) -> bool:
        if r.get("emulated") or r["type"] == "pulumi:pulumi:Stack":
            return False
        return r["custom"] or r["type"] == "eks:index:Cluster"

    def expand(urn: str) -> set[str]:
        r = by_urn.get(urn)
        if r is None:
            return set()
        if r.get("emulated"):
            return {r["parent"]}
        if is_unit(r):
            return {urn}
        out: set[str] = set()
        for child in children.get(urn, []):
            out |= expand(child)
        return out

    nodes = {u: r for u, r in by_urn.items() if is_unit(r)}
    waits: dict[str, set[str]] = {}
    for urn, r in nodes.items():
        before: set[str] = set()
        for dep in r["dependencies"]:
            before |= expand(dep)
        parent = by_urn.get(r["parent"] or "")
        if parent is not None and is_unit(parent):
            before.add(parent["urn"])  # a child registers once its custom parent exists
        before.discard(urn)
        waits[urn] = before
    return nodes, waits, expand


def _why(record: dict[str, Any], before: dict[str, Any], expand: Callable[[str], set[str]]) -> str:
    props = sorted(
        prop for prop, urns in record["propertyDependencies"].items() if any(before["urn"] in expand(u) for u in urns)
    )
    if props:
        return "data: " + ", ".join(props)
    if record["parent"] == before["urn"]:
        return "order (parent)"
    return "order (depends_on)"


def critical_path(resources: list[dict[str, Any]], stack: str) -> Plan:
    nodes, waits, expand = _nodes(resources)
    finish: dict[str, float] = {}
    previous: dict[str, str | None] = {}

    def visit(urn: str, trail: frozenset[str]) -> float:
        if urn in finish:
            return finish[urn]
        if urn in trail:
            raise ValueError(f"dependency cycle through {urn}")
        start, best = 0.0, None
        for dep in waits[urn]:
            if dep in nodes:
                end = visit(dep, trail | {urn})
                if end > start or best is None and end == start:
                    start, best = end, dep
        finish[urn] = start + weight(nodes[urn]).minutes
        previous[urn] = best
        return finish[urn]

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for urn in nodes:
        visit(urn, frozenset())
    last = max(finish, key=lambda u: (finish[u], u)) if finish else None
    chain: list[str] = []
    while last is not None:
        chain.append(last)
        last = previous[last]
    chain.reverse()
    by_urn = {r["urn"]: r for r in resources}

    def top(urn: str) -> str:
        record = by_urn[urn]
        while record["parent"] and by_urn.get(record["parent"], {}).get("type") != "pulumi:pulumi:Stack":
            record = by_urn[record["parent"]]
        return f"{record['type'].split(':')[-1]} {record['name']}"

    ready: dict[str, float] = {}
    for urn, end in finish.items():
        ready[top(urn)] = max(ready.get(top(urn), 0.0), end)
    steps = []
    for index, urn in enumerate(chain):
        record, time = nodes[urn], weight(nodes[urn])
        why = "start" if index == 0 else _why(record, nodes[chain[index - 1]], expand)
        steps.append(Step(urn, record["type"], record["name"], time.minutes, finish[urn], why, time))
    return Plan(stack, steps, len(nodes), ready)


def render(plan: Plan) -> str:
    lines = [
        f"First `pulumi up` of {plan.stack} (first-deploy stage), {plan.resources} resources: "
        f"critical path {plan.minutes:.1f} min",
        "",
        f"  {'at':>6} {'takes':>6}  resource (why it waits for the line above)",
    ]
    for step in plan.steps:
        label = f" [{step.time.label}]" if step.time.label else ""
        lines.append(f"  {step.finish:6.1f} {step.minutes:6.2f}  {step.type} {step.name}{label} ({step.why})")
    lines += ["", "Weights on this path:"]
    seen = set()
    for step in plan.steps:
        key = (step.time.type, step.time.label)
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            f"  {step.time.minutes:g} min {step.type}{' ' + step.time.label if step.time.label else ''}: "
            f"{step.time.kind}, {step.time.source}"
        )
    lines += ["", "Each tier ready at (min):"]
    for name, end in sorted(plan.ready.items(), key=lambda kv: -kv[1])[:10]:
        lines.append(f"  {end:6.1f}  {name}")
    lines.append("")
    lines.append(
        "Every step reads an output of the one before it (data dependencies only)."
        if plan.data_only
        else "Some steps only wait (order): check each is needed, or it lengthens every first deploy."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None, out=None) -> int:
    from offline.preview import BadInput, _Parser, check_writable, config_for
    from offline.program import StackFileError, run_program

    out = out or sys.stdout
    parser = _Parser(prog="python -m offline.deploy_plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--max-minutes", type=float, metavar="N", help="exit 1 when the critical path is longer")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the path and its weights to PATH")
    try:
        args = parser.parse_args(argv)
        if args.max_minutes is not None and args.max_minutes <= 0:
            raise BadInput("--max-minutes: must be a positive number of minutes")
        if args.json:
            check_writable(args.json, "--json")
        config = config_for(args.stack, args.config)
        # A new stack's first `up` runs in the first-deploy stage (README); -c can say otherwise.
        if not any(item.partition("=")[0] == ROLLOUT_KEY for item in args.config):
            config[ROLLOUT_KEY] = "first-deploy"
        import pulumi

        try:
            record = run_program(args.stack, "update", config=config)
        except pulumi.RunError as exc:
            raise BadInput(str(exc)) from None
    except (BadInput, StackFileError) as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    plan = critical_path(record.resources, args.stack)
    if args.json:
        from offline.preview import write_all

        document = {
            "stack": plan.stack,
            "minutes": round(plan.minutes, 2),
            "dataOnly": plan.data_only,
            "ready": {k: round(v, 2) for k, v in sorted(plan.ready.items())},
            "steps": [
                {
                    "urn": s.urn,
                    "type": s.type,
                    "minutes": s.minutes,
                    "finish": round(s.finish, 2),
                    "why": s.why,
                    "kind": s.time.kind,
                    "source": s.time.source,
                }
                for s in plan.steps
            ],
        }
        try:
            write_all({args.json: ("--json", json.dumps(document, indent=2) + "\n")})
        except BadInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(render(plan), file=out)
    if args.max_minutes is not None and plan.minutes > args.max_minutes:
        print(f"\nOver budget: {plan.minutes:.1f} min > {args.max_minutes:g} min", file=out)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
