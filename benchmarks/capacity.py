"""Capacity model of the scan pool: a week of scan requests replayed through the stack's KEDA
ScaledJobs and Karpenter NodePools, against a fixed on-demand node group sized for the peak.

    python benchmarks/capacity.py [--stack prod] [--seed 7] [--json build/capacity.json]

Exits 1 when scan vCPU-hours reach `--max-ratio` (default 0.40) of the fixed group, 2 on a bad
flag or stack. Read from the stack: the NodePools `karpenter_plan.scan_pools` generates (limits,
capacity type, weight, consolidateAfter, expireAfter, startup taint, instance category and the
`instance-cpu` bounds), the ScaledJob cap per engine, the engines, each Job's CPU and memory,
and KEDA's polling interval. Everything else is an assumption:

Workload (seeded, so every figure is reproducible)
- A week from Monday 00:00 UTC. Poisson arrivals whose rate follows `WEEKDAY_CURVE` (fractions
  of the peak rate: 4% at night, a ramp from 07:00, the peak 10:00-16:00, a taper to 22:00);
  Saturday and Sunday run `--weekend-level` (0.5%) of the peak all day.
- Peak rate (`--peak-rate`, requests/min): by default the rate that keeps 40% of the combined
  ScaledJob caps busy at the mean job duration (prod: 3 x 150 Jobs -> ~44/min, ~360 vCPU).
- Durations: log-normal, median `--median-duration` (150 s), sigma 1.0, clipped to 5 s-30 min.
  Engines are picked uniformly.

KEDA and Jobs
- Each ScaledJob polls every `--poll` s (POLLING_INTERVAL), at its own random phase, and starts
  one Job per waiting request up to its cap ("accurate": running and pending Jobs count).
- Job to pod: `--job-start` (2 s: Job controller, then the scheduler finds no room).

Karpenter
- Pending pods are batched: the batch closes after 1 s without a new pod or 10 s in all
  (Karpenter's BATCH_IDLE_DURATION / BATCH_MAX_DURATION). Pods first fill in-flight nodes; new
  nodes go to the pools by weight, within each pool's CPU and memory limits.
- A node takes as many pods as fit the largest allowed size, on the cheapest size that holds
  them: one pod -> a 4-vCPU node, a busy batch -> 64 vCPU.
- Shapes: c/m/r with 2, 4, 8 GiB per vCPU, sizes 2-64 vCPU, kept if they meet the pool's
  category and instance-cpu bounds; relative price per vCPU-hour c 0.0425, m 0.048,
  r 0.063 (us-east-1 6th-generation on-demand list prices), the same order on spot.
- Allocatable: memory less Karpenter's 7.5% VM overhead, kube-reserved (255 MiB + 11 MiB per
  ENI-limited max pod) and 100 MiB eviction threshold; CPU less the EKS AMI kube-reserved (6% of
  the first core, 1% of the second, 0.5% of the next two, 0.25% of the rest); less the
  DaemonSets' requests (`DAEMONSETS`: vpc-cni, kube-proxy, pod identity agent, EFS CSI node,
  approximate add-on defaults, 180 m CPU and 92 MiB together).
- A node is schedulable `--launch` (60 s: CreateFleet, EC2 boot of AL2023, kubelet Ready) plus
  `--startup-taint` (5 s: EFS CSI agent lifts its taint, when the pool has it) after launch.
  The first pod of an engine on a node pulls its image (`--image-pull`, 20 s), later ones reuse it.
- kube-scheduler packs scan pods onto the nodes already running scans, as the Job template's
  preferred pod affinity asks (`--packing pack`, read from `scan_job.pack_scans_together`), or
  spreads them over the emptiest nodes (`--packing spread`: its default LeastAllocated scoring).
- A node empty for consolidateAfter is removed after `--disruption` more (20 s: the disruption
  loop and Karpenter's 15 s validation), all empty nodes at once; billing ends `--termination`
  (10 s) later. A node reaching expireAfter takes no new pods and goes when empty. Running scans
  carry do-not-disrupt, so no other consolidation applies.

Spot
- A spot launch finds no spot capacity in any offering of the pool with probability
  `--spot-failure` (3%); that node goes to the on-demand fallback within its limits, or its pods
  wait and are retried 3 min later (Karpenter's unavailable-offerings cache) or when a node goes.
- Spot nodes are interrupted at `--interruption-rate` per node-hour (0.01, pessimistic next to
  the <5%-a-month band of the Spot advisor); their pods are evicted at once (do-not-disrupt does
  not hold an interruption), re-created after `--job-start` and the scans start over.

Figures
- Node-hours and vCPU-hours from launch to the end of billing, within the week.
- Spot share: spot node-hours over all scan node-hours.
- Wait for a node: request to pod bound on a schedulable node; wait to start adds the image pull.
- Fixed group: on-demand nodes of the size with the lowest price per Job it holds (the cheapest
  way to hold the peak on one size), enough for the peak concurrent Jobs, running the whole
  horizon. Ratio = model vCPU-hours / fixed vCPU-hours (sizes differ, so vCPU-hours, not
  node-hours); it gates the exit status. Also shown: the ratio to a group of the size that
  carries most model node-hours.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import random
import re
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.eks import karpenter_plan  # noqa: E402
from components.scans import scan_job  # noqa: E402
from components.scans.scaled_jobs import POLLING_INTERVAL  # noqa: E402
from offline.program import StackFileError, load_stack_config  # noqa: E402
from policies.common import costing  # noqa: E402
from stack_config import ConfigError, StackConfig, parse  # noqa: E402

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
WEEKEND_START = 5 * DAY

Packing = Literal["spread", "pack"]

# ----- assumptions -------------------------------------------------------------------------

#: The weekday curve (hour of day UTC, fraction of the peak rate; linear in between) and the
#: share of the ScaledJob caps busy at the peak: one definition, which the cost estimate's fluid
#: approximation of this model reads too (policies/common/costing.py).
WEEKDAY_CURVE = costing.WEEKDAY_CURVE
DEFAULT_PEAK_LOAD = costing.DEFAULT_PEAK_LOAD
SIZE_NAMES = {2: "large", 4: "xlarge", 8: "2xlarge", 16: "4xlarge", 32: "8xlarge", 48: "12xlarge", 64: "16xlarge"}
GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}
PRICE_PER_VCPU_HOUR = {"c": 0.0425, "m": 0.048, "r": 0.063}
#: ENI-limited max pods of the 6th/7th-generation sizes (Karpenter's default kubelet maxPods).
ENI_MAX_PODS = {2: 29, 4: 58, 8: 58, 16: 234, 32: 234, 48: 234, 64: 737}
VM_MEMORY_OVERHEAD = 0.075
EVICTION_MIB = 100
#: (DaemonSet, CPU millicores, memory MiB) requested on every scan node.
DAEMONSETS: tuple[tuple[str, int, int], ...] = (
    ("aws-node (vpc-cni)", 25, 0),
    ("kube-proxy", 100, 0),
    ("eks-pod-identity-agent", 25, 32),
    ("efs-csi-node", 30, 60),
)
BATCH_IDLE = 1.0
BATCH_MAX = 10.0
UNAVAILABLE_OFFERING_TTL = 180.0


@dataclass(frozen=True)
class Delays:
    poll: float = float(POLLING_INTERVAL)
    job_start: float = 2.0
    batch_idle: float = BATCH_IDLE
    batch_max: float = BATCH_MAX
    launch: float = 60.0
    startup_taint: float = 5.0
    image_pull: float = 20.0
    disruption: float = 20.0
    termination: float = 10.0
    unavailable_offering_ttl: float = UNAVAILABLE_OFFERING_TTL


@dataclass(frozen=True)
class Workload:
    peak_rate_per_min: float
    weekend_level: float = costing.WEEKEND_LEVEL
    median_duration: float = 150.0
    duration_sigma: float = 1.0
    min_duration: float = 5.0
    max_duration: float = 1800.0

    @property
    def mean_duration(self) -> float:
        return self.median_duration * math.exp(self.duration_sigma**2 / 2)


# ----- instance shapes ----------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceType:
    category: str
    vcpu: int

    @property
    def memory_gib(self) -> int:
        return self.vcpu * GIB_PER_VCPU[self.category]

    @property
    def name(self) -> str:
        return f"{self.category}.{SIZE_NAMES[self.vcpu]}"

    @property
    def price(self) -> float:
        return self.vcpu * PRICE_PER_VCPU_HOUR[self.category]


def kube_reserved_cpu(vcpu: int) -> float:
    steps = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025))
    reserved, left = 0.0, float(vcpu)
    for cores, share in steps:
        used = min(left, cores)
        reserved += used * share
        left -= used
    return reserved


def allocatable(itype: InstanceType) -> tuple[float, float]:
    """(vCPU, GiB) left for scan pods."""
    daemon_cpu = sum(cpu for _, cpu, _ in DAEMONSETS) / 1000
    daemon_mib = sum(mib for _, _, mib in DAEMONSETS)
    reserved_mib = 255 + 11 * ENI_MAX_PODS[itype.vcpu] + EVICTION_MIB + daemon_mib
    memory = itype.memory_gib * (1 - VM_MEMORY_OVERHEAD) - reserved_mib / 1024
    return itype.vcpu - kube_reserved_cpu(itype.vcpu) - daemon_cpu, memory


def pods_per_node(itype: InstanceType, job_cpu: float, job_memory_gib: float) -> int:
    cpu, memory = allocatable(itype)
    return max(0, min(int(cpu // job_cpu), int(memory // job_memory_gib)))


# ----- node pools, read from the generated NodePool documents ------------------------------


@dataclass(frozen=True)
class PoolSpec:
    name: str
    capacity_type: str
    weight: int
    cpu_limit: float
    memory_limit_gib: float
    instance_types: tuple[InstanceType, ...]
    consolidate_after: float
    expire_after: float
    startup_taint: bool


def parse_duration(text: str) -> float:
    karpenter_plan.check_duration(text)
    units = {"s": 1, "m": 60, "h": 3600}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text)))


def parse_memory_gib(text: str) -> float:
    match = re.fullmatch(r"(\d+)(Gi|Ti|Mi)?", text)
    if not match:
        raise ValueError(f"{text!r} is not a memory quantity such as '4000Gi'")
    scale = {"Mi": 1 / 1024, "Gi": 1, "Ti": 1024, None: 1 / 1024**3}[match.group(2)]
    return int(match.group(1)) * scale


def _requirement(requirements: list[dict[str, Any]], key: str) -> dict[str, Any]:
    found = [r for r in requirements if r["key"] == key]
    if not found:
        raise ValueError(f"the NodePool has no {key} requirement")
    return found[0]


def instance_types(requirements: list[dict[str, Any]]) -> tuple[InstanceType, ...]:
    """The c/m/r shapes the pool's category and every instance-cpu requirement (Gt, Lt, In) admit."""
    categories = _requirement(requirements, "karpenter.k8s.aws/instance-category")["values"]
    bounds = [r for r in requirements if r["key"] == "karpenter.k8s.aws/instance-cpu"]
    if not bounds:
        raise ValueError("the NodePool has no karpenter.k8s.aws/instance-cpu requirement")

    tests = {
        "Lt": lambda vcpu, values: vcpu < values[0],
        "Gt": lambda vcpu, values: vcpu > values[0],
        "In": lambda vcpu, values: vcpu in values,
    }

    def admits(vcpu: int) -> bool:
        return all(tests[b["operator"]](vcpu, [int(v) for v in b["values"]]) for b in bounds)

    return tuple(InstanceType(c, v) for c in categories if c in GIB_PER_VCPU for v in SIZE_NAMES if admits(v))


