"""The figures a benchmark last wrote into the documentation's performance page
(docs/performance.md), to compare a new run with.

A benchmark's table there has the measure in its first column and
pangeo-binder's figure ("5.3 s", "0.12 s", "2.13 GB") in its second. `previous` reads
those back; `markdown` prints a run's rows in the same shape, to paste over them.
"""

from __future__ import annotations

import re
from pathlib import Path

PERFORMANCE_PAGE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
_FIGURE = re.compile(r"^\s*([0-9.]+)\s*(s|GB|MB)\s*$")


def previous(table: str) -> dict[str, float]:
    """measure -> pangeo-binder's figure, from the performance page's table whose header
    row's first cell is `table`."""
    figures: dict[str, float] = {}
    inside = False
    for line in PERFORMANCE_PAGE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|"):
            inside = False
        elif cells[0] == table:
            inside = True
        elif inside and len(cells) > 1 and (match := _FIGURE.match(cells[1])):
            figures[cells[0]] = float(match[1])
    return figures


def change(now: float, before: float | None) -> str:
    """How `now` compares with `before`: "2.1x faster", "1.3x slower", "-" if unknown."""
    if not before or not now:
        return "-"
    return f"{before / now:.1f}x less" if now <= before else f"{now / before:.1f}x more"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
