"""Infrastructure of the source-code scanning service.

Order matters: the stack config is parsed and every rule checked, and the zones resolved,
before the first resource is declared, so bad input stops the run with one line and
nothing registered.
"""

from collections.abc import Callable

import pulumi
import pulumi_aws as aws

import stack_config
from components.common import versions
from components.common.context import StackContext
from components.data import broker_topology, cache_users, database_roles
from components.data import data_access as service_data
from components.data.backup import Backup, BackupArgs
from components.data.broker_clients import BrokerClients, BrokerClientsArgs
from components.data.database_clients import DatabaseClients, DatabaseClientsArgs
from components.data.postgres import Postgres, PostgresArgs
from components.data.rabbitmq import RabbitMq, RabbitMqArgs
from components.data.redis import Redis, RedisArgs
from components.drill import drill_plan
from components.drill.autoshift import ZonalAutoshift, ZonalAutoshiftArgs
from components.drill.experiments import ZoneDrills, ZoneDrillsArgs
from components.drill.probes import IMAGE as DRILL_PROBE_IMAGE
from components.drill.probes import DrillProbes, DrillProbesArgs
from components.edge.dashboard_cdn import DashboardCdn, DashboardCdnArgs
from components.eks.cluster import Cluster, ClusterArgs
from components.eks.karpenter import Karpenter, KarpenterArgs
from components.monitoring import alarm_plan
from components.monitoring import alarms as alarms_component
from components.monitoring.alarm_plan import DatabaseInstance, Monitored
from components.monitoring.alarms import Alarms, AlarmsArgs
from components.monitoring.alerting import Alerting, AlertingArgs
from components.monitoring.insights import ContainerInsights, ContainerInsightsArgs
from components.monitoring.publisher import QueueMetricsPublisher, QueueMetricsPublisherArgs
from components.network.network import Network, NetworkArgs
from components.scans import scan_access as scan_access_component
from components.scans.registry import Registry, RegistryArgs
from components.scans.repo_cache import RepositoryCache, RepositoryCacheArgs
from components.scans.scan_access import ScanAccess, ScanAccessArgs
from components.scans.scan_scaling import ScanScaling, ScanScalingArgs
from components.services.manifests import IngressSettings, ServiceSpec
from components.services.platform import ServicePlatform, ServicePlatformArgs
from components.services.services import DataSecret, Services, ServicesArgs

config = stack_config.load_from_pulumi()

# Standard zones only: Local and Wavelength zones are opt-in and must never join the plan.
zone_lookup = aws.get_availability_zones(
    region=config.region,
    state="available",
    filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
)
zones = config.resolve_zones(list(zone_lookup.names), dict(zip(zone_lookup.names, zone_lookup.zone_ids, strict=True)))

# What every component shares, handed over once.
stack = StackContext(
    stack=config.stack,
    region=config.region,
    account_id=aws.get_caller_identity().account_id,
    partition=aws.get_partition().partition,
    zones=tuple(zones),
    name_prefix=f"{stack_config.PROJECT}-{config.stack}",
    cluster_name=config.eks_cluster_name,
    protect=config.protect_stateful_resources,
    tags=config.default_tags(),
)

# Every AWS resource goes through this provider, so the default tags reach all of them.
provider = aws.Provider(
    "aws",
    region=config.region,
    # The same account guards and profile the default provider of the look-ups above reads.
    profile=config.aws_profile,
    allowed_account_ids=list(config.allowed_account_ids) or None,
    forbidden_account_ids=list(config.forbidden_account_ids) or None,
    default_tags=aws.ProviderDefaultTagsArgs(tags=stack.tags),
)
with_provider = pulumi.ResourceOptions(providers=[provider])

network = Network(
    "network",
    NetworkArgs(
        stack=stack,
        vpc_cidr=config.network.vpc_cidr,
        subnet_prefixes=config.network.subnet_prefixes,
        pod_cidr=config.network.pod_cidr,
        nat_mode=config.network.nat_mode,
        interface_endpoints=config.network.interface_endpoints,
        flow_log_retention_days=config.network.flow_log_retention_days,
    ),
    opts=with_provider,
)

