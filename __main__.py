"""Infrastructure of the source-code scanning service.

Order matters: the stack config is parsed and every rule checked, and the zones resolved,
before the first resource is declared, so bad input stops the run with one line and
nothing registered.
"""

import pulumi
import pulumi_aws as aws

import stack_config
from components.network import Network, NetworkArgs

config = stack_config.load_from_pulumi()

# Standard zones only: Local and Wavelength zones are opt-in and must never join the plan.
zone_lookup = aws.get_availability_zones(
    region=config.region,
    state="available",
    filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
)
zones = config.resolve_zones(list(zone_lookup.names))
account_id = aws.get_caller_identity().account_id

# Every AWS resource goes through this provider, so the default tags reach all of them.
provider = aws.Provider(
    "aws",
    region=config.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=config.default_tags()),
)
with_provider = pulumi.ResourceOptions(providers=[provider])

network = Network(
    "network",
    NetworkArgs(
        region=config.region,
        account_id=account_id,
        availability_zones=zones,
        name_prefix=f"{stack_config.PROJECT}-{config.stack}",
        cluster_name=config.eks_cluster_name,
        vpc_cidr=config.vpc_cidr,
        subnet_prefixes=config.subnet_prefixes,
        pod_cidr=config.pod_cidr,
        nat_mode=config.nat_mode,
        interface_endpoints=config.interface_endpoints,
        flow_log_retention_days=config.flow_log_retention_days,
    ),
    opts=with_provider,
)

pulumi.export("availabilityZones", zones)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("subnetIds", network.subnet_ids)
pulumi.export("natGatewayIds", network.nat_gateway_ids)
pulumi.export("podAddressesPerZone", config.pod_addresses_per_zone)