def pool_spec(node_pool: Mapping[str, Any]) -> PoolSpec:
    spec = node_pool["spec"]
    template = spec["template"]["spec"]
    requirements = template["requirements"]
    return PoolSpec(
        name=node_pool["metadata"]["name"],
        capacity_type=_requirement(requirements, "karpenter.sh/capacity-type")["values"][0],
        weight=int(spec.get("weight", 0)),
        cpu_limit=float(spec["limits"]["cpu"]),
        memory_limit_gib=parse_memory_gib(spec["limits"]["memory"]),
        instance_types=instance_types(requirements),
        consolidate_after=parse_duration(spec["disruption"]["consolidateAfter"]),
        expire_after=parse_duration(template.get("expireAfter", "720h")),
        startup_taint=bool(template.get("startupTaints")),
    )


# ----- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    pools: tuple[PoolSpec, ...]
    engines: tuple[str, ...]
    max_jobs_per_engine: int
    job_cpu: float
    job_memory_gib: float
    delays: Delays = Delays()
    spot_failure: float = 0.03
    interruptions_per_node_hour: float = 0.01
    packing: Packing = "spread"
    seed: int = 7


def load_config(stack: str = "prod", overrides: Mapping[str, str] | None = None) -> StackConfig:
    """The stack's typed config, read offline from Pulumi.<stack>.yaml (plus `ns:key` overrides)."""
    raw = load_stack_config(stack)
    raw.update(overrides or {})
    return parse(raw, stack)


