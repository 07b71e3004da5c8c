"""All-AZ placement rules for the data tier: PostgreSQL, RabbitMQ and Redis."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from stack_graph import (
    BROKER,
    CACHE_GROUP,
    DB_CLUSTER,
    DB_INSTANCE,
    FILE_SYSTEM,
    UNKNOWN,
    Report,
    StackGraph,
    known,
    path,
    short,
    stack_zones,
    subnet_zones,
)

DB_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
CACHE_SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
#: Amazon MQ runs a RabbitMQ cluster as three nodes, one per zone.
BROKER_NODES = 3


def _is_replica(props) -> bool:
    return path(props, "replicateSourceDb") is not None or "replicateSourceDb" in list(props)


def rds_multi_az(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == DB_INSTANCE:
        if _is_replica(args.props):
            return  # a replica's own standby is optional; the source must be Multi-AZ
        multi_az = path(args.props, "multiAz", False, unknown=UNKNOWN)
        if multi_az is False:
            report(
                "the database runs in one zone; set multiAz so a standby in another zone takes over "
                "when the primary's zone is lost."
            )
        elif multi_az is True and path(args.props, "availabilityZone") is not None:
            report(
                "a Multi-AZ instance cannot be given an availabilityZone (AWS refuses the combination and "
                "chooses the primary's and the standby's zones itself); remove it."
            )
    elif args.resource_type == DB_CLUSTER:
        engine = str(path(args.props, "engine", "aurora-mysql"))
        if not engine.startswith("aurora") and path(args.props, "dbClusterInstanceClass") is None:
            report("a non-Aurora DB cluster without dbClusterInstanceClass is not a Multi-AZ DB cluster; set it.")


def _covering(graph: StackGraph, zones: list[str], resource, prop: str, report, what: str) -> None:
    covered = subnet_zones(graph, resource, prop)
    if covered is None:
        return
    missing = [z for z in zones if z not in covered]
    if missing:
        report(
            f"{short(resource)} ({what}) has subnets in {', '.join(sorted(covered)) or 'no zone'} but not in "
            f"{', '.join(missing)}; give it a subnet in every zone so a failover can land anywhere.",
            resource.urn,
        )


def subnet_groups_every_az(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    if not zones:
        return
    for group in graph.of_type(DB_SUBNET_GROUP):
        _covering(graph, zones, group, "subnetIds", report, "database subnet group")
    for group in graph.of_type(CACHE_SUBNET_GROUP):
        _covering(graph, zones, group, "subnetIds", report, "cache subnet group")


def replica_in_another_az(args: StackValidationArgs, report: Report) -> None:
    """A replica must be pinned to a zone (or be Multi-AZ itself): left to AWS it may land
    beside its primary, and one zone loss would take both."""
    graph = StackGraph(args.resources)
    for replica in graph.of_type(DB_INSTANCE):
        sources = [
            d for d in replica.property_dependencies.get("replicateSourceDb", []) if d.resource_type == DB_INSTANCE
        ]
        if not sources:
            continue
        source = sources[0]
        replica_zone, source_zone = known(replica, "availabilityZone"), known(source, "availabilityZone")
        if known(replica, "multiAz", False) is True:
            continue
        if replica_zone is None:
            report(
                f"{short(replica)} replicates {short(source)} with no zone of its own; pin availabilityZone (or make "
                "it Multi-AZ) so one zone loss cannot take the primary and the replica together.",
                replica.urn,
            )
        elif replica_zone == source_zone:
            report(
                f"{short(replica)} is in {replica_zone}, the zone of its primary {short(source)}; move it to "
                "another zone so one zone loss cannot take both.",
                replica.urn,
            )


def broker_cluster_multi_az(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    for broker in graph.of_type(BROKER):
        if known(broker, "engineType", "") != "RabbitMQ":
            continue  # ActiveMQ spreads over two zones with ACTIVE_STANDBY_MULTI_AZ; not used here
        mode = known(broker, "deploymentMode", "SINGLE_INSTANCE")
        if mode != "CLUSTER_MULTI_AZ":
            report(
                f"{short(broker)} is deployed as {mode}; use CLUSTER_MULTI_AZ (three nodes in three zones) so "
                "queues survive the loss of a zone.",
                broker.urn,
            )
            continue
        covered = subnet_zones(graph, broker, "subnetIds")
        wanted = min(BROKER_NODES, len(zones))
        if covered is not None and zones and len(covered) < wanted:
            report(
                f"{short(broker)} has subnets in {len(covered)} zone(s) ({', '.join(sorted(covered))}); a cluster "
                f"needs one in each of {wanted} zones.",
                broker.urn,
            )


def cache_failover_multi_az(args: StackValidationArgs, report: Report) -> None:
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    for group in graph.of_type(CACHE_GROUP):
        if known(group, "automaticFailoverEnabled", False) is not True:
            report(
                f"{short(group)} has automatic failover off; a lost primary would not be replaced. Turn it on.",
                group.urn,
            )
        if known(group, "multiAzEnabled", False) is not True:
            report(f"{short(group)} has Multi-AZ off; turn it on so replicas are promoted across zones.", group.urn)
        preferred = set(known(group, "preferredCacheClusterAzs", []) or [])
        nodes = known(group, "numCacheClusters")
        wanted = min(len(zones), 6)
        if zones and nodes is not None and (nodes < wanted or not set(zones[:wanted]) <= preferred):
            report(
                f"{short(group)} places {int(nodes)} node(s) in {', '.join(sorted(preferred)) or 'unspecified zones'}; "
                f"place one in each of {', '.join(zones[:wanted])}.",
                group.urn,
            )
        for subnet_group in group.property_dependencies.get("subnetGroupName", []):
            if subnet_group.resource_type == CACHE_SUBNET_GROUP and zones:
                covered = subnet_zones(graph, subnet_group, "subnetIds")
                if covered is not None and not set(zones) <= covered:
                    report(
                        f"{short(group)} uses {short(subnet_group)}, which misses "
                        f"{', '.join(z for z in zones if z not in covered)}.",
                        group.urn,
                    )


POLICIES = [
    ResourceValidationPolicy(
        name="rds-multi-az",
        description=(
            "Requires every primary database to be Multi-AZ (an instance with a standby, or a Multi-AZ DB cluster)."
        ),
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=rds_multi_az,
    ),
    StackValidationPolicy(
        name="data-subnet-groups-every-az",
        description="Requires database and cache subnet groups to have a subnet in every zone of the stack.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=subnet_groups_every_az,
    ),
    StackValidationPolicy(
        name="rds-replica-other-az",
        description="Requires each read replica to sit in a zone other than its primary's.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=replica_in_another_az,
    ),
    StackValidationPolicy(
        name="mq-cluster-multi-az",
        description="Requires RabbitMQ brokers in CLUSTER_MULTI_AZ mode with a subnet in each of three zones.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=broker_cluster_multi_az,
    ),
    StackValidationPolicy(
        name="elasticache-failover-multi-az",
        description="Requires cache replication groups with automatic failover, Multi-AZ, a node in every zone and "
        "a subnet group covering every zone.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=cache_failover_multi_az,
    ),
]


# ----- repository cache ----------------------------------------------------------------------

MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"


def file_system_every_az(args: StackValidationArgs, report: Report) -> None:
    """A node in a zone without a mount target cannot mount the cache: its scans fail."""
    graph = StackGraph(args.resources)
    zones = stack_zones(graph)
    for file_system in graph.of_type(FILE_SYSTEM):
        targets = graph.referencing(MOUNT_TARGET, "fileSystemId", file_system)
        covered: set[str] = set()
        for target in targets:
            zones_of_target = subnet_zones(graph, target, "subnetId")
            if zones_of_target is None:
                break  # a literal subnet id the graph cannot place: no verdict
            covered |= zones_of_target
        else:
            zones_of_target = set()
        if zones_of_target is None:
            continue
        missing = [z for z in zones if z not in covered]
        if missing:
            report(
                f"{short(file_system)} has no mount target in {', '.join(missing)}; nodes there cannot mount it. "
                "Add a mount target in the private subnet of every zone.",
                file_system.urn,
            )


def file_system_regional(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == FILE_SYSTEM and path(args.props, "availabilityZoneName") is not None:
        report(
            "the file system is One Zone storage: it is lost with its zone. Remove availabilityZoneName "
            "(Regional storage keeps data in several zones)."
        )


POLICIES += [
    StackValidationPolicy(
        name="efs-mount-target-every-az",
        description="Requires an EFS mount target in every zone of the stack for every file system.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=file_system_every_az,
    ),
    ResourceValidationPolicy(
        name="efs-not-one-zone",
        description="Refuses One Zone EFS file systems.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=file_system_regional,
    ),
]
