"""A drill's timeline as a picture: a row per store, a mark per write sample (green acknowledged,
red failed), the moments that matter (the zone taken out, the experiment's states) as vertical
lines. Plain SVG, written without a plotting library: any browser or code-review tool shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from drill.measure import Sample

WIDTH, LEFT, ROW, TOP = 900, 120, 28, 30
OK, FAILED, EVENT = "#2e7d32", "#c62828", "#1565c0"


def svg(samples: Sequence[Sample], end: float, events: Iterable[tuple[float, str]] = ()) -> str:
    """The picture of `samples` from 0 to `end` seconds, with `events` (seconds, label)."""
    stores = sorted({s.store for s in samples})
    scale = (WIDTH - LEFT - 20) / max(end, 1e-9)
    height = TOP + ROW * len(stores) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="{LEFT}" y="18">writes per store over {end:.0f} s: green acknowledged, red failed</text>',
    ]
    for row, store in enumerate(stores):
        y = TOP + row * ROW
        parts.append(f'<text x="8" y="{y + 16}" class="store">{escape(store)}</text>')
        for sample in samples:
            if sample.store != store or sample.operation != "write":
                continue
            x = LEFT + sample.at * scale
            colour = OK if sample.ok else FAILED
            title = escape(f"{sample.at:.1f} s: {'ok' if sample.ok else sample.error or 'failed'}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="3" height="{ROW - 10}" fill="{colour}" '
                f'class="{"ok" if sample.ok else "failed"}"><title>{title}</title></rect>'
            )
    bottom = TOP + ROW * len(stores)
    for at, label in events:
        x = LEFT + at * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="{EVENT}" stroke-dasharray="4 3" '
            'class="event"/>'
        )
        parts.append(f'<text x="{x + 3:.1f}" y="{bottom + 16}" fill="{EVENT}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