def template_packing() -> Packing:
    """`pack` when the scan Job template asks the scheduler to prefer nodes already running
    scans (a preferred pod affinity on the host), else the scheduler's default spreading."""
    affinity = scan_job.pack_scans_together()
    terms = affinity.pod_affinity.preferred_during_scheduling_ignored_during_execution if affinity.pod_affinity else []
    packs = any(t.pod_affinity_term.topology_key == "kubernetes.io/hostname" for t in terms or [])
    return "pack" if packs else "spread"


def model_from_config(config: StackConfig, **settings: Any) -> Model:
    zones = list(config.network.availability_zones or (f"{config.region}a",))
    documents = karpenter_plan.scan_pools(
        zones,
        config.cluster.scan_pool_limits,
        config.cluster.scan_pool_consolidate_after,
        config.cluster.scan_on_demand_fallback_percent,
        peak=config.services.peak_window,
    )
    pools = sorted((pool_spec(d) for d in documents), key=lambda p: -p.weight)
    if settings.get("packing") is None:
        settings["packing"] = template_packing()
    return Model(
        pools=tuple(pools),
        engines=tuple(config.scans.scan_engines),
        max_jobs_per_engine=config.scans.scan_max_parallel_jobs,
        job_cpu=float(config.scans.scan_job_cpu),
        job_memory_gib=float(config.scans.scan_job_memory_gib),
        **settings,
    )


def default_peak_rate(model: Model, workload: Workload) -> float:
    """Requests/min that keep DEFAULT_PEAK_LOAD of the combined ScaledJob caps busy."""
    jobs = DEFAULT_PEAK_LOAD * model.max_jobs_per_engine * len(model.engines)
    return jobs / workload.mean_duration * 60


# ----- workload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    arrival: float
    engine: str
    duration: float


def load_level(t: float, weekend_level: float) -> float:
    """Fraction of the peak rate at `t` seconds after Monday 00:00 UTC."""
    if t % WEEK >= WEEKEND_START:
        return weekend_level
    hour = (t % DAY) / HOUR
    for (h0, v0), (h1, v1) in itertools.pairwise(WEEKDAY_CURVE):
        if h0 <= hour < h1:
            return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)
    return WEEKDAY_CURVE[-1][1]


def generate(workload: Workload, engines: Sequence[str], horizon: float = WEEK, seed: int = 7) -> list[Request]:
    """Poisson arrivals following the curve (thinning at the peak rate)."""
    rng = random.Random(f"{seed}/workload")
    peak = workload.peak_rate_per_min / 60
    requests: list[Request] = []
    if peak <= 0:
        return requests
    mu = math.log(workload.median_duration)
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= horizon:
            return requests
        if rng.random() < load_level(t, workload.weekend_level):
            duration = min(
                max(rng.lognormvariate(mu, workload.duration_sigma), workload.min_duration), workload.max_duration
            )
            requests.append(Request(t, rng.choice(list(engines)), duration))


# ----- simulation --------------------------------------------------------------------------


@dataclass(eq=False)
class Job:
    id: int
    request: Request
    attempt: int = 0
    waiting: bool = False
    node: Node | None = None
    nominated: Node | None = None
    bound_at: float | None = None


