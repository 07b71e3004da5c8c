"""The offline AWS catalogue: the reader answers known facts, the committed file is exactly what
the generator makes, and the generator's live-AWS path builds the right sections offline (EC2
under moto, RDS / ElastiCache / Amazon MQ through botocore's Stubber, two pages each; us-east-1's
EC2 offerings likewise, by zone id, with a Local Zone and a Wavelength Zone to leave out)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import catalogue
from catalogue import refresh

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "catalogue.refresh"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def run_main(capsys, *args: str) -> tuple[int, str]:
    """The command's entry point in this process (its argument errors exit through argparse):
    the exit status and what it printed on stderr. The byte-for-byte test runs the real CLI."""
    try:
        status = refresh.main(list(args))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    return status, capsys.readouterr().err


# --------------------------------------------------------------------------- reader: known facts


def test_us_east_1_zones_are_the_ones_moto_records():
    assert catalogue.standard_zones("us-east-1") == {
        "us-east-1a": "use1-az6",
        "us-east-1b": "use1-az1",
        "us-east-1c": "use1-az2",
        "us-east-1d": "use1-az4",
        "us-east-1e": "use1-az3",
        "us-east-1f": "use1-az5",
    }


def test_eu_west_1_has_three_zones():
    assert sorted(catalogue.standard_zones("eu-west-1")) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def test_unknown_region():
    assert "mars-north-1" not in catalogue.regions()
    assert catalogue.standard_zones("mars-north-1") == {}
    assert catalogue.instance_type_zone_ids("mars-north-1", "m7i.large") == set()
    assert catalogue.region_zone_ids("mars-north-1") == set()
    with pytest.raises(KeyError, match="mars-north-1"):
        catalogue.region_opt_in("mars-north-1")


def test_regions_are_the_commercial_partition_with_opt_in_flags():
    names = catalogue.regions()
    assert names == sorted(names) and len(names) >= 30
    assert not [r for r in names if r.startswith(("cn-", "us-gov-", "us-iso"))]
    assert catalogue.region_opt_in("us-east-1") is False
    assert catalogue.region_opt_in("ap-east-1") is True


def test_region_zone_ids():
    assert catalogue.region_zone_ids("us-east-1") == {f"use1-az{n}" for n in range(1, 7)}
    assert catalogue.region_zone_ids("eu-west-1") == {"euw1-az1", "euw1-az2", "euw1-az3"}
    # A region in the catalogue that moto records no offerings for.
    assert "ap-east-2" in catalogue.regions() and catalogue.region_zone_ids("ap-east-2") == set()
    assert catalogue.instance_type_zone_ids("ap-east-2", "m7i.large") == set()


# use1-az3 offers 68 of us-east-1's types (the 48 offered everywhere, 20 older ones such as m3.large).
@pytest.mark.parametrize("instance_type", ["m7i.large", "m6i.large", "m5.large", "t3.large", "m7g.large"])
def test_us_east_1_general_purpose_types_skip_use1_az3(instance_type):
    assert catalogue.instance_type_zone_ids("us-east-1", instance_type) == {
        "use1-az1",
        "use1-az2",
        "use1-az4",
        "use1-az5",
        "use1-az6",
    }


def test_instance_type_zone_ids():
    assert catalogue.instance_type_known("m7i.large")
    assert not catalogue.instance_type_known("m7i.huge")
    assert catalogue.instance_type_zone_ids("us-east-1", "m7i.huge") == set()
    # Offered in use1-az3 (and every other us-east-1 zone): recorded once, under everyZone.
    assert catalogue.instance_type_zone_ids("us-east-1", "m4.large") == catalogue.region_zone_ids("us-east-1")
    # eu-west-2's fourth zone is known by id only (moto's zone table stops at eu-west-2c); it
    # offers 226 types: c7gn.large there and in no other eu-west-2 zone, m5.large everywhere but there.
    assert "euw2-az4" in catalogue.region_zone_ids("eu-west-2")
    assert "euw2-az4" in catalogue.instance_type_zone_ids("eu-west-2", "c7gn.large")
    assert catalogue.instance_type_zone_ids("eu-west-2", "m5.large") == {"euw2-az1", "euw2-az2", "euw2-az3"}


def test_a_type_offered_everywhere_reports_every_zone_id():
    region = "eu-west-1"
    every = json.loads(catalogue.PATH.read_text())["ec2"][region]["everyZone"]
    assert catalogue.instance_type_zone_ids(region, every[0]) == catalogue.region_zone_ids(region)


def test_instance_types_are_the_union_over_regions():
    ec2 = json.loads(catalogue.PATH.read_text())["ec2"]
    union = set()
    for entry in ec2.values():
        union |= set(entry["everyZone"]) | set(entry["someZones"])
    assert catalogue.instance_types() == union
    only_elsewhere = sorted(union - set(ec2["us-east-1"]["everyZone"]) - set(ec2["us-east-1"]["someZones"]))
    assert only_elsewhere and catalogue.instance_type_known(only_elsewhere[0])
    assert catalogue.instance_type_zone_ids("us-east-1", only_elsewhere[0]) == set()


@pytest.mark.parametrize(
    "klass, offered",
    [
        ("db.r7g.large", True),
        ("db.t4g.medium", True),
        ("db.m6i.large", True),
        ("db.x2iedn.xlarge", True),
        # Families the current "Supported DB engines for DB instance classes" page added after 2023.
        ("db.m8g.large", True),
        ("db.r8g.48xlarge", True),
        ("db.r7i.large", True),
        ("db.m8gd.large", True),
        ("db.c6gd.large", True),
        ("db.c6gd.medium", True),
        ("db.r7g.hyuge", False),
        ("db.m3.medium", False),
        ("db.t2.micro", False),
        ("db.m4.large", False),
        # On the page with PostgreSQL "No": metal sizes, Oracle-only variants, z1d.
        ("db.m7i.metal-48xl", False),
        ("db.r7i.2xlarge.tpc2.mem4x", False),
        ("db.z1d.large", False),
        # The page's db.r6idn rows stop at xlarge.
        ("db.r6idn.xlarge", True),
        ("db.r6idn.large", False),
    ],
)
def test_rds_postgres_classes(klass, offered):
    assert (klass in catalogue.rds_instance_classes()) is offered
    assert (klass in catalogue.rds_instance_classes("postgres")) is offered


def test_rds_engine_not_held_is_empty():
    assert catalogue.rds_instance_classes("oracle-ee") == frozenset()


@pytest.mark.parametrize(
    "node_type, offered",
    [
        ("cache.m7g.large", True),
        ("cache.t4g.small", True),
        ("cache.r6gd.xlarge", True),
        ("cache.m7g.enormous", False),
        ("cache.t2.micro", False),
        ("cache.m1.small", False),
    ],
)
def test_cache_node_types(node_type, offered):
    assert (node_type in catalogue.cache_node_types()) is offered


@pytest.mark.parametrize(
    "version, host, offered",
    [
        ("4.2", "mq.m7g.large", True),
        ("4.2", "mq.m7g.medium", True),
        ("4.2", "mq.m7g.16xlarge", True),
        ("4.2", "mq.m7g.xxxlarge", False),
        ("4.2", "mq.m5.large", False),
        ("4.2", "mq.t3.micro", False),
        ("3.13", "mq.m5.large", True),
        ("3.13", "mq.m5.4xlarge", True),
        ("3.13", "mq.m7g.large", True),
        ("3.13", "mq.m7g.16xlarge", True),
        # Deprecated: no longer available for new brokers.
        ("3.13", "mq.t3.micro", False),
        ("4.2.1", "mq.m7g.large", True),
        ("9.9", "mq.m7g.large", False),
    ],
)
def test_mq_instance_types(version, host, offered):
    assert (host in catalogue.mq_instance_types("RabbitMQ", version)) is offered


def test_mq_engine_name_is_case_blind_and_unknown_engines_are_empty():
    assert catalogue.mq_instance_types("rabbitmq", "4.2") == catalogue.mq_instance_types("RabbitMQ", "4.2")
    assert catalogue.mq_instance_types("ActiveMQ", "5.18") == frozenset()


def test_closest():
    assert catalogue.closest("eu-wset-1", catalogue.regions()) == "eu-west-1"
    assert catalogue.closest("db.r7g.hyuge", catalogue.rds_instance_classes()) == "db.r7g.large"
    assert catalogue.closest("zzzz", ["us-east-1"]) is None


def test_generated_date_and_path():
    assert catalogue.PATH == ROOT / "catalogue" / "aws.json"
    assert catalogue.GENERATED == "2026-12-01" == json.loads(catalogue.PATH.read_text())["generated"]


def test_import_reads_nothing_and_pulls_in_no_sdk():
    """Imported on every program run: no file read, no boto3/pulumi; parsed once on first use."""
    probe = (
        "import sys, catalogue\n"
        "assert catalogue._data.cache_info().currsize == 0, 'file read at import'\n"
        "heavy = [m for m in ('boto3', 'botocore', 'moto', 'pulumi') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "catalogue.GENERATED; catalogue.regions(); catalogue.standard_zones('us-east-1')\n"
        "catalogue.cache_node_types(); catalogue.instance_type_known('m5.large')\n"
        "info = catalogue._data.cache_info()\n"
        "assert (info.misses, info.currsize) == (1, 1), info\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- the committed file


def test_offerings_encoding_is_consistent():
    data = json.loads(catalogue.PATH.read_text())
    assert set(data["ec2"]) <= set(data["regions"])
    for region, entry in data["ec2"].items():
        assert sorted(entry) == ["everyZone", "someZones", "zoneIds"], region
        zone_ids = set(entry["zoneIds"])
        assert entry["zoneIds"] == sorted(zone_ids) and zone_ids, region
        # Standard zone ids only, and only the region's own (no zone of another region leaks in).
        listed = set(data["regions"][region]["zones"].values())
        prefixes = {z.rsplit("-az", 1)[0] for z in listed}
        assert all(refresh.STANDARD_ZONE_ID.match(z) and z.rsplit("-az", 1)[0] in prefixes for z in zone_ids), (
            region,
            entry["zoneIds"],
        )
        # Every zone the region's zone table lists has offering data.
        assert listed <= zone_ids, region
        assert entry["everyZone"] == sorted(entry["everyZone"]), region
        assert not set(entry["everyZone"]) & set(entry["someZones"]), region
        for instance_type, where in entry["someZones"].items():
            assert where == sorted(where) and set(where) < zone_ids, (region, instance_type, where)


def test_standard_zone_filter_and_encoding():
    zone_types = {
        "use1-az1": "availability-zone",
        "use1-az2": "availability-zone",
        "use1-bos1-az1": "local-zone",
        "use1-wl1-bos-wlz1": "wavelength-zone",
    }
    found = refresh._standard_offerings(
        zone_types,
        {
            "m7i.large": {"use1-az1", "use1-az2", "use1-az7", "use1-bos1-az1"},
            "t3.medium": {"use1-az1", "use1-wl1-bos-wlz1"},
            "g4dn.2xlarge": {"use1-wl1-bos-wlz1"},  # only outside the standard zones: gone
            "x-unlisted-local": {"use1-mia2-az1"},  # unlisted, not of the standard form: gone
        },
    )
    assert found.offered == {"m7i.large": {"use1-az1", "use1-az2", "use1-az7"}, "t3.medium": {"use1-az1"}}
    assert found.dropped == ["use1-bos1-az1", "use1-mia2-az1", "use1-wl1-bos-wlz1"]
    assert found.unlisted == ["use1-az7"]
    assert refresh._encode_offerings(found.offered) == {
        "zoneIds": ["use1-az1", "use1-az2", "use1-az7"],
        "everyZone": ["m7i.large"],
        "someZones": {"t3.medium": ["use1-az1"]},
    }


def test_committed_file_is_what_the_generator_makes(tmp_path):
    """Byte for byte, so the file is provably generated and a hand edit fails here."""
    out = tmp_path / "aws.json"
    result = run_cli("--source", "moto", "--out", str(out), "--date", catalogue.GENERATED)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == catalogue.PATH.read_bytes(), (
        "catalogue/aws.json differs from the generator's output; regenerate it, do not edit it"
    )
    assert catalogue.PATH.stat().st_size < 1_500_000


def test_documented_lists_cite_their_pages():
    doc = json.loads((ROOT / "catalogue" / "documented.json").read_text())
    lists = [
        doc["rds"]["postgres"],
        doc["elasticache"],
        doc["mq"]["RabbitMQ"],
        *doc["mq"]["RabbitMQ"]["versions"].values(),
    ]
    assert doc["read"] == "2026-12-01"
    for entry in lists:
        assert entry["sources"] and all(url.startswith("https://") for url in entry["sources"]), entry


# --------------------------------------------------------------------------- the live-AWS path, offline


def _stubbed(service: str, region: str, responses: list[tuple[str, dict, dict]]):
    import boto3
    from botocore.stub import Stubber

    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    ).client(service)
    stubber = Stubber(client)
    for operation, response, expected in responses:
        if "error" in response:
            stubber.add_client_error(operation, service_error_code=response["error"], expected_params=expected)
        else:
            stubber.add_response(operation, response, expected)
    stubber.activate()
    return client, stubber


def _orderable(*classes: str) -> list[dict]:
    return [{"Engine": "postgres", "DBInstanceClass": c} for c in classes]


def _reserved(*pairs: tuple[str, str]) -> list[dict]:
    return [{"CacheNodeType": t, "ProductDescription": p} for t, p in pairs]


def _broker(host: str, *versions: str) -> dict:
    return {"HostInstanceType": host, "EngineType": "RABBITMQ", "SupportedEngineVersions": list(versions)}


PG = {"Engine": "postgres"}
RABBIT = {"EngineType": "RABBITMQ"}
SERVICE_RESPONSES: dict[tuple[str, str], list[tuple[str, dict, dict]]] = {
    ("rds", "eu-west-1"): [
        (
            "describe_orderable_db_instance_options",
            {"OrderableDBInstanceOptions": _orderable("db.r7g.large", "db.t4g.medium"), "Marker": "p2"},
            PG,
        ),
        (
            "describe_orderable_db_instance_options",
            {"OrderableDBInstanceOptions": _orderable("db.r7g.large", "db.m8g.xlarge")},
            {**PG, "Marker": "p2"},
        ),
    ],
    ("rds", "us-east-1"): [
        ("describe_orderable_db_instance_options", {"OrderableDBInstanceOptions": _orderable("db.x2g.large")}, PG),
    ],
    ("elasticache", "eu-west-1"): [
        (
            "describe_reserved_cache_nodes_offerings",
            {
                "ReservedCacheNodesOfferings": _reserved(("cache.m7g.large", "redis"), ("cache.m5.large", "memcached")),
                "Marker": "p2",
            },
            {},
        ),
        (
            "describe_reserved_cache_nodes_offerings",
            {"ReservedCacheNodesOfferings": _reserved(("cache.c7gn.large", "valkey"))},
            {"Marker": "p2"},
        ),
    ],
    ("elasticache", "us-east-1"): [
        (
            "describe_reserved_cache_nodes_offerings",
            {"ReservedCacheNodesOfferings": _reserved(("cache.t4g.small", "redis"))},
            {},
        ),
    ],
    ("mq", "eu-west-1"): [
        (
            "describe_broker_instance_options",
            {
                "BrokerInstanceOptions": [_broker("mq.m5.large", "3.13"), _broker("mq.m7g.large", "4.2")],
                "NextToken": "p2",
            },
            RABBIT,
        ),
        (
            "describe_broker_instance_options",
            {"BrokerInstanceOptions": [_broker("mq.m7g.medium", "4.2.1"), _broker("mq.t3.micro", "3.13")]},
            {**RABBIT, "NextToken": "p2"},
        ),
    ],
    # A region the account has not enabled: skipped and noted, not fatal.
    ("mq", "us-east-1"): [("describe_broker_instance_options", {"error": "OptInRequired"}, RABBIT)],
}


#: What AWS lists beside us-east-1's availability zones when asked for all of them, and what
#: those zones offer: neither may reach the catalogue.
OTHER_ZONES = [
    {
        "ZoneName": "us-east-1-bos-1a",
        "ZoneId": "use1-bos1-az1",
        "ZoneType": "local-zone",
        "RegionName": "us-east-1",
        "GroupName": "us-east-1-bos-1",
        "OptInStatus": "opted-in",
        "State": "available",
    },
    {
        "ZoneName": "us-east-1-wl1-bos-wlz-1",
        "ZoneId": "use1-wl1-bos-wlz1",
        "ZoneType": "wavelength-zone",
        "RegionName": "us-east-1",
        "GroupName": "us-east-1-wl1",
        "OptInStatus": "opted-in",
        "State": "available",
    },
]
OTHER_OFFERINGS = [
    {"InstanceType": "m7i.large", "LocationType": "availability-zone-id", "Location": "use1-bos1-az1"},
    {"InstanceType": "t3.medium", "LocationType": "availability-zone-id", "Location": "use1-wl1-bos-wlz1"},
]
STANDARD_ZONE_FILTERS = [
    {"Name": "zone-type", "Values": ["availability-zone"]},
    {"Name": "opt-in-status", "Values": ["opt-in-not-required"]},
]
BY_ZONE_ID = {"LocationType": "availability-zone-id"}


def _ec2_us_east_1(moto_client) -> list[tuple[str, dict, dict]]:
    """us-east-1's EC2 answers as AWS pages them: moto's answers, the offerings split over two
    pages with a Local Zone's and a Wavelength Zone's mixed in."""

    def answer(operation: str, **params) -> dict:
        response = getattr(moto_client, operation)(**params)
        response.pop("ResponseMetadata", None)
        return response

    zones = answer("describe_availability_zones", AllAvailabilityZones=True)
    offers = answer("describe_instance_type_offerings", **BY_ZONE_ID)["InstanceTypeOfferings"]
    half = len(offers) // 2
    return [
        ("describe_regions", answer("describe_regions", AllRegions=True), {"AllRegions": True}),
        (
            "describe_availability_zones",
            answer("describe_availability_zones", Filters=STANDARD_ZONE_FILTERS),
            {"Filters": STANDARD_ZONE_FILTERS},
        ),
        (
            "describe_availability_zones",
            {"AvailabilityZones": zones["AvailabilityZones"] + OTHER_ZONES},
            {"AllAvailabilityZones": True},
        ),
        (
            "describe_instance_type_offerings",
            {"InstanceTypeOfferings": offers[:half] + OTHER_OFFERINGS[:1], "NextToken": "p2"},
            BY_ZONE_ID,
        ),
        (
            "describe_instance_type_offerings",
            {"InstanceTypeOfferings": OTHER_OFFERINGS[1:] + offers[half:]},
            {**BY_ZONE_ID, "NextToken": "p2"},
        ),
    ]


@contextlib.contextmanager
def live_clients(
    responses: dict[tuple[str, str], list[tuple[str, dict, dict]]],
) -> Iterator[tuple[refresh.ClientFactory, list]]:
    """The aws path's client factory, offline: EC2 from moto (us-east-1's stubbed with moto's
    answers, paged), the rest stubbed."""
    import boto3
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        responses = {**responses, ("ec2", "us-east-1"): _ec2_us_east_1(session.client("ec2", "us-east-1"))}
        stubbed, stubbers = {}, []
        for key, answers in responses.items():
            stubbed[key], stubber = _stubbed(*key, answers)
            stubbers.append(stubber)

        def factory(service: str, region: str):
            if (service, region) in stubbed:
                return stubbed[(service, region)]
            assert service == "ec2", (service, region)
            return session.client("ec2", region_name=region)

        yield factory, stubbers


def test_aws_path_builds_every_section():
    with live_clients(SERVICE_RESPONSES) as (factory, stubbers):
        built = refresh.build("aws", ("eu-west-1", "us-east-1"), "2026-12-01", clients=factory)
    for stubber in stubbers:
        stubber.assert_no_pending_responses()  # every page was asked for
    committed = json.loads(catalogue.PATH.read_text())
    # EC2 goes through the same calls under moto as the committed file did; us-east-1's two
    # pages add up to the committed section, the Local and Wavelength Zones left out and named.
    assert built["regions"] == {r: committed["regions"][r] for r in ("eu-west-1", "us-east-1")}
    assert built["ec2"] == {r: committed["ec2"][r] for r in ("eu-west-1", "us-east-1")}
    assert "LocationType=availability-zone-id" in built["source"]["ec2"]
    assert "ZoneType" in built["source"]["ec2"]
    assert "Offerings of Local / Wavelength Zones left out: use1-bos1-az1, use1-wl1-bos-wlz1." in built["source"]["ec2"]
    # Unions over regions and pages; memcached offerings left out; versions as major.minor.
    assert built["rds"] == {"postgres": ["db.m8g.xlarge", "db.r7g.large", "db.t4g.medium", "db.x2g.large"]}
    assert built["elasticache"] == ["cache.c7gn.large", "cache.m7g.large", "cache.t4g.small"]
    assert built["mq"] == {
        "RabbitMQ": {"3.13": ["mq.m5.large", "mq.t3.micro"], "4.2": ["mq.m7g.large", "mq.m7g.medium"]}
    }
    assert "live" in built["source"]["rds"] and "moto" not in built["source"]["ec2"]
    assert "Not reachable with the generating account: us-east-1." in built["source"]["mq"]


def test_aws_path_fails_loudly_on_other_errors():
    from botocore.exceptions import ClientError

    throttled = {
        **SERVICE_RESPONSES,
        ("rds", "us-east-1"): [("describe_orderable_db_instance_options", {"error": "Throttling"}, PG)],
    }
    with live_clients(throttled) as (factory, _), pytest.raises(ClientError, match="Throttling"):
        refresh.build("aws", ("eu-west-1", "us-east-1"), "2026-12-01", clients=factory)


# --------------------------------------------------------------------------- command-line errors


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--regions", "US_EAST"], "--regions"),
        (["--regions", ","], "--regions"),
        (["--source", "moto", "--regions", "eu-wset-1"], "--regions"),
        (["--source", "moto", "--date", "2026-13-01"], "--date"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, flag, capsys):
    out = tmp_path / "aws.json"
    status, stderr = run_main(capsys, *args, "--out", str(out))
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in stderr, stderr
    assert not list(tmp_path.iterdir()), "nothing may be written"


def _missing_directory(tmp: Path) -> Path:
    return tmp / "missing" / "aws.json"


def _parent_is_a_file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("")
    return tmp / "a-file" / "aws.json"


def _out_is_a_directory(tmp: Path) -> Path:
    return tmp


@pytest.mark.parametrize("make_out", [_missing_directory, _parent_is_a_file, _out_is_a_directory])
def test_unwritable_out_exits_2_with_one_line(tmp_path, make_out, capsys):
    out = make_out(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    status, stderr = run_main(capsys, "--source", "moto", "--out", str(out))
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "Traceback" not in stderr, stderr
    assert sorted(tmp_path.rglob("*")) == before, "nothing may be written"


def test_the_file_names_moto_s_known_gaps():
    """Where moto's recording is known to be wrong or missing, the file says so."""
    source = json.loads(catalogue.PATH.read_text())["source"]
    if not catalogue.region_opt_in("af-south-1"):
        assert "af-south-1" in source["regions"] and "opt-in" in source["regions"]
    missing = [r for r in catalogue.regions() if r not in json.loads(catalogue.PATH.read_text())["ec2"]]
    assert missing and all(r in source["ec2"] for r in missing), (missing, source["ec2"])
    # A zone id kept although moto's zone table does not list it.
    assert "kept as standard zones by their form: euw2-az4." in source["ec2"]
    assert "LocationType=availability-zone-id" in source["ec2"] and "availability-zone-id/<region>" in source["ec2"]