cluster = Cluster(
    "cluster",
    ClusterArgs(
        stack=stack,
        vpc_id=network.vpc_id,
        private_subnet_ids=network.subnet_ids["private"],
        pod_subnet_ids=network.subnet_ids.get("pods"),
        kubernetes_version=config.cluster.kubernetes_version,
        public_access_cidrs=config.cluster.cluster_public_access_cidrs,
        api_access_cidrs=config.cluster.cluster_api_access_cidrs,
        admin_role_arns=config.cluster.cluster_admin_role_arns,
        system_instance_types=config.cluster.system_node_instance_types,
        system_nodes_per_zone=config.cluster.system_nodes_per_zone,
        log_retention_days=config.cluster.control_plane_log_retention_days,
        deletion_protection=config.environment == "production",
    ),
    opts=with_provider,
)
# Components with objects in the cluster get its Kubernetes provider the way every component
# gets the AWS one: their children inherit it.
in_cluster = pulumi.ResourceOptions(providers=[provider, cluster.provider])

karpenter = Karpenter(
    "karpenter",
    KarpenterArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        ami_alias=f"al2023@{versions.AL2023_AMI_RELEASE}",
        scan_limits=config.cluster.scan_pool_limits,
        services_limits=config.cluster.services_pool_limits,
        scan_consolidate_after=config.cluster.scan_pool_consolidate_after,
        scan_fallback_percent=config.cluster.scan_on_demand_fallback_percent,
        peak=config.services.peak_window,
        custom_networking=config.network.pod_cidr is not None,
        after=cluster.ready_for_controllers,
    ),
    opts=in_cluster,
)

# ----- data tier: reachable only from the cluster's nodes ---------------------------------


def listing(store: str) -> list[str]:
    """The services that list `store` among their data stores."""
    return [s.name for s in config.services.services if store in s.data_access]


database_plan = database_roles.plan(listing("postgres"), listing("postgres-read"))
# The broker's management API and the database answer only inside the VPC: the first-deploy
# stage runs from outside it, so what lives inside them (queues, users, roles, grants) is
# declared by the next `up`, from the runner inside the VPC. Their passwords and secrets exist
# from the first stage on.
inside_the_servers = config.services.services_rollout != "first-deploy"
postgres = Postgres(
    "postgres",
    PostgresArgs(
        stack=stack,
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids["isolated"],
        client_security_group_id=cluster.cluster_security_group_id,
        endpoint_security_group_id=network.endpoint_security_group_id,
        engine_version=config.data.database_engine_version,
        deployment=config.data.database_deployment,
        instance_class=config.data.instance_class,
        allocated_storage_gib=config.data.database_allocated_storage_gib,
        max_allocated_storage_gib=config.data.database_max_allocated_storage_gib,
        backup_retention_days=config.data.database_backup_retention_days,
        read_replica=config.data.database_read_replica,
        roles=database_plan.roles,
        # The same runners that reach the private cluster API create the roles and grants.
        deploy_cidrs=config.cluster.cluster_api_access_cidrs,
    ),
    opts=with_provider,
)
if inside_the_servers:
    DatabaseClients(
        "database",
        DatabaseClientsArgs(
            stack=stack,
            plan=database_plan,
            host=postgres.primary_host,
            port=5432,
            master_username=postgres.master_username,
            master_password=postgres.master_password,
            passwords=postgres.role_passwords,
            engine_version=config.data.database_engine_version,
            after=(postgres.database,),
        ),
        opts=with_provider,
    )