@dataclass(eq=False)
class Node:
    id: int
    pool: PoolSpec
    itype: InstanceType
    slots: int
    launched: float
    state: Literal["launching", "ready", "draining", "gone"] = "launching"
    ended: float | None = None
    empty_since: float | None = None
    free: int = 0
    pods: dict[int, Job] = field(default_factory=dict)
    nominees: dict[int, Job] = field(default_factory=dict)
    images: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.free = self.slots

    @property
    def empty(self) -> bool:
        return not self.pods and not self.nominees


@dataclass
class PoolState:
    spec: PoolSpec
    cpu: float = 0.0
    memory_gib: float = 0.0
    peak_cpu: float = 0.0

    def fits(self, itype: InstanceType) -> bool:
        return (
            self.cpu + itype.vcpu <= self.spec.cpu_limit
            and self.memory_gib + itype.memory_gib <= self.spec.memory_limit_gib
        )


@dataclass
class EngineState:
    phase: float
    queue: deque[Request] = field(default_factory=deque)
    active: int = 0
    poll_at: float | None = None


@dataclass(frozen=True)
class NodeRecord:
    pool: str
    capacity_type: str
    instance_type: str
    vcpu: int
    launched: float
    ended: float


@dataclass
class Result:
    horizon: float
    requests: int
    nodes: list[NodeRecord]
    node_waits: list[float]
    start_waits: list[float]
    completed: int
    restarts: int
    interruptions: int
    spot_failures: int
    peak_jobs: int
    peak_jobs_per_engine: dict[str, int]
    peak_pool_cpu: dict[str, float]
    unstarted: int
    work_vcpu_hours: float
    nodes_at_end: int


class _Karpenter:
    """The Karpenter half of the simulation: batching pending pods, launching, readying,
    consolidating, expiring and interrupting nodes. Mixed into Simulation, whose state it uses."""

    # Simulation's state and methods that this half uses; Simulation.__init__ sets them.
    model: Model
    delays: Delays
    now: float
    rng: random.Random
    _ids: itertools.count[int]
    pools: dict[str, PoolState]
    slots: dict[InstanceType, int]
    nodes: list[Node]
    launching: dict[int, Node]
    batch: list[Job]
    batch_start: float
    batch_generation: int
    blocked: list[Job]
    restarts: int
    interruptions: int
    spot_failures: int

    if TYPE_CHECKING:

        def at(self, when: float, action: Callable[..., None], *args: Any) -> None: ...
        def _pod_created(self, job: Job, attempt: int) -> None: ...
        def _bind(self, job: Job, node: Node) -> None: ...
        def _vacate(self, job: Job) -> Node: ...
        def _nominate(self, job: Job, node: Node) -> None: ...
        def _index(self, node: Node) -> None: ...
        def _settle(self, node: Node) -> None: ...
        def _retry_blocked(self) -> None: ...

    def _add_to_batch(self, job: Job) -> None:
        if not self.batch:
            self.batch_start = self.now
        self.batch.append(job)
        self.batch_generation += 1
        close = min(self.now + self.delays.batch_idle, self.batch_start + self.delays.batch_max)
        self.at(close, self._close_batch, self.batch_generation)

    def _close_batch(self, generation: int) -> None:
        if generation != self.batch_generation:
            return
        jobs = list({j.id: j for j in self.batch if j.waiting and j.nominated is None}.values())
        self.batch = []
        self._provision(self._fill_in_flight(jobs))

    def _fill_in_flight(self, jobs: list[Job]) -> list[Job]:
        queue = deque(jobs)
        for node in self.launching.values():
            while queue and node.free > 0:
                self._nominate(queue.popleft(), node)
        return list(queue)

    def _provision(self, jobs: list[Job]) -> None:
        queue = deque(jobs)
        while queue:
            node = self._launch_for(len(queue))
            if node is None:
                self.blocked.extend(queue)
                return
            while queue and node.free > 0:
                self._nominate(queue.popleft(), node)

    def _launch_for(self, count: int) -> Node | None:
        """A node from the first pool by weight that has room in its limits and capacity."""
        for pool in self.pools.values():
            itype = self._choose_type(pool, count)
            if itype is None:
                continue
            if pool.spec.capacity_type == "spot" and self.rng.random() < self.model.spot_failure:
                self.spot_failures += 1
                self.at(self.now + self.delays.unavailable_offering_ttl, self._retry_blocked)
                continue
            return self._launch(pool, itype)
        return None

    def _choose_type(self, pool: PoolState, count: int) -> InstanceType | None:
        """The cheapest size that holds as many of `count` pods as the largest size allowed."""
        allowed = [t for t in pool.spec.instance_types if self.slots[t] > 0 and pool.fits(t)]
        if not allowed:
            return None
        wanted = min(count, max(self.slots[t] for t in allowed))
        return min((t for t in allowed if self.slots[t] >= wanted), key=lambda t: (t.price, t.vcpu))

    def _launch(self, pool: PoolState, itype: InstanceType) -> Node:
        node = Node(next(self._ids), pool.spec, itype, self.slots[itype], launched=self.now)
        pool.cpu += itype.vcpu
        pool.memory_gib += itype.memory_gib
        pool.peak_cpu = max(pool.peak_cpu, pool.cpu)
        self.nodes.append(node)
        self.launching[node.id] = node
        taint = self.delays.startup_taint if pool.spec.startup_taint else 0.0
        self.at(self.now + self.delays.launch + taint, self._node_ready, node)
        return node

    def _node_ready(self, node: Node) -> None:
        del self.launching[node.id]
        node.state = "ready"
        self._index(node)
        for job in list(node.nominees.values()):
            self._bind(job, node)
        rate = self.model.interruptions_per_node_hour
        if node.pool.capacity_type == "spot" and rate > 0:
            self.at(self.now + self.rng.expovariate(rate / HOUR), self._interrupt, node)
        self.at(node.launched + node.pool.expire_after, self._expire, node)
        self._settle(node)

    def _consolidate(self, node: Node, empty_since: float) -> None:
        if node.state == "ready" and node.empty and node.empty_since == empty_since:
            self._terminate(node)

    def _expire(self, node: Node) -> None:
        if node.state != "ready":
            return
        node.state = "draining"
        self._index(node)
        if node.empty:
            self._terminate(node)

    def _interrupt(self, node: Node) -> None:
        if node.state not in ("ready", "draining"):
            return
        self.interruptions += 1
        node.state = "draining"
        for job in list(node.pods.values()):
            self._vacate(job)
            job.attempt += 1
            self.restarts += 1
            self.at(self.now + self.delays.job_start, self._pod_created, job, job.attempt)
        self._terminate(node)

    def _terminate(self, node: Node) -> None:
        node.state = "gone"
        self._index(node)
        node.ended = self.now + self.delays.termination
        self.at(node.ended, self._release, node)

    def _release(self, node: Node) -> None:
        pool = self.pools[node.pool.name]
        pool.cpu -= node.itype.vcpu
        pool.memory_gib -= node.itype.memory_gib
        self._retry_blocked()


