"""What `archdsl serve` shows for one spec text: the report's pieces as HTML (the
visible diagram level only), or the error the CLI would print, with its line and
column. No torch, no server: the app calls this in a worker thread."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

from ..analysis.counts import count
from ..emit.dot import LEVELS
from ..emit.jinja import environment
from ..emit.report import layer_rows, level_svg, stage_bars
from ..fusion.planner import plan_for
from ..fusion.report import provenance_line
from ..load import load_solved
from ..spec.errors import SpecError


@cache
def _parts() -> Any:
    """The report's macros (built once: a Jinja environment costs ~15 ms)."""
    return environment(html=True).get_template("_report_parts.html.j2").module


def render_spec(path: Path, text: str, *, root: Path, shown: str, device: str,
                level: str) -> dict[str, Any]:
    """The page's right-hand side for ``text`` as the contents of spec ``path`` (inside
    ``root``): ``{"ok": true, "totals", "diagram", "layers", "bars", "fusion", …}`` as
    HTML fragments, or ``{"ok": false, "error": {"message", "line", "col", "field"}}``
    where ``message`` is the CLI's line."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; allowed: {', '.join(LEVELS)}")
    start = time.perf_counter()
    try:
        _, graph, _ = load_solved(path, text=text, root=root, shown=shown)
    except SpecError as err:
        where = err.location
        line, col = (where.line, where.col) if where and where.file == shown else (1, 1)
        return {"ok": False, "error": {"message": str(err), "line": line, "col": col,
                                       "field": err.field}}
    counts = count(graph)
    plan = plan_for(graph, device)
    parts = _parts()
    c, h, w = graph.input.shape
    return {
        "ok": True, "name": graph.name, "input": f"{c}x{h}x{w}", "level": level,
        "device": device, "params": counts.total.params, "macs": counts.total.macs,
        "totals": str(parts.totals(counts.total, counts.convention, plan)),
        "diagram": str(level_svg(graph, level, counts, plan)),
        "layers": str(parts.layers(layer_rows(graph, counts), counts.stages)),
        "bars": str(stage_bars(counts)),
        "fusion": str(parts.fusion(plan, provenance_line(plan))),
        "seconds": round(time.perf_counter() - start, 4),
    }
