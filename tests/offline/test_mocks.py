"""The offline mocks answer look-ups the way AWS does, including its traps."""

import pytest
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from offline.mocks import ScannerMocks, UnmockedInvokeError

ZONES = "aws:index/getAvailabilityZones:getAvailabilityZones"


def zones(args):
    return ScannerMocks("us-east-1", preview=False).call(MockCallArgs(ZONES, args, ""))["names"]


def test_zone_lookup_without_the_opt_in_filter_returns_local_zones_first():
    assert zones({"state": "available"})[0] == "us-east-1-bos-1a"


def test_zone_lookup_with_the_opt_in_filter_returns_standard_zones_only():
    names = zones({"state": "available", "filters": [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]})
    assert names == [f"us-east-1{c}" for c in "abcdef"]


def test_an_unmocked_invoke_fails_loudly():
    with pytest.raises(UnmockedInvokeError, match="aws:rds/getEngineVersion"):
        ScannerMocks("us-east-1", preview=False).call(MockCallArgs("aws:rds/getEngineVersion:getEngineVersion", {}, ""))


def test_preview_leaves_ids_unknown_but_fills_auto_names():
    mocks = ScannerMocks("us-east-1", preview=True)
    rid, state = mocks.new_resource(
        MockResourceArgs("aws:iam/role:Role", "flow", {"assumeRolePolicy": "{}"}, custom=True)
    )
    assert rid == "" and state["name"].startswith("flow-") and "arn" not in state
    rid, state = ScannerMocks("us-east-1", preview=False).new_resource(
        MockResourceArgs("aws:iam/role:Role", "flow", {"assumeRolePolicy": "{}"}, custom=True)
    )
    assert rid == state["name"] and state["arn"] == f"arn:aws:iam::123456789012:role/{rid}"
