"""The packs loaded in the test process say what their own processes say: on every stack file in
both modes, and on stacks edited the way the unit layer edits them. The unit layer and most
analyses in the tests rest on this."""

from pathlib import Path

import pytest
from conftest import PACKS, analyze, drop, run, set_value, through_processes

from offline.inprocess import InProcessGate

#: Edits the way the unit layer makes them, in four tiers at once (each touches its own resources).
EDITS = {
    "single-az-database": (
        lambda r: set_value(r, "aws:rds/instance:Instance", "postgres-primary", "multiAz", False),
        "rds-multi-az",
    ),
    "zone-without-nat": (
        lambda r: drop(r, "aws:ec2/natGateway:NatGateway", "network-nat-us-east-1b"),
        "network-nat-per-az",
    ),
    "public-broker": (
        lambda r: set_value(r, "aws:mq/broker:Broker", None, "publiclyAccessible", True),
        "data-not-public",
    ),
    "unencrypted-file-system": (
        lambda r: set_value(r, "aws:efs/fileSystem:FileSystem", None, "encrypted", False),
        "efs-encrypted",
    ),
}


def _shape(result):
    packs = [(p.name, p.version, sorted(p.policies)) for p in result.packs]
    return packs, sorted((d.pack, d.policy, d.level, d.message, d.urn) for d in result.diagnostics)


def _in_process(record):
    judge = InProcessGate(
        [Path(p) for p in PACKS],
        project=record.project,
        stack=record.stack,
        dry_run=record.mode == "preview",
        stack_config=record.config,
    )
    return _shape(judge.analyze(record.resources))


def _pack_processes(record):
    """The started pack processes of the session (PolicyGate, one process per pack)."""
    with through_processes():
        return _shape(analyze(record.resources, PACKS, record.stack, record.mode, record.config))


@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_in_process_and_pack_processes_agree_on_every_stack_file(stack, mode):
    record = run(stack, mode)
    assert _in_process(record) == _pack_processes(record)


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_in_process_and_pack_processes_agree_on_an_edited_stack(mode):
    record = run("prod", mode)
    for edit, _ in EDITS.values():
        record = edit(record)
    in_process = _in_process(record)
    assert in_process == _pack_processes(record)
    refused = sorted({policy for _, policy, level, _, _ in in_process[1] if level == "mandatory"})
    assert refused == sorted(policy for _, policy in EDITS.values())
