"""The probe image (drill/Dockerfile) holds what the probe Job runs, and nothing it does not
need: its commands are run here from a directory holding only the files the Dockerfile copies,
with the project's other packages made unimportable; its pins are the project's."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "drill" / "Dockerfile"
#: What the image must run without: the program, its components, the ops tools, Pulumi.
FORBIDDEN = ("pulumi", "pulumi_aws", "pulumi_kubernetes", "components", "ops", "offline", "stack_config", "kubernetes")


def copied() -> list[tuple[str, str]]:
    return re.findall(r"^COPY (\S+) (\S+)$", DOCKERFILE.read_text(), flags=re.M)


def image_tree(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    for source, target in copied():
        destination = app / target.removeprefix("/app/")
        if source.endswith("/"):
            shutil.copytree(
                ROOT / source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, destination)
    return app


def in_image(app: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    blocker = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in FORBIDDEN)
    run = (
        blocker + "import runpy\nsys.argv = ['drill', *sys.argv[1:]]\nrunpy.run_module('drill', run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", run, *argv],
        cwd=app,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(app), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_image_runs_its_commands_from_its_own_files(tmp_path):
    app = image_tree(tmp_path)
    assert in_image(app, "ready").stdout == "ready\n"
    refused = in_image(app, "probe", "--run", "r1")
    assert refused.returncode == 2 and refused.stderr.startswith("error: DRILL_PROBES: not set"), refused.stderr
    # The probe's own path, as far as it goes without a store: settings read, secrets asked for.
    settings = '{"bucket": "b", "stores": {"repo-cache": {"kind": "files", "directory": "/tmp/x"}}}'
    found = in_image(app, "probe", "--run", "r1", env={"DRILL_PROBES": settings, "AWS_DEFAULT_REGION": "us-east-1"})
    assert "Traceback" not in found.stderr and found.returncode in (0, 3), found.stderr


def test_the_image_s_pins_are_the_project_s():
    pins = dict(
        line.split("==")
        for line in (ROOT / "drill" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    project = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    assert pins and all(project.get(name) == version for name, version in pins.items()), pins
    for module in ("psycopg", "redis", "pika", "boto3"):
        assert module in pins
    assert "USER 10001:10001" in DOCKERFILE.read_text()
