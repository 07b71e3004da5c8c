"""The policy gate: run policy packs exactly as the Pulumi engine does, over gRPC.

Each pack is started as `python -u -m pulumi.policy <engine-address> <pack-dir>`, its port is
read from stdout, and it is driven with the analyzer stubs that ship in the Pulumi SDK:
GetAnalyzerInfo, ConfigureStack, Configure (the merged policy config), Analyze once per
resource (inputs) and AnalyzeStack once (outputs, parents, dependencies). The engine address
points at a small Engine service that collects what packs log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2, engine_pb2_grpc

LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
    "remediate": analyzer_pb2.REMEDIATE,
}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
_RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e095eb"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
START_TIMEOUT_S = 60


class GateError(Exception):
    """The gate could not finish (a pack failed while analysing); one-line message."""


class PackStartError(GateError):
    """A policy pack that is not one or does not start: bad input, like a bad argument."""


class PolicyConfigError(Exception):
    """Bad policy-pack config; the message names the file, the key and the rule."""


@dataclass(frozen=True)
class Diagnostic:
    pack: str
    policy: str
    level: str
    message: str
    urn: str
    """The resource the diagnostic is about: the one analysed (resource policies), or the one the
    policy named (stack policies); empty when it is about the stack as a whole."""

    @property
    def mandatory(self) -> bool:
        return self.level == "mandatory"

    @property
    def resource_name(self) -> str:
        """`Type name` of the resource, from its URN (`urn:pulumi:<stack>::<project>::<type>::<name>`)."""
        parts = self.urn.split("::", 3)
        if len(parts) < 4:
            return "the stack"
        return f"{parts[2].split('$')[-1].split(':')[-1]} {parts[3]}"


@dataclass
class PackInfo:
    directory: Path
    name: str = ""
    version: str = ""
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class GateResult:
    packs: list[PackInfo]
    diagnostics: list[Diagnostic]
    engine_log: list[str]

    @property
    def violations(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.mandatory]

    @property
    def passed(self) -> bool:
        return not self.violations


class _Engine(engine_pb2_grpc.EngineServicer):
    def __init__(self):
        self.messages: list[str] = []

    def Log(self, request, context):
        self.messages.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request, context):
        return engine_pb2.GetRootResourceResponse()

    def SetRootResource(self, request, context):
        return engine_pb2.SetRootResourceResponse()


def flatten_resource_refs(value: Any) -> Any:
    """Replace resource references with their id (custom) or URN (component), as the engine
    does before it sends properties to analyzers."""
    if isinstance(value, list):
        return [flatten_resource_refs(v) for v in value]
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _RESOURCE_REF_SIG:
            return value.get("id") or value.get("urn")
        return {k: flatten_resource_refs(v) for k, v in value.items()}
    return value


@lru_cache(maxsize=32)
def _manifest(pack_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text()) or {}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    return _struct_of(json.dumps(value, sort_keys=True))


@lru_cache(maxsize=16384)
def _struct_of(text: str) -> struct_pb2.Struct:
    """One conversion per distinct property set (a request copies the message it is given, so a
    shared one is never changed): the tests analyse many near-identical stacks."""
    struct = struct_pb2.Struct()
    json_format.ParseDict(flatten_resource_refs(json.loads(text)), struct)
    return struct


def load_policy_config(path: Path | None) -> dict[str, Any]:
    """Read a file in the format `pulumi preview --policy-pack-config` takes."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise PolicyConfigError(f"{path}: cannot read policy config ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: must be a JSON object of policy names to levels or settings")
    return data


@lru_cache(maxsize=1024)
def _config_error(schema_text: str, properties_text: str) -> str | None:
    """What `jsonschema.validate` would refuse in a policy's settings (its best-matching error,
    as ": path: message"), or None; one check per distinct schema and settings, since checking the
    schema itself against its metaschema is most of the cost."""
    import jsonschema  # only here: a run without policy settings never pays its import

    validator = _config_validator(schema_text)
    error = jsonschema.exceptions.best_match(validator.iter_errors(json.loads(properties_text)))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{'.' + where if where else ''}: {error.message}"


