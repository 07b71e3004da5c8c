"""The drill's verdicts (drill/verdicts.py) against moto's RDS, ElastiCache and CloudWatch, and a
stand-in of the cluster's API; and the runner taking them once, while the zone is out."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from drill_aws import PREFIX, Shifts, alarm, drill_template, queue_datum, tagged_database
from moto import mock_aws

from drill import __main__ as drill_cli
from drill import run as runner
from drill import verdicts
from drill.verdicts import Verdict
from policies.common import contract

TARGET = contract.DRILL_TARGET_TAG


@pytest.fixture
def aws():
    with mock_aws():
        yield {
            "rds": boto3.client("rds", region_name="us-east-1"),
            "elasticache": boto3.client("elasticache", region_name="us-east-1"),
            "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
            "fis": boto3.client("fis", region_name="us-east-1"),
        }


def test_the_database_verdict_wants_the_primary_out_of_the_zone(aws):
    tagged_database(aws["rds"], "scanner-dev-postgres", "scanner-dev-database")
    assert verdicts.database(aws["rds"], PREFIX, "us-east-1b") == Verdict(
        "database", False, f"no database tagged {TARGET}={PREFIX}-database"
    )
    tagged_database(aws["rds"], "scanner-prod-postgres", f"{PREFIX}-database")
    failed = verdicts.database(aws["rds"], PREFIX, "us-east-1a")
    assert not failed.passed and "scanner-prod-postgres is still in us-east-1a: it did not fail over" in failed.detail
    assert verdicts.database(aws["rds"], PREFIX, "us-east-1b") == Verdict(
        "database", True, "instance scanner-prod-postgres is available in us-east-1a"
    )


def test_the_cache_verdict_wants_a_primary_out_of_the_zone(aws):
    ec = aws["elasticache"]
    assert not verdicts.cache(ec, PREFIX, "us-east-1a").passed
    ec.create_replication_group(
        ReplicationGroupId="scanner-prod-redis",
        ReplicationGroupDescription="cache",
        NumCacheClusters=3,
        PreferredCacheClusterAZs=["us-east-1a", "us-east-1b", "us-east-1c"],
        AutomaticFailoverEnabled=True,
        CacheNodeType="cache.m7g.large",
        Engine="redis",
        Tags=[{"Key": TARGET, "Value": f"{PREFIX}-cache"}],
    )
    # moto's primary is its first node, in us-east-1a.
    assert verdicts.cache(ec, PREFIX, "us-east-1a") == Verdict(
        "cache", False, "scanner-prod-redis's primary scanner-prod-redis-001 is still in us-east-1a"
    )
    assert verdicts.cache(ec, PREFIX, "us-east-1c").passed


def test_the_broker_verdict_names_a_queue_no_longer_reported(aws):
    cw = aws["cloudwatch"]
    now = dt.datetime.now(dt.UTC)
    assert "reports none" in verdicts.broker(cw, now).detail
    queue_datum(cw, "scan.semgrep", 2)
    queue_datum(cw, "scan.trivy", 2)
    assert verdicts.broker(cw, now) == Verdict("broker", True, "all 2 queue(s) reported in the last 10 min")
    queue_datum(cw, "scan.gitleaks", 40)
    assert verdicts.broker(cw, now) == Verdict("broker", False, "not reported in the last 10 min: scan.gitleaks")


def test_the_broker_verdict_judges_only_the_queues_reported_when_the_experiment_began(aws):
    cw = aws["cloudwatch"]
    now = dt.datetime.now(dt.UTC)
    began = now - dt.timedelta(minutes=20)
    # Reported before and during the drill: the broker serves it.
    queue_datum(cw, "scan.semgrep", 25)
    queue_datum(cw, "scan.semgrep", 3)
    # Deleted an hour before the drill: not the drill's doing.
    queue_datum(cw, "scan.retired", 80)
    assert verdicts.broker(cw, now, before=began) == Verdict(
        "broker", True, "all 1 queue(s) reported in the last 10 min"
    )
    # Reported when the experiment began, silent since: the drill's doing.
    queue_datum(cw, "scan.trivy", 22)
    assert verdicts.broker(cw, now, before=began) == Verdict(
        "broker", False, "not reported in the last 10 min: scan.trivy"
    )


class Cluster:
    def __init__(self, ready: dict[str, dict[str, int]], job: list[str] | None = None, ran_in: str = "us-east-1a"):
        self.ready, self.job, self.ran_in = ready, list(job or []), ran_in
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def ready_zones(self, namespace):
        return self.ready

    def create_job(self, manifest):
        self.created.append(manifest)

    def job_succeeded(self, namespace, name):
        return bool(self.job) and self.job[0] == "succeeded"

    def job_failed(self, namespace, name):
        state = self.job.pop(0) if self.job else "pending"
        return state.removeprefix("failed:") if state.startswith("failed:") else None

    def delete_job(self, namespace, name):
        self.deleted.append(name)

    def job_zones(self, namespace, name):
        return {self.ran_in}


def test_the_services_verdict_wants_ready_pods_in_the_other_zones():
    ok = Cluster({"api": {"us-east-1a": 1, "us-east-1b": 2}, "storage-api": {"us-east-1c": 1}})
    assert verdicts.services(ok, "scanner-services", "us-east-1b").passed
    short = Cluster({"api": {"us-east-1b": 3}, "storage-api": {"us-east-1c": 1}})
    assert verdicts.services(short, "scanner-services", "us-east-1b") == Verdict(
        "services", False, "no ready pod outside us-east-1b: api"
    )
    assert not verdicts.services(Cluster({}), "scanner-services", "us-east-1b").passed


def test_the_scans_verdict_starts_a_job_and_removes_it():
    manifest = {"metadata": {"namespace": "scanner-scans", "name": "drill-scan-start-r1"}}
    ticks = iter(range(0, 100_000, 10))
    clock = lambda: float(next(ticks))  # noqa: E731
    zone = "us-east-1b"
    pending_then_ok = Cluster({}, ["pending", "pending", "succeeded"])
    found = verdicts.scans(pending_then_ok, manifest, zone, clock=clock, sleep=lambda _: None)
    assert found.passed and found.detail.endswith("in us-east-1a")
    assert pending_then_ok.deleted == ["drill-scan-start-r1"]
    failing = Cluster({}, ["failed:DeadlineExceeded: no node"])
    assert verdicts.scans(failing, manifest, zone, clock=clock, sleep=lambda _: None) == Verdict(
        "scans", False, "the scan pool's Job failed: DeadlineExceeded: no node"
    )
    never = Cluster({}, [])
    found = verdicts.scans(never, manifest, zone, timeout_s=60, clock=clock, sleep=lambda _: None)
    assert found == Verdict("scans", False, "no scan capacity came up within 60 s") and never.deleted
    # Capacity that came up in the drilled zone proves Karpenter did not keep out of it.
    inside = Cluster({}, ["succeeded"], ran_in=zone)
    assert verdicts.scans(inside, manifest, zone, clock=clock, sleep=lambda _: None) == Verdict(
        "scans", False, "the scan pool's Job ran in us-east-1b"
    )


# ----- the runner and its verdicts -----------------------------------------------------------


class Running:
    """moto's FIS with the experiment running for `polls` looks before it completes."""

    def __init__(self, fis, polls: int):
        self.fis, self.polls = fis, polls

    def __getattr__(self, name):
        return getattr(self.fis, name)

    def get_experiment(self, id):  # noqa: A002
        found = self.fis.get_experiment(id=id)
        if self.polls > 0:
            self.polls -= 1
            found["experiment"]["state"] = {"status": "running", "reason": ""}
        return found


