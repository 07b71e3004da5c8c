"""What a change does to a stack's registrations: compare two recorded stacks (`--json` files of
`python -m offline.preview`) resource by resource, regardless of the order they registered in.

    python -m offline.record_diff before.json after.json

A resource is the same when its URN, type, parent, provider, inputs, outputs, dependencies (as
sets), property dependencies, `protect` and `retainOnDelete` are. A URN that disappears is a
resource every user's stack deletes and creates again. Exit status: 0 identical, 1 different,
2 a file that cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_COMPARED = (
    "type",
    "name",
    "parent",
    "provider",
    "custom",
    "inputs",
    "outputs",
    "dependencies",
    "propertyDependencies",
    "protect",
    "retainOnDelete",
)


def _load(path: Path) -> tuple[dict[str, dict[str, Any]], Any]:
    document = json.loads(path.read_text())
    resources = {}
    for record in document["resources"]:
        compared = {k: record.get(k) for k in _COMPARED}
        compared["dependencies"] = sorted(compared["dependencies"] or [])
        compared["propertyDependencies"] = {
            k: sorted(v) for k, v in sorted((compared["propertyDependencies"] or {}).items())
        }
        resources[record["urn"]] = compared
    return resources, document.get("outputs")


def differences(before: Path, after: Path) -> list[str]:
    """One line per resource that is gone, new or changed (naming what changed)."""
    a, a_outputs = _load(before)
    b, b_outputs = _load(after)
    lines = []
    for urn in sorted(set(a) | set(b)):
        if urn not in b:
            lines.append(f"gone (replaced in every stack): {urn}")
        elif urn not in a:
            lines.append(f"new: {urn}")
        elif a[urn] != b[urn]:
            changed = [k for k in _COMPARED if a[urn].get(k) != b[urn].get(k)]
            lines.append(f"changed {', '.join(changed)}: {urn}")
    if a_outputs != b_outputs:
        lines.append("stack outputs differ")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("error: arguments: give two --json files of offline.preview (before, after)", file=sys.stderr)
        return 2
    try:
        lines = differences(Path(args[0]), Path(args[1]))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot compare {args[0]} and {args[1]} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    resources = len(json.loads(Path(args[1]).read_text())["resources"])
    print("\n".join(lines) if lines else f"identical: {resources} resources")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
