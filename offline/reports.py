"""The gate's verdicts as files a CI server reads: SARIF 2.1.0 for code review annotations
(GitHub code scanning shows each result at its line) and JUnit XML for test counts.

SARIF: one run; one rule per policy of every pack (`<pack>/<policy>`, its description, its
level: error for mandatory, warning for advisory); one result per diagnostic, located at the
line of the stack key its message names in `Pulumi.<stack>.yaml` (the key that controls it),
else at the stack file's first line, with the resource's URN as its logical location. The
schema is shipped (offline/schemas/sarif-2.1.0.json, the OASIS 2.1.0 schema as SchemaStore
publishes it) and the tests validate against it.

JUnit: a test suite per stack and mode, a test case per policy; a mandatory violation is a
failure (its messages in the failure), an advisory one passes with its messages as output.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline.gate import GateResult

ROOT = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "sarif-2.1.0.json"
_KEY = re.compile(r"\b((?:scanner|aws):[A-Za-z][A-Za-z0-9]*)\b")


@dataclass(frozen=True)
class Judged:
    stack: str
    mode: str
    result: GateResult


def project_version() -> str:
    path = ROOT / "VERSION"
    return path.read_text().strip() if path.exists() else "0.0.0"


def _key_lines(stack: str) -> dict[str, int]:
    """Stack key -> its line in Pulumi.<stack>.yaml (1-based)."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    lines: dict[str, int] = {}
    if path.exists():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            found = re.match(r"^\s+([a-z]+:[A-Za-z0-9]+):", line)
            if found:
                lines.setdefault(found.group(1), number)
    return lines


def _rule_id(pack: str, policy: str) -> str:
    return f"{pack}/{policy}"


def _help(pack: str, version: str, name: str, policy: dict[str, Any], level: str) -> dict[str, str]:
    """What code review shows beside an alert: the rule, who enforces it, how to change its level."""
    enforcement = "mandatory (a violation fails the gate)" if level == "error" else "advisory"
    directory = pack.removeprefix("scanner-")
    text = (
        f"{policy.get('description') or name}\n\n{pack} {version}, {enforcement}. A stack's level or settings "
        f"change in policies/config/<environment>/{directory}.json or policies/config/stacks/<stack>/{directory}.json "
        f"(README, Policy packs); the message names the stack key to change."
    )
    markdown = (
        f"**{name}**: {policy.get('description') or name}\n\n`{pack}` {version}, {enforcement}. Its level or "
        f"settings for a stack: `policies/config/<environment>/{directory}.json` or "
        f"`policies/config/stacks/<stack>/{directory}.json`; the message names the stack key to change."
    )
    return {"text": text, "markdown": markdown}


def sarif(judged: Sequence[Judged]) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    for one in judged:
        for pack in one.result.packs:
            for name, policy in sorted(pack.policies.items()):
                level = "error" if policy.get("enforcementLevel") == "mandatory" else "warning"
                rules.setdefault(
                    _rule_id(pack.name, name),
                    {
                        "id": _rule_id(pack.name, name),
                        "name": name,
                        "shortDescription": {"text": policy.get("description") or name},
                        "help": _help(pack.name, pack.version, name, policy, level),
                        "defaultConfiguration": {"level": level},
                        # Code scanning filters alerts by these tags.
                        "properties": {
                            "pack": pack.name,
                            "packVersion": pack.version,
                            "tags": ["infrastructure", "pulumi-policy", pack.name.removeprefix("scanner-")],
                        },
                    },
                )
    order = {rule_id: i for i, rule_id in enumerate(rules)}
    # One result per stack, rule, resource and message: a violation seen in both modes is one
    # alert, with the modes that saw it; its fingerprint stays when lines move or others go.
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for one in judged:
        keys = _key_lines(one.stack)
        stack_file = f"Pulumi.{one.stack}.yaml"
        for d in one.result.diagnostics:
            rule_id = _rule_id(d.pack, d.policy)
            key = (one.stack, rule_id, d.urn, d.message)
            if key in merged:
                modes = merged[key]["properties"]["modes"]
                if one.mode not in modes:
                    modes.append(one.mode)
                if d.level == "mandatory":
                    merged[key]["level"] = "error"
                continue
            named = next((k for k in _KEY.findall(d.message) if k in keys), None)
            line = keys[named] if named else 1
            location: dict[str, Any] = {
                "physicalLocation": {
                    "artifactLocation": {"uri": stack_file},
                    "region": {"startLine": line},
                }
            }
            if d.urn:
                location["logicalLocations"] = [{"fullyQualifiedName": d.urn, "kind": "resource"}]
            fingerprint = hashlib.sha256(f"{one.stack}|{rule_id}|{d.urn}".encode()).hexdigest()[:32]
            merged[key] = {
                "ruleId": rule_id,
                **({"ruleIndex": order[rule_id]} if rule_id in order else {}),
                "level": "error" if d.level == "mandatory" else "warning",
                "message": {"text": f"{one.stack}: {d.message}"},
                "locations": [location],
                "partialFingerprints": {"primaryLocationLineHash": f"{fingerprint}:1"},
                "properties": {"stack": one.stack, "modes": [one.mode], "resource": d.resource_name},
            }
    results = list(merged.values())
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "scanner-policy-gate",
                        "version": project_version(),
                        "informationUri": "https://www.pulumi.com/docs/iac/using-pulumi/crossguard/",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }


def junit(judged: Iterable[Judged]) -> str:
    suites = ET.Element("testsuites", name="policy gate")
    total = failed = 0
    for one in judged:
        cases = [(pack.name, name) for pack in one.result.packs for name in sorted(pack.policies)]
        suite = ET.SubElement(suites, "testsuite", name=f"{one.stack}/{one.mode}")
        failures = 0
        for pack, policy in cases:
            case = ET.SubElement(suite, "testcase", classname=f"{one.stack}.{one.mode}.{pack}", name=policy)
            said = [d for d in one.result.diagnostics if d.pack == pack and d.policy == policy]
            refused = [d for d in said if d.level == "mandatory"]
            if refused:
                failures += 1
                failure = ET.SubElement(case, "failure", message=refused[0].message[:500], type="mandatory")
                failure.text = "\n".join(f"{d.resource_name}: {d.message}" for d in refused)
            elif said:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(f"[advisory] {d.resource_name}: {d.message}" for d in said)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        total, failed = total + len(cases), failed + failures
    suites.set("tests", str(total))
    suites.set("failures", str(failed))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def diagnostics_json(result: GateResult | None) -> dict[str, Any] | None:
    """The gate's verdict for the `--json` record."""
    if result is None:
        return None
    return {
        "passed": result.passed,
        "packs": [{"name": p.name, "version": p.version, "policies": sorted(p.policies)} for p in result.packs],
        "diagnostics": [
            {"pack": d.pack, "policy": d.policy, "level": d.level, "message": d.message, "urn": d.urn}
            for d in result.diagnostics
        ],
    }
