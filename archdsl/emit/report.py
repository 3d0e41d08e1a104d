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
from .dot import LEVELS, to_dot
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


def level_svg(graph: Graph, level: str, counts: Counts, plan: FusionPlan) -> Markup:
    """One diagram level as an inline SVG; the layer level shades the plan's kernels."""
    overlay = plan.overlay() if level == "layer" else ()
    return inline_svg(render(to_dot(graph, level, counts, overlay), "svg"))


def _level_or_why(graph: Graph, level: str, counts: Counts, plan: FusionPlan) -> Markup:
    """``level_svg``, or for a level with more nodes than are drawn, a line saying so."""
    try:
        return level_svg(graph, level, counts, plan)
    except TooLarge as exc:
        return Markup('<p class="too-large">{}</p>').format(str(exc))


def to_html(graph: Graph, counts: Counts, plan: FusionPlan, spec_yaml: str,
            source: str) -> str:
    """The report page; every asset is inline, so the file works offline and alone. A
    level too large to draw (``emit.dot.MAX_DRAWN``) says so in its place."""
    svgs = {level: _level_or_why(graph, level, counts, plan) for level in LEVELS}
    env = environment(html=True)
    c, h, w = graph.input.shape
    return env.get_template("report.html.j2").render(
        name=graph.name, source=source, version=__version__, input=f"{c}x{h}x{w}",
        total=counts.total, convention=counts.convention, plan=plan, svgs=svgs,
        provenance=provenance_line(plan),
        stages=counts.stages, rows=layer_rows(graph, counts), bars=stage_bars(counts),
        spec_yaml=spec_yaml)
