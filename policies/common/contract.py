"""The names the program and the policy packs must agree on, defined once and imported by both.

The packs read what the components declare: tags on subnets and route tables, the type token
and the inputs of the network component, the label and name of the scan pool. A rename on one
side only would silently change what a rule checks (a rule reading a tag nobody writes finds
nothing to refuse), so both sides take these from here, and tests/packs/test_contract.py fails when a
component stops declaring one of them.

Plain Python with no imports: the packs load it from `policies/common` beside their own modules.
"""

#: Tag naming a subnet's or route table's tier (public, private, isolated, pods), and an alarm's
#: (data, scans, network, cluster, edge; ops/alarms.py selects by it).
TIER_TAG = "scanner.io/tier"
#: Tag naming the zone of a per-zone resource without a zone property (route tables, alarms).
ZONE_TAG = "scanner.io/zone"

#: Type token of the network component, and the inputs of it the placement rules read.
NETWORK_TYPE = "scanner:network:Network"
NETWORK_ZONES_INPUT = "availabilityZones"
NETWORK_NAT_MODE_INPUT = "natMode"

#: Label every Karpenter pool carries and the scan Jobs select, and the spot scan pool's name.
POOL_LABEL = "scanner.io/pool"
SCAN_POOL = "scan-jobs"
#: The scan pool's on-demand fallback and the services' pool (their NodePools' names).
SCAN_FALLBACK_POOL = "scan-jobs-on-demand"
SERVICES_POOL = "services"

#: Tag on every data-tier secret: `<store>/<user>` (`postgres/scans_rw`, `rabbitmq/svc-api`), or
#: `<store>/administrator` on the master / administrator credentials no workload may read.
DATA_SECRET_TAG = "scanner.io/data-secret"
ADMINISTRATOR = "administrator"
#: Tag on every data-tier secret: the clients that may read it, space-separated (`service:api
#: service:webhooks`), or `none`.
SECRET_READERS_TAG = "scanner.io/readers"
NO_READERS = "none"
#: Tag on each workload's IAM role (EKS Pod Identity): the client it is (`service:api`,
#: `engine:semgrep`, `keda`, `migrations`).
CLIENT_TAG = "scanner.io/client"

#: Tags on each CloudWatch alarm: its severity (`page`, `ticket`); on a composite, its kind
#: (`tier` or `zone`, the key in TIER_TAG or ZONE_TAG). The monitoring policies and ops/alarms.py
#: read them.
SEVERITY_TAG = "scanner.io/severity"
COMPOSITE_TAG = "scanner.io/composite"
#: Type token of the alarms component, and its input naming the zones its composites cover.
ALARMS_TYPE = "scanner:monitoring:Alarms"
ALARMS_ZONES_INPUT = "availabilityZones"

#: Tag on each zone's FIS experiment template: its stop conditions, `other-zones` or `none` (a
#: drill that tests the alerting); the placement pack refuses `none` unless the stack says so.
DRILL_STOP_TAG = "scanner.io/drill-stop"
#: Type token of the zone drills' component.
DRILLS_TYPE = "scanner:drill:ZoneDrills"
#: Tag on what a zone drill finds by tag (FIS takes no ARN for some targets): the database and the
#: cache, `<prefix>-database`, `<prefix>-cache`.
DRILL_TARGET_TAG = "scanner.io/drill-target"
#: Where in the drill's report bucket the probe Job and the runner meet (components/drill/probes.py
#: grants it, drill/remote.py writes and reads there).
DRILL_RESULTS_PREFIX = "probes"
