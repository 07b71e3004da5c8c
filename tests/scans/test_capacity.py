"""Capacity model: scale to zero, limits, caps, spot fallback and the week's figures."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from benchmarks import capacity as cap
from components.eks import karpenter_plan

HOUR = cap.HOUR


@pytest.fixture(scope="module")
def prod_config():
    return cap.load_config("prod")


@pytest.fixture(scope="module")
def calm(prod_config) -> cap.Model:
    """Prod without spot failures or interruptions: every figure follows from the delays."""
    return cap.model_from_config(prod_config, spot_failure=0.0, interruptions_per_node_hour=0.0)


@pytest.fixture(scope="module")
def prod_week(prod_config):
    model = cap.model_from_config(prod_config)
    workload = cap.Workload(peak_rate_per_min=0.0)
    workload = dataclasses.replace(workload, peak_rate_per_min=cap.default_peak_rate(model, workload))
    return cap.summarize(model, cap.simulate(model, cap.generate(workload, model.engines, cap.WEEK, 7), cap.WEEK))


def burst(count: int, duration: float, engine: str = "sast", start: float = 5.0) -> list[cap.Request]:
    return [cap.Request(start + i * 0.01, engine, duration) for i in range(count)]


def max_concurrent_vcpu(nodes, pool: str) -> int:
    changes = sorted(
        [(n.launched, n.vcpu) for n in nodes if n.pool == pool] + [(n.ended, -n.vcpu) for n in nodes if n.pool == pool],
        key=lambda c: (c[0], c[1]),
    )
    level = peak = 0
    for _, delta in changes:
        level += delta
        peak = max(peak, level)
    return peak


def with_limits(model: cap.Model, *cpus: float) -> cap.Model:
    """The first len(cpus) pools with these CPU limits (the others left out)."""
    pools = tuple(dataclasses.replace(p, cpu_limit=cpu) for p, cpu in zip(model.pools, cpus, strict=False))
    return dataclasses.replace(model, pools=pools)


# ----- shapes and pools from the NodePool documents ---------------------------------------


def test_sizes_come_from_the_node_pool_requirement(prod_config):
    documents = karpenter_plan.scan_pools(["us-east-1a"], prod_config.cluster.scan_pool_limits, "1m", 25)
    spot, fallback = (cap.pool_spec(d) for d in documents)
    assert (spot.capacity_type, spot.weight, fallback.capacity_type, fallback.weight) == ("spot", 100, "on-demand", 10)
    assert max(t.vcpu for t in spot.instance_types) == 64
    # Both bounds of the pool apply: nothing below the scan node floor either.
    assert min(t.vcpu for t in spot.instance_types) == karpenter_plan.SCAN_NODE_MIN_CPU
    assert {t.category for t in spot.instance_types} == {"c", "m", "r"}
    assert (fallback.cpu_limit, fallback.memory_limit_gib) == (250, 1000)
    assert (spot.consolidate_after, spot.expire_after, spot.startup_taint) == (60, 24 * HOUR, True)

    narrowed = copy.deepcopy(documents[0])
    bound = next(
        r for r in narrowed["spec"]["template"]["spec"]["requirements"] if r["key"] == "karpenter.k8s.aws/instance-cpu"
    )
    bound["values"] = ["17"]
    assert max(t.vcpu for t in cap.pool_spec(narrowed).instance_types) == 16


def test_reservations_leave_less_than_the_instance():
    assert cap.pods_per_node(cap.InstanceType("c", 2), 2, 4) == 0
    assert cap.pods_per_node(cap.InstanceType("c", 4), 2, 4) == 1
    assert cap.pods_per_node(cap.InstanceType("m", 64), 2, 4) == 31
    assert cap.pods_per_node(cap.InstanceType("c", 64), 2, 4) == 27


# ----- one request, none, bursts ----------------------------------------------------------


def test_no_requests_no_nodes(calm):
    figures = cap.summarize(calm, cap.simulate(calm, [], cap.WEEK))
    assert figures["node_hours"] == 0 and figures["nodes_launched"] == 0
    assert figures["ratio_vcpu_hours"] == 0
    assert figures["weekend_zero_node_hours"] == figures["weekend_hours"] == 48


def test_one_request_waits_for_a_node_then_the_node_goes(calm):
    d, pool = calm.delays, calm.pools[0]
    result = cap.simulate(calm, [cap.Request(100.0, "sast", 300.0)], 2 * HOUR)
    [wait] = result.node_waits
    least = d.job_start + d.batch_idle + d.launch + d.startup_taint
    assert least <= wait <= least + d.poll
    assert result.start_waits[0] == pytest.approx(wait + d.image_pull)
    [node] = result.nodes
    assert (node.pool, node.capacity_type, node.vcpu) == ("scan-jobs", "spot", karpenter_plan.SCAN_NODE_MIN_CPU)
    lifetime = d.launch + d.startup_taint + d.image_pull + 300 + pool.consolidate_after + d.disruption + d.termination
    assert node.ended - node.launched == pytest.approx(lifetime)
    figures = cap.summarize(calm, result)
    assert figures["node_hours"] == pytest.approx(lifetime / HOUR)
    assert figures["nodes_at_end"] == 0 and figures["spot_share"] == 1.0


def test_a_big_batch_gets_large_nodes(calm):
    result = cap.simulate(calm, burst(100, 120), HOUR)
    assert result.nodes[0].vcpu == 64
    assert len(result.nodes) <= 5
    assert result.completed == 100


def test_a_steady_stream_of_pods_is_batched_for_at_most_10_s(calm):
    model = dataclasses.replace(calm, delays=dataclasses.replace(calm.delays, poll=0.5))
    requests = [cap.Request(10.0 + i * 0.5, "sast", 600.0) for i in range(60)]
    result = cap.simulate(model, requests, HOUR)
    first_pod = min(r.arrival for r in requests) + model.delays.job_start
    assert first_pod + 9 < result.nodes[0].launched <= first_pod + model.delays.batch_max + model.delays.poll


def test_longer_consolidate_after_costs_more_node_hours():
    spaced = [cap.Request(60.0 + i * 480, "secrets", 60.0) for i in range(20)]
    figures = {}
    for after in ("1m", "10m"):
        config = cap.load_config("prod", {"scanner:scanPoolConsolidateAfter": after})
        model = cap.model_from_config(config, spot_failure=0.0, interruptions_per_node_hour=0.0)
        figures[after] = cap.summarize(model, cap.simulate(model, spaced, 4 * HOUR))
    assert figures["10m"]["node_hours"] > 1.5 * figures["1m"]["node_hours"]
    assert figures["10m"]["nodes_launched"] < figures["1m"]["nodes_launched"] == 20
    assert figures["10m"]["wait_for_node_s"]["p50"] < figures["1m"]["wait_for_node_s"]["p50"]


# ----- limits and caps --------------------------------------------------------------------


def test_pool_limits_are_never_exceeded(calm):
    model = with_limits(calm, 16, 8)
    result = cap.simulate(model, burst(60, 600), 6 * HOUR)
    assert 0 < max_concurrent_vcpu(result.nodes, "scan-jobs") <= 16
    assert 0 < max_concurrent_vcpu(result.nodes, "scan-jobs-on-demand") <= 8
    assert result.peak_pool_cpu["scan-jobs"] <= 16
    assert result.completed == 60
    assert len(result.nodes) == 2
    assert max(result.node_waits) > 3 * 600


def test_scaled_job_cap_queues_extra_requests(calm):
    requests = burst(30, 300)
    capped = cap.simulate(dataclasses.replace(calm, max_jobs_per_engine=3), requests, 4 * HOUR)
    free = cap.simulate(calm, requests, 4 * HOUR)
    assert capped.peak_jobs_per_engine["sast"] == 3 and free.peak_jobs_per_engine["sast"] == 30
    assert max(capped.node_waits) > 9 * 300 > 10 * max(free.node_waits)
    assert capped.completed == free.completed == 30


def test_without_spot_everything_runs_on_demand_within_the_fallback_limit(calm):
    model = dataclasses.replace(calm, spot_failure=1.0)
    limit = model.pools[1].cpu_limit
    result = cap.simulate(model, burst(300, 600), 4 * HOUR)
    figures = cap.summarize(model, result)
    assert figures["spot_share"] == 0 and {n.capacity_type for n in result.nodes} == {"on-demand"}
    assert limit - 64 < max_concurrent_vcpu(result.nodes, "scan-jobs-on-demand") <= limit
    assert result.completed == 300


def test_without_spot_or_fallback_scans_wait(calm):
    model = dataclasses.replace(calm, spot_failure=1.0, pools=calm.pools[:1])
    result = cap.simulate(model, burst(5, 60), HOUR)
    assert result.nodes == [] and result.completed == 0 and result.unstarted == 5


def test_interrupted_scans_start_over(calm):
    model = dataclasses.replace(calm, interruptions_per_node_hour=30.0)
    result = cap.simulate(model, burst(40, 120), 6 * HOUR)
    assert result.interruptions > 0 and result.restarts > 0
    assert result.completed == 40
    calm_run = cap.simulate(calm, burst(40, 120), 6 * HOUR)
    assert cap.summarize(model, result)["node_hours"] > cap.summarize(calm, calm_run)["node_hours"]


def test_an_interrupted_node_frees_the_limit_for_its_replacement(calm):
    model = dataclasses.replace(
        with_limits(calm, 8), pools=with_limits(calm, 8).pools[:1], interruptions_per_node_hour=20.0
    )
    result = cap.simulate(model, burst(3, 600), 12 * HOUR)
    assert result.interruptions > 0 and result.completed == 3
    assert max_concurrent_vcpu(result.nodes, "scan-jobs") == 8


# ----- workload and the week --------------------------------------------------------------


def test_workload_follows_the_week():
    workload = cap.Workload(peak_rate_per_min=30)
    requests = cap.generate(workload, ("a", "b"), cap.WEEK, seed=3)
    assert all(5 <= r.duration <= 1800 for r in requests)
    monday_peak = sum(1 for r in requests if 11 * HOUR <= r.arrival < 12 * HOUR)
    monday_night = sum(1 for r in requests if 2 * HOUR <= r.arrival < 3 * HOUR)
    weekend = sum(1 for r in requests if r.arrival >= cap.WEEKEND_START)
    assert monday_peak > 10 * monday_night
    assert weekend < 0.01 * len(requests)
    assert {r.engine for r in requests} == {"a", "b"}


def test_the_job_template_makes_the_scheduler_pack(calm):
    assert cap.template_packing() == "pack" and calm.packing == "pack"


def test_packing_uses_fewer_vcpu_hours_than_spreading(calm):
    workload = cap.Workload(peak_rate_per_min=20)
    requests = [r for r in cap.generate(workload, calm.engines, 16 * HOUR, 5) if r.arrival >= 9 * HOUR]
    hours = {
        packing: cap.summarize(model, cap.simulate(model, requests, 16 * HOUR))["vcpu_hours"]
        for packing in ("spread", "pack")
        for model in [dataclasses.replace(calm, packing=packing)]
    }
    assert hours["pack"] < hours["spread"]


def test_same_seed_same_figures(prod_config):
    model = cap.model_from_config(prod_config)
    workload = cap.Workload(peak_rate_per_min=10)

    def day(seed: int) -> dict:
        seeded = dataclasses.replace(model, seed=seed)
        return cap.summarize(
            seeded, cap.simulate(seeded, cap.generate(workload, model.engines, cap.DAY, seed), cap.DAY)
        )

    assert day(11) == day(11)
    assert day(11) != day(12)


def test_default_prod_week(prod_week):
    assert prod_week["ratio_vcpu_hours"] < 0.40
    assert prod_week["spot_share"] > 0.9
    assert prod_week["unstarted"] <= 2
    assert prod_week["wait_for_node_s"]["max"] < 120
    assert prod_week["nodes_at_end"] <= 5
    assert prod_week["weekend_zero_node_hours"] > 0
    assert prod_week["peak_vcpu_demand"] > 300


def test_zero_node_time():
    nodes = [cap.NodeRecord("p", "spot", "c.xlarge", 4, 10, 30), cap.NodeRecord("p", "spot", "c.xlarge", 4, 20, 50)]
    assert cap.zero_node_seconds(nodes, 0, 100) == 60
    assert cap.zero_node_seconds(nodes, 40, 100) == 50


def test_a_scan_running_at_the_end_keeps_its_node(calm):
    result = cap.simulate(calm, [cap.Request(HOUR - 300, "sast", 1800.0)], HOUR)
    figures = cap.summarize(calm, result)
    assert figures["nodes_at_end"] == 1 and result.completed == 0
    assert result.nodes[0].ended == HOUR
    assert figures["node_hours"] == pytest.approx((HOUR - result.nodes[0].launched) / HOUR)


# ----- command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--spot-failure", "1.5"], "argument --spot-failure: must be at least 0 and at most 1, got 1.5"),
        (["--interruption-rate", "-1"], "argument --interruption-rate: must be at least 0, got -1"),
        (["--peak-rate", "0"], "argument --peak-rate: must be above 0, got 0"),
        (["--launch", "soon"], "argument --launch: 'soon' is not a number"),
        (["--stack", "nope"], "--stack: no stack file Pulumi.nope.yaml"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cap.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_json_and_exit_status(tmp_path, capsys):
    path = tmp_path / "out" / "capacity.json"
    assert cap.main(["--days", "1", "--peak-rate", "5", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    assert figures["stack"] == "prod" and figures["horizon_hours"] == 24
    assert "ratio (vCPU-hours)" in capsys.readouterr().out
    assert cap.main(["--days", "1", "--peak-rate", "5", "--max-ratio", "0.01"]) == 1


def test_runs_from_one_command():
    proc = subprocess.run(
        [sys.executable, "benchmarks/capacity.py", "--days", "1", "--peak-rate", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "spot share" in proc.stdout