rabbitmq = RabbitMq(
    "rabbitmq",
    RabbitMqArgs(
        stack=stack,
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids["private"],
        client_security_group_id=cluster.cluster_security_group_id,
        instance_type=config.data.broker_instance_type,
        engine_version=config.data.broker_engine_version,
        # The same runners that reach the private cluster API declare the queues and users.
        deploy_cidrs=config.cluster.cluster_api_access_cidrs,
    ),
    opts=with_provider,
)
topology = broker_topology.plan(
    config.scans.scan_engines,
    listing("rabbitmq"),
    prefix=config.scans.scan_queue_prefix,
    delivery_limit=config.scans.scan_queue_delivery_limit,
    max_length=config.scans.scan_queue_max_length,
)
broker_clients = BrokerClients(
    "broker",
    BrokerClientsArgs(
        stack=stack,
        topology=topology,
        management_url=rabbitmq.management_url,
        amqps_endpoint=rabbitmq.amqps_endpoint,
        admin_username=rabbitmq.admin_username,
        admin_password=rabbitmq.admin_password,
        kms_key_arn=rabbitmq.kms_key_arn,
        after=(rabbitmq.broker,),
        on_broker=inside_the_servers,
    ),
    opts=with_provider,
)
redis = Redis(
    "redis",
    RedisArgs(
        stack=stack,
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids["isolated"],
        client_security_group_id=cluster.cluster_security_group_id,
        node_type=config.data.cache_node_type,
        engine_version=config.data.cache_engine_version,
        snapshot_retention_days=config.data.cache_snapshot_retention_days,
        users=cache_users.plan(listing("redis")).users,
    ),
    opts=with_provider,
)
backup = Backup(
    "backup",
    BackupArgs(
        stack=stack,
        resource_arns=[postgres.database_arn],
        copy_region=config.data.backup_copy_region,
        frequency_hours=config.data.backup_frequency_hours,
        retention_days=config.data.backup_retention_days,
        copy_supported=config.data.database_deployment == "multi-az-instance",
    ),
    opts=with_provider,
)
data_settings: dict[str, pulumi.Input[str]] = {
    "POSTGRES_HOST": postgres.writer_endpoint,
    "POSTGRES_READER_HOST": postgres.reader_endpoint,
    "POSTGRES_PORT": "5432",
    # Migrations run as the schema's owner. No workload reads the master user's or the broker
    # administrator's secret: each client has secrets of its own.
    "POSTGRES_MIGRATIONS_SECRET_ARN": postgres.role_secret_arns[database_roles.OWNER],
    "RABBITMQ_AMQPS_ENDPOINT": rabbitmq.amqps_endpoint,
    "RABBITMQ_MANAGEMENT_URL": rabbitmq.management_url,
    "REDIS_HOST": redis.primary_endpoint,
    "REDIS_READER_HOST": redis.reader_endpoint,
    "REDIS_PORT": "6379",
}
data_access = service_data.DataAccess(
    "data-access",
    service_data.DataAccessArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        settings=data_settings,
        secret_arns=[postgres.role_secret_arns[database_roles.OWNER]],
        kms_key_arns=[postgres.kms_key_arn],
    ),
    opts=in_cluster,
)