def run_with(aws, tmp_path, checks, polls=20, **options) -> runner.RunResult:
    alarm(aws["cloudwatch"], f"{PREFIX}-database-primary-cpu")
    drill_template(aws["fis"], "us-east-1b")
    ticks = iter(range(0, 1_000_000, 60))
    return runner.run(
        Running(aws["fis"], polls),
        Shifts([]),
        [aws["cloudwatch"]],
        runner.RunOptions(prefix=PREFIX, zone="us-east-1b", out_dir=tmp_path / "out", poll_s=0, **options),
        sleep=lambda _: None,
        clock=lambda: float(next(ticks)),
        checks=checks,
    )


def test_the_verdicts_are_taken_once_two_thirds_into_the_outage(aws, tmp_path):
    taken: list[tuple[str, float | None]] = []

    def checks(zone, started_at, remaining_s):
        taken.append((zone, remaining_s))
        assert started_at <= dt.datetime.now(dt.UTC)
        return [Verdict("database", True, "in us-east-1a")]

    result = run_with(aws, tmp_path, checks)
    ((zone, remaining),) = taken
    assert zone == "us-east-1b" and result.exit_status == 0
    # What is left of the 30-minute outage once two thirds have passed: no check may outlast it.
    assert remaining is not None and 0 < remaining <= 10 * 60
    verified = next(t for t in result.timeline if t["status"] == "verified")
    # The template's longest action lasts 30 minutes: the verdicts come at 20, not before.
    running = next(t for t in result.timeline if t["status"] == "running")
    assert verified["at"] - running["at"] >= 20 * 60 and verified["reason"] == "database ok"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["verdicts"] == [{"check": "database", "passed": True, "detail": "in us-east-1a"}]


def test_a_failed_verdict_fails_the_drill(aws, tmp_path):
    result = run_with(aws, tmp_path, lambda *_: [Verdict("cache", False, "no primary")])
    assert result.status == "completed" and result.exit_status == 1
    assert "| cache | FAIL | no primary |" in (tmp_path / "out" / "summary.md").read_text()


