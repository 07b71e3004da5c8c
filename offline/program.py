"""Run the Pulumi program for a stack under the offline mocks and return what it registered."""

from __future__ import annotations

import functools
import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent

Mode = Literal["preview", "update"]


class StackFileError(Exception):
    """A stack or project file that cannot be read; the message is one line."""


@dataclass
class StackRecord:
    project: str
    stack: str
    mode: Mode
    config: dict[str, str]
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list[str] = field(default_factory=list)
    """The invoke tokens the program called (not part of the JSON record)."""

    def to_json(self) -> dict[str, Any]:
        keys = (
            "urn",
            "type",
            "name",
            "parent",
            "provider",
            "custom",
            "dependencies",
            "protect",
            "retainOnDelete",
            "inputs",
            "outputs",
        )
        return {
            "stack": self.stack,
            "project": self.project,
            "mode": self.mode,
            "outputs": self.outputs,
            "resources": [
                {k: r[k] for k in keys} | {"id": r["id"], "propertyDependencies": r["propertyDependencies"]}
                for r in self.resources
            ],
        }


def _config_string(value: Any) -> str:
    """Config values reach a program as strings, structured values JSON-encoded (as the CLI does)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


@functools.cache
def load_project(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """Pulumi.yaml, read once per process (callers only read it)."""
    document = read_yaml(project_dir / "Pulumi.yaml")
    if not isinstance(document, dict) or "name" not in document:
        raise StackFileError("Pulumi.yaml: the project file must be a mapping with a 'name'")
    return document


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key written twice in one mapping (PyYAML would keep the last one
    silently; the Pulumi CLI refuses such a file)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise StackFileError(f"key {key!r} is written twice (lines {seen[key]} and {key_node.start_mark.line + 1})")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: Path) -> Any:
    """A YAML file, with one-line errors: not valid YAML, or a key written twice."""
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except StackFileError as exc:
        raise StackFileError(f"{path.name}: {exc}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: not valid YAML ({' '.join(str(exc).split())})") from None
    except OSError as exc:
        raise StackFileError(f"{path.name}: cannot be read ({exc.strerror})") from None


def load_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """The flat config a program sees for `stack`: `ns:key` -> string."""
    project = load_project(project_dir)
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names(project_dir)) or "none"
        raise StackFileError(f"--stack: no stack file {path.name} (stacks: {known})")
    document = read_yaml(path)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(
            f"{path.name}: the top level must be a mapping with a 'config' key, not a {type(document).__name__}"
        )
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise StackFileError(f"{path.name}: 'config' must be a mapping of keys to values")
    config: dict[str, str] = {}
    for key, value in raw.items():
        full_key = key if ":" in str(key) else f"{project['name']}:{key}"
        if full_key in config:
            raise StackFileError(f"{path.name}: {full_key} is written twice ({key!r} names it too)")
        if isinstance(value, dict) and "secure" in value:
            value = "[secret]"  # ciphertext cannot be decrypted offline
        config[full_key] = _config_string(value)
    return config


def run_program(
    stack: str, mode: Mode = "preview", project_dir: Path = PROJECT_DIR, config: dict[str, str] | None = None
) -> StackRecord:
    """Run `__main__.py` for `stack` under the mocks. Exceptions from the program propagate
    (a `pulumi.RunError` carries a one-line message meant for the user)."""
    import pulumi
    from pulumi.runtime import mocks, settings
    from pulumi.runtime import resource as resource_runtime
    from pulumi.runtime import stack as runtime_stack
    from pulumi.runtime.sync_await import _sync_await

    from offline.mocks import RecordingMonitor, ScannerMocks

    project = load_project(project_dir)["name"]
    if config is None:
        config = load_stack_config(stack, project_dir)
    preview = mode == "preview"
    region = config.get("aws:region", "us-east-1")

    settings.reset_options(project=project, stack=stack, preview=preview)
    pulumi.runtime.set_all_config(dict(config), [])
    monitor = RecordingMonitor(ScannerMocks(region, preview))
    mocks.set_mocks(monitor.mocks, project=project, stack=stack, preview=preview, monitor=monitor)

    record = StackRecord(project=project, stack=stack, mode=mode, config=config)
    main = project_dir / "__main__.py"
    added_path = str(project_dir) not in sys.path
    if added_path:
        sys.path.insert(0, str(project_dir))

    def run_main() -> None:
        runpy.run_path(str(main), run_name="__main__")  # the module's globals are of no use here

    # The SDK walks the Python stack at every registration to tell the engine where a resource
    # was declared; the record keeps no source positions, and the walk is a fifth of a run.
    walk_stack, resource_runtime._get_stack_trace = resource_runtime._get_stack_trace, _no_stack_trace
    try:
        _sync_await(runtime_stack.run_pulumi_func(run_main))
        record.outputs = _stack_outputs(settings.get_root_resource())
    finally:
        resource_runtime._get_stack_trace = walk_stack
        if added_path:
            sys.path.remove(str(project_dir))
    record.resources = monitor.records
    record.invokes = sorted(monitor.mocks.invoked)
    root = next((r for r in record.resources if r["type"] == "pulumi:pulumi:Stack"), None)
    if root is not None:
        root["outputs"] = record.outputs
    return record


def _no_stack_trace():
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def _stack_outputs(root) -> dict[str, Any]:
    """Resolve `pulumi.export`s and return them in wire form (unknowns as the sentinel)."""
    from google.protobuf import json_format
    from pulumi.runtime import rpc
    from pulumi.runtime.sync_await import _sync_await

    exports = getattr(root, "outputs", None) or {}
    struct = _sync_await(rpc.serialize_properties(exports, {}))
    return json_format.MessageToDict(struct)