class Simulation(_Karpenter):
    """Discrete events: KEDA polls, Job pods, Karpenter batches, launches and removals."""

    def __init__(self, model: Model, horizon: float):
        self.model = model
        self.delays = model.delays
        self.horizon = horizon
        self.now = 0.0
        self.rng = random.Random(f"{model.seed}/cluster")
        self._events: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._ids = itertools.count()
        self.engines = {e: EngineState(phase=self.rng.uniform(0, self.delays.poll)) for e in model.engines}
        self.pools = {spec.name: PoolState(spec) for spec in model.pools}
        self.slots = {
            t: pods_per_node(t, model.job_cpu, model.job_memory_gib) for p in model.pools for t in p.instance_types
        }
        self.nodes: list[Node] = []
        self.launching: dict[int, Node] = {}
        self.open: dict[int, Node] = {}
        self.pending: deque[tuple[Job, int]] = deque()
        self.batch: list[Job] = []
        self.batch_start = 0.0
        self.batch_generation = 0
        self.blocked: list[Job] = []
        self.jobs = 0
        self.peak_jobs = 0
        self.peak_jobs_per_engine = dict.fromkeys(model.engines, 0)
        self.completed = 0
        self.restarts = 0
        self.interruptions = 0
        self.spot_failures = 0
        self.node_waits: list[float] = []
        self.start_waits: list[float] = []
        self.work = 0.0

    # ----- event loop

    def at(self, when: float, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action, args))

    def run(self, requests: Sequence[Request]) -> Result:
        for request in requests:
            self.at(request.arrival, self._arrive, request)
        while self._events and self._events[0][0] <= self.horizon:
            self.now, _, action, args = heapq.heappop(self._events)
            action(*args)
        return self._result(len(requests))

    # ----- KEDA and Jobs

    def _arrive(self, request: Request) -> None:
        self.engines[request.engine].queue.append(request)
        self._schedule_poll(request.engine)

    def _schedule_poll(self, name: str) -> None:
        engine = self.engines[name]
        if not engine.queue or (engine.poll_at is not None and engine.poll_at >= self.now):
            return
        interval = self.delays.poll
        engine.poll_at = engine.phase + math.ceil((self.now - engine.phase) / interval) * interval
        self.at(engine.poll_at, self._poll, name)

    def _poll(self, name: str) -> None:
        engine = self.engines[name]
        engine.poll_at = None
        for _ in range(min(len(engine.queue), self.model.max_jobs_per_engine - engine.active)):
            job = Job(next(self._ids), engine.queue.popleft())
            engine.active += 1
            self.jobs += 1
            self.at(self.now + self.delays.job_start, self._pod_created, job, job.attempt)
        self.peak_jobs = max(self.peak_jobs, self.jobs)
        self.peak_jobs_per_engine[name] = max(self.peak_jobs_per_engine[name], engine.active)

    def _pod_created(self, job: Job, attempt: int) -> None:
        job.waiting = True
        self.pending.append((job, attempt))
        node = self._pick_node()
        if node is not None:
            self._bind(job, node)
        else:
            self._add_to_batch(job)

    def _pick_node(self) -> Node | None:
        """kube-scheduler's choice among nodes with room: the least allocated (spread) or the most."""
        best, best_key = None, (-math.inf, 0)
        sign = 1 if self.model.packing == "spread" else -1
        for node in self.open.values():
            key = (sign * node.free / node.slots, -node.id)
            if key > best_key:
                best, best_key = node, key
        return best

    def _bind(self, job: Job, node: Node) -> None:
        if job.nominated is not None:
            self._drop_nomination(job)
        job.waiting = False
        job.node = node
        node.pods[job.id] = job
        node.free -= 1
        node.empty_since = None
        self._index(node)
        pulled = node.images.setdefault(job.request.engine, self.now + self.delays.image_pull)
        start = max(self.now, pulled)
        if job.bound_at is None:
            job.bound_at = self.now
            self.node_waits.append(self.now - job.request.arrival)
            self.start_waits.append(start - job.request.arrival)
        self.at(start + job.request.duration, self._finish, job, job.attempt)

    def _vacate(self, job: Job) -> Node:
        node = job.node
        assert node is not None
        del node.pods[job.id]
        node.free += 1
        job.node = None
        self._index(node)
        return node

    def _nominate(self, job: Job, node: Node) -> None:
        job.nominated = node
        node.nominees[job.id] = job
        node.free -= 1

    def _drop_nomination(self, job: Job) -> None:
        node = job.nominated
        assert node is not None
        del node.nominees[job.id]
        node.free += 1
        job.nominated = None

    def _index(self, node: Node) -> None:
        if node.state == "ready" and node.free > 0:
            self.open[node.id] = node
        else:
            self.open.pop(node.id, None)

    def _finish(self, job: Job, attempt: int) -> None:
        if attempt != job.attempt or job.node is None:
            return
        node = self._vacate(job)
        self.completed += 1
        self.work += job.request.duration * self.model.job_cpu / HOUR
        self.engines[job.request.engine].active -= 1
        self.jobs -= 1
        self._schedule_poll(job.request.engine)
        self._settle(node)

    def _next_pending(self) -> Job | None:
        while self.pending:
            job, attempt = self.pending[0]
            if job.waiting and job.attempt == attempt:
                return job
            self.pending.popleft()
        return None

    def _settle(self, node: Node) -> None:
        """A ready node takes pending pods into its room; an empty one is timed for removal."""
        if node.state == "ready":
            while node.free > 0 and (job := self._next_pending()) is not None:
                self._bind(job, node)
        if not node.empty:
            return
        if node.state == "draining":
            self._terminate(node)
        elif node.state == "ready":
            node.empty_since = self.now
            wait = node.pool.consolidate_after + self.delays.disruption
            self.at(self.now + wait, self._consolidate, node, self.now)

    # ----- Karpenter provisioning

    # ----- Karpenter disruption

    def _retry_blocked(self) -> None:
        blocked, self.blocked = self.blocked, []
        for job in blocked:
            if job.waiting and job.nominated is None:
                self._add_to_batch(job)

    # ----- result

    def _result(self, requests: int) -> Result:
        records = [
            NodeRecord(
                n.pool.name,
                n.pool.capacity_type,
                n.itype.name,
                n.itype.vcpu,
                n.launched,
                min(n.ended if n.ended is not None else math.inf, self.horizon),
            )
            for n in self.nodes
        ]
        return Result(
            horizon=self.horizon,
            requests=requests,
            nodes=records,
            node_waits=self.node_waits,
            start_waits=self.start_waits,
            completed=self.completed,
            restarts=self.restarts,
            interruptions=self.interruptions,
            spot_failures=self.spot_failures,
            peak_jobs=self.peak_jobs,
            peak_jobs_per_engine=self.peak_jobs_per_engine,
            peak_pool_cpu={name: p.peak_cpu for name, p in self.pools.items()},
            unstarted=requests - len(self.node_waits),
            work_vcpu_hours=self.work,
            nodes_at_end=sum(1 for n in self.nodes if n.ended is None or n.ended > self.horizon),
        )


