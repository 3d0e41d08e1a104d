"""What `archdsl serve` shows for one spec text: the report's pieces as HTML (the
visible diagram level only), or the error the CLI would print, with its line and
column. No torch, no server: the app calls this in a worker thread."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

from ..analysis.counts import count
from ..emit.dot import LEVELS, check_drawable
from ..emit.jinja import environment
from ..emit.render import RenderError
from ..emit.report import layer_rows, level_svg, stage_bars
from ..fusion.planner import plan_for
from ..fusion.report import precision_lines, provenance_line
from ..load import load_solved
from ..spec.errors import SpecError

# The page's fusion plan and layer table grow faster than the graph: at 4,000 IR nodes
# (a ResNet-1001 has over 3,000) a render takes a few seconds; beyond, it is refused.
MAX_NODES = 4000


@cache
def _parts() -> Any:
    """The report's macros (built once: a Jinja environment costs ~15 ms)."""
    return environment(html=True).get_template("_report_parts.html.j2").module


def render_spec(path: Path, text: str, *, root: Path, shown: str, device: str,
                level: str) -> dict[str, Any]:
    """The page's right-hand side for ``text`` as the contents of spec ``path`` (inside
    ``root``): ``{"ok": true, "totals", "diagram", "layers", "bars", "fusion", …}`` as
    HTML fragments, or ``{"ok": false, "error": {"message", "line", "col", "field"}}``
    where ``message`` is the CLI's line, or why the page can't show this spec (more than
    MAX_NODES IR nodes, a diagram of more than ``emit.dot.MAX_DRAWN`` nodes, no renderer);
    those are decided before the slow steps."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; allowed: {', '.join(LEVELS)}")
    start = time.perf_counter()
    try:
        _, graph, _ = load_solved(path, text=text, root=root, shown=shown)
    except SpecError as err:
        where = err.location
        line, col = (where.line, where.col) if where and where.file == shown else (1, 1)
        return _refused(str(err), line, col, err.field)
    if len(graph) > MAX_NODES:
        return _refused(f"{shown}: {graph.name} has {len(graph):,} IR nodes; the live page "
                        f"shows at most {MAX_NODES:,} (its plan and table would take "
                        "minutes); use archdsl count, plan and diagram --level stage")
    try:
        check_drawable(graph, level)
        counts = count(graph)
        name, _, precision = device.partition(":")  # NAME:int8, an int8 plan
        plan = plan_for(graph, name, precision=precision or "fp32")
        diagram = level_svg(graph, level, counts, plan)
    except RenderError as exc:
        return _refused(f"{shown}: cannot draw the diagram: {exc}")
    except ValueError as exc:  # a profile whose int8 forms don't cover its kernels
        return _refused(f"{shown}: {device}: {exc}")
    parts = _parts()
    c, h, w = graph.input.shape
    return {
        "ok": True, "name": graph.name, "input": f"{c}x{h}x{w}", "level": level,
        "device": device, "params": counts.total.params, "macs": counts.total.macs,
        "totals": str(parts.totals(counts.total, counts.convention, plan)),
        "diagram": str(diagram),
        "layers": str(parts.layers(layer_rows(graph, counts), counts.stages)),
        "bars": str(stage_bars(counts)),
        "fusion": str(parts.fusion(plan, provenance_line(plan), precision_lines(plan))),
        "seconds": round(time.perf_counter() - start, 4),
    }


def _refused(message: str, line: int = 1, col: int = 1, field: str | None = None
             ) -> dict[str, Any]:
    return {"ok": False, "error": {"message": message, "line": line, "col": col,
                                   "field": field}}
