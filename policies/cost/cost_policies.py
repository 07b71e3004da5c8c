"""Cost rules: scan Jobs on the spot scan pool only, never disrupted mid-scan, scalers sized
within the pool's limits, and a stack whose monthly estimate stays within its budget."""

from __future__ import annotations

import costing
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

import contract
from environments import KEYS, stack_config
from stack_graph import NODE_POOL, UNKNOWN, Report, StackGraph, known, path, plain, setting

SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def scan_jobs_on_spot_pool(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SCALED_JOB:
        return
    label = setting(args, "poolLabel", contract.POOL_LABEL)
    pool = setting(args, "scanPool", contract.SCAN_POOL)
    template = path(args.props, "spec.jobTargetRef.template", {}, unknown=UNKNOWN)
    if template is UNKNOWN:
        return
    selector = path(template, "spec.nodeSelector", {}, unknown=UNKNOWN)
    if selector is not UNKNOWN and (selector or {}).get(label) != pool:
        report(
            f"scan Jobs are not pinned to the spot scan pool; set nodeSelector {label}: {pool} (and tolerate its "
            "taint) so they never take on-demand or service capacity."
        )
    annotations = path(template, "metadata.annotations", {}, unknown=UNKNOWN)
    if annotations is not UNKNOWN and str((annotations or {}).get(DO_NOT_DISRUPT)) != "true":
        report(
            f"scan Jobs lack the {DO_NOT_DISRUPT}: \"true\" annotation; consolidation could stop a running scan "
            "to save a node, wasting the work done."
        )


def _cpu(quantity) -> float | None:
    text = str(quantity)
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return None


def scaled_jobs_within_pool(args: StackValidationArgs, report: Report) -> None:
    """Every ScaledJob at its maximum, together, must fit the spot scan pool's CPU limit: beyond
    it Jobs wait for capacity Karpenter will not launch, or spill onto the on-demand fallback."""
    graph = StackGraph(args.resources)
    label = setting(args, "poolLabel", contract.POOL_LABEL)
    pool_name = setting(args, "scanPool", contract.SCAN_POOL)
    pools = [
        p
        for p in graph.of_type(NODE_POOL)
        if (path(p.props, "spec.template.metadata.labels", {}) or {}).get(label) == pool_name
    ]
    if not pools:
        return
    spot = max(pools, key=lambda p: known(p, "spec", {}).get("weight", 0) or 0)
    limit = _cpu(path(spot.props, "spec.limits.cpu", "0"))
    total, parts = 0.0, []
    for scaled in graph.of_type(SCALED_JOB):
        maximum = known(scaled, "spec", {}).get("maxReplicaCount", 100)
        containers = path(scaled.props, "spec.jobTargetRef.template.spec.containers", [], unknown=UNKNOWN)
        if containers is UNKNOWN:
            return
        cpu = sum(_cpu(path(c, "resources.requests.cpu", "0")) or 0 for c in containers)
        total += maximum * cpu
        parts.append(f"{path(scaled.props, 'metadata.name', scaled.name)} {int(maximum)} x {cpu:g}")
    if limit is not None and total > limit:
        report(
            f"the scan ScaledJobs at their maximum ask for {total:g} vCPU ({', '.join(sorted(parts))}), more than the "
            f"{limit:g} vCPU limit of NodePool '{path(spot.props, 'metadata.name', spot.name)}'; lower "
            f"maxReplicaCount ({KEYS['scan_jobs']}) or raise the pool's limit ({KEYS['scan_cpu']}).",
            spot.urn,
        )


BUDGET_KEY = "scanner:monthlyBudgetUsd"


def resources_for_costing(resources) -> list[costing.Resource]:
    return [
        costing.Resource(
            r.resource_type,
            r.name,
            r.urn,
            r.parent.urn if r.parent is not None else None,
            plain(r.props),
            {key: [d.urn for d in deps] for key, deps in (r.property_dependencies or {}).items()},
        )
        for r in resources
    ]


def within_monthly_budget(args: StackValidationArgs, report: Report) -> None:
    """The stack's monthly estimate (policies/common/costing.py, the scan pool by its fluid
    approximation) at most the stack's budget, the same figure AWS Budgets alerts on."""
    config = stack_config()
    raw = config.get(BUDGET_KEY)
    if raw in (None, ""):
        return
    try:
        budget = float(raw)
    except (TypeError, ValueError):
        return  # the program refuses a budget that is not a number, naming the key
    usage = setting(args, "usage", {}) or {}
    try:
        found = costing.estimate(
            resources_for_costing(args.resources), config.get("aws:region", "us-east-1"), usage=usage
        )
    except costing.PriceError as exc:
        report(f"the cost estimate cannot be made: {exc}")
        return
    if found.unpriced:
        # Fail closed: a class the table cannot price would read as free.
        report(
            f"the stack's monthly estimate is partial: {len(found.unpriced)} item(s) have no price "
            f"({'; '.join(found.unpriced[:3])}); add them to policies/common/prices.json before judging the budget "
            f"({BUDGET_KEY})."
        )
        return
    if found.total <= budget:
        return
    parts = ", ".join(f"{name} ${value:,.0f}" for name, value in list(found.by("component").items())[:3])
    items = "; ".join(f"{line.item} [{line.resource}] ${line.monthly:,.0f}" for line in found.top(3))
    report(
        f"the stack's monthly estimate is ${found.total:,.0f}, over its budget of ${budget:,.0f} ({BUDGET_KEY}); "
        f"the largest components: {parts}; the largest items: {items}. Raise the budget, or shrink what costs most "
        "(`python -m cost --compare -c KEY=VALUE` shows what a change saves)."
    )


POLICIES = [
    ResourceValidationPolicy(
        name="scan-jobs-on-spot-pool",
        description="Requires scan Jobs pinned to the spot scan pool and annotated karpenter.sh/do-not-disrupt.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=scan_jobs_on_spot_pool,
        config_schema=PolicyConfigSchema(
            properties={
                "poolLabel": {"type": "string", "default": contract.POOL_LABEL},
                "scanPool": {"type": "string", "default": contract.SCAN_POOL},
            }
        ),
    ),
    StackValidationPolicy(
        name="scaled-job-within-pool-limits",
        description="Requires the scan ScaledJobs' combined maximum CPU to fit the spot scan pool's limit.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=scaled_jobs_within_pool,
        config_schema=PolicyConfigSchema(
            properties={
                "poolLabel": {"type": "string", "default": contract.POOL_LABEL},
                "scanPool": {"type": "string", "default": contract.SCAN_POOL},
            }
        ),
    ),
    StackValidationPolicy(
        name="within-monthly-budget",
        description=(
            "Advises when the stack's monthly cost estimate (prices of "
            f"{costing.load_prices()['date']}, scan capacity by the fluid model) exceeds scanner:monthlyBudgetUsd, "
            "naming the largest components and items; mandatory where the policy config says so."
        ),
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=within_monthly_budget,
        config_schema=PolicyConfigSchema(
            properties={
                "usage": {
                    "type": "object",
                    "description": "usage assumptions of the estimate (python -m cost --usage), by key",
                    "additionalProperties": {"type": "number", "minimum": 0},
                    "default": {},
                }
            }
        ),
    ),
]
