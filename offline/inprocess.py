"""The policy packs loaded into this process, answering the gate's requests as their own processes
would.

Each pack's `__main__.py` runs with `PolicyPack` captured instead of served; the SDK's own analyzer
servicer is then built from what it was given and called without gRPC. Requests, policy config,
enforcement levels, preview unknowns and diagnostics take the same path as in `PolicyGate` (this
class is one), so a policy's unit test sees what the engine would show. It exists for speed: a
policy analysed here takes milliseconds where a pack process takes a second to start. The gate of
record (`make preview`, CI) still starts the packs as the engine does.
"""

from __future__ import annotations

import contextvars
import json
import os
import runpy
import threading
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, cast

import pulumi_policy
from pulumi.runtime import config as runtime_config
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from offline.gate import GateResult, PackStartError, PolicyGate

#: The environment a pack reads (its stack config, project, stack, mode) is per process; in this
#: process it is set for one analysis at a time.
_ENVIRONMENT_LOCK = threading.Lock()


class _Done:
    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value


#: Analyze replies by (pack, policies kept, stack configuration, policy configuration, request).
#: A resource policy judges one resource at a time from exactly what the request carries, so the
#: reply to an identical request under an identical configuration is the same: the tests analyse
#: many stacks that differ from each other in one resource.
_ANALYZED: dict[tuple, Any] = {}


class _Stub:
    """The servicer answering as a gRPC stub does (`stub.Method(request)`, `.future(request)`)."""

    def __init__(self, servicer: _PolicyAnalyzerServicer, key: tuple):
        self._servicer, self._key = servicer, key
        self._stack_config = self._policy_config = b""

    def GetAnalyzerInfo(self, request):
        return self._servicer.GetAnalyzerInfo(request, None)

    def ConfigureStack(self, request):
        self._stack_config = request.SerializeToString(deterministic=True)
        return self._servicer.ConfigureStack(request, None)

    def Configure(self, request):
        self._policy_config = request.SerializeToString(deterministic=True)
        return self._servicer.Configure(request, None)

    def AnalyzeStack(self, request):
        return self._servicer.AnalyzeStack(request, None)

    def _analyze(self, request):
        key = (*self._key, self._stack_config, self._policy_config, request.SerializeToString(deterministic=True))
        if key not in _ANALYZED:
            _ANALYZED[key] = self._servicer.Analyze(request, None)
        return _ANALYZED[key]

    class _Analyze:
        def __init__(self, stub: _Stub):
            self._stub = stub

        def __call__(self, request):
            return self._stub._analyze(request)

        def future(self, request) -> _Done:
            return _Done(self._stub._analyze(request))

    @property
    def Analyze(self) -> _Analyze:
        return _Stub._Analyze(self)


@cache
def pack_definition(pack_dir: Path) -> dict[str, Any]:
    """What the pack's `__main__.py` hands to `PolicyPack` (name, policies, levels, ...)."""
    captured: dict[str, Any] = {}

    class Capture:
        def __init__(
            self,
            name,
            policies,
            enforcement_level=None,
            initial_config=None,
            description=None,
            display_name=None,
            readme=None,
            provider=None,
            tags=None,
            repository=None,
        ):
            captured.update(
                name=name,
                policies=policies,
                enforcement_level=enforcement_level,
                initial_config=initial_config,
                description=description,
                display_name=display_name,
                readme=readme,
                provider=provider,
                tags=tags,
                repository=repository,
            )

    # The pack looks PolicyPack up in pulumi_policy as it runs: the module's global is swapped for
    # the capture meanwhile, and put back after.
    sdk = vars(pulumi_policy)
    served, sdk["PolicyPack"] = sdk["PolicyPack"], Capture
    try:
        runpy.run_path(str(pack_dir / "__main__.py"), run_name="__pack__")
    finally:
        sdk["PolicyPack"] = served
    if "policies" not in captured:
        raise RuntimeError(f"{pack_dir}/__main__.py declared no PolicyPack")
    return captured


def _servicer(pack_dir: Path, only: frozenset[str] | None) -> _PolicyAnalyzerServicer:
    d = pack_definition(pack_dir)
    policies = [p for p in d["policies"] if only is None or p.name in only]
    return _PolicyAnalyzerServicer(
        d["name"],
        "0.0.1",
        policies,
        d["enforcement_level"] or pulumi_policy.EnforcementLevel.ADVISORY,
        d["initial_config"],
        d["description"],
        d["display_name"],
        d["readme"],
        d["provider"],
        d["tags"],
        d["repository"],
    )


class InProcessGate(PolicyGate):
    """`PolicyGate` with its packs loaded here instead of started as processes; `only` keeps the
    named policies of each pack (a unit test of one policy pays for that policy alone)."""

    def __init__(self, pack_dirs, *, only: set[str] | None = None, **kwargs):
        super().__init__(pack_dirs, **kwargs)
        self.only = frozenset(only) if only is not None else None

    def start(self) -> None:
        for pack_dir in self.pack_dirs:
            if not (pack_dir / "PulumiPolicy.yaml").is_file():
                raise PackStartError(f"{pack_dir}: not a policy pack directory (no PulumiPolicy.yaml)")

    def close(self) -> None:
        self._stubs, self._infos = {}, {}

    def analyze(self, resources: list[dict[str, Any]], policy_configs: dict[Path, Any] | None = None) -> GateResult:
        self.start()
        with _pack_environment(self):
            # In a context of its own, in this thread: the SDK's servicer configures the Pulumi
            # runtime (settings, config map) from the environment, and a program under test shares
            # this process.
            return contextvars.copy_context().run(self._analyze_here, resources, policy_configs)

    def _analyze_here(self, resources, policy_configs) -> GateResult:
        runtime_config.CONFIG.set({})
        requests, stack_request = self._prepare(resources, policy_configs)
        if self.only is not None and not any(
            isinstance(p, ResourceValidationPolicy) and p.name in self.only
            for d in self.pack_dirs
            for p in pack_definition(d)["policies"]
        ):
            requests = []  # stack policies only: the per-resource round is empty for them
        results = []
        for pack_dir in self.pack_dirs:  # one after the other: they share the environment
            # A _Stub answers every AnalyzerStub method (by name, through __getattr__).
            stub = self._stubs.get(pack_dir) or self._stubs.setdefault(
                pack_dir,
                cast(analyzer_pb2_grpc.AnalyzerStub, _Stub(_servicer(pack_dir, self.only), (str(pack_dir), self.only))),
            )
            results.append(self._analyze_pack(stub, pack_dir, requests, stack_request))
        return GateResult([info for info, _ in results], [d for _, found in results for d in found], [])


@contextmanager
def _pack_environment(gate: PolicyGate):
    """The process environment a pack process would have (project, stack, mode, stack config),
    for one analysis; the caller's is put back after."""
    values = {
        "PULUMI_PROJECT": gate.project,
        "PULUMI_STACK": gate.stack,
        "PULUMI_DRY_RUN": "true" if gate.dry_run else "false",
        "PULUMI_CONFIG": json.dumps(gate.stack_config),
    }
    with _ENVIRONMENT_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
