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
import inspect
import json
import os
import runpy
import threading
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, cast

import pulumi_policy
from google.protobuf import json_format
from pulumi.runtime import config as runtime_config
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy import policy as sdk_policy
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
        only = self._key[1]
        if only is not None:
            # The policies not kept are the pack's still (a config file may name them), disabled.
            for name in request.policyConfig:
                if name not in only:
                    request.policyConfig[name].enforcementLevel = analyzer_pb2.DISABLED
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
        """Takes PolicyPack's arguments, bound to its own signature (defaults included)."""

        def __init__(self, *args, **kwargs):
            bound = inspect.signature(served.__init__).bind(self, *args, **kwargs)
            bound.apply_defaults()
            captured.update({k: v for k, v in bound.arguments.items() if k != "self"})

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


_CONFIGURED: contextvars.ContextVar[bool] = contextvars.ContextVar("configured", default=False)


def _servicer(pack_dir: Path) -> _PolicyAnalyzerServicer:
    d = pack_definition(pack_dir)
    # The servicer takes PolicyPack's arguments by the same names, and the version PolicyPack
    # gives it (the manifest's version wins, in PolicyGate._describe, as the CLI has it).
    level = d["enforcement_level"] or pulumi_policy.EnforcementLevel.ADVISORY
    servicer = _PolicyAnalyzerServicer(version="0.0.1", **{**d, "enforcement_level": level})
    # Before every request the servicer configures the Pulumi runtime from the process
    # environment (project, stack, mode, the stack's config). In this process the environment is
    # fixed for the length of an analysis (_pack_environment), so configuring once per analysis
    # leaves the runtime as every request would: the first request of each analysis does it.
    # (Each analysis runs in a context of its own, where the flag starts unset.)
    configure = servicer._configure_runtime_settings

    def configure_once() -> None:
        if not _CONFIGURED.get():
            configure()
            _CONFIGURED.set(True)

    servicer._configure_runtime_settings = configure_once  # type: ignore[method-assign]
    return servicer


class InProcessGate(PolicyGate):
    """`PolicyGate` with its packs loaded here instead of started as processes; `only` keeps the
    named policies of each pack enabled (a unit test of one policy pays for that policy alone; the
    others stay declared, so a policy config file may still name them)."""

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
        with _pack_environment(self), _converted_once():
            # In a context of its own, in this thread: the SDK's servicer configures the Pulumi
            # runtime (settings, config map) from the environment, and a program under test shares
            # this process.
            return contextvars.copy_context().run(self._analyze_here, resources, policy_configs)

    def _analyze_here(self, resources, policy_configs) -> GateResult:
        runtime_config.CONFIG.set({})
        kept = [
            p
            for d in self.pack_dirs
            for p in pack_definition(d)["policies"]
            if self.only is None or p.name in self.only
        ]
        # A round no kept policy takes part in is left empty (as the servicer would skip it).
        requests, stack_request = self._prepare(
            resources,
            policy_configs,
            per_resource=any(isinstance(p, ResourceValidationPolicy) for p in kept),
            whole_stack=any(isinstance(p, StackValidationPolicy) for p in kept),
        )
        results = []
        for pack_dir in self.pack_dirs:  # one after the other: they share the environment
            # A _Stub answers every AnalyzerStub method (by name, through __getattr__).
            stub = self._stubs.get(pack_dir) or self._stubs.setdefault(
                pack_dir,
                cast(analyzer_pb2_grpc.AnalyzerStub, _Stub(_servicer(pack_dir), (str(pack_dir), self.only))),
            )
            results.append(self._analyze_pack(stub, pack_dir, requests, stack_request))
        return GateResult([info for info, _ in results], [d for _, found in results for d in found], [])


class _ConvertedOnce:
    """`json_format` as the SDK's servicer uses it, with `MessageToDict` answered once per distinct
    message: the servicer converts every resource's properties for every stack policy, and the
    tests analyse many stacks that share most resources. The servicer only reads the result (it
    builds its own objects from it), so a shared answer is never changed."""

    def __init__(self):
        self._answers: dict[tuple[str, bytes], Any] = {}
        #: The last answers by message object: the servicer converts the same message once per
        #: stack policy, and serializing it for the key cost as much as converting it. The message
        #: is held with its answer, so its id cannot be reused while the entry lives.
        self._by_object: dict[int, tuple[Any, Any]] = {}

    def MessageToDict(self, message, *args, **kwargs):
        if args or kwargs:
            return json_format.MessageToDict(message, *args, **kwargs)
        seen = self._by_object.get(id(message))
        if seen is not None and seen[0] is message:
            return seen[1]
        key = (message.DESCRIPTOR.full_name, message.SerializeToString(deterministic=True))
        if key not in self._answers:
            self._answers[key] = json_format.MessageToDict(message)
        if len(self._by_object) > 200_000:
            self._by_object.clear()
        self._by_object[id(message)] = (message, self._answers[key])
        return self._answers[key]

    def __getattr__(self, name: str):
        return getattr(json_format, name)


_CONVERTED = _ConvertedOnce()


#: The servicer then deserializes and wraps each converted dict (new objects, never changed by
#: the packs' policies, which only read): answered once per converted dict too.
_WRAPPED: dict[int, Any] = {}


def _wrapped_once(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
    if proxy_secrets:  # a remediation's own form, never shared
        return _SDK_PROXY(_SDK_DESERIALIZE(props, True))
    if id(props) not in _WRAPPED:  # the converted dicts live as long as _CONVERTED
        _WRAPPED[id(props)] = _SDK_PROXY(_SDK_DESERIALIZE(props))
    return _WRAPPED[id(props)]


def _already_wrapped(props: dict[str, Any]) -> dict[str, Any]:
    return props


_SDK_DESERIALIZE, _SDK_PROXY = sdk_policy.deserialize_properties, sdk_policy.unknown_checking_proxy


@cache
def _sdk_release() -> str:
    from importlib.metadata import version

    return version("pulumi-policy")


#: The SDK release whose servicer calls the three functions below as they are replaced; another
#: release must be checked against tests/offline/test_inprocess.py before it is trusted here.
SDK_RELEASE = "1.21.0"


@contextmanager
def _converted_once():
    """The SDK's servicer module sees the converting `json_format`, and a deserialize-and-wrap
    that answers once per converted dict, for one analysis."""
    if _sdk_release() != SDK_RELEASE:
        raise RuntimeError(
            f"offline.inprocess is written against pulumi-policy {SDK_RELEASE}, not {_sdk_release()}: "
            "check its replacements of the servicer's helpers, then update SDK_RELEASE"
        )
    saved = sdk_policy.json_format, sdk_policy.deserialize_properties, sdk_policy.unknown_checking_proxy
    sdk_policy.json_format = _CONVERTED
    # The servicer calls unknown_checking_proxy(deserialize_properties(d)): the first returns d's
    # wrapped form, the second passes it through.
    sdk_policy.deserialize_properties = _wrapped_once
    sdk_policy.unknown_checking_proxy = _already_wrapped
    try:
        yield
    finally:
        sdk_policy.json_format, sdk_policy.deserialize_properties, sdk_policy.unknown_checking_proxy = saved


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