@lru_cache(maxsize=256)
def _config_validator(schema_text: str):
    import jsonschema

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def merge_policy_config(info: PackInfo, user: dict[str, Any], source: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The full per-policy config the engine sends with Configure: each policy's level (its own,
    overridden by `all`, overridden by its entry) and its properties (schema defaults overridden
    by its entry), validated against the policy's config schema."""

    def level_of(key: str, value: Any) -> str:
        if value not in LEVELS:
            raise PolicyConfigError(f"{source}: {key}: enforcement level {value!r} is not one of {', '.join(LEVELS)}")
        return value

    for key in user:
        if key != "all" and key not in info.policies:
            raise PolicyConfigError(
                f"{source}: '{key}' is not a policy of pack {info.name} (policies: {', '.join(sorted(info.policies))})"
            )
    if "all" in user and not isinstance(user["all"], str):
        raise PolicyConfigError(f"{source}: all: must be an enforcement level string")
    merged: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, policy in info.policies.items():
        level = policy["enforcementLevel"]
        if "all" in user:
            level = level_of("all", user["all"])
        schema = policy.get("configSchema") or {}
        properties = {k: v["default"] for k, v in (schema.get("properties") or {}).items() if "default" in v}
        entry = user.get(name)
        if isinstance(entry, str):
            level = level_of(name, entry)
        elif isinstance(entry, dict):
            entry = dict(entry)
            if "enforcementLevel" in entry:
                level = level_of(f"{name}.enforcementLevel", entry.pop("enforcementLevel"))
            properties.update(entry)
        elif entry is not None:
            raise PolicyConfigError(f"{source}: {name}: must be an enforcement level or an object of settings")
        if schema.get("properties") or properties:
            full_schema = {
                "type": "object",
                "properties": schema.get("properties") or {},
                "required": schema.get("required") or [],
                "additionalProperties": False,
            }
            # Keys in the schema's own order: best_match breaks ties between errors by it.
            error = _config_error(json.dumps(full_schema), json.dumps(properties, sort_keys=True))
            if error is not None:
                raise PolicyConfigError(f"{source}: {name}{error}")
        merged[name] = (level, properties)
    return merged


def _layers(value: Any) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [Path(value)]
    return [Path(v) for v in value]