def simulate(model: Model, requests: Sequence[Request], horizon: float = WEEK) -> Result:
    return Simulation(model, horizon).run(requests)


# ----- figures -----------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def zero_node_seconds(nodes: Sequence[NodeRecord], start: float, end: float) -> float:
    """Time within [start, end) with no scan node billed."""
    if end <= start:
        return 0.0
    spans = sorted((max(n.launched, start), min(n.ended, end)) for n in nodes if n.ended > start and n.launched < end)
    covered, reach = 0.0, start
    for lo, hi in spans:
        if hi > reach:
            covered += hi - max(lo, reach)
            reach = hi
    return (end - start) - covered


def summarize(model: Model, result: Result) -> dict[str, Any]:
    node_hours = sum(n.ended - n.launched for n in result.nodes) / HOUR
    vcpu_hours = sum((n.ended - n.launched) * n.vcpu for n in result.nodes) / HOUR
    spot_hours = sum(n.ended - n.launched for n in result.nodes if n.capacity_type == "spot") / HOUR
    hours_by_type: dict[str, float] = {}
    for n in result.nodes:
        hours_by_type[n.instance_type] = hours_by_type.get(n.instance_type, 0.0) + (n.ended - n.launched) / HOUR
    best_packed = fixed_group(model, best_packed_type(model), result.peak_jobs, result.horizon)
    same_size = fixed_group(model, _most_used_type(model, hours_by_type), result.peak_jobs, result.horizon)
    weekend_start, weekend_end = min(WEEKEND_START, result.horizon), min(WEEK, result.horizon)
    return {
        "horizon_hours": result.horizon / HOUR,
        "requests": result.requests,
        "completed": result.completed,
        "unstarted": result.unstarted,
        "restarts": result.restarts,
        "interruptions": result.interruptions,
        "spot_launch_failures": result.spot_failures,
        "nodes_launched": len(result.nodes),
        "node_hours": node_hours,
        "vcpu_hours": vcpu_hours,
        "scan_vcpu_hours": result.work_vcpu_hours,
        "utilisation": result.work_vcpu_hours / vcpu_hours if vcpu_hours else 0.0,
        "spot_share": spot_hours / node_hours if node_hours else 0.0,
        "node_hours_by_type": dict(sorted(hours_by_type.items(), key=lambda kv: -kv[1])),
        "wait_for_node_s": _waits(result.node_waits),
        "wait_to_start_s": _waits(result.start_waits),
        "peak_jobs": result.peak_jobs,
        "peak_vcpu_demand": result.peak_jobs * model.job_cpu,
        "peak_pool_vcpu": result.peak_pool_cpu,
        "fixed_group": best_packed,
        "ratio_vcpu_hours": _ratio(vcpu_hours, best_packed["vcpu_hours"]),
        "fixed_group_most_used_size": same_size,
        "ratio_vcpu_hours_most_used_size": _ratio(vcpu_hours, same_size["vcpu_hours"]),
        "weekend_zero_node_hours": zero_node_seconds(result.nodes, weekend_start, weekend_end) / HOUR,
        "weekend_hours": (weekend_end - weekend_start) / HOUR,
        "nodes_at_end": result.nodes_at_end,
    }


