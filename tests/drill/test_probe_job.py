"""Probing from inside the cluster (drill/remote.py, drill/probe_job.py, drill/stores.py): the
runner creates the probe Job and talks to it through markers in the report bucket only.

Here the bucket and the secrets are moto's, the stores are real servers (Debian's PostgreSQL
with the plan's own `scans_drill` role, Redis with the plan's ACL and its `drill` user, a
directory for the file system) and the "cluster" runs the Job's container command,
`python -m drill probe`, in a thread with the environment the manifest gives it. What crosses
from the runner to the pod is only what the manifest and the bucket carry.
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
import servers
from drill_aws import PREFIX, Shifts, alarm, drill_template, queue_datum, tagged_database
from kubernetes import client as k8s_client
from moto import mock_aws

from components.data import cache_users, database_roles
from components.drill import probes as access
from drill import __main__ as drill_cli
from drill import probe_job, remote, stores
from drill import run as runner

pytestmark = pytest.mark.xdist_group("probe-job")
BUCKET = "scanner-prod-drill-reports"
DB_PLAN = database_roles.plan(["storage-api"])
DB_PASSWORDS = {r.name: secrets.token_urlsafe(18) for r in DB_PLAN.roles}
CACHE_PLAN = cache_users.plan(["api"])
CACHE_PASSWORDS = {u.name: secrets.token_urlsafe(18) for u in CACHE_PLAN.users}


def settings(
    secret_arns: dict[str, str], replica_host: str | None = None, replica_zone: str | None = None
) -> dict[str, Any]:
    found = access.probe_config(
        secret_arns, BUCKET, "repo-cache", "scanner-scans", "scanner", "drill.canary", replica_host, 0, replica_zone
    )
    # The local servers speak no TLS; the stack's always do (probe_config never says otherwise).
    for spec in found["stores"].values():
        spec["tls"] = False
    return found


# ----- the manifests -------------------------------------------------------------------------


def lossless(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest through the Kubernetes client's own V1Job model and back: a misspelt or
    misplaced field is dropped on the way and the two differ."""
    api = k8s_client.ApiClient()
    job = api._ApiClient__deserialize(manifest, "V1Job")  # the client's own loader
    return api.sanitize_for_serialization(job)