# ----- scans: where jobs run, what they read, where their source and images come from --------
scan_access = ScanAccess(
    "scan-access",
    ScanAccessArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        # One identity per engine, reading its own broker user only.
        engines=config.scans.scan_engines,
        engine_secret_arns={e: broker_clients.secret_arns[f"engine:{e}"] for e in config.scans.scan_engines},
        engine_key_arns=[rabbitmq.kms_key_arn],
    ),
    opts=in_cluster,
)
repo_cache = RepositoryCache(
    "repo-cache",
    RepositoryCacheArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        kubernetes_version=config.cluster.kubernetes_version,
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids["private"],
        client_security_group_id=cluster.cluster_security_group_id,
        namespace=scan_access.namespace,
        replica_region=config.data.backup_copy_region if config.scans.repo_cache_replication else None,
        after=(scan_access.namespace_resource,),
        # The controller runs only on the system nodes and gets its credentials from the agent:
        # EKS reports the add-on active only once its pods run.
        driver_after=(cluster.pod_identity_agent, cluster.system_node_group),
    ),
    opts=in_cluster,
)
registry = Registry(
    "registry",
    RegistryArgs(
        stack=stack,
        # The fetch step's git image and the services' images live beside the engines, pulled
        # through the same endpoints.
        # The drill's probe image too (python -m drill run --probes job).
        engines=(
            *config.scans.scan_engines,
            "git-fetch",
            *(s.name for s in config.services.services),
            DRILL_PROBE_IMAGE,
        ),
        replica_region=config.data.backup_copy_region if config.scans.registry_replication else None,
    ),
    opts=with_provider,
)
scan_scaling = ScanScaling(
    "scan-scaling",
    ScanScalingArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        namespace=scan_access.namespace,
        engines=config.scans.scan_engines,
        image_urls=registry.repository_urls,
        image_tag=config.scans.scan_image_tag,
        # KEDA's own monitoring user, not the broker's administrator.
        broker_secret_arn=broker_clients.secret_arns["keda"],
        broker_key_arn=rabbitmq.kms_key_arn,
        vhost=broker_clients.vhost,
        engine_secret_arns={e: broker_clients.secret_arns[f"engine:{e}"] for e in config.scans.scan_engines},
        service_accounts=scan_access.service_accounts,
        cache_claim=repo_cache.claim_name,
        max_jobs_per_engine=config.scans.scan_max_parallel_jobs,
        job_cpu=config.scans.scan_job_cpu,
        job_memory_gib=config.scans.scan_job_memory_gib,
        queue_prefix=config.scans.scan_queue_prefix,
        # KEDA's ScaledJobs and TriggerAuthentication live in the scan namespace.
        after=(*cluster.ready_for_controllers, scan_access.namespace_resource),
    ),
    opts=in_cluster,
)
# ----- services: API services and the storage API on the services pool, behind one ALB --------
service_platform = ServicePlatform(
    "service-platform",
    ServicePlatformArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        vpc_id=network.vpc_id,
        rebalanced_namespaces=(service_data.NAMESPACE,),
        after=cluster.ready_for_controllers,
    ),
    opts=in_cluster,
)
# An internet-facing load balancer sits in the public subnets, an internal one in the private.
ingress_tier = "public" if config.services.api_ingress_scheme == "internet-facing" else "private"


def tagged(tag: str) -> Callable[[str], str]:
    """The image reference of `tag` in the repository at a URL."""
    return lambda url: f"{url}:{tag}"


def client_secrets(service: str, stores: tuple[str, ...]) -> dict[str, DataSecret]:
    """The secrets of a service's own users of the stores it lists."""
    own = {
        "postgres": lambda: DataSecret(postgres.role_secret_arns[database_roles.WRITER], postgres.kms_key_arn),
        "postgres-read": lambda: DataSecret(postgres.role_secret_arns[database_roles.READER], postgres.kms_key_arn),
        "rabbitmq": lambda: DataSecret(broker_clients.secret_arns[f"service:{service}"], rabbitmq.kms_key_arn),
        "redis": lambda: DataSecret(redis.secret_arns[f"service:{service}"], redis.kms_key_arn),
    }
    return {store: own[store]() for store in stores}


load_balancer_name = f"{stack.name_prefix}-api"[:32].rstrip("-")
services = Services(
    "services",
    ServicesArgs(
        stack=stack,
        services=tuple(
            ServiceSpec(
                name=s.name,
                image=registry.repository_urls[s.name].apply(tagged(s.image_tag)),
                port=s.port,
                cpu_millicores=s.cpu_millicores,
                memory_mib=s.memory_mib,
                min_replicas=s.min_replicas,
                peak_min_replicas=s.peak_floor,
                max_replicas=s.max_replicas,
                target_cpu_percent=s.target_cpu_percent,
                health_path=s.health_path,
                ingress_path=s.ingress_path,
                data_access=s.data_access,
            )
            for s in config.services.services
        ),
        cluster_name=cluster.cluster_name,
        namespace=service_data.NAMESPACE,
        config_map=service_data.CONFIG_MAP,
        # Each service reads only its own users' secrets, one per store it lists.
        client_secrets={s.name: client_secrets(s.name, s.data_access) for s in config.services.services},
        peak=config.services.peak_window,
        rollout=config.services.services_rollout,
        ingress=IngressSettings(
            load_balancer_name=load_balancer_name,
            scheme=config.services.api_ingress_scheme,
            # The subnets' Name tags (known before they exist), one per zone of the stack.
            subnet_names=[name for zone, name in sorted(network.subnet_names[ingress_tier].items())],
            certificate_arn=config.services.api_certificate_arn,
            # Pods on custom networking call from the pod CIDR, unchanged by SNAT inside the VPC.
            client_cidrs=[str(c) for c in (config.network.vpc_cidr, config.network.pod_cidr) if c is not None],
            tags=stack.tags,
        ),
        read_at_start=(data_access.config_map,),
        after=(
            data_access.namespace_resource,
            scan_scaling.keda,
            service_platform.metrics_server,
            karpenter.node_pools["services"],
        ),
        ingress_after=(service_platform.load_balancer_controller,),
    ),
    opts=in_cluster,
)

