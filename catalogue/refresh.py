"""Regenerate ``catalogue/aws.json``: what AWS offers, read from AWS's own APIs.

Why a generator rather than a hand-kept list: the config model checks regions, zones and
instance types on every run, offline and without credentials, so the answers must be written
down; but written down by a program, from the APIs that decide what a deploy can use, so that
a refresh is one command and a hand edit shows (the tests regenerate the file and compare it
byte for byte).

Two sources, one code path:

* ``--source aws`` calls the live APIs with the caller's credentials (EC2, RDS, ElastiCache,
  Amazon MQ; read-only ``Describe*`` calls).
* ``--source moto`` runs the very same EC2 calls against moto's recorded copies of AWS's
  responses (offline, reproducible: how the committed file is made). moto records nothing for
  RDS for PostgreSQL, ElastiCache or Amazon MQ, so those sections come from
  ``catalogue/documented.json``, compiled by hand from the AWS documentation.

    python -m catalogue.refresh --out catalogue/aws.json [--source aws|moto] [--regions r1,r2]

Usage errors (a bad ``--regions``, an ``--out`` that cannot be written) exit 2 with one line on
stderr and write nothing; an AWS error exits 1 likewise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PACKAGE_DIR / "aws.json"
DOCUMENTED = PACKAGE_DIR / "documented.json"
REGENERATE = "python -m catalogue.refresh --source moto --out catalogue/aws.json"

#: describe_regions is global; any commercial region answers it.
HOME_REGION = "us-east-1"
#: The catalogue is about the commercial partition; GovCloud and China need other accounts.
PARTITION = "aws"
#: What a region that is not enabled for the calling account answers (or its SCPs deny).
UNREACHABLE_CODES = frozenset(
    {
        "AuthFailure",
        "OptInRequired",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "AccessDenied",
        "AccessDeniedException",
    }
)
#: ElastiCache product descriptions that run Redis OSS or Valkey (not Memcached).
REDIS_PRODUCTS = frozenset({"redis", "valkey"})
#: Regions AWS launched after 20 March 2019 (so opt-in) that moto 5.2.5 lists as
#: opt-in-not-required; named in the file's source note while moto still says so.
MOTO_OPT_IN_GAPS = ("af-south-1", "ap-southeast-3", "eu-south-1")
OPT_IN_DOC = "https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html"
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
#: The id of a standard availability zone: the region's short name, "-az", a number (use1-az3).
#: Local Zone and Wavelength Zone ids name a location in between (use1-bos1-az1, use1-wl1-bos-wlz1).
STANDARD_ZONE_ID = re.compile(r"^[a-z]+\d+-az\d+$")
#: JSON objects nested deeper than this are written on one line: a region's zone map or a
#: type's zone list stays one diff line, the file stays small.
EXPANDED_DEPTH = 4

ClientFactory = Callable[[str, str], Any]


class UsageError(Exception):
    """A bad command-line value; ``flag`` names the option, the message says what to change."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"argument {flag}: {message}")


# --------------------------------------------------------------------------- command line


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints its usage block on an error; a wrapper script wants one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _region_list(text: str) -> tuple[str, ...]:
    names = tuple(sorted({part.strip() for part in text.split(",") if part.strip()}))
    bad = [name for name in names if not REGION_NAME.match(name)]
    if not names or bad:
        shown = ", ".join(repr(b) for b in bad) or repr(text)
        raise argparse.ArgumentTypeError(
            f"expected comma-separated region names such as us-east-1,eu-west-1, got {shown}"
        )
    return names


def _iso_date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m catalogue.refresh", description="Regenerate the offline AWS catalogue.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="file to write (default: catalogue/aws.json)")
    parser.add_argument(
        "--source",
        choices=("aws", "moto"),
        default="aws",
        help="aws: live APIs with your credentials; moto: moto's recorded "
        "responses plus catalogue/documented.json (default: aws)",
    )
    parser.add_argument(
        "--regions",
        type=_region_list,
        default=None,
        help="comma-separated regions to include (default: every commercial region)",
    )
    parser.add_argument(
        "--date",
        type=_iso_date,
        default=None,
        help="the 'generated' date to record (default: today, UTC); the tests "
        "pass the committed file's date to reproduce it",
    )
    return parser