def test_the_probe_job_runs_outside_the_zone_on_stable_capacity_as_the_drill():
    found = settings({"postgres": "arn:db", "redis": "arn:cache"})
    manifest = probe_job.manifest(found, "repo/scanner/drill-probe:abc", "run1", "us-east-1b", "us-east-1", 90)
    assert lossless(manifest) == manifest
    pod = manifest["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "drill" and pod["automountServiceAccountToken"] is False
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["us-east-1b"]},
                {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]},
            ]
        }
    ]
    assert pod["nodeSelector"] == {"scanner.io/pool": "services"}
    assert manifest["spec"]["template"]["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    (container,) = pod["containers"]
    assert container["args"] == ["probe", "--run", "run1", "--max-minutes", "90"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert json.loads(env["DRILL_PROBES"]) == found and env["AWS_REGION"] == "us-east-1"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["volumes"][0] == {"name": "repo-cache", "persistentVolumeClaim": {"claimName": "repo-cache"}}
    # The file canaries go under the claim's mount.
    assert found["stores"]["repo-cache"]["directory"].startswith(probe_job.CACHE_MOUNT + "/")
    # Kubernetes ends it after the runner's own limit, whatever happens.
    assert manifest["spec"]["activeDeadlineSeconds"] > 90 * 60 and manifest["spec"]["backoffLimit"] == 0


def test_the_scan_start_job_asks_for_the_scan_pool_in_no_zone():
    manifest = probe_job.scan_start_manifest(settings({}), "img:1", "run1")
    assert lossless(manifest) == manifest
    pod = manifest["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"scanner.io/pool": "scan-jobs"}
    assert pod["tolerations"][0]["key"] == "scanner.io/scan-jobs" and "affinity" not in pod
    assert pod["containers"][0]["args"] == ["ready"]
    assert drill_cli.main(["ready"]) == 0


# ----- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("stores"), "probes: not the stack's drill.probes output (no stores)"),
        (lambda s: s["stores"]["cache"].update(kind="memcached"), "probes.stores.cache.kind: 'memcached' is not one"),
        (lambda s: s["stores"]["database"].pop("secretArn"), "probes.stores.database.secretArn: missing"),
    ],
)
def test_bad_probe_settings_are_one_line_naming_the_key(change, message, capsys, monkeypatch):
    found = settings({"postgres": "arn:db", "redis": "arn:cache"})
    change(found)
    monkeypatch.setenv("DRILL_PROBES", json.dumps(found))
    assert drill_cli.main(["probe", "--run", "r1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_the_probe_without_its_settings_says_so(capsys, monkeypatch):
    monkeypatch.delenv("DRILL_PROBES", raising=False)
    assert drill_cli.main(["probe", "--run", "r1"]) == 2
    assert "DRILL_PROBES: not set" in capsys.readouterr().err


# ----- the Job, end to end -------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    server = servers.start_postgres(tmp_path_factory.mktemp("pg"))
    with server.connect() as admin:
        admin.execute("CREATE DATABASE scans")
    with server.connect("scans") as conn:
        for statement in DB_PLAN.statements(DB_PASSWORDS):
            conn.execute(statement)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    server = servers.start_redis(tmp_path_factory.mktemp("redis"), CACHE_PLAN.acl_file(CACHE_PASSWORDS))
    try:
        yield server
    finally:
        server.stop()


class Cluster:
    """The runner's view of the cluster: creating the probe Job runs its container's command in
    a thread, with the Job's environment; deleting it is recorded."""

    def __init__(self, aws: dict[str, Any], root: Path, monkeypatch, fail: str | None = None):
        self.aws, self.root, self.monkeypatch, self.fail = aws, root, monkeypatch, fail
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.exit: list[int] = []
        self.threads: dict[str, threading.Thread] = {}

    def create_job(self, manifest: dict[str, Any]) -> None:
        self.created.append(manifest)
        if self.fail:
            return
        (container,) = manifest["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        self.monkeypatch.setenv("DRILL_PROBES", env["DRILL_PROBES"])
        argv = [*container["args"], "--poll", "0.2"]
        clients = {"s3": self.aws["s3"], "secretsmanager": self.aws["secretsmanager"]}
        thread = threading.Thread(
            target=lambda: self.exit.append(drill_cli.main(argv, clients=clients, root=self.root)), daemon=True
        )
        thread.start()
        self.threads[manifest["metadata"]["name"]] = thread

    def job_failed(self, namespace: str, name: str) -> str | None:
        return self.fail

    def delete_job(self, namespace: str, name: str) -> None:
        self.deleted.append(name)
        if name in self.threads:
            self.threads[name].join(timeout=30)


class Lasting:
    """moto's FIS, with the experiment running for `seconds` of real time before it completes."""

    def __init__(self, fis, seconds: float):
        import time

        self.fis, self.seconds, self.time = fis, seconds, time
        self.started: float | None = None

    def __getattr__(self, name):
        return getattr(self.fis, name)

    def start_experiment(self, **kwargs):
        self.started = self.time.monotonic()
        return self.fis.start_experiment(**kwargs)

    def get_experiment(self, id):  # noqa: A002 (boto3's name)
        found = self.fis.get_experiment(id=id)
        if self.started is not None and self.time.monotonic() - self.started < self.seconds:
            found["experiment"]["state"] = {"status": "running", "reason": "the zone is out"}
        return found


def drill_with(aws, session, tmp_path: Path, fis: Any, poll_s: float) -> runner.RunResult:
    """A drill of us-east-1b, probed by `session`."""
    return runner.run(
        fis,
        Shifts([]),
        [aws["cloudwatch"]],
        runner.RunOptions(prefix=PREFIX, zone="us-east-1b", out_dir=tmp_path / "out", poll_s=poll_s),
        probes=session,
    )


@pytest.fixture
def aws():
    with mock_aws():
        made = {
            "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
            "fis": boto3.client("fis", region_name="us-east-1"),
            "s3": boto3.client("s3", region_name="us-east-1"),
            "secretsmanager": boto3.client("secretsmanager", region_name="us-east-1"),
        }
        made["s3"].create_bucket(Bucket=BUCKET)
        alarm(made["cloudwatch"], f"{PREFIX}-database-primary-cpu")
        drill_template(made["fis"], "us-east-1a")
        drill_template(made["fis"], "us-east-1b")
        yield made


def store_secrets(aws, database, cache) -> dict[str, str]:
    sm = aws["secretsmanager"]
    db = sm.create_secret(
        Name="scanner-prod/postgres/scans_drill",
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "username": database_roles.DRILL,
                "password": DB_PASSWORDS[database_roles.DRILL],
                "host": database.host,
                "port": database.port,
                "dbname": "scans",
            }
        ),
    )["ARN"]
    redis_doc = {
        "username": "drill",
        "password": CACHE_PASSWORDS["drill"],
        "host": cache.host,
        "port": cache.port,
        "tls": False,
        "keyPrefix": "drill:",
    }
    red = sm.create_secret(Name="scanner-prod/redis/drill", SecretString=json.dumps(redis_doc))["ARN"]
    return {"postgres": db, "redis": red}


def test_a_drill_probed_from_a_job_measures_every_store_and_loses_nothing(aws, database, cache, tmp_path, monkeypatch):
    found = settings(store_secrets(aws, database, cache), replica_host=database.host)
    cluster = Cluster(aws, tmp_path / "pod", monkeypatch)
    session = remote.JobProbes(
        cluster, aws["s3"], found, "img:1", "us-east-1b", "us-east-1", 5, poll_s=0.1, run_id="r1"
    )
    result = drill_with(aws, session, tmp_path, Lasting(aws["fis"], 3.0), poll_s=0.2)
    assert cluster.exit == [0] and cluster.deleted == ["drill-probe-r1"]
    assert cluster.created[0]["metadata"] == {
        "name": "drill-probe-r1",
        "namespace": "scanner-scans",
        "labels": {
            "app.kubernetes.io/part-of": "scanner",
            "app.kubernetes.io/component": "drill",
            "scanner.io/drill-run": "r1",
        },
    }
    assert set(result.stores) == {"cache", "database", "database-replica", "repo-cache"}
    for store in ("cache", "database", "repo-cache"):
        measured = result.stores[store]
        assert measured.acknowledged >= 3 and measured.lost == () and measured.failed_writes == 0, store
    replica = result.stores["database-replica"]
    assert replica.writes == 0 and replica.checks >= 3 and replica.failed_checks == 0 and replica.passed
    assert result.exit_status == 0, result.stores
    # What the pod wrote is what the runner measured, and the canaries are in the stores.
    body = aws["s3"].get_object(Bucket=BUCKET, Key="probes/r1/result.json")["Body"].read()
    assert len(json.loads(body)["samples"]) > 10
    with database.connect("scans") as conn:
        (count,) = conn.execute("SELECT count(*) FROM drill.drill_canary").fetchone() or (0,)
    # Read back, then removed: the drill leaves no canary row behind (nor cache key, nor file).
    assert count == 0 and result.stores["database"].acknowledged >= 3
    # The file canaries were read back, then removed from the scans' cache.
    assert result.stores["repo-cache"].acknowledged >= 3
    assert list((tmp_path / "pod" / "repo-cache" / ".drill").glob("*.canary")) == []


def test_a_probe_job_that_fails_stops_the_drill_before_it_starts(aws, tmp_path, monkeypatch):
    found = settings({"postgres": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"})
    cluster = Cluster(aws, tmp_path, monkeypatch, fail="ImagePullBackOff: no such tag")
    session = remote.JobProbes(
        cluster, aws["s3"], found, "img:1", "us-east-1b", "us-east-1", 5, poll_s=0.01, run_id="r2"
    )
    result = drill_with(aws, session, tmp_path, aws["fis"], poll_s=0.01)
    assert result.experiment_id == "" and result.exit_status == 1
    assert aws["fis"].list_experiments()["experiments"] == []
    assert "the probes did not start" in result.probe_error and "ImagePullBackOff" in result.probe_error
    assert cluster.deleted == ["drill-probe-r2"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["passed"] is False and "ImagePullBackOff" in summary["probeError"]


def test_a_result_that_never_comes_fails_the_drill(aws, tmp_path, monkeypatch):
    found = settings({"postgres": "arn:db"})

    class Silent(Cluster):
        def create_job(self, manifest):
            self.created.append(manifest)
            # It starts, then never answers the stop marker.
            self.aws["s3"].put_object(Bucket=BUCKET, Key="probes/r3/started", Body=b"")

    cluster = Silent(aws, tmp_path, monkeypatch)
    clock = iter(range(0, 10_000, 30))
    session = remote.JobProbes(
        cluster,
        aws["s3"],
        found,
        "img:1",
        "us-east-1b",
        "us-east-1",
        5,
        poll_s=0,
        run_id="r3",
        result_timeout_s=120,
        clock=lambda: float(next(clock)),
        sleep=lambda _: None,
    )
    result = drill_with(aws, session, tmp_path, aws["fis"], poll_s=0.01)
    assert result.status == "completed" and result.exit_status == 1
    assert "did not write its result within 120 s" in result.probe_error and cluster.deleted == ["drill-probe-r3"]


def test_stores_are_built_from_the_drill_users_secrets(aws, database, cache, tmp_path):
    found = settings(store_secrets(aws, database, cache))
    built = stores.build(found, stores.secrets_reader(aws["secretsmanager"]), root=tmp_path)
    assert sorted(p.store for p in built) == ["cache", "database", "repo-cache"]
    for probe in built:
        probe.write(f"{probe.store}-one")
        probe.check()
        assert probe.survivors([f"{probe.store}-one", "never"]) == {f"{probe.store}-one"}
        probe.close()
    aws["secretsmanager"].put_secret_value(SecretId=found["stores"]["cache"]["secretArn"], SecretString="{}")
    with pytest.raises(stores.BadSettings, match="probes.stores.cache.secretArn: the secret has no username"):
        stores.build(found, stores.secrets_reader(aws["secretsmanager"]), root=tmp_path)


def test_the_command_runs_the_drill_with_its_job_and_verdicts(aws, database, cache, tmp_path, monkeypatch, capsys):
    """`python -m drill run` as the runbook runs it: the stack's outputs say where the probes
    write and what they read, the probe Job runs in the "cluster", the verdicts are taken against
    moto's RDS, ElastiCache and CloudWatch and the cluster's API while the zone is out."""
    rds = boto3.client("rds", region_name="us-east-1")
    elasticache = boto3.client("elasticache", region_name="us-east-1")
    tagged_database(rds, "scanner-prod-postgres", f"{PREFIX}-database")
    elasticache.create_replication_group(
        ReplicationGroupId="scanner-prod-redis",
        ReplicationGroupDescription="cache",
        NumCacheClusters=2,
        PreferredCacheClusterAZs=["us-east-1a", "us-east-1c"],
        AutomaticFailoverEnabled=True,
        CacheNodeType="cache.m7g.large",
        Engine="redis",
        Tags=[{"Key": "scanner.io/drill-target", "Value": f"{PREFIX}-cache"}],
    )
    queue_datum(aws["cloudwatch"], "scan.semgrep", 1)
    outputs = tmp_path / "outputs.json"
    found = settings(store_secrets(aws, database, cache))
    outputs.write_text(
        json.dumps(
            {
                "drill": {
                    "probes": found,
                    "probeImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/scanner/drill-probe",
                },
                "services": {"namespace": "scanner-services"},
            }
        )
    )

    class WholeCluster(Cluster):
        def ready_zones(self, namespace):
            assert namespace == "scanner-services"
            return {"api": {"us-east-1a": 2, "us-east-1b": 1}}

        def create_job(self, manifest):
            if manifest["metadata"]["name"].startswith("drill-scan-start-"):
                self.created.append(manifest)
                return
            super().create_job(manifest)

        def job_succeeded(self, namespace, name):
            return True

        def job_zones(self, namespace, name):
            return {"us-east-1c"}

    cluster = WholeCluster(aws, tmp_path / "pod", monkeypatch)
    clients = {
        **aws,
        "fis": Lasting(aws["fis"], 3.0),
        "arc-zonal-shift": Shifts([]),
        "rds": rds,
        "elasticache": elasticache,
    }
    argv = [
        "run",
        "--prefix",
        PREFIX,
        "--zone",
        "us-east-1b",
        "--out-dir",
        str(tmp_path / "out"),
        "--outputs",
        str(outputs),
        "--image-tag",
        "v1",
        "--poll",
        "0.2",
        "--verify-after-minutes",
        "0",
    ]
    code = drill_cli.main(argv, clients=clients, kube=cluster)
    printed = capsys.readouterr().out
    assert code == 0, printed
    probe, start = cluster.created
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scanner/drill-probe:v1"
    assert probe["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert start["spec"]["template"]["spec"]["containers"][0]["image"] == image
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(v["check"], v["passed"]) for v in summary["verdicts"]] == [
        ("database", True),
        ("cache", True),
        ("broker", True),
        ("services", True),
        ("scans", True),
    ]
    assert set(summary["stores"]) == {"cache", "database", "repo-cache"} and summary["passed"] is True
    assert "Verdict: PASS" in printed


# ----- what goes wrong while probing ---------------------------------------------------------


class Flaky:
    """moto's S3, with the first `list_failures` listings and `put_failures` result writes
    failing as an unreachable endpoint would."""

    def __init__(self, s3, list_failures: int, put_failures: int = 0):
        self.s3, self.list_failures, self.put_failures = s3, list_failures, put_failures

    def __getattr__(self, name):
        return getattr(self.s3, name)

    def list_objects_v2(self, **kwargs):
        if self.list_failures > 0:
            self.list_failures -= 1
            raise ConnectionError("could not connect to the endpoint URL")
        return self.s3.list_objects_v2(**kwargs)

    def put_object(self, **kwargs):
        if kwargs["Key"].endswith("result.json") and self.put_failures > 0:
            self.put_failures -= 1
            raise ConnectionError("could not connect to the endpoint URL")
        return self.s3.put_object(**kwargs)


def test_the_pod_keeps_probing_while_the_bucket_does_not_answer(aws, tmp_path):
    found = settings({})
    aws["s3"].put_object(Bucket=BUCKET, Key="probes/r4/stop", Body=b"")
    flaky = Flaky(aws["s3"], list_failures=3, put_failures=2)
    probed = remote.probe(found, "r4", flaky, lambda arn: "", 5, poll_s=0.3, root=tmp_path, sleep=lambda _: None)
    # Three failed looks at the stop marker did not end probing; the fourth found it.
    assert probed.stopped == remote.STOPPED_BY_RUNNER and probed.marker_errors == 3
    written = json.loads(aws["s3"].get_object(Bucket=BUCKET, Key="probes/r4/result.json")["Body"].read())
    assert written["stopped"] == "stop marker" and written["markerErrors"] == 3
    assert remote.decode(written).samples == probed.samples


def finished_with(aws, tmp_path, monkeypatch, result: dict[str, Any], watched_s: float) -> remote.JobProbes:
    """A session whose pod 'wrote' `result` after the runner watched for `watched_s`."""

    class Writes(Cluster):
        def create_job(self, manifest):
            self.created.append(manifest)
            self.aws["s3"].put_object(Bucket=BUCKET, Key="probes/r5/started", Body=b"")
            self.aws["s3"].put_object(Bucket=BUCKET, Key="probes/r5/result.json", Body=json.dumps(result).encode())

    # start: its deadline, then when `started` was seen; finish: when the runner asked to stop.
    ticks = iter([0.0, 0.0, watched_s, *range(int(watched_s) + 1, int(watched_s) + 1000)])
    session = remote.JobProbes(
        Writes(aws, tmp_path, monkeypatch),
        aws["s3"],
        settings({}),
        "img:1",
        "us-east-1b",
        "us-east-1",
        5,
        poll_s=0,
        run_id="r5",
        clock=lambda: float(next(ticks)),
        sleep=lambda _: None,
    )
    session.start()
    return session


@pytest.mark.parametrize(
    ("stopped", "ended", "message"),
    [
        ("max minutes", 900.0, r"the probes stopped on their own \(max minutes\), not when the runner asked"),
        ("stop marker", 120.0, "the probes ran 120 s of the 900 s the runner watched"),
    ],
)
def test_a_result_that_does_not_cover_the_drill_is_refused(aws, tmp_path, monkeypatch, stopped, ended, message):
    result = {"ended": ended, "stopped": stopped, "markerErrors": 0, "samples": [], "survivors": {}}
    session = finished_with(aws, tmp_path, monkeypatch, result, watched_s=900.0)
    with pytest.raises(remote.ProbeError, match=message):
        session.finish()


def test_a_probe_job_that_fails_during_the_experiment_fails_the_drill(aws, tmp_path, monkeypatch):
    class DiesLater(Cluster):
        looks = 0

        def job_failed(self, namespace, name):
            # Up while the runner waits for it to start; evicted once the experiment runs.
            self.looks += 1
            return "Evicted: the node was lost" if self.looks > 3 else None

    cluster = DiesLater(aws, tmp_path / "pod", monkeypatch)
    session = remote.JobProbes(
        cluster, aws["s3"], settings({}), "img:1", "us-east-1b", "us-east-1", 5, poll_s=0.1, run_id="r6"
    )
    result = drill_with(aws, session, tmp_path, Lasting(aws["fis"], 2.0), poll_s=0.2)
    assert result.status == "completed" and result.exit_status == 1
    assert result.probe_error == "the probe Job drill-probe-r6 failed: Evicted: the node was lost"
    assert any(t["status"] == "probes lost" for t in result.timeline)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["probeError"] == result.probe_error


def test_a_store_in_the_drilled_zone_only_is_left_out_and_said_so(aws, tmp_path, monkeypatch):
    found = settings({"postgres": "arn:db"}, replica_host="replica.internal", replica_zone="us-east-1c")
    elsewhere = remote.JobProbes(
        Cluster(aws, tmp_path, monkeypatch), aws["s3"], found, "i:1", "us-east-1b", "us-east-1", 5
    )
    assert "database-replica" in elsewhere.settings["stores"] and elsewhere.left_out == {}
    there = remote.JobProbes(Cluster(aws, tmp_path, monkeypatch), aws["s3"], found, "i:1", "us-east-1c", "us-east-1", 5)
    assert there.left_out == {"database-replica": "lives in us-east-1c, the drilled zone"}
    (container,) = there.manifest["spec"]["template"]["spec"]["containers"]
    told = json.loads(next(e["value"] for e in container["env"] if e["name"] == "DRILL_PROBES"))
    assert sorted(told["stores"]) == ["database", "repo-cache"]
    text = runner.markdown(runner.RunResult("us-east-1c", "e1", "completed", "", left_out=there.left_out))
    assert "Not probed: database-replica (lives in us-east-1c, the drilled zone)." in text
    bad = settings({"postgres": "arn:db"}, replica_host="replica.internal", replica_zone="us-east-1c")
    bad["stores"]["database-replica"]["zone"] = ""
    with pytest.raises(stores.BadSettings, match="probes.stores.database-replica.zone: not a zone name"):
        stores.settings(bad)


def test_a_refusal_from_the_bucket_ends_probing_and_says_why(aws, tmp_path):
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    def denied(**kwargs):
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
            "ListObjectsV2",
        )

    flaky = Flaky(aws["s3"], list_failures=0)
    flaky.list_objects_v2 = denied  # type: ignore[method-assign]
    probed = remote.probe(settings({}), "r7", flaky, lambda arn: "", 5, poll_s=0, root=tmp_path, sleep=lambda _: None)
    assert probed.stopped.startswith("error: ClientError") and "AccessDenied" in probed.stopped
    # What is worth asking again, and what is not.
    busy = ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")
    assert remote.transient(busy) and remote.transient(EndpointConnectionError(endpoint_url="https://s3"))
    assert not remote.transient(NoCredentialsError()) and not remote.transient(ValueError("bad"))


def test_a_cluster_api_error_at_the_start_is_a_probe_error_and_leaves_no_job(aws, tmp_path, monkeypatch):
    from kubernetes.client.exceptions import ApiException

    class Refusing(Cluster):
        def create_job(self, manifest):
            self.created.append(manifest)
            raise ApiException(status=403, reason="Forbidden")

    cluster = Refusing(aws, tmp_path, monkeypatch)
    session = remote.JobProbes(cluster, aws["s3"], settings({}), "img:1", "us-east-1b", "us-east-1", 5, run_id="r8")
    with pytest.raises(remote.ProbeError, match=r"could not be started: ApiException: \(403\)"):
        session.start()
    assert cluster.deleted == ["drill-probe-r8"]