dashboard = DashboardCdn(
    "dashboard",
    DashboardCdnArgs(
        stack=stack,
        price_class=config.dashboard.dashboard_price_class,
        domain_name=config.dashboard.dashboard_domain,
        hosted_zone_id=config.dashboard.dashboard_hosted_zone_id,
        web_acl_arn=config.dashboard.dashboard_web_acl_arn,
    ),
    opts=with_provider,
)

# ----- monitoring: every tier's alarms, a composite per tier and per zone, where alerts go --------
insights = ContainerInsights(
    "container-insights",
    ContainerInsightsArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        kubernetes_version=config.cluster.kubernetes_version,
        after=(cluster.pod_identity_agent, cluster.system_node_group),
    ),
    opts=with_provider,
)
publisher = QueueMetricsPublisher(
    "queue-metrics",
    QueueMetricsPublisherArgs(
        stack=stack,
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids["private"],
        broker_security_group_id=rabbitmq.security_group_id,
        secret_arn=broker_clients.secret_arns["queue-metrics"],
        secret_key_arn=rabbitmq.kms_key_arn,
    ),
    opts=with_provider,
)
subscriptions = {
    "page": config.monitoring.page_subscriptions,
    "ticket": config.monitoring.ticket_subscriptions,
}
# Cost alerts and CloudFront's alarms need topics in us-east-1: the stack's own there, or a copy.
at_home = config.region == alarms_component.GLOBAL_REGION
alerting = Alerting(
    "alerting",
    AlertingArgs(
        stack=stack,
        subscriptions=subscriptions,
        monthly_budget_usd=config.monitoring.monthly_budget_usd,
        cost_alerts=at_home,
    ),
    opts=with_provider,
)
global_alerting = (
    None
    if at_home
    else Alerting(
        "alerting-global",
        AlertingArgs(
            stack=stack,
            subscriptions=subscriptions,
            monthly_budget_usd=config.monitoring.monthly_budget_usd,
            region=alarms_component.GLOBAL_REGION,
            suffix="-global",
        ),
        opts=with_provider,
    )
)
database_dimension = (
    "DBClusterIdentifier" if config.data.database_deployment == "multi-az-cluster" else "DBInstanceIdentifier"
)
database_instances = [DatabaseInstance(f"{stack.name_prefix}-postgres", "primary", None, database_dimension)]
if "replica" in postgres.identifiers:
    database_instances.append(
        DatabaseInstance(f"{stack.name_prefix}-postgres-replica", "replica", zones[-1], database_dimension)
    )
