"""The stack's stores as probes (drill/probes.py), from the probe settings the stack exports
(`drill.probes`, made by components/drill/probes.py) and the drill users' secrets, read from
Secrets Manager where the probes run.

    {"stores": {"database": {"kind": "postgres", "secretArn": "…"},
                "database-replica": {"kind": "postgres-replica", "secretArn": "…", "host": "…"},
                "broker": {"kind": "rabbitmq", "secretArn": "…", "vhost": "scanner", "queue": "drill.canary",
                           "exchange": "health", "routingKey": "drill"},
                "cache": {"kind": "redis", "secretArn": "…", "replicas": 1},
                "repo-cache": {"kind": "files", "directory": "/repo-cache/.drill"}},
     "bucket": "…", "prefix": "probes", "namespace": "scanner-scans", "serviceAccount": "drill",
     "claim": "repo-cache"}

Every store speaks TLS unless its settings say `"tls": false` (the local simulation's servers);
the stack's stores all require it. A setting that is missing or of the wrong kind is a
`BadSettings` naming the store and the key.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drill.probes import Endpoint, FileProbe, PostgresProbe, Probe, QueueProbe, RedisProbe

KINDS = ("postgres", "postgres-replica", "rabbitmq", "redis", "files")


class BadSettings(Exception):
    pass


def settings(value: Any) -> dict[str, Any]:
    """The probe settings, checked: every store of a known kind with the keys its kind needs."""
    if not isinstance(value, dict) or not isinstance(value.get("stores"), dict) or not value["stores"]:
        raise BadSettings("probes: not the stack's drill.probes output (no stores)")
    needs = {
        "postgres": ("secretArn",),
        "postgres-replica": ("secretArn", "host"),
        "rabbitmq": ("secretArn", "vhost", "queue"),
        "redis": ("secretArn",),
        "files": ("directory",),
    }
    for store, spec in value["stores"].items():
        kind = spec.get("kind") if isinstance(spec, dict) else None
        if kind not in KINDS:
            raise BadSettings(f"probes.stores.{store}.kind: {kind!r} is not one of {', '.join(KINDS)}")
        for key in needs[kind]:
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise BadSettings(f"probes.stores.{store}.{key}: missing (a {kind} store needs it)")
        if "zone" in spec and (not isinstance(spec["zone"], str) or not spec["zone"]):
            raise BadSettings(f"probes.stores.{store}.zone: not a zone name")
    return value


def for_zone(found: Mapping[str, Any], zone: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings without the stores that live in `zone` only (a replica pinned there: it is
    down for the whole drill by design, which proves nothing), and what was left out and why."""
    kept = {s: spec for s, spec in found["stores"].items() if spec.get("zone") != zone}
    left_out = {s: f"lives in {zone}, the drilled zone" for s in found["stores"] if s not in kept}
    return {**found, "stores": kept}, left_out


def _document(read_secret: Callable[[str], str], store: str, arn: str, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        document = json.loads(read_secret(arn))
    except json.JSONDecodeError:
        raise BadSettings(f"probes.stores.{store}.secretArn: the secret is not a JSON document") from None
    missing = [k for k in keys if k not in document]
    if missing:
        raise BadSettings(f"probes.stores.{store}.secretArn: the secret has no {', '.join(missing)}")
    return document


def _amqps(url: str) -> Endpoint:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "amqps" or not parsed.hostname:
        raise BadSettings(f"probes: the broker's endpoint {url!r} is not amqps://host:port")
    return Endpoint(parsed.hostname, parsed.port or 5671)


def build(found: Mapping[str, Any], read_secret: Callable[[str], str], root: Path | None = None) -> list[Probe]:
    """A probe per store. `read_secret(arn)` returns a secret's string (Secrets Manager's
    GetSecretValue where the probes run); `root` prefixes the file stores' directories (tests)."""
    probes: list[Probe] = []
    for store, spec in sorted(settings(dict(found))["stores"].items()):
        kind = spec["kind"]
        if kind in ("postgres", "postgres-replica"):
            doc = _document(read_secret, store, spec["secretArn"], ("username", "password", "host", "port", "dbname"))
            host = spec["host"] if kind == "postgres-replica" else doc["host"]
            probes.append(
                PostgresProbe(
                    store,
                    [Endpoint(host, int(doc["port"]))],
                    doc["username"],
                    doc["password"],
                    doc["dbname"],
                    read_only=kind == "postgres-replica",
                    tls=bool(spec.get("tls", True)),
                )
            )
        elif kind == "rabbitmq":
            doc = _document(read_secret, store, spec["secretArn"], ("username", "password", "amqpsEndpoint"))
            probes.append(
                QueueProbe(
                    store,
                    [_amqps(doc["amqpsEndpoint"])],
                    doc.get("vhost") or spec["vhost"],
                    doc["username"],
                    doc["password"],
                    spec["queue"],
                    tls=bool(spec.get("tls", True)),
                    exchange=str(spec.get("exchange") or ""),
                    routing_key=spec.get("routingKey"),
                )
            )
        elif kind == "redis":
            doc = _document(read_secret, store, spec["secretArn"], ("username", "password", "host", "port"))
            probes.append(
                RedisProbe(
                    store,
                    [Endpoint(doc["host"], int(doc["port"]))],
                    doc["username"],
                    doc["password"],
                    replicas=int(spec.get("replicas") or 0),
                    tls=bool(spec.get("tls", doc.get("tls", True))),
                )
            )
        else:
            directory = Path(spec["directory"])
            if root is not None:
                directory = root / directory.relative_to(directory.anchor)
            directory.mkdir(parents=True, exist_ok=True)
            probes.append(FileProbe(store, directory))
    return probes


def secrets_reader(client: Any) -> Callable[[str], str]:
    """GetSecretValue's string, from a boto3 Secrets Manager client."""
    return lambda arn: client.get_secret_value(SecretId=arn)["SecretString"]
