"""From Pulumi's flat config (`ns:key` -> string) to the typed model, with one line per problem."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from stack_config.base import PROJECT, ConfigError, KeyedError, KeyedErrors
from stack_config.stack import SECTIONS, StackConfig

#: The `aws:` keys the program reads (key -> model alias). Its resources go through one explicit
#: provider, which reads no `aws:` config of its own: these are handed to it, and the default
#: provider that answers the zone and account look-ups reads them from the config, so both see
#: the same account. Any other `aws:` setting would reach the look-ups only, so it is refused.
_AWS_KEYS = {
    "region": "region",
    "profile": "awsProfile",
    "allowedAccountIds": "awsAllowedAccountIds",
    "forbiddenAccountIds": "awsForbiddenAccountIds",
}
#: Namespaces of the engine's own settings (`pulumi:tags`, ...), which the program does not read.
_ENGINE_NAMESPACES = {"pulumi"}


def _alias(field: FieldInfo) -> str:
    # Every config model derives its aliases (alias_generator=to_camel) or names them: none is None.
    assert field.alias is not None
    return field.alias


def _fields() -> dict[str, tuple[str | None, Any]]:
    """Every key's alias -> (its section, or None for the stack's own, and its field)."""
    fields: dict[str, tuple[str | None, Any]] = {}
    for name, field in StackConfig.model_fields.items():
        if name in SECTIONS:
            for inner in SECTIONS[name].model_fields.values():
                fields[_alias(inner)] = (name, inner)
        elif name != "stack":
            fields[_alias(field)] = (None, field)
    return fields


_FIELDS = _fields()
#: Keys whose values are lists or objects (Pulumi hands them to programs JSON-encoded).
_LIST_KEYS = {alias for alias, (_, field) in _FIELDS.items() if "tuple" in str(field.annotation)}
_OBJECT_KEYS = {alias for alias, (_, field) in _FIELDS.items() if str(field.annotation).startswith("dict")}
#: The `scanner:` keys.
KNOWN_KEYS = {alias for alias in _FIELDS if alias not in _AWS_KEYS.values()}


def full_key(key: str) -> str:
    """The key as the stack file spells it: `natMode` -> `scanner:natMode`, `region` -> `aws:region`."""
    for aws_key, alias in _AWS_KEYS.items():
        if key == alias:
            return f"aws:{aws_key}"
    return f"{PROJECT}:{key}"


def _decode(key: str, raw: Any) -> Any:
    """Pulumi hands config to programs as strings; lists and objects arrive JSON-encoded."""
    for keys, kind, what in ((_LIST_KEYS, list, "a list"), (_OBJECT_KEYS, dict, "an object (name: value)")):
        if key in keys and isinstance(raw, str):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = None
            if not isinstance(value, kind):
                raise KeyedError(key, f"must be {what}, got {raw!r}")
            return value
    return raw


def _unknown_key(key: str) -> str | None:
    """The problem with a key the program does not read, or None when it reads it."""
    namespace, _, name = key.partition(":")
    if namespace == PROJECT:
        known, prefix = KNOWN_KEYS, f"{PROJECT}:"
    elif namespace == "aws":
        known, prefix = set(_AWS_KEYS), "aws:"
    elif namespace in _ENGINE_NAMESPACES:
        return None
    else:
        close = difflib.get_close_matches(namespace, [PROJECT, "aws"], n=1)
        hint = f"; did you mean {close[0]}:{name}?" if close else ""
        return f"{key}: the program reads no '{namespace}' namespace (only {PROJECT}: and aws: keys){hint}"
    if name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
    if namespace == "aws":
        return (
            f"{key}: unknown key{hint}; the program reads {', '.join('aws:' + k for k in _AWS_KEYS)} "
            "(each handed to its explicit AWS provider too): another aws: setting would reach the look-ups "
            "but not the resources"
        )
    return f"{key}: unknown key{hint}"


def parse(raw_config: Mapping[str, Any], stack: str) -> StackConfig:
    """Build the model from flat Pulumi config (`ns:key` -> value). Raises ConfigError naming
    every problem, one line each."""
    values: dict[str, Any] = {"stack": stack, **{name: {} for name in SECTIONS}}
    problems: list[str] = []
    for key, raw in sorted(raw_config.items()):
        problem = _unknown_key(key)
        if problem:
            problems.append(problem)
            continue
        namespace, _, name = key.partition(":")
        if namespace == "aws":
            name = _AWS_KEYS[name]
        elif namespace != PROJECT:
            continue
        try:
            value = _decode(name, raw)
        except KeyedError as exc:
            problems.append(f"{full_key(exc.key)}: {exc}")
            continue
        section = _FIELDS[name][0]
        (values[section] if section else values)[name] = value
    try:
        model = StackConfig.model_validate(values)
    except ValidationError as exc:
        problems += _errors(exc)
    else:
        if not problems:
            return model
    raise ConfigError("\n".join(problems))


def _errors(exc: ValidationError) -> list[str]:
    """One line per problem, each naming its key as the stack file spells it."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if loc and loc[0] in SECTIONS:
            loc = loc[1:]  # sections are not part of the key
        cause = error.get("ctx", {}).get("error")
        keyed = cause.errors if isinstance(cause, KeyedErrors) else [cause] if isinstance(cause, KeyedError) else []
        for item in keyed:
            lines.append(f"{full_key(f'{_location(loc)}.{item.key}' if loc else item.key)}: {item}")
        if keyed:
            continue
        key = _location(loc) if loc else "config"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{full_key(key)}: {message}")
    return lines


def _location(loc: tuple) -> str:
    """`('services', 0, 'port')` -> `services[0].port`."""
    text = str(loc[0])
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def load_from_pulumi() -> StackConfig:
    """Read the running stack's whole config (every namespace) and parse it."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse(raw, pulumi.get_stack())
