"""The exit-code contract CI reads: 0 pass, 1 mandatory violation, 2 bad input (one line per
problem, nothing written, no verdict), 3 the gate could not finish. One bad input per case."""

import subprocess
import sys

import pytest
from conftest import DEV, PROD, ROOT

from offline import preview


def _run(argv, tmp_path, capsys):
    outputs = [tmp_path / "out" / "record.json", tmp_path / "out" / "diagram.md"]
    status = preview.main([*argv, "--json", str(outputs[0]), "--diagram", str(outputs[1])])
    captured = capsys.readouterr()
    return status, captured, outputs


CASES = [
    (["-c", "aws:region=mars-north-1"], "error: aws:region: 'mars-north-1' is not an AWS region"),
    (
        ["-c", "scanner:backupCopyRegion=us-west-22"],
        "error: scanner:backupCopyRegion: 'us-west-22' is not an AWS region",
    ),
    (
        ["-c", "scanner:databaseInstanceClass=db.r7g.hyuge"],
        "error: scanner:databaseInstanceClass: 'db.r7g.hyuge' is not a DB instance class RDS for PostgreSQL offers",
    ),
    (
        ["-c", "scanner:cacheNodeType=cache.m7g.enormous"],
        "error: scanner:cacheNodeType: 'cache.m7g.enormous' is not an ElastiCache node type",
    ),
    (
        ["-c", "scanner:brokerInstanceType=mq.m7g.xxxlarge"],
        "error: scanner:brokerInstanceType: 'mq.m7g.xxxlarge' is not offered for RabbitMQ 4.2",
    ),
    (
        ["-c", 'scanner:systemNodeInstanceTypes=["m7i.huge"]'],
        "error: scanner:systemNodeInstanceTypes: 'm7i.huge' is not an EC2 instance type",
    ),
    (["-c", "aws:regoin=us-east-1"], "error: aws:regoin: unknown key (did you mean aws:region?)"),
    (["--policy-pack", "policies/no-such-pack"], "error: --policy-pack: policies/no-such-pack is not a directory"),
    (["--policy-pack", "components"], "error: --policy-pack: components is not a policy pack (no PulumiPolicy.yaml)"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_one_bad_input_exits_2_with_one_line_and_writes_nothing(argv, message, tmp_path, capsys):
    status, captured, outputs = _run(["--stack", "prod", *argv], tmp_path, capsys)
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), captured.err
    assert "Result:" not in captured.out and "Traceback" not in captured.out + captured.err
    assert not any(p.exists() for p in outputs)


STACK_FILES = [
    (
        "dup-key",
        PROD.replace("  scanner:natMode: per-az\n", "  scanner:natMode: per-az\n  scanner:natMode: single\n"),
        "error: Pulumi.dup-key.yaml: key 'scanner:natMode' is written twice (lines",
    ),
    (
        "dup-prefix",
        PROD.replace("  scanner:natMode: per-az\n", "  scanner:natMode: per-az\n  natMode: single\n"),
        "error: Pulumi.dup-prefix.yaml: scanner:natMode is written twice ('natMode' names it too)",
    ),
    (
        "a-list",
        "- config:\n    aws:region: us-east-1\n",
        "error: Pulumi.a-list.yaml: the top level must be a mapping with a 'config' key, not a list",
    ),
    (
        "int-region",
        PROD.replace("aws:region: us-east-1", "aws:region: 42"),
        "error: aws:region: '42' is not an AWS region",
    ),
]


@pytest.mark.parametrize("name,text,message", STACK_FILES, ids=[c[0] for c in STACK_FILES])
def test_bad_stack_file_exits_2_with_one_line(name, text, message, stack_file, tmp_path, capsys):
    status, captured, outputs = _run(["--stack", stack_file(name, text)], tmp_path, capsys)
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), captured.err
    assert not any(p.exists() for p in outputs) and "Result:" not in captured.out


def test_unwritable_output_exits_2_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    diagram = tmp_path / "d.md"
    status = preview.main(["--stack", "prod", "--json", str(blocker / "prod.json"), "--diagram", str(diagram)])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.strip() == f"error: --json: cannot write {blocker / 'prod.json'} ({blocker} is not a directory)"
    assert captured.out == "" and not diagram.exists()


def test_an_output_that_fails_while_written_leaves_no_file_and_no_verdict(tmp_path, capsys, monkeypatch):
    import tempfile

    diagram, record = tmp_path / "d.md", tmp_path / "r.json"
    real = tempfile.mkstemp
    monkeypatch.setattr(
        tempfile,
        "mkstemp",
        lambda dir, prefix: (
            (_ for _ in ()).throw(OSError(28, "No space left on device"))
            if prefix.startswith(".r.json")
            else real(dir=dir, prefix=prefix)
        ),
    )
    status = preview.main(["--stack", "prod", "--no-gate", "--json", str(record), "--diagram", str(diagram)])
    captured = capsys.readouterr()
    assert status == 2 and captured.err.strip() == f"error: --json: cannot write {record} (No space left on device)"
    assert not diagram.exists() and not record.exists() and "Stack prod" not in captured.out
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_program_defect_exits_3_in_one_line(monkeypatch, tmp_path, capsys):
    from components.network import plan as network_plan

    monkeypatch.setattr(network_plan, "plan_subnets", lambda *a, **k: 1 / 0)
    status = preview.main(["--stack", "prod", "--no-gate", "--diagram", str(tmp_path / "d.md")])
    captured = capsys.readouterr()
    assert status == 3
    assert captured.err.strip().startswith("error: the program failed under the offline mocks: ZeroDivisionError")
    assert len(captured.err.strip().splitlines()) == 1 and not (tmp_path / "d.md").exists()


@pytest.mark.all_stacks
def test_all_stacks_reports_every_stack_even_after_a_bad_one(stack_file, capsys):
    bad = stack_file("broken", DEV.replace("scanner:natMode: single", "scanner:natMode: sideways"))
    status = preview.main(["--all-stacks", "--quiet", "--no-gate"])
    captured = capsys.readouterr()
    assert status == 2
    assert "error: broken/preview: scanner:natMode: Input should be 'per-az', 'single' or 'regional'" in captured.err
    table = captured.out[captured.out.index("Stacks:") :].splitlines()[1:]
    verdicts = {tuple(line.split()[:2]): " ".join(line.split()[2:]) for line in table}
    assert verdicts[(bad, "preview")] == "BAD INPUT" and verdicts[(bad, "update")] == "BAD INPUT"
    assert verdicts[("prod", "preview")] == verdicts[("dev", "update")] == "PASS"


def test_the_process_itself_prints_no_traceback():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "offline.preview",
            "--stack",
            "prod",
            "-c",
            "aws:region=mars-north-1",
            "-c",
            "scanner:cacheNodeType=cache.m7g.enormous",
            "--no-gate",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    # Both problems, one line each, in one run.
    assert [line.split(": ")[1] for line in proc.stderr.strip().splitlines()] == ["aws:region", "scanner:cacheNodeType"]
