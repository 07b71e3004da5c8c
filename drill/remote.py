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
#: How much shorter than the runner's watch the probes may have run (the marker's polling).
COVERAGE_SLACK_S = 30.0


def marker(settings: dict[str, Any], run_id: str, name: str) -> str:
    """The S3 key of one of a run's markers: `started`, `stop`, `result.json`."""
    return f"{settings.get('prefix') or RESULTS_PREFIX}/{run_id}/{name}"


class ProbeError(Exception):
    """The probes could not start, or their result never came."""


#: Why the pod stopped probing: the runner's stop marker (the only good reason), its own limit.
STOPPED_BY_RUNNER, STOPPED_AT_LIMIT = "stop marker", "max minutes"


@dataclass
class Probed:
    samples: list[Sample]
    survivors: dict[str, set[str]]
    ended: float
    """Seconds the probes ran."""
    stopped: str = STOPPED_BY_RUNNER
    marker_errors: int = 0
    """Reads of the stop marker that failed (the bucket not answering); probing went on."""


class ProbeSession(Protocol):
    left_out: dict[str, str]
    """Stores not probed in this drill, and why (a store that lives in the drilled zone only)."""
    expected: list[str]
    """The stores probed: one with no sample at all is judged failed, not forgotten."""

    def start(self) -> None:
        """Probing has begun once this returns; raises ProbeError when it cannot."""

    def trouble(self) -> str | None:
        """Why probing has stopped while it should go on (the Job failed), or None."""

    def finish(self) -> Probed:
        """Stop probing, read back what every store holds; raises ProbeError when what comes
        back does not cover the drill."""


class LocalProbes:
    """The probes in this process (the runner is where the stores answer)."""

    def __init__(self, probes: Sequence[Probe], patience_s: float = 30.0, left_out: dict[str, str] | None = None):
        self._prober = Prober(probes)
        self._patience_s = patience_s
        self.left_out = dict(left_out or {})
        self.expected = [p.store for p in probes]

    def start(self) -> None:
        self._prober.start()

    def trouble(self) -> str | None:
        return None

    def finish(self) -> Probed:
        samples = self._prober.stop()
        survivors = self._prober.survivors(self._patience_s)
        for probe in self._prober.probes:
            clean = getattr(probe, "clean", None)
            if clean is not None:
                try:
                    clean(self._prober.acknowledged(probe.store))
                except Exception:  # noqa: BLE001 (a leftover canary costs a few bytes; the measurement stands)
                    pass
        return Probed(samples, survivors, self._prober.ended)


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
        "stopped": probed.stopped,
        "markerErrors": probed.marker_errors,
        "samples": [[s.at, s.store, s.operation, s.ok, s.key, s.error, s.took] for s in probed.samples],
        "survivors": {store: sorted(keys) for store, keys in probed.survivors.items()},
    }


def decode(found: Any) -> Probed:
    try:
        samples = [
            Sample(float(a), str(st), op, bool(ok), str(k), str(e), float(took))
            for a, st, op, ok, k, e, took in found["samples"]
        ]
        survivors = {str(store): set(keys) for store, keys in found["survivors"].items()}
        return Probed(samples, survivors, float(found["ended"]), str(found["stopped"]), int(found["markerErrors"]))
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
    what was seen and what survived to the bucket. The bucket not answering for a while (the
    drill may take out the zone of its endpoint) never ends probing early: the marker is asked
    for again, and the result written with retries."""
    settings = stores.settings(settings)
    bucket = settings["bucket"]
    probes = stores.build(settings, read_secret, root)
    session = LocalProbes(probes)
    session.start()
    began = clock()
    stopped, errors = STOPPED_AT_LIMIT, 0
    try:
        _retry(lambda: s3.put_object(Bucket=bucket, Key=marker(settings, run_id, "started"), Body=b""), sleep)
        while clock() - began < max_minutes * 60:
            try:
                if _exists(s3, bucket, marker(settings, run_id, "stop")):
                    stopped = STOPPED_BY_RUNNER
                    break
            except Exception as exc:  # noqa: BLE001 (the bucket not answering: ask again)
                if not transient(exc):
                    stopped = f"error: {type(exc).__name__}: {exc}"[:300]
                    break
                errors += 1
            sleep(poll_s)
    finally:
        probed = session.finish()
        probed.stopped, probed.marker_errors = stopped, errors
        for p in probes:
            p.close()
        body = json.dumps(encode(probed)).encode()
        _retry(
            lambda: s3.put_object(
                Bucket=bucket, Key=marker(settings, run_id, "result.json"), Body=body, ContentType="application/json"
            ),
            sleep,
        )
    return probed


def transient(exc: BaseException) -> bool:
    """Whether asking again may help: the endpoint not reached or timing out, the service busy
    (5xx, throttled). A refusal (no credentials, access denied, no such bucket) is not."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or error.get("Code") in ("Throttling", "ThrottlingException", "SlowDown", "RequestTimeout")
    return isinstance(exc, (ConnectionError, TimeoutError, BotoConnectionError, HTTPClientError))