def _check_writable(out: Path) -> None:
    """Fail before any API call, not after minutes of them."""
    if out.is_dir():
        raise UsageError("--out", f"{out} is a directory; give a file path")
    parent = out.parent
    if not parent.is_dir():
        state = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError("--out", f"{parent} {state}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".probe-", delete=True):
            pass
    except OSError as exc:
        raise UsageError("--out", f"cannot write to {parent}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- AWS calls


if TYPE_CHECKING:  # botocore is imported only when AWS is called
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError


def _botocore_errors() -> tuple[type[ClientError], type[EndpointConnectionError], type[BotoCoreError]]:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    return ClientError, EndpointConnectionError, BotoCoreError


def _unreachable(exc: BaseException) -> bool:
    """Whether an error means "this account cannot use this region", not a real failure."""
    client_error, endpoint_error, _ = _botocore_errors()
    if isinstance(exc, endpoint_error):
        return True
    return isinstance(exc, client_error) and exc.response.get("Error", {}).get("Code") in UNREACHABLE_CODES


def _paginate(client: Any, operation: str, result_key: str, **params: Any) -> Iterator[dict]:
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(result_key, [])


@dataclass
class Skipped:
    """Regions a section could not read, kept so the file says where its data stops."""

    regions: dict[str, list[str]] = field(default_factory=dict)

    def add(self, section: str, region: str) -> None:
        self.regions.setdefault(section, []).append(region)

    def note(self, section: str) -> str:
        missing = sorted(set(self.regions.get(section, [])))
        return f" Not reachable with the generating account: {', '.join(missing)}." if missing else ""


def _per_region(section: str, regions: Iterable[str], skipped: Skipped, read: Callable[[str], Any]) -> dict[str, Any]:
    """Run ``read`` for each region; a region the account cannot use is skipped and noted."""
    answers: dict[str, Any] = {}
    for region in regions:
        try:
            answers[region] = read(region)
        except Exception as exc:  # botocore's errors, classified below
            if not _unreachable(exc):
                raise
            skipped.add(section, region)
    return answers


def _commercial_regions(clients: ClientFactory) -> dict[str, bool]:
    """Every commercial region -> opt-in required (whether or not the account enabled it)."""
    import boto3

    partition_of = boto3.session.Session().get_partition_for_region
    regions = clients("ec2", HOME_REGION).describe_regions(AllRegions=True)["Regions"]
    return {
        r["RegionName"]: r.get("OptInStatus", "opt-in-not-required") != "opt-in-not-required"
        for r in regions
        if partition_of(r["RegionName"]) == PARTITION
    }


def _standard_zones(clients: ClientFactory, region: str) -> dict[str, str]:
    """Zone name -> zone id of the region's availability zones (no Local/Wavelength zones)."""
    zones = clients("ec2", region).describe_availability_zones(
        Filters=[
            {"Name": "zone-type", "Values": ["availability-zone"]},
            {"Name": "opt-in-status", "Values": ["opt-in-not-required"]},
        ]
    )["AvailabilityZones"]
    # Filter again here: moto ignores filters it does not know (opt-in-status) and AWS adds zone
    # types over time; a Local Zone must never count as a zone of the stack.
    return {
        z["ZoneName"]: z["ZoneId"]
        for z in zones
        if z.get("ZoneType", "availability-zone") == "availability-zone"
        and z.get("OptInStatus", "opt-in-not-required") == "opt-in-not-required"
    }


def _zone_types(clients: ClientFactory, region: str) -> dict[str, str]:
    """Zone id -> zone type of every zone of the region, enabled or not: Local and Wavelength
    Zones included, so their offerings can be told from those of availability zones."""
    zones = clients("ec2", region).describe_availability_zones(AllAvailabilityZones=True)["AvailabilityZones"]
    return {z["ZoneId"]: z.get("ZoneType", "availability-zone") for z in zones}


def _zone_offerings(clients: ClientFactory, region: str) -> dict[str, set[str]]:
    """Instance type -> zone ids of the region offering it (every zone type)."""
    offered: dict[str, set[str]] = {}
    for offer in _paginate(
        clients("ec2", region),
        "describe_instance_type_offerings",
        "InstanceTypeOfferings",
        LocationType="availability-zone-id",
    ):
        offered.setdefault(offer["InstanceType"], set()).add(offer["Location"])
    return offered


@dataclass
class ZoneOfferings:
    """A region's offerings by zone id, and the zone ids that needed a decision."""

    offered: dict[str, set[str]]  # instance type -> standard zone ids
    dropped: list[str]  # ids of Local / Wavelength (or other non-standard) zones
    unlisted: list[str]  # standard-looking ids DescribeAvailabilityZones does not list


def _standard_offerings(zone_types: dict[str, str], offered: dict[str, set[str]]) -> ZoneOfferings:
    """Keep the offerings of standard availability zones: ZoneType decides for a zone
    DescribeAvailabilityZones lists, the id's form for one it does not (moto lists no Local or
    Wavelength Zones; AWS lists every zone with AllAvailabilityZones)."""
    seen = set().union(*offered.values()) if offered else set()

    def standard(zone_id: str) -> bool:
        if zone_id in zone_types:
            return zone_types[zone_id] == "availability-zone"
        return bool(STANDARD_ZONE_ID.match(zone_id))

    kept = {z for z in seen if standard(z)}
    offered = {t: where & kept for t, where in offered.items() if where & kept}
    return ZoneOfferings(offered, sorted(seen - kept), sorted(kept - set(zone_types)))


def _encode_offerings(offered: dict[str, set[str]]) -> dict[str, Any]:
    """Most types are in every zone: list those once, spell out zone ids only for the rest."""
    zone_ids = set().union(*offered.values()) if offered else set()
    every = sorted(t for t, where in offered.items() if where == zone_ids)
    some = {t: sorted(where) for t, where in sorted(offered.items()) if where != zone_ids}
    return {"zoneIds": sorted(zone_ids), "everyZone": every, "someZones": some}


def _rds_classes(clients: ClientFactory, region: str, engine: str) -> set[str]:
    return {
        o["DBInstanceClass"]
        for o in _paginate(
            clients("rds", region),
            "describe_orderable_db_instance_options",
            "OrderableDBInstanceOptions",
            Engine=engine,
        )
    }


def _cache_node_types(clients: ClientFactory, region: str) -> set[str]:
    # ElastiCache has no "describe node types" call; the reserved-node offerings list one
    # offering per node type, engine, term and payment option, so they name every node type
    # that can be bought (T2 has left them as it becomes previous generation).
    return {
        o["CacheNodeType"]
        for o in _paginate(
            clients("elasticache", region), "describe_reserved_cache_nodes_offerings", "ReservedCacheNodesOfferings"
        )
        if o.get("ProductDescription") in REDIS_PRODUCTS
    }


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _broker_types(clients: ClientFactory, region: str) -> dict[str, set[str]]:
    """RabbitMQ engine version (major.minor) -> host instance types."""
    client = clients("mq", region)
    by_version: dict[str, set[str]] = {}
    token: str | None = None
    while True:  # botocore ships no paginator for this operation
        page = client.describe_broker_instance_options(EngineType="RABBITMQ", **({"NextToken": token} if token else {}))
        for option in page.get("BrokerInstanceOptions", []):
            # A list of plain version strings in the service model (not EngineVersion {Name}).
            for version in option.get("SupportedEngineVersions", []):
                by_version.setdefault(_major_minor(version), set()).add(option["HostInstanceType"])
        token = page.get("NextToken")
        if not token:
            return by_version


def _union(answers: dict[str, Iterable[str]]) -> list[str]:
    return sorted(set().union(*answers.values())) if answers else []


# --------------------------------------------------------------------------- sections


def _versions() -> dict[str, str]:
    names = ("boto3", "botocore", "moto")
    found = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def _pick_regions(available: dict[str, bool], wanted: tuple[str, ...] | None) -> dict[str, bool]:
    if wanted is None:
        return available
    unknown = [r for r in wanted if r not in available]
    if unknown:
        from difflib import get_close_matches

        hint = get_close_matches(unknown[0], list(available), n=1)
        raise UsageError(
            "--regions", f"unknown region {unknown[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    return {r: available[r] for r in wanted}


@dataclass
class Ec2Gaps:
    """What the ec2 section's source note must say about where its data stops."""

    empty: list[str] = field(default_factory=list)  # regions with no offering data
    dropped: list[str] = field(default_factory=list)  # non-standard zone ids left out
    unlisted: list[str] = field(default_factory=list)  # zone ids kept by their form alone


def _ec2_sections(
    clients: ClientFactory, regions: dict[str, bool], skipped: Skipped
) -> tuple[dict[str, Any], dict[str, Any], Ec2Gaps]:
    """The regions and ec2 sections, plus the gaps worth writing down."""
    zones = _per_region("regions", regions, skipped, lambda r: _standard_zones(clients, r))
    if regions and not zones:
        raise RuntimeError("no region answered DescribeAvailabilityZones; check the credentials")
    offered = _per_region(
        "ec2", zones, skipped, lambda r: _standard_offerings(_zone_types(clients, r), _zone_offerings(clients, r))
    )
    region_section = {
        r: {"optIn": regions[r], "zones": dict(sorted(zones.get(r, {}).items()))} for r in sorted(regions)
    }
    ec2_section, gaps = {}, Ec2Gaps()
    for region in sorted(offered):
        found = offered[region]
        gaps.dropped += found.dropped
        if not found.offered:
            gaps.empty.append(region)
            continue
        ec2_section[region] = _encode_offerings(found.offered)
        gaps.unlisted += found.unlisted
    return region_section, ec2_section, gaps


def _ec2_sources(
    source: str, versions: dict[str, str], region_section: dict[str, Any], gaps: Ec2Gaps, skipped: Skipped
) -> dict[str, str]:
    sdk = f"boto3 {versions.get('boto3', '?')} / botocore {versions.get('botocore', '?')}"
    if source == "moto":
        served = f"served under moto.mock_aws and read with {sdk}"
        where_regions = (
            f"moto {versions.get('moto', '?')}'s recorded regions and zones "
            f"(moto/ec2/models/availability_zones_and_regions.py), {served}"
        )
        where_ec2 = (
            f"moto {versions.get('moto', '?')}'s recorded offerings "
            f"(moto/ec2/resources/instance_type_offerings/availability-zone-id/<region>.json.gz), "
            f"{served}"
        )
        how_standard = (
            "moto lists only availability zones (no Local or Wavelength Zones), so an id "
            "it lists is standard and any other is judged by its form"
        )
        mislabelled = [r for r in MOTO_OPT_IN_GAPS if r in region_section and not region_section[r]["optIn"]]
        caveat_regions = ""
        if mislabelled:
            caveat_regions = (
                f" moto keeps its own opt-in list, which marks {', '.join(mislabelled)} "
                f"opt-in-not-required although AWS makes every Region launched after "
                f"20 March 2019 opt-in ({OPT_IN_DOC}); they are recorded as moto says."
            )
        caveat_regions += (
            " Zone ids are moto's recorded mapping where it has one and synthesised "
            "(<prefix>-az1..az3 for zones a..c) elsewhere; in AWS the name-to-id "
            "mapping of older regions differs per account."
        )
    else:
        how_standard = (
            "ZoneType from DescribeAvailabilityZones(AllAvailabilityZones=True) decides, "
            "the id's form for an id it does not list"
        )
        where_regions = where_ec2 = f"the live EC2 API of the generating account, read with {sdk}"
        caveat_regions = " Zone name-to-id mapping is that account's (it differs per account in older regions)."
    notes = ""
    if gaps.empty:
        notes += f" No offering data for: {', '.join(gaps.empty)}."
    if gaps.unlisted:
        notes += (
            " Zone ids DescribeAvailabilityZones does not list, kept as standard zones by their "
            f"form: {', '.join(gaps.unlisted)}."
        )
    if gaps.dropped:
        notes += f" Offerings of Local / Wavelength Zones left out: {', '.join(gaps.dropped)}."
    return {
        "regions": (
            f"EC2 DescribeRegions(AllRegions=True), commercial partition only, and "
            f"DescribeAvailabilityZones(zone-type=availability-zone, "
            f"opt-in-status=opt-in-not-required) per region, from {where_regions}."
            f"{caveat_regions}{skipped.note('regions')}"
        ),
        "ec2": (
            f"EC2 DescribeInstanceTypeOfferings(LocationType=availability-zone-id), paginated, per "
            f"region, from {where_ec2}. Keyed by zone id, which names the same physical zone in "
            f"every account (a zone name does not: map the account's names to ids with "
            f"DescribeAvailabilityZones). zoneIds lists the standard availability zone ids seen in "
            f"the region's offerings, everyZone the types offered in all of them, someZones the "
            f"zone ids of the others. Standard means not a Local or Wavelength Zone (ids such as "
            f"use1-bos1-az1 name a location; a standard id is <prefix>-az<N>): {how_standard}."
            f"{notes}{skipped.note('ec2')}"
        ),
    }


def _live_service_sections(
    clients: ClientFactory, regions: Iterable[str], skipped: Skipped, versions: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    regions = sorted(regions)
    rds = _per_region("rds", regions, skipped, lambda r: _rds_classes(clients, r, "postgres"))
    cache = _per_region("elasticache", regions, skipped, lambda r: _cache_node_types(clients, r))
    mq = _per_region("mq", regions, skipped, lambda r: _broker_types(clients, r))
    for section, answers in (("rds", rds), ("elasticache", cache), ("mq", mq)):
        if not answers:
            raise RuntimeError(f"no region answered for {section}; check the credentials")
    versions_seen: dict[str, set[str]] = {}
    for per_version in mq.values():
        for version, types in per_version.items():
            versions_seen.setdefault(version, set()).update(types)
    sdk = f"boto3 {versions.get('boto3', '?')} / botocore {versions.get('botocore', '?')}"
    sections = {
        "rds": {"postgres": _union(rds)},
        "elasticache": _union(cache),
        "mq": {"RabbitMQ": {v: sorted(t) for v, t in sorted(versions_seen.items())}},
    }
    sources = {
        "rds": (
            f"RDS DescribeOrderableDBInstanceOptions(Engine=postgres), paginated, DBInstanceClass "
            f"unioned over the regions queried, live, {sdk}.{skipped.note('rds')}"
        ),
        "elasticache": (
            f"ElastiCache DescribeReservedCacheNodesOfferings, paginated, CacheNodeType of the "
            f"redis and valkey offerings unioned over the regions queried (only node types "
            f"that can be reserved appear), live, {sdk}.{skipped.note('elasticache')}"
        ),
        "mq": (
            f"Amazon MQ DescribeBrokerInstanceOptions(EngineType=RABBITMQ), NextToken-paged, "
            f"HostInstanceType per SupportedEngineVersions entry (as major.minor), unioned over the "
            f"regions queried, live, {sdk}.{skipped.note('mq')}"
        ),
    }
    return sections, sources


def _documented_sections(path: Path = DOCUMENTED) -> tuple[dict[str, Any], dict[str, str]]:
    """The hand-compiled sections, each with the pages it was read from."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    rds, cache, mq = doc["rds"]["postgres"], doc["elasticache"], doc["mq"]["RabbitMQ"]
    sections = {
        "rds": {"postgres": sorted(rds["classes"])},
        "elasticache": sorted(cache["nodeTypes"]),
        "mq": {"RabbitMQ": {v: sorted(e["instanceTypes"]) for v, e in sorted(mq["versions"].items())}},
    }

    def cite(entry: dict[str, Any]) -> str:
        return f"AWS documentation read {doc['read']} ({', '.join(entry['sources'])}), see catalogue/documented.json."

    sources = {
        "rds": "RDS for PostgreSQL DB instance classes from " + cite(rds),
        "elasticache": "ElastiCache node types for Valkey / Redis OSS from " + cite(cache),
        "mq": "Amazon MQ for RabbitMQ host instance types per engine version from " + cite(mq),
    }
    return sections, sources


# --------------------------------------------------------------------------- assembly


@contextlib.contextmanager
def _clients(source: str) -> Iterator[ClientFactory]:
    import boto3

    if source == "moto":
        from unittest import mock

        from moto import mock_aws

        # moto loads its recorded AMIs into every region's EC2 backend (most of a run's time);
        # the catalogue reads no AMIs.
        with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}), mock_aws():
            session = boto3.session.Session()
            yield lambda service, region: session.client(service, region_name=region)
    else:
        session = boto3.session.Session()
        yield lambda service, region: session.client(service, region_name=region)


def build(
    source: str,
    regions: tuple[str, ...] | None,
    generated: str,
    clients: ClientFactory | None = None,
    documented: Path = DOCUMENTED,
) -> dict[str, Any]:
    """The catalogue as a dict; ``clients`` lets the tests hand in stubbed clients."""
    versions = _versions()
    skipped = Skipped()
    with contextlib.ExitStack() as stack:
        factory = clients or stack.enter_context(_clients(source))
        chosen = _pick_regions(_commercial_regions(factory), regions)
        region_section, ec2, gaps = _ec2_sections(factory, chosen, skipped)
        sources = _ec2_sources(source, versions, region_section, gaps, skipped)
        if source == "aws":
            reachable = [r for r in chosen if r not in skipped.regions.get("regions", [])]
            services, service_sources = _live_service_sections(factory, reachable, skipped, versions)
        else:
            services, service_sources = _documented_sections(documented)
    return {
        "generated": generated,
        "regenerate": REGENERATE,
        "source": {**sources, **service_sources},
        "regions": region_section,
        "ec2": ec2,
        **services,
    }


def dumps(value: Any, depth: int = 0) -> str:
    """Deterministic JSON: sorted keys, objects expanded near the top, compact below."""
    if isinstance(value, dict) and value and depth < EXPANDED_DEPTH:
        pad = " " * (depth + 1)
        items = (f"{pad}{json.dumps(key)}: {dumps(value[key], depth + 1)}" for key in sorted(value))
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write(out: Path, text: str) -> None:
    """Write through a temporary file so a failed run never leaves half a catalogue."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private; a committed data file is world-readable like its peers.
        os.chmod(tmp, out.stat().st_mode & 0o777 if out.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    generated = args.date or dt.datetime.now(dt.UTC).date().isoformat()
    try:
        _check_writable(args.out)
        catalogue = build(args.source, args.regions, generated)
    except UsageError as exc:
        parser.error(str(exc))
    except (RuntimeError, *_botocore_errors()) as exc:
        print(f"{parser.prog}: error: reading AWS (--source {args.source}): {exc}", file=sys.stderr)
        return 1
    try:
        write(args.out, dumps(catalogue) + "\n")
    except OSError as exc:
        parser.error(f"argument --out: cannot write {args.out}: {exc.strerror or exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