def fixed_group(model: Model, itype: InstanceType, peak_jobs: int, horizon: float) -> dict[str, Any]:
    """On-demand nodes of one size, enough for `peak_jobs` at once, running the whole horizon."""
    slots = pods_per_node(itype, model.job_cpu, model.job_memory_gib)
    nodes = math.ceil(peak_jobs / slots)
    return {
        "instance_type": itype.name,
        "vcpu": itype.vcpu,
        "pods_per_node": slots,
        "nodes": nodes,
        "node_hours": nodes * horizon / HOUR,
        "vcpu_hours": nodes * itype.vcpu * horizon / HOUR,
    }


def best_packed_type(model: Model) -> InstanceType:
    """The size with the lowest price per Job it holds."""
    fitting = [
        t for p in model.pools for t in p.instance_types if pods_per_node(t, model.job_cpu, model.job_memory_gib) > 0
    ]
    return min(fitting, key=lambda t: (t.price / pods_per_node(t, model.job_cpu, model.job_memory_gib), t.vcpu))


def _most_used_type(model: Model, hours_by_type: Mapping[str, float]) -> InstanceType:
    if not hours_by_type:
        return best_packed_type(model)
    types = {t.name: t for p in model.pools for t in p.instance_types}
    return types[max(hours_by_type, key=lambda name: hours_by_type[name])]


def _ratio(model_hours: float, fixed_hours: float) -> float:
    if fixed_hours:
        return model_hours / fixed_hours
    return 0.0 if model_hours == 0 else math.inf


def _waits(values: Sequence[float]) -> dict[str, float]:
    return {"max": max(values, default=0.0), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}


# ----- report ------------------------------------------------------------------------------


def render(stack: str, model: Model, workload: Workload, figures: Mapping[str, Any], max_ratio: float) -> str:
    d = model.delays
    fixed, same = figures["fixed_group"], figures["fixed_group_most_used_size"]
    node_wait, start_wait = figures["wait_for_node_s"], figures["wait_to_start_s"]
    pools = [
        f"  {p.name:<22}{p.capacity_type}, weight {p.weight}, limit {p.cpu_limit:g} vCPU / "
        f"{p.memory_limit_gib:g} GiB, consolidateAfter {p.consolidate_after:g} s, "
        f"sizes {min(t.vcpu for t in p.instance_types)}-{max(t.vcpu for t in p.instance_types)} vCPU"
        for p in model.pools
    ]
    types = ", ".join(f"{name} {hours:.1f}" for name, hours in list(figures["node_hours_by_type"].items())[:4])
    ratio = figures["ratio_vcpu_hours"]
    lines = [
        f"Scan capacity model: stack {stack}, {figures['horizon_hours']:g} h from Monday 00:00 UTC, seed {model.seed}",
        *pools,
        f"  {'ScaledJobs':<22}{len(model.engines)} engines x {model.max_jobs_per_engine} Jobs, "
        f"{model.job_cpu:g} vCPU / {model.job_memory_gib:g} GiB each",
        f"  {'delays (s)':<22}poll {d.poll:g}, job {d.job_start:g}, batch {d.batch_idle:g}-{d.batch_max:g}, "
        f"launch {d.launch:g}, startup taint {d.startup_taint:g}, image {d.image_pull:g}, "
        f"disruption {d.disruption:g}, termination {d.termination:g}",
        f"  {'workload':<22}peak {workload.peak_rate_per_min:.1f} req/min, weekend {workload.weekend_level:.1%} "
        f"of peak, median {workload.median_duration:g} s; spot failure {model.spot_failure:.0%}, "
        f"interruptions {model.interruptions_per_node_hour:g}/node-h, packing {model.packing}",
        "",
        _row(
            "requests",
            f"{figures['requests']} ({figures['completed']} done, {figures['unstarted']} not started, "
            f"{figures['restarts']} restarts after {figures['interruptions']} interruptions)",
        ),
        _row("peak concurrent Jobs", f"{figures['peak_jobs']} ({figures['peak_vcpu_demand']:g} vCPU demand)"),
        _row("peak pool vCPU", ", ".join(f"{k} {v:g}" for k, v in figures["peak_pool_vcpu"].items())),
        _row(
            "scan nodes",
            f"{figures['nodes_launched']} launched, {figures['spot_launch_failures']} spot launch failures",
        ),
        _row("node-hours", f"{figures['node_hours']:.1f} ({types})"),
        _row(
            "vCPU-hours",
            f"{figures['vcpu_hours']:.0f} (scans use {figures['scan_vcpu_hours']:.0f}: {figures['utilisation']:.0%})",
        ),
        _row("spot share", f"{figures['spot_share']:.1%} of node-hours"),
        _row(
            "wait for a node",
            f"max {node_wait['max']:.0f} s, p50 {node_wait['p50']:.0f} s, p95 {node_wait['p95']:.0f} s",
        ),
        _row(
            "wait to scan start",
            f"max {start_wait['max']:.0f} s, p50 {start_wait['p50']:.0f} s, p95 {start_wait['p95']:.0f} s",
        ),
        _row("weekend, no scan node", f"{figures['weekend_zero_node_hours']:.1f} of {figures['weekend_hours']:g} h"),
        _row("nodes at the end", str(figures["nodes_at_end"])),
        _row(
            "fixed on-demand group",
            f"{fixed['nodes']} x {fixed['instance_type']} ({fixed['pods_per_node']} per node) "
            f"x {figures['horizon_hours']:g} h = {fixed['node_hours']:.0f} node-hours, "
            f"{fixed['vcpu_hours']:.0f} vCPU-hours",
        ),
        _row(
            "ratio (vCPU-hours)", f"{ratio:.3f} (threshold {max_ratio:.2f}: {'met' if ratio < max_ratio else 'MISSED'})"
        ),
        _row(
            "same-size group",
            f"{same['nodes']} x {same['instance_type']} ({same['pods_per_node']} per node), "
            f"{same['vcpu_hours']:.0f} vCPU-hours: ratio {figures['ratio_vcpu_hours_most_used_size']:.3f}",
        ),
    ]
    return "\n".join(lines)