def _retry(call: Callable[[], Any], sleep: Callable[[float], None], attempts: int = 6, first_s: float = 1.0) -> Any:
    """`call`, again after 1, 2, 4, 8, 16 s while it fails for a transient reason; any other
    failure, or the last, is raised."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not transient(exc):
                raise
            sleep(first_s * 2**attempt)
    raise AssertionError("unreachable")


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
        self.settings, self.left_out = stores.for_zone(stores.settings(settings), zone)
        self.expected = sorted(self.settings["stores"])
        self.run_id = run_id or uuid.uuid4().hex[:10]
        self.manifest = probe_job.manifest(self.settings, image, self.run_id, zone, region, max_minutes)
        self._timeouts = (start_timeout_s, result_timeout_s)
        self._poll_s, self._clock, self._sleep = poll_s, clock, sleep
        self._started_at: float | None = None

    @property
    def _where(self) -> tuple[str, str]:
        return self.manifest["metadata"]["namespace"], self.manifest["metadata"]["name"]

    def _wait_for(self, name: str, timeout_s: float, what: str) -> None:
        """Until the marker is there; the bucket or the cluster's API not answering for a while
        is asked again until the timeout, and never escapes as anything but a ProbeError."""
        bucket = self.settings["bucket"]
        key = marker(self.settings, self.run_id, name)
        deadline = self._clock() + timeout_s
        last = ""
        while True:
            try:
                if _exists(self.s3, bucket, key):
                    return
                failed = self.kube.job_failed(*self._where)
            except Exception as exc:  # noqa: BLE001 (asked again until the deadline)
                failed, last = None, f"{type(exc).__name__}: {exc}"
            if failed is not None:
                raise ProbeError(f"the probe Job {self._where[1]} failed before {what}: {failed}")
            if self._clock() > deadline:
                why = f" (last error: {last})" if last else ""
                raise ProbeError(f"the probe Job {self._where[1]} did not {what} within {timeout_s:.0f} s{why}")
            self._sleep(self._poll_s)

    def _delete(self) -> None:
        try:
            self.kube.delete_job(*self._where)
        except Exception:  # noqa: BLE001 (its activeDeadlineSeconds and TTL end it anyway)
            pass

    def start(self) -> None:
        try:
            self.kube.create_job(self.manifest)
            self._wait_for("started", self._timeouts[0], "start probing")
        except Exception as exc:
            self._delete()
            if isinstance(exc, ProbeError):
                raise
            raise ProbeError(f"the probe Job could not be started: {type(exc).__name__}: {exc}") from exc
        self._started_at = self._clock()

    def trouble(self) -> str | None:
        try:
            failed = self.kube.job_failed(*self._where)
        except Exception:  # noqa: BLE001 (the API not answering for a moment is no verdict)
            return None
        return None if failed is None else f"the probe Job {self._where[1]} failed: {failed}"

    def finish(self) -> Probed:
        bucket = self.settings["bucket"]
        asked_at = self._clock()
        try:
            _retry(
                lambda: self.s3.put_object(Bucket=bucket, Key=marker(self.settings, self.run_id, "stop"), Body=b""),
                self._sleep,
            )
            self._wait_for("result.json", self._timeouts[1], "write its result")
            body = _retry(
                lambda: self.s3.get_object(Bucket=bucket, Key=marker(self.settings, self.run_id, "result.json")),
                self._sleep,
            )
            try:
                found = json.loads(body["Body"].read())
            except json.JSONDecodeError as exc:
                raise ProbeError(f"the probes' result is not JSON ({exc})") from None
            probed = decode(found)
        except ProbeError:
            raise
        except Exception as exc:
            raise ProbeError(f"the probes' result could not be read: {type(exc).__name__}: {exc}") from exc
        finally:
            self._delete()
        if probed.stopped != STOPPED_BY_RUNNER:
            raise ProbeError(f"the probes stopped on their own ({probed.stopped}), not when the runner asked")
        wanted = asked_at - (self._started_at if self._started_at is not None else asked_at)
        if probed.ended < wanted - COVERAGE_SLACK_S:
            raise ProbeError(
                f"the probes ran {probed.ended:.0f} s of the {wanted:.0f} s the runner watched: "
                "they do not cover the drill"
            )
        return probed