def overlay_policy_config(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`: a policy's level is replaced, its settings merged key by key."""
    merged = dict(base)
    for name, entry in top.items():
        below = merged.get(name)
        if isinstance(entry, dict) and isinstance(below, dict):
            merged[name] = {**below, **entry}
        elif isinstance(entry, dict) and isinstance(below, str):
            merged[name] = {"enforcementLevel": below, **entry}
        elif isinstance(entry, str) and isinstance(below, dict):
            merged[name] = {**below, "enforcementLevel": entry}
        else:
            merged[name] = entry
    return merged


#: Packs boot while the program runs; the program is the longer path, so it keeps the CPU first
#: and the packs take what is left (no effect on results, only on scheduling).
_NICE_BIN = shutil.which("nice")
_NICE = [_NICE_BIN, "-n", "10"] if _NICE_BIN else []


class PolicyGate:
    """Start packs early (they boot while the program runs), then analyze a recorded stack."""

    def __init__(
        self,
        pack_dirs: list[Path],
        *,
        project: str,
        stack: str,
        dry_run: bool,
        stack_config: dict[str, str],
        policy_configs: dict[Path, Any] | None = None,
        python: str = sys.executable,
    ):
        """`policy_configs`: per pack directory, the override files to apply in order (a later
        file's entries win), or one file, or None."""
        self.pack_dirs = [Path(p).resolve() for p in pack_dirs]
        self.project, self.stack, self.dry_run = project, stack, dry_run
        self.stack_config = stack_config
        self.policy_configs = {Path(k).resolve(): _layers(v) for k, v in (policy_configs or {}).items()}
        self.python = python
        self._engine = _Engine()
        self._server: grpc.Server | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._channels: list[grpc.Channel] = []
        self._stubs: dict[Path, analyzer_pb2_grpc.AnalyzerStub] = {}
        self._infos: dict[Path, PackInfo] = {}

    # ----- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> PolicyGate:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self._engine, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        env = dict(os.environ)
        env.update(
            PULUMI_PROJECT=self.project,
            PULUMI_STACK=self.stack,
            PULUMI_DRY_RUN="true" if self.dry_run else "false",
            PULUMI_CONFIG=json.dumps(self.stack_config),
            PYTHONDONTWRITEBYTECODE="1",
        )
        for pack_dir in self.pack_dirs:
            if not (pack_dir / "PulumiPolicy.yaml").is_file():
                raise PackStartError(f"{pack_dir}: not a policy pack directory (no PulumiPolicy.yaml)")
            self._procs.append(
                subprocess.Popen(
                    [*_NICE, self.python, "-u", "-m", "pulumi.policy", f"127.0.0.1:{port}", str(pack_dir)],
                    cwd=pack_dir,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    # Packs boot while the program runs; the program is the longer path, so it keeps
                    # the CPU first and the packs take what is left.
                )
            )

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        if self._server is not None:
            self._server.stop(0)
        self._procs, self._channels, self._server = [], [], None
        self._stubs, self._infos = {}, {}

    def _connect(self, proc: subprocess.Popen[bytes], pack_dir: Path) -> analyzer_pb2_grpc.AnalyzerStub:
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None and stderr is not None  # every pack starts with stdout=PIPE, stderr=PIPE
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        port = line[0].strip() if line else b""
        if not port.isdigit():
            proc.kill()
            detail = (stderr.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise PackStartError(f"policy pack {pack_dir.name} did not start: {detail}")
        channel = grpc.insecure_channel(f"127.0.0.1:{int(port)}")
        self._channels.append(channel)
        return analyzer_pb2_grpc.AnalyzerStub(channel)

    # ----- analysis ------------------------------------------------------------------------

    def analyze(self, resources: list[dict[str, Any]], policy_configs: dict[Path, Any] | None = None) -> GateResult:
        """Analyse one recorded stack. A started gate analyses as many as it is given (the tests
        reuse pack processes); `policy_configs` replaces the override files for this analysis."""
        self.start()
        requests, stack_request = self._prepare(resources, policy_configs)

        def one_pack(proc, pack_dir) -> tuple[PackInfo, list[Diagnostic]]:
            if pack_dir not in self._stubs:
                self._stubs[pack_dir] = self._connect(proc, pack_dir)
            try:
                return self._analyze_pack(self._stubs[pack_dir], pack_dir, requests, stack_request)
            except grpc.RpcError as exc:
                raise GateError(f"policy pack {pack_dir.name} failed: {exc.details()}") from None

        # Each pack is its own process: analyse them side by side, report in pack order.
        with futures.ThreadPoolExecutor(max_workers=max(1, len(self.pack_dirs))) as pool:
            results = list(pool.map(one_pack, self._procs, self.pack_dirs))
        return GateResult(
            [info for info, _ in results], [d for _, found in results for d in found], list(self._engine.messages)
        )

    def _prepare(
        self, resources, policy_configs, per_resource: bool = True, whole_stack: bool = True
    ) -> tuple[list, analyzer_pb2.AnalyzeStackRequest]:
        if policy_configs is not None:
            self.policy_configs = {Path(k).resolve(): _layers(v) for k, v in policy_configs.items()}
        self._engine.messages.clear()
        return self._requests(resources, {r["urn"]: r for r in resources}, per_resource, whole_stack)

    def _analyze_pack(self, stub, pack_dir: Path, requests, stack_request) -> tuple[PackInfo, list[Diagnostic]]:
        """Describe (once), configure and run one pack."""
        info = self._infos.get(pack_dir) or self._infos.setdefault(pack_dir, self._describe(stub, pack_dir))
        self._configure(stub, info)
        return info, self._run(stub, info, requests, stack_request)

    def _describe(self, stub, pack_dir: Path) -> PackInfo:
        reply = stub.GetAnalyzerInfo(empty_pb2.Empty())
        # As the CLI does, the version in PulumiPolicy.yaml wins over the SDK's placeholder.
        manifest = _manifest(pack_dir)
        info = PackInfo(pack_dir, reply.name, str(manifest.get("version") or reply.version or "0.0.1"))
        default_level = "advisory"
        for policy in reply.policies:
            info.policies[policy.name] = {
                "enforcementLevel": LEVEL_NAMES.get(policy.enforcementLevel, default_level),
                "description": policy.description,
                "configSchema": json_format.MessageToDict(policy.configSchema)
                if policy.HasField("configSchema")
                else {},
            }
        return info

    def _configure(self, stub, info: PackInfo) -> None:
        stub.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=self.stack,
                project=self.project,
                organization="organization",
                dry_run=self.dry_run,
                config={k: v for k, v in self.stack_config.items()},
            )
        )
        layers = self.policy_configs.get(info.directory, [])
        user: dict[str, Any] = {}
        for path in layers:
            layer = load_policy_config(path)
            merge_policy_config(info, layer, str(path))  # each file's own errors name that file
            user = overlay_policy_config(user, layer)
        source = " + ".join(str(p) for p in layers) or info.name
        merged = merge_policy_config(info, user, source)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, properties) in merged.items():
            request.policyConfig[name].CopyFrom(
                analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=_struct(properties))
            )
        stub.Configure(request)

    def _provider(self, record, by_urn) -> analyzer_pb2.AnalyzerProviderResource | None:
        provider = by_urn.get(record.get("provider") or "")
        if provider is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=provider["type"], urn=provider["urn"], name=provider["name"], properties=_struct(provider["inputs"])
        )

    def _options(self, record) -> analyzer_pb2.AnalyzerResourceOptions:
        return analyzer_pb2.AnalyzerResourceOptions(protect=record["protect"], parent=record["parent"] or "")

    def _requests(
        self, resources, by_urn, per_resource: bool = True, whole_stack: bool = True
    ) -> tuple[list, analyzer_pb2.AnalyzeStackRequest]:
        """Every Analyze request and the AnalyzeStack request, built once and sent to each pack
        (a caller that knows its packs need only one of the two leaves the other empty)."""
        requests = [
            analyzer_pb2.AnalyzeRequest(
                type=record["type"],
                urn=record["urn"],
                name=record["name"],
                properties=_struct(record["inputs"]),
                options=self._options(record),
                provider=self._provider(record, by_urn),
            )
            for record in resources
            if per_resource and record["type"] != "pulumi:pulumi:Stack"
        ]
        stack_request = analyzer_pb2.AnalyzeStackRequest()
        for record in resources if whole_stack else ():
            resource = stack_request.resources.add(
                type=record["type"],
                urn=record["urn"],
                name=record["name"],
                properties=_struct(record["outputs"]),
                options=self._options(record),
                parent=record["parent"] or "",
                dependencies=record["dependencies"],
            )
            provider = self._provider(record, by_urn)
            if provider is not None:
                resource.provider.CopyFrom(provider)
            for prop, urns in record["propertyDependencies"].items():
                resource.propertyDependencies[prop].urns.extend(urns)
        return requests, stack_request

    def _run(self, stub, info: PackInfo, requests, stack_request) -> list[Diagnostic]:
        # Resource by resource as the engine does, without waiting on each round trip. The engine
        # attributes an Analyze diagnostic to the resource analysed; so does the gate.
        pending = [(request.urn, stub.Analyze.future(request)) for request in requests]
        replies = [(urn, call.result()) for urn, call in pending]
        replies.append(("", stub.AnalyzeStack(stack_request)))
        return [
            Diagnostic(
                d.policyPackName or info.name,
                d.policyName,
                LEVEL_NAMES.get(d.enforcementLevel, "advisory"),
                d.message,
                d.urn or urn,
            )
            for urn, reply in replies
            for d in reply.diagnostics
        ]
