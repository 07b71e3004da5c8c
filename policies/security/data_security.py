"""Security rules for the data tier: nothing reachable from the internet, TLS forced."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from stack_graph import BROKER, CACHE_GROUP, DB_CLUSTER, DB_INSTANCE, UNKNOWN, Report, StackGraph, known, path, short

PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"


def not_public(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type in (DB_INSTANCE, DB_CLUSTER, BROKER):
        if path(args.props, "publiclyAccessible", False, unknown=UNKNOWN) is True:
            report(
                "the service is publicly accessible; set publiclyAccessible to false and reach it from the "
                "cluster through the VPC."
            )


def cache_tls(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != CACHE_GROUP:
        return
    if path(args.props, "transitEncryptionEnabled", False, unknown=UNKNOWN) is not True:
        report("the cache accepts plain-text connections; set transitEncryptionEnabled (mode 'required').")
    elif path(args.props, "transitEncryptionMode", "required", unknown=UNKNOWN) == "preferred":
        report("the cache still accepts plain-text connections (transitEncryptionMode 'preferred'); use 'required'.")


def database_tls_forced(args: StackValidationArgs, report: Report) -> None:
    """The database's parameter group must set rds.force_ssl = 1, so no client can connect in clear."""
    graph = StackGraph(args.resources)
    for database, prop in [(d, "parameterGroupName") for d in graph.of_type(DB_INSTANCE)] + [
        (c, "dbClusterParameterGroupName") for c in graph.of_type(DB_CLUSTER)
    ]:
        engine = str(known(database, "engine", "postgres") or "postgres")
        if "replicateSourceDb" in list(database.props) and prop not in list(database.props):
            continue  # a replica without its own group uses its source's
        if "postgres" not in engine:
            continue
        groups = [
            g
            for g in database.property_dependencies.get(prop, [])
            if g.resource_type in (PARAMETER_GROUP, CLUSTER_PARAMETER_GROUP)
        ]
        forced = any(
            str(p.get("name")) == "rds.force_ssl" and str(p.get("value")) == "1"
            for g in groups
            for p in (known(g, "parameters", []) or [])
        )
        if not forced:
            report(
                f"{short(database)} does not force TLS: give it a parameter group that sets rds.force_ssl = 1.",
                database.urn,
            )


POLICIES = [
    ResourceValidationPolicy(
        name="data-not-public",
        description="Refuses databases and brokers reachable from the internet.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=not_public,
    ),
    ResourceValidationPolicy(
        name="elasticache-tls-required",
        description="Requires TLS for every connection to a cache.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=cache_tls,
    ),
    StackValidationPolicy(
        name="rds-tls-forced",
        description="Requires PostgreSQL databases to use a parameter group that forces TLS (rds.force_ssl = 1).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=database_tls_forced,
    ),
]
