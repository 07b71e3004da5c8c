"""Validate custom resources against their CustomResourceDefinitions, as the API server would.

Two layers, both from the CRD's `openAPIV3Schema`:

- the structural schema (types, required fields, enums, patterns, bounds), checked with
  `jsonschema` after translating the OpenAPI extensions Kubernetes uses
  (`nullable`, `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`);
- the CEL rules in `x-kubernetes-validations`, evaluated with `cel-python`. Transition rules
  (those reading `oldSelf`) only apply to updates and are skipped. The Kubernetes CEL
  extensions the rules use (`find`, `split`) are supplied here.

Unknown fields are errors (the API server would prune them, or refuse them under strict field
validation, either way losing the setting). Defaults are not applied, so a field the API server
would default is not required here either.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


class CrdSet:
    """The CRDs of a directory, indexed by (apiVersion, kind)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            # libyaml's safe loader where PyYAML has it (the CRDs are large; the same documents).
            document = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    self._schemas[key] = version["schema"]["openAPIV3Schema"]

    def kinds(self) -> list[tuple[str, str]]:
        return sorted(self._schemas)

    def validate(self, manifest: dict[str, Any]) -> list[Problem]:
        key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
        schema = self._schemas.get(key)
        if schema is None:
            return [Problem("", f"no served CRD version for {key[0]} {key[1]} in {self.directory}")]
        body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
        problems = _structural(schema, body)
        problems += _cel(schema, body, "")
        return problems


# ----- structural schema -----------------------------------------------------------------


def _structural(schema: dict[str, Any], body: dict[str, Any]) -> list[Problem]:
    translated = _to_json_schema(schema)
    translated.get("properties", {}).pop("metadata", None)
    translated.get("properties", {}).pop("apiVersion", None)
    translated.get("properties", {}).pop("kind", None)
    validator = jsonschema.Draft7Validator(translated)
    return [
        Problem(_json_path(e.absolute_path), e.message)
        for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _to_json_schema(v)
        for k, v in node.items()
        if not k.startswith("x-kubernetes-") and k not in ("nullable", "default", "description")
    }
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("additionalProperties", None)
    elif "properties" in node and "additionalProperties" not in node:
        # A structural schema prunes (or, with strict field validation, refuses) unknown fields:
        # a misspelt field would silently drop a setting, so it is an error here.
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("format") not in (None, "int32", "int64"):
        out.pop("format")  # Kubernetes formats (duration, quantity...) are not JSON Schema formats
    return out


def _json_path(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# ----- CEL rules ---------------------------------------------------------------------------


def _cel(schema: dict[str, Any], value: Any, path: str) -> list[Problem]:
    problems: list[Problem] = []
    for rule in schema.get("x-kubernetes-validations", []) or []:
        if "oldSelf" in rule["rule"]:
            continue  # transition rule: only meaningful on update
        if not _evaluate(rule["rule"], value):
            problems.append(Problem(path, rule.get("message") or f"failed rule {rule['rule']}"))
    if isinstance(value, dict):
        for key, child in value.items():
            sub = (schema.get("properties") or {}).get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                problems += _cel(sub, child, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, child in enumerate(value):
            problems += _cel(schema["items"], child, f"{path}[{index}]")
    return problems


@functools.cache
def _program(rule: str):
    import celpy

    environment = celpy.Environment()
    return environment.program(environment.compile(rule), functions=_k8s_functions())


def _k8s_functions():
    from celpy import celtypes

    def find(text, pattern):
        match = re.search(str(pattern), str(text))
        return celtypes.StringType(match.group(0) if match else "")

    def split(text, separator):
        return celtypes.ListType([celtypes.StringType(p) for p in str(text).split(str(separator))])

    return {"find": find, "split": split}


def _evaluate(rule: str, value: Any) -> bool:
    import celpy

    result = _program(rule).evaluate({"self": celpy.json_to_cel(copy.deepcopy(value))})
    if isinstance(result, Exception):
        raise RuntimeError(f"CEL rule {rule!r} could not be evaluated: {result}")
    return bool(result)