nat_keys = tuple(network.nat_gateway_ids)
# The API load balancer is the controller's, not the program's: its ARN suffix is looked up once
# the Ingress is ready (Pulumi awaits the Ingress's load balancer address, which exists once the
# load balancer does). A preview before the first `up` shows it unknown.
api_load_balancer_lookup = (
    aws.lb.get_load_balancer_output(
        name=load_balancer_name,
        opts=pulumi.InvokeOutputOptions(provider=provider, depends_on=[services.ingress]),
    )
    if services.ingress is not None
    else None
)
api_load_balancer = api_load_balancer_lookup.arn_suffix if api_load_balancer_lookup is not None else None
api_load_balancer_arn = api_load_balancer_lookup.arn if api_load_balancer_lookup is not None else None
watched = Monitored(
    zones=tuple(zones),
    database_instances=tuple(database_instances),
    database_instance_class=config.data.instance_class,
    database_allocated_storage_gib=config.data.database_allocated_storage_gib,
    proxy_name=f"{stack.name_prefix}-postgres",
    broker_name=f"{stack.name_prefix}-rabbitmq",
    scan_queues=topology.scan_queues,
    dead_letter_queues=topology.dead_letter_queues,
    vhost=topology.vhost,
    cache_nodes=tuple((f"{stack.name_prefix}-redis-{i + 1:03d}", zone) for i, zone in enumerate(redis.node_ids)),
    nat_zones=nat_keys,
    cluster_name=stack.cluster_name,
    publisher_functions=publisher.function_names,
    load_balancer=api_load_balancer is not None,
)
# Each dimension value with a resource behind it, as that resource's output.
dimension_values: dict[str, pulumi.Input[str]] = {
    **{f"{database_dimension}={db.identifier}": postgres.identifiers[db.role] for db in database_instances},
    f"ProxyName={watched.proxy_name}": postgres.proxy_name,
    f"Broker={watched.broker_name}": rabbitmq.broker.broker_name,
    f"ClusterName={watched.cluster_name}": cluster.cluster_name,
    "{file-system}": repo_cache.file_system_id,
    "{distribution}": dashboard.distribution_id,
    **{f"{{nat:{key}}}": nat_id for key, nat_id in network.nat_gateway_ids.items()},
    **{f"CacheClusterId={node}": redis.node_ids[zone] for node, zone in watched.cache_nodes},
    **{f"FunctionName={fn}": publisher.functions[zone].name for zone, fn in publisher.function_names.items()},
}
if api_load_balancer is not None:
    dimension_values["{load-balancer}"] = api_load_balancer
alarms = Alarms(
    "alarms",
    AlarmsArgs(
        stack=stack,
        plan=alarm_plan.plan(watched, config.monitoring.thresholds()),
        topic_arns=alerting.topic_arns,
        values=dimension_values,
        global_topic_arns=global_alerting.topic_arns if global_alerting else None,
    ),
    opts=pulumi.ResourceOptions(providers=[provider], depends_on=[insights]),
)

# ----- the zone drill: an FIS experiment per zone, zonal autoshift ---------------------------------
composite_arns = alarms.composite_arns
managed: dict[str, pulumi.Input[str]] = {"cluster": cluster.cluster_arn}
if api_load_balancer_arn is not None:
    managed["api-load-balancer"] = api_load_balancer_arn
drilled = drill_plan.Drilled(
    zones=tuple(zones),
    name_prefix=stack.name_prefix,
    subnet_tiers=tuple(tier for tier in ("public", "private", "isolated", "pods") if tier in network.subnet_arns),
    cluster_name=stack.cluster_name,
    launchers=("karpenter",),
    node_group=True,
    database=config.data.database_deployment,
    cache=True,
    managed_resources=tuple(managed),
    minutes=config.drill.drill_outage_minutes,
    replica_zone=zones[-1] if "replica" in postgres.identifiers else None,
    autoshift_status="ENABLED" if config.drill.zonal_autoshift else "ANY",
    single_nat_zone=zones[0] if config.network.nat_mode == "single" else None,
)
drill_arns: dict[str, pulumi.Input[str]] = {
    "{launcher:karpenter}": karpenter.controller_role_arn,
    **{f"{{managed:{name}}}": arn for name, arn in managed.items()},
    **{
        f"{{subnet:{tier}}}@{zone}": arn
        for tier, by_zone in network.subnet_arns.items()
        for zone, arn in by_zone.items()
    },
}
drills = ZoneDrills(
    "drill",
    ZoneDrillsArgs(
        stack=stack,
        plans=drill_plan.plan(drilled),
        arns=drill_arns,
        stop_alarm_arns=[composite_arns["drill-stop"]] if "drill-stop" in composite_arns else [],
        dashboard_arn=alarms.dashboard_arn,
        stop_conditions=config.drill.drill_stop_conditions,
    ),
    opts=with_provider,
)
# Who probes the stores during a drill: the drill users' secrets, from inside the cluster.
drill_probes = DrillProbes(
    "drill-probes",
    DrillProbesArgs(
        stack=stack,
        cluster_name=cluster.cluster_name,
        namespace=scan_access_component.NAMESPACE,
        secret_arns={
            "postgres": postgres.role_secret_arns[database_roles.DRILL],
            "rabbitmq": broker_clients.secret_arns["drill"],
            "redis": redis.secret_arns["drill"],
        },
        key_arns=[postgres.kms_key_arn, rabbitmq.kms_key_arn, redis.kms_key_arn],
        bucket_name=drills.bucket_name,
        bucket_arn=drills.bucket_arn,
        canary_queue=broker_topology.DRILL_QUEUE,
        vhost=broker_clients.vhost,
        repo_cache_claim=repo_cache.claim_name,
        # The replica (or the cluster's readers): what the read-only clients reach.
        reader_endpoint=(
            postgres.reader_endpoint
            if "replica" in postgres.identifiers or config.data.database_deployment == "multi-az-cluster"
            else None
        ),
        reader_zone=postgres.replica_zone,
        after=(scan_access.namespace_resource,),
    ),
    opts=in_cluster,
)
if config.drill.zonal_autoshift:
    ZonalAutoshift(
        "autoshift",
        ZonalAutoshiftArgs(
            stack=stack,
            resources=managed,
            outcome_alarm_arns=[composite_arns[f"zone-{zone}"] for zone in zones if f"zone-{zone}" in composite_arns],
            # The service failing as a whole holds practice runs back, not a ticket's worth.
            blocking_alarm_arns=[composite_arns["drill-stop"]] if "drill-stop" in composite_arns else [],
            allowed_windows=config.drill.autoshift_practice_windows,
        ),
        opts=with_provider,
    )

