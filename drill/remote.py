"""Probing from inside the VPC: the pod side (`python -m drill probe`, in the Job of
drill/probe_job.py) and the runner's side (`JobProbes`), which talk through markers in the
drill's report bucket only, so the runner needs no network path to the stores:

1. the runner creates the Job; the pod reads the drill users' secrets, starts its probes and
   writes `probes/<run>/started`;
2. the runner sees `started`, starts the experiment, watches it end;
3. the runner writes `probes/<run>/stop`; the pod stops probing, reads back what every store
   still holds and writes `probes/<run>/result.json` (every sample, what survived);
4. the runner reads the result, measures it (drill/measure.py) and deletes the Job.

`LocalProbes` does the same in the runner's own process, for a runner that runs where the
stores answer (and for the local three-zone simulation).

The pod's side imports nothing beyond the drill's own modules and its store clients: the probe
image (drill/Dockerfile) holds those only.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from drill import stores
from drill.measure import Sample
from drill.probes import Probe, Prober
from policies.common import contract

RESULTS_PREFIX = contract.DRILL_RESULTS_PREFIX


def marker(settings: dict[str, Any], run_id: str, name: str) -> str:
    """The S3 key of one of a run's markers: `started`, `stop`, `result.json`."""
    return f"{settings.get('prefix') or RESULTS_PREFIX}/{run_id}/{name}"


class ProbeError(Exception):
    """The probes could not start, or their result never came."""


@dataclass
class Probed:
    samples: list[Sample]
    survivors: dict[str, set[str]]
    ended: float


class ProbeSession(Protocol):
    def start(self) -> None:
        """Probing has begun once this returns; raises ProbeError when it cannot."""

    def finish(self) -> Probed:
        """Stop probing, read back what every store holds."""


class LocalProbes:
    """The probes in this process (the runner is where the stores answer)."""

    def __init__(self, probes: Sequence[Probe], patience_s: float = 30.0):
        self._prober = Prober(probes)
        self._patience_s = patience_s

    def start(self) -> None:
        self._prober.start()

    def finish(self) -> Probed:
        samples = self._prober.stop()
        return Probed(samples, self._prober.survivors(self._patience_s), self._prober.ended)


# ----- the pod's side ------------------------------------------------------------------------


def _exists(s3: Any, bucket: str, key: str) -> bool:
    """Whether `key` is in the bucket, by listing its prefix: the probe role's ListBucket holds
    only for `s3:prefix` under probes/, which a HeadObject request does not carry (a missing key
    would then read as 403, not 404)."""
    found = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(item.get("Key") == key for item in found.get("Contents") or [])


def encode(probed: Probed) -> dict[str, Any]:
    return {
        "ended": probed.ended,
        "samples": [[s.at, s.store, s.operation, s.ok, s.key, s.error] for s in probed.samples],
        "survivors": {store: sorted(keys) for store, keys in probed.survivors.items()},
    }


def decode(found: Any) -> Probed:
    try:
        samples = [Sample(float(a), str(st), op, bool(ok), str(k), str(e)) for a, st, op, ok, k, e in found["samples"]]
        survivors = {str(store): set(keys) for store, keys in found["survivors"].items()}
        return Probed(samples, survivors, float(found["ended"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbeError(f"the probes' result is not one the probe Job writes ({exc})") from None


def probe(
    settings: dict[str, Any],
    run_id: str,
    s3: Any,
    read_secret: Callable[[str], str],
    max_minutes: int,
    poll_s: float = 5.0,
    root: Path | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Probed:
    """Probe every store until the runner's stop marker appears (or `max_minutes`), then write
    what was seen and what survived to the bucket."""
    settings = stores.settings(settings)
    bucket = settings["bucket"]
    probes = stores.build(settings, read_secret, root)
    session = LocalProbes(probes)
    session.start()
    began = clock()
    try:
        s3.put_object(Bucket=bucket, Key=marker(settings, run_id, "started"), Body=b"")
        while clock() - began < max_minutes * 60:
            if _exists(s3, bucket, marker(settings, run_id, "stop")):
                break
            sleep(poll_s)
    finally:
        probed = session.finish()
        for p in probes:
            p.close()
        s3.put_object(
            Bucket=bucket,
            Key=marker(settings, run_id, "result.json"),
            Body=json.dumps(encode(probed)).encode(),
            ContentType="application/json",
        )
    return probed


# ----- the runner's side ---------------------------------------------------------------------


class Kube(Protocol):
    """What the runner asks of the cluster's API (drill/kube.py)."""

    def create_job(self, manifest: dict[str, Any]) -> None: ...

    def job_failed(self, namespace: str, name: str) -> str | None:
        """Why the Job failed, or None while it has not."""

    def delete_job(self, namespace: str, name: str) -> None: ...


class JobProbes:
    """The probes in a Job of their own inside the cluster, outside the drilled zone."""

    def __init__(
        self,
        kube: Kube,
        s3: Any,
        settings: dict[str, Any],
        image: str,
        zone: str,
        region: str,
        max_minutes: int,
        start_timeout_s: float = 600.0,
        result_timeout_s: float = 300.0,
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        run_id: str | None = None,
    ):
        from drill import probe_job

        self.kube, self.s3 = kube, s3
        self.settings = stores.settings(settings)
        self.run_id = run_id or uuid.uuid4().hex[:10]
        self.manifest = probe_job.manifest(self.settings, image, self.run_id, zone, region, max_minutes)
        self._timeouts = (start_timeout_s, result_timeout_s)
        self._poll_s, self._clock, self._sleep = poll_s, clock, sleep

    @property
    def _where(self) -> tuple[str, str]:
        return self.manifest["metadata"]["namespace"], self.manifest["metadata"]["name"]

    def _wait_for(self, name: str, timeout_s: float, what: str) -> None:
        bucket = self.settings["bucket"]
        key = marker(self.settings, self.run_id, name)
        deadline = self._clock() + timeout_s
        while not _exists(self.s3, bucket, key):
            failed = self.kube.job_failed(*self._where)
            if failed is not None:
                raise ProbeError(f"the probe Job {self._where[1]} failed before {what}: {failed}")
            if self._clock() > deadline:
                raise ProbeError(f"the probe Job {self._where[1]} did not {what} within {timeout_s:.0f} s")
            self._sleep(self._poll_s)

    def start(self) -> None:
        self.kube.create_job(self.manifest)
        try:
            self._wait_for("started", self._timeouts[0], "start probing")
        except ProbeError:
            self.kube.delete_job(*self._where)
            raise

    def finish(self) -> Probed:
        bucket = self.settings["bucket"]
        self.s3.put_object(Bucket=bucket, Key=marker(self.settings, self.run_id, "stop"), Body=b"")
        try:
            self._wait_for("result.json", self._timeouts[1], "write its result")
            body = self.s3.get_object(Bucket=bucket, Key=marker(self.settings, self.run_id, "result.json"))
            try:
                found = json.loads(body["Body"].read())
            except json.JSONDecodeError as exc:
                raise ProbeError(f"the probes' result is not JSON ({exc})") from None
            return decode(found)
        finally:
            self.kube.delete_job(*self._where)