def _row(label: str, value: str) -> str:
    return f"{label:<24}{value}"


# ----- command line ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(low: float, high: float = math.inf, low_open: bool = False) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (value > low if low_open else value >= low) or value > high or math.isnan(value):
            bound = f"above {low:g}" if low_open else f"at least {low:g}"
            limit = f" and at most {high:g}" if high < math.inf else ""
            raise argparse.ArgumentTypeError(f"must be {bound}{limit}, got {text}")
        return value

    return convert


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="capacity.py", description=__doc__.splitlines()[0])
    delays = Delays()
    p.add_argument("--stack", default="prod", help="stack whose Pulumi.<stack>.yaml is modelled (default prod)")
    p.add_argument("--seed", type=int, default=7, help="seed of the workload and of spot events (default 7)")
    p.add_argument(
        "--days",
        type=int,
        choices=range(1, 8),
        default=7,
        metavar="1-7",
        help="days from Monday 00:00 UTC to replay (default 7: the whole week)",
    )
    p.add_argument(
        "--peak-rate",
        type=_number(0, low_open=True),
        help=f"weekday peak requests per minute (default: {DEFAULT_PEAK_LOAD:.0%} of the ScaledJob caps busy)",
    )
    p.add_argument("--weekend-level", type=_number(0, 1), default=0.005, help="weekend rate, fraction of peak")
    p.add_argument("--median-duration", type=_number(5, 1800), default=150.0, help="median scan seconds")
    p.add_argument("--spot-failure", type=_number(0, 1), default=0.03, help="chance a spot launch finds no capacity")
    p.add_argument("--interruption-rate", type=_number(0), default=0.01, help="spot interruptions per node-hour")
    p.add_argument("--poll", type=_number(0, low_open=True), default=delays.poll, help="KEDA polling interval, s")
    for name, default, text in (
        ("job-start", delays.job_start, "Job to pending pod"),
        ("launch", delays.launch, "node launch to Ready"),
        ("startup-taint", delays.startup_taint, "EFS CSI startup taint removal"),
        ("image-pull", delays.image_pull, "image pull, first pod of an engine on a node"),
        ("disruption", delays.disruption, "empty node past consolidateAfter to removal"),
        ("termination", delays.termination, "removal to end of billing"),
    ):
        p.add_argument(f"--{name}", type=_number(0), default=default, help=f"{text}, s (default {default:g})")
    p.add_argument(
        "--packing",
        choices=("spread", "pack"),
        default=None,
        help="kube-scheduler placement: spread (LeastAllocated, its default) or pack (default: pack "
        "when the scan Job template prefers nodes already running scans, as it does)",
    )
    p.add_argument(
        "--max-ratio",
        type=_number(0, low_open=True),
        default=0.40,
        help="exit 1 when the vCPU-hour ratio reaches this (default 0.40)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.stack)
    except (StackFileError, ConfigError) as exc:
        parser.error(str(exc))
    delays = Delays(
        poll=args.poll,
        job_start=args.job_start,
        launch=args.launch,
        startup_taint=args.startup_taint,
        image_pull=args.image_pull,
        disruption=args.disruption,
        termination=args.termination,
    )
    model = model_from_config(
        config,
        delays=delays,
        spot_failure=args.spot_failure,
        interruptions_per_node_hour=args.interruption_rate,
        packing=args.packing,
        seed=args.seed,
    )
    workload = Workload(
        peak_rate_per_min=args.peak_rate or 0.0, weekend_level=args.weekend_level, median_duration=args.median_duration
    )
    if args.peak_rate is None:
        workload = replace(workload, peak_rate_per_min=default_peak_rate(model, workload))
    horizon = args.days * DAY
    result = simulate(model, generate(workload, model.engines, horizon, args.seed), horizon)
    figures = summarize(model, result)
    print(render(args.stack, model, workload, figures, args.max_ratio))
    if args.json:
        document = {
            "stack": args.stack,
            "seed": args.seed,
            "workload": asdict(workload),
            "delays": asdict(delays),
            "max_ratio": args.max_ratio,
            **figures,
        }
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(document, indent=2) + "\n")
        except OSError as exc:
            print(f"{parser.prog}: error: --json: cannot write {args.json} ({exc.strerror})", file=sys.stderr)
            return 2
    return 0 if figures["ratio_vcpu_hours"] < args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