pulumi.export("availabilityZones", zones)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("subnetIds", network.subnet_ids)
pulumi.export("natGatewayIds", network.nat_gateway_ids)
pulumi.export("podAddressesPerZone", config.network.pod_addresses_per_zone)
pulumi.export("clusterName", cluster.cluster_name)
pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig_json))
pulumi.export("karpenterInterruptionQueue", karpenter.queue_name)
pulumi.export("karpenterNodePools", sorted(karpenter.node_pools))
pulumi.export(
    "dataTier",
    {
        "postgresWriterEndpoint": postgres.writer_endpoint,
        "postgresReaderEndpoint": postgres.reader_endpoint,
        "postgresSecretArn": postgres.secret_arn,
        "postgresRoleSecretArns": postgres.role_secret_arns,
        "rabbitmqAmqpsEndpoint": rabbitmq.amqps_endpoint,
        "rabbitmqSecretArn": rabbitmq.secret_arn,
        "rabbitmqClientSecretArns": broker_clients.secret_arns,
        "redisPrimaryEndpoint": redis.primary_endpoint,
        "redisClientSecretArns": redis.secret_arns,
        "backupVaultArn": backup.vault_arn,
    },
)
pulumi.export(
    "scans",
    {
        "namespace": scan_access.namespace,
        "serviceAccounts": scan_access.service_accounts,
        "githubTokenPoolArn": scan_access.token_pool_arn,
        "repoCacheFileSystemId": repo_cache.file_system_id,
        "repoCacheClaim": repo_cache.claim_name,
        "repositoryUrls": registry.repository_urls,
    },
)
pulumi.export(
    "services",
    {
        "namespace": service_data.NAMESPACE,
        "deployments": sorted(services.deployments),
        "peakWindow": config.services.peak_window.describe(),
        "apiLoadBalancer": services.api_hostname,
    },
)
pulumi.export("dashboard", {"bucket": dashboard.bucket_name, "domain": dashboard.distribution_domain})
pulumi.export(
    "monitoring",
    {
        "dashboard": alarms.dashboard_name,
        "compositeAlarmArns": alarms.composite_arns,
        "topicArns": alerting.topic_arns,
        "queueMetricsFunctions": publisher.function_names,
    },
)
pulumi.export(
    "drill",
    {
        "experimentTemplateIds": drills.template_ids,
        "reports": drills.bucket_name,
        "probes": drill_probes.config,
        "probeImage": registry.repository_urls[DRILL_PROBE_IMAGE],
        "plans": {p.zone: drill_plan.as_dict(p) for p in drill_plan.plan(drilled)},
    },
)
