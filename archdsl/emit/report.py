"""The Netscope-style HTML report: one self-contained page with the diagram at three
levels, the per-layer table, the fusion plan, per-stage bars and the normalized spec."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from .. import __version__
from ..analysis.counts import Counts
from ..fusion.planner import FusionPlan
from ..fusion.report import provenance_line
from ..ir.graph import Graph
from .dot import LEVELS, Precisions, to_dot
from .jinja import environment
from .render import TooLarge, render

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)


def inline_svg(svg: bytes) -> Markup:
    """An SVG document as an inline element (no XML prologue or doctype)."""
    return Markup(_PROLOGUE.sub("", svg.decode("utf-8"), count=1))


def stage_bars(counts: Counts) -> Markup:
    stages = counts.stages
    top_m = max(s.macs for s in stages) or 1
    top_p = max(s.params for s in stages) or 1
    row, width = 34, 260
    lines = [f'<svg class="bars" width="{140 + 2 * width + 40}" height="{row * len(stages) + 30}"'
             ' xmlns="http://www.w3.org/2000/svg">',
             '<text x="140" y="14" fill="#2b6cb0">MACs</text>',
             f'<text x="{160 + width}" y="14" fill="#c05621">parameters</text>']
    for i, s in enumerate(stages):
        y = 24 + i * row
        wm, wp = width * s.macs / top_m, width * s.params / top_p
        lines += [f'<text x="0" y="{y + 14}">{escape(s.name)}</text>',
                  f'<rect x="140" y="{y}" width="{wm:.1f}" height="18" fill="#90cdf4"/>',
                  f'<text x="{144 + wm:.1f}" y="{y + 14}">{s.macs / 1e9:.2f} G</text>',
                  f'<rect x="{160 + width}" y="{y}" width="{wp:.1f}" height="18" '
                  'fill="#fbd38d"/>',
                  f'<text x="{164 + width + wp:.1f}" y="{y + 14}">{s.params / 1e6:.2f} M</text>']
    return Markup("\n".join([*lines, "</svg>"]))


def layer_rows(graph: Graph, counts: Counts) -> list[dict[str, Any]]:
    total = counts.total.macs or 1
    by_stage = {s.name: s for s in counts.stages}
    out: list[dict[str, Any]] = [{"subtotal": False, "name": graph.input.name, "op": "input",
                                  "stage": graph.input.stage, "block": "", "order": 0,
                                  "shape": "x".join(map(str, graph.input.shape)),
                                  "params": 0, "macs": 0, "pct": "0.00"}]
    nodes = list(counts.nodes)
    for k, r in enumerate(nodes, start=1):
        n = graph[r.name]
        out.append({"subtotal": False, "name": r.name, "op": r.op, "stage": n.stage,
                    "block": n.block or "", "order": k, "shape": "x".join(map(str, r.shape)),
                    "params": r.params, "macs": r.macs, "pct": f"{100 * r.macs / total:.2f}"})
        last = k == len(nodes) or graph[nodes[k].name].stage != n.stage
        if last:
            s = by_stage[n.stage]
            out.append({"subtotal": True, "stage": n.stage, "params": s.params,
                        "macs": s.macs, "shape": "x".join(map(str, s.shape)),
                        "pct": f"{100 * s.macs / total:.2f}"})
    return out


# what archdsl quantize's plan.json says a node runs in, as the diagram names precisions
_MEASURED = {"u8": "int8", "i8": "int8", "int8": "int8", "int8 data": "int8 data",
             "f32": "float", "bf16": "float", "f16": "float", "float": "float"}


def precisions(plan: FusionPlan, measured: dict[str, Any] | None = None
               ) -> Precisions | None:
    """Each node's precision: what ``archdsl quantize`` measured (its ``plan.json``, with
    each node's SQNR), else the int8 plan's; None for a float plan."""
    if measured is not None:
        return {r["node"]: (_MEASURED[r["precision"]], r.get("sqnr_db"))
                for r in measured["nodes"] if r["precision"] in _MEASURED}
    if plan.int8 is None:
        return None
    return {n: (prec, None) for n, prec in plan.int8.node_precision().items()}


def level_svg(graph: Graph, level: str, counts: Counts, plan: FusionPlan,
              measured: dict[str, Any] | None = None) -> Markup:
    """One diagram level as an inline SVG; the layer level shades the plan's kernels and,
    for an int8 plan or a measured one, outlines each node by its precision."""
    overlay = plan.overlay() if level == "layer" else ()
    return inline_svg(render(to_dot(graph, level, counts, overlay,
                                    precisions(plan, measured)), "svg"))


def _level_or_why(graph: Graph, level: str, counts: Counts, plan: FusionPlan,
                  measured: dict[str, Any] | None) -> Markup:
    """``level_svg``, or for a level with more nodes than are drawn, a line saying so."""
    try:
        return level_svg(graph, level, counts, plan, measured)
    except TooLarge as exc:
        return Markup('<p class="too-large">{}</p>').format(str(exc))


def int8_lines(plan: FusionPlan, measured: dict[str, Any] | None = None) -> list[str]:
    """The page's int8 lines: the int8 plan's quantizer, precisions and notes, and what
    ``archdsl quantize`` measured (its summary)."""
    from ..fusion.report import precision_lines
    from ..int8.report import summary

    return [*precision_lines(plan), *(summary(measured).splitlines() if measured else [])]


def to_html(graph: Graph, counts: Counts, plan: FusionPlan, spec_yaml: str,
            source: str, measured: dict[str, Any] | None = None) -> str:
    """The report page; every asset is inline, so the file works offline and alone. A
    level too large to draw (``emit.dot.MAX_DRAWN``) says so in its place. ``measured``:
    an ``archdsl quantize`` plan.json, whose precisions and SQNRs the layer view shows."""
    svgs = {level: _level_or_why(graph, level, counts, plan, measured) for level in LEVELS}
    env = environment(html=True)
    c, h, w = graph.input.shape
    return env.get_template("report.html.j2").render(
        name=graph.name, source=source, version=__version__, input=f"{c}x{h}x{w}",
        total=counts.total, convention=counts.convention, plan=plan, svgs=svgs,
        provenance=provenance_line(plan), int8=int8_lines(plan, measured),
        stages=counts.stages, rows=layer_rows(graph, counts), bars=stage_bars(counts),
        spec_yaml=spec_yaml)