def test_verdicts_never_taken_fail_the_drill(aws, tmp_path):
    # The experiment ends after two looks, a minute apart: long before two thirds of 30 minutes.
    result = run_with(aws, tmp_path, lambda *_: [Verdict("cache", True, "")], polls=2)
    assert result.status == "completed" and result.verdicts == [] and result.exit_status == 1
    assert "The verdicts were not taken" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--outputs: required for the probes and the verdicts"),
        (["--outputs", "{outputs}"], "--kubeconfig: required for the probe Job and the verdicts"),
        (["--outputs", "{outputs}", "--kubeconfig", "{kubeconfig}"], "--image-tag: required"),
        (["--outputs", "{empty}", "--probes", "local", "--no-verdicts"], "has no drill.probes and drill.probeImage"),
    ],
)
def test_run_refuses_missing_probe_inputs_in_one_line(extra, message, tmp_path, capsys):
    outputs, empty, kubeconfig = tmp_path / "outputs.json", tmp_path / "empty.json", tmp_path / "kubeconfig"
    outputs.write_text(json.dumps({"drill": {"probes": {"stores": {}}, "probeImage": "repo/scanner/drill-probe"}}))
    empty.write_text("{}")
    kubeconfig.write_text("apiVersion: v1\n")
    names = {"outputs": outputs, "empty": empty, "kubeconfig": kubeconfig}
    argv = ["run", "--prefix", PREFIX, "--zone", "us-east-1b", "--out-dir", str(tmp_path)]
    argv += [a.format(**names) for a in extra]
    assert drill_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ----- the cluster's API, as the kubernetes client returns it --------------------------------


def test_the_cluster_api_counts_ready_pods_per_zone_and_where_a_job_ran():
    """drill/kube.py over the client's own models: a Deployment scaled to zero is not judged, a
    pod that is not ready is not counted, a Job's pods are found by the label the Job controller
    gives them."""
    from types import SimpleNamespace

    from kubernetes.client import (
        V1Deployment,
        V1DeploymentSpec,
        V1Node,
        V1ObjectMeta,
        V1OwnerReference,
        V1Pod,
        V1PodCondition,
        V1PodSpec,
        V1PodStatus,
        V1ReplicaSet,
    )

    from drill.kube import ClusterApi

    def owner(kind, name):
        return [V1OwnerReference(api_version="apps/v1", kind=kind, name=name, uid=name)]

    def pod(name, node, ready, owners, labels=None):
        condition = V1PodCondition(type="Ready", status="True" if ready else "False")
        return V1Pod(
            metadata=V1ObjectMeta(name=name, owner_references=owners, labels=labels),
            spec=V1PodSpec(containers=[], node_name=node),
            status=V1PodStatus(conditions=[condition]),
        )

    nodes = [
        V1Node(metadata=V1ObjectMeta(name=n, labels={"topology.kubernetes.io/zone": z}))
        for n, z in (("n-a", "us-east-1a"), ("n-b", "us-east-1b"))
    ]
    pods = [
        pod("api-1", "n-a", True, owner("ReplicaSet", "api-rs")),
        pod("api-2", "n-b", True, owner("ReplicaSet", "api-rs")),
        pod("api-3", "n-a", False, owner("ReplicaSet", "api-rs")),
        pod("scan-1", "n-b", True, None, {"job-name": "drill-scan-start-r1"}),
    ]

    class Core:
        def list_node(self):
            return SimpleNamespace(items=nodes)

        def list_namespaced_pod(self, namespace, label_selector=None):
            if label_selector:
                key, value = label_selector.split("=")
                return SimpleNamespace(items=[p for p in pods if (p.metadata.labels or {}).get(key) == value])
            return SimpleNamespace(items=pods)

    class Apps:
        def list_namespaced_replica_set(self, namespace):
            return SimpleNamespace(
                items=[V1ReplicaSet(metadata=V1ObjectMeta(name="api-rs", owner_references=owner("Deployment", "api")))]
            )

        def list_namespaced_deployment(self, namespace):
            return SimpleNamespace(
                items=[
                    V1Deployment(
                        metadata=V1ObjectMeta(name="api"), spec=V1DeploymentSpec(replicas=3, selector={}, template={})
                    ),
                    V1Deployment(
                        metadata=V1ObjectMeta(name="backfill"),
                        spec=V1DeploymentSpec(replicas=0, selector={}, template={}),
                    ),
                ]
            )

    api = object.__new__(ClusterApi)
    api._core, api._apps = Core(), Apps()
    assert api.ready_zones("scanner-services") == {"api": {"us-east-1a": 1, "us-east-1b": 1}}
    assert api.job_zones("scanner-scans", "drill-scan-start-r1") == {"us-east-1b"}
    assert verdicts.services(api, "scanner-services", "us-east-1b").passed
