"""Diagrams from the IR (no tracing, no torch): layer, block and stage views as DOT.

Each view is read off the graph: the layer view draws every IR node and edge; the block
view draws each residual block as its branch, its shortcut and its addition; the stage
view draws one node per stage, the way the papers' tables read. Colours follow the op
kind and each kind also has its own shape, so a greyscale print stays legible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import graphviz

from ..analysis.counts import Counts, Row
from ..ir.graph import Graph, Node
from ..ir.ops import label, op
from .render import TooLarge

LEVELS = ("stage", "block", "layer")
# Graphviz's layout time grows faster than the graph (a 2,000-node layer view: about a
# second; a 2,400-node block view: four) and the WebAssembly build's stack runs out near
# 4,700 layer nodes: a bigger diagram is refused, decided from the graph before drawing.
MAX_DRAWN = 2000


@dataclass(frozen=True)
class Style:
    fill: str
    shape: str
    label: str
    style: str = "filled"


# op kind → look; light fills of distinct lightness plus distinct shapes (greyscale-safe)
STYLES: dict[str, Style] = {
    "conv": Style("#9ecae1", "box", "conv"),
    "norm": Style("#c7e9c0", "box", "BN"),
    "act": Style("#fff3b0", "ellipse", "act"),
    "pool": Style("#dadaeb", "invtrapezium", "pool"),
    "add": Style("#fdd0a2", "circle", "add"),
    "se": Style("#fbb4c4", "box", "SE", "filled,rounded,bold"),
    "eca": Style("#e5d8bd", "box", "ECA", "filled,rounded,bold"),
    "attention": Style("#fde0ef", "box", "attention", "filled,rounded,bold"),
    "fc": Style("#bcbddc", "box3d", "fc"),
    "other": Style("#f0f0f0", "note", "other"),
}
# the style of each op family (``other`` for the rest); ops the diagram shows unlike
# their family: a pad draws as the pool it precedes, ECA's 1-D conv (outside an
# attention) as other
FAMILY_STYLE = {"conv": "conv", "norm": "norm", "activation": "act", "pool": "pool",
                "reduce": "pool", "elementwise": "add", "linear": "fc"}
OP_STYLE = {"pad": "pool", "channel_conv": "other"}
FUSION_FILL = "#e8e8e8"
# an int8 plan's precisions, as each node's outline (and legend swatch): int8 kernels,
# kernels moving int8 data, float ones
PRECISION_COLOR = {"int8": "#2f855a", "int8 data": "#3182ce", "float": "#c53030"}
# node -> (precision, SQNR in dB or None): what the layer view outlines
Precisions = Mapping[str, tuple[str, float | None]]


def _kind(n: Node) -> str:
    if n.role == "attention":  # in its own kind's style (SE, ECA), else attention's
        return n.part if n.part in STYLES else "attention"
    if n.part == "classifier":
        return "fc"
    return OP_STYLE.get(n.op) or FAMILY_STYLE.get(op(n.op).family, "other")


def _si(x: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.2f} {unit}"
    return str(x)


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def op_label(n: Node) -> str:
    """The op with its key attributes: ``conv 3×3/2 g32 → 128`` (the ops table's label)."""
    return label(n.op, n.attrs)


def _counts_line(row: Row | None) -> str:
    if row is None or (row.params == 0 and row.macs == 0):
        return ""
    return f"\n{_si(row.params)} params · {_si(row.macs)} MACs"


def _node_attrs(kind: str) -> dict[str, str]:
    st = STYLES[kind]
    return {"shape": st.shape, "style": st.style, "fillcolor": st.fill}


def _new_graph(graph: Graph, counts: Counts | None, level: str) -> graphviz.Digraph:
    g = graphviz.Digraph(name=graph.name)
    title = f"{graph.name} — {level} view — input {_shape(graph.input.shape)}"
    if counts is not None:
        t = counts.total
        title += (f"\n{t.params:,} parameters · {t.macs:,} MACs "
                  f"({t.macs / 1e9:.2f} G, {counts.convention})")
    g.attr(label=title, labelloc="t", fontname="Helvetica", fontsize="18", newrank="true",
           nodesep="0.25", ranksep="0.3")
    g.attr("node", fontname="Helvetica", fontsize="11", penwidth="1")
    g.attr("edge", color="#444444", arrowsize="0.6")
    return g


def _legend(g: graphviz.Digraph, kinds: Sequence[str], precisions: Sequence[str] = ()
            ) -> None:
    """One swatch per op kind drawn, and per precision outlined, in a cluster that is not
    part of the network."""
    with g.subgraph(name="cluster_legend") as lg:
        lg.attr(label="legend", fontsize="12", style="rounded", color="#999999")
        lg.attr("node", width="0.5", height="0.3")
        prev = None
        swatches = [(f"legend_{k}", STYLES[k].label, _node_attrs(k)) for k in kinds]
        swatches += [(f"legend_p{i}", p, {"shape": "box", "style": "rounded",
                                          "color": PRECISION_COLOR[p], "penwidth": "3"})
                     for i, p in enumerate(precisions)]
        for name, text, attrs in swatches:
            lg.node(name, text, **attrs, fontsize="10")
            if prev:
                lg.edge(prev, name, style="invis")
            prev = name


def _layer(graph: Graph, counts: Counts | None, groups: Sequence[tuple[str, Sequence[str]]],
           precision: Precisions | None = None) -> graphviz.Digraph:
    g = _new_graph(graph, counts, "layer")
    rows = {r.name: r for r in counts.nodes} if counts else {}
    grouped: dict[str, tuple[int, str]] = {}
    for gi, (rule, members) in enumerate(groups):
        for m in members:
            grouped.setdefault(m, (gi, rule))
    scopes: dict[str | None, dict[str | None, dict[int | None, list[Node]]]] = {}
    for n in graph:
        stage = n.stage if n.op != "input" else None
        group = grouped.get(n.name, (None, ""))[0]
        scopes.setdefault(stage, {}).setdefault(n.block, {}).setdefault(group, []).append(n)

    def emit(sub: graphviz.Digraph, n: Node) -> None:
        label = f"{n.name}\n{op_label(n)}\n{_shape(n.shape)}{_counts_line(rows.get(n.name))}"
        attrs = _node_attrs(_kind(n))
        if precision and n.name in precision:
            prec, db = precision[n.name]
            label += f"\n{prec}" + (f" · SQNR {db:.1f} dB" if db is not None else "")
            attrs |= {"color": PRECISION_COLOR[prec], "penwidth": "3"}
        sub.node(n.name, label, **attrs)

    for stage, blocks in scopes.items():
        for block, fused in blocks.items():
            def fill(sub: graphviz.Digraph, fused: dict = fused) -> None:
                for gi, nodes in fused.items():
                    if gi is None:
                        for n in nodes:
                            emit(sub, n)
                        continue
                    with sub.subgraph(name=f"cluster_fusion_{gi}") as fz:
                        fz.attr(label=groups[gi][0], style="filled,rounded",
                                fillcolor=FUSION_FILL, color="#777777", fontsize="10")
                        for n in nodes:
                            emit(fz, n)

            if stage is None:
                fill(g)
                continue
            with g.subgraph(name=f"cluster_{stage}") as sg:
                sg.attr(label=stage, style="rounded", color="#555555", fontsize="14")
                if block is None:
                    fill(sg)
                    continue
                with sg.subgraph(name=f"cluster_{block}") as bg:
                    bg.attr(label=f"{block} ({graph.kinds.get(block, 'block')})",
                            style="dashed,rounded", color="#888888", fontsize="11")
                    fill(bg)
    for n in graph:
        for i in n.inputs:
            g.edge(i, n.name)
    shown = {p for p, _ in (precision or {}).values()}
    _legend(g, [k for k in STYLES if any(_kind(n) == k for n in graph)],
            [p for p in PRECISION_COLOR if p in shown])
    return g


def _attention_style(nodes: list[Node]) -> str | None:
    """The style of a block's attention (its kind's), or None for a block without one."""
    return next((_kind(n) for n in nodes if n.role == "attention"), None)


# the constructs a block family puts in a conv's place (Node.part on the branch): their
# names and what their channel splits are
UNITS = {"split_attn": ("split attention", "radix"), "sk": ("selective kernel", "paths"),
         "res2net": ("hierarchical 3×3s", "splits")}


def _unit_text(part: str, nodes: list[Node]) -> str:
    """A construct in a conv's place: its branch convs (equal ones counted), its splits
    (the radix, paths or scale) and its attention's width."""
    convs = Counter(op_label(n).removeprefix("conv ") for n in nodes
                    if n.op == "conv2d" and n.role == "branch")
    items = [f"{c} ×{k}" if k > 1 else c for c, k in convs.items()]
    splits = max((n.attrs.get("parts", 0) for n in nodes), default=0) or \
        sum(n.op == "slice" for n in nodes)
    attention = [n for n in nodes if n.role == "attention" and n.op == "conv2d"]
    name, what = UNITS[part]
    extra = ([f"radix {splits}"] if what == "radix" else [f"{splits} {what}"]) if splits else []
    extra += [f"attention {attention[0].attrs['out_channels']}"] if attention else []
    return f"{name} ({'; '.join([', '.join(items), *extra])})"


def _block_summary(nodes: list[Node]) -> tuple[str, str | None]:
    """Branch text (convs in order, a construct in a conv's place as one item, +SE) and
    the projection's text (None: identity)."""
    convs: list[str] = []
    for n in nodes:
        if n.part in UNITS:
            text = _unit_text(n.part, [m for m in nodes if m.part == n.part])
            if text not in convs:
                convs.append(text)
        elif n.op == "conv2d" and n.role == "branch":
            convs.append(op_label(n).removeprefix("conv "))
    text = " → ".join(convs)
    se = [n for n in nodes if n.part == "se" and n.op == "conv2d"]
    if se:
        text += f"\n+ SE (squeeze {se[0].attrs['out_channels']})"
    eca = [n for n in nodes if n.part == "eca" and n.op == "channel_conv"]
    if eca:
        text += f"\n+ ECA (k={eca[0].attrs['kernel']})"
    if any(n.role == "gate" for n in nodes):
        text += "\n+ gate"
    shortcut = [n for n in nodes if n.role == "shortcut"]
    if not shortcut:
        return text, None
    return text, " + ".join(op_label(n) for n in shortcut if n.op != "relu")


def _block(graph: Graph, counts: Counts | None) -> graphviz.Digraph:
    g = _new_graph(graph, counts, "block")
    brows = {r.name: r for r in counts.blocks} if counts else {}
    srows = {r.name: r for r in counts.stages} if counts else {}
    stem = [n for n in graph if n.role == "stem" and n.op != "input"]
    head = [n for n in graph if n.role == "head"]
    g.node("x", f"input\n{_shape(graph.input.shape)}", **_node_attrs("other"))
    g.node("stem", "stem\n" + " → ".join(op_label(n) for n in stem
                                         if op(n.op).family not in ("norm", "activation"))
           + f"\n{_shape(stem[-1].shape)}{_counts_line(srows.get('stem'))}",
           **_node_attrs("conv"))
    g.edge("x", "stem")
    prev, prev_stage = "stem", "stem"
    blocks = graph.blocks()
    stages: dict[str, list[str]] = {}
    for name, nodes in blocks.items():
        stages.setdefault(nodes[0].stage, []).append(name)
    for stage, names in stages.items():
        with g.subgraph(name=f"cluster_{stage}") as sg:
            sg.attr(label=f"{stage}{_counts_line(srows.get(stage))}", style="rounded",
                    color="#555555", fontsize="13")
            for name in names:
                nodes = blocks[name]
                branch, proj = _block_summary(nodes)
                out = nodes[-1]
                bid, aid = f"{name}/branch", f"{name}/add"
                sg.node(bid, f"{name}  {graph.kinds.get(name, '')}\n{branch}\n"
                             f"{_shape(out.shape)}{_counts_line(brows.get(name))}",
                        **_node_attrs(_attention_style(nodes) or "conv"))
                sg.node(aid, "+", **_node_attrs("add"), width="0.35", fixedsize="true")
                # a new stage starts a new column: the edge into it does not rank
                constraint = "false" if prev_stage not in ("stem", stage) else "true"
                g.edge(prev, bid, constraint=constraint)
                sg.edge(bid, aid)
                if proj is None:
                    g.edge(prev, aid, style="dashed", color="#777777", constraint=constraint)
                else:
                    pid = f"{name}/shortcut"
                    sg.node(pid, f"projection\n{proj}", **_node_attrs("other"))
                    g.edge(prev, pid, constraint=constraint)
                    sg.edge(pid, aid)
                prev, prev_stage = aid, stage
    if head:
        g.node("head", "head\n" + " → ".join(op_label(n) for n in head if n.op != "flatten")
               + f"\n{_shape(head[-1].shape)}{_counts_line(srows.get('head'))}",
               **_node_attrs("fc"))
    else:  # a backbone ends at its feature maps
        g.node("head", "feature maps\n" + "\n".join(
            f"{f}: {_shape(graph[f].shape)}" for f in graph.features), **_node_attrs("fc"))
    g.edge(prev, "head")
    attention = dict.fromkeys(_kind(n) for n in graph if n.role == "attention")
    _legend(g, ["conv", *attention, "add", "other", "fc"])
    return g


def _stage(graph: Graph, counts: Counts | None) -> graphviz.Digraph:
    g = _new_graph(graph, counts, "stage")
    srows = {r.name: r for r in counts.stages} if counts else {}
    blocks = graph.blocks()
    g.node("x", f"input\n{_shape(graph.input.shape)}", **_node_attrs("other"))
    prev = "x"
    order: list[str] = []
    for n in graph:
        if n.op != "input" and n.stage not in order:
            order.append(n.stage)
    for stage in order:
        nodes = [n for n in graph if n.stage == stage and n.op != "input"]
        in_stage = [b for b in blocks if blocks[b][0].stage == stage]
        if in_stage:
            first = blocks[in_stage[0]]
            kind = graph.kinds.get(in_stage[0], "block")
            branch, proj = _block_summary(first)
            strides = [n.attrs["stride"] for n in first if n.op == "conv2d"]
            note = (f"first block: stride {max(strides)}, "
                    + (f"projection ({proj})" if proj else "identity shortcut"))
            label = f"{stage}: {kind} ×{len(in_stage)}\n{branch}\n{note}"
            style = _attention_style(first) or "conv"
        else:
            label = f"{stage}\n" + " → ".join(op_label(n) for n in nodes
                                               if op(n.op).family not in ("norm", "activation")
                                               and n.op != "flatten")
            style = "fc" if nodes[-1].role == "head" else "conv"
        label += f"\n{_shape(nodes[-1].shape)}{_counts_line(srows.get(stage))}"
        g.node(stage, label, **_node_attrs(style))
        g.edge(prev, stage)
        prev = stage
    return g


def drawn_nodes(graph: Graph, level: str) -> int:
    """How many nodes ``level``'s view of ``graph`` draws, its legend aside: each IR node
    (layer); each block's branch, addition and projection, with input, stem and head
    (block); each stage with the input (stage)."""
    if level == "layer":
        return len(graph)
    if level == "block":
        return 3 + sum(2 + any(n.role == "shortcut" for n in nodes)
                       for nodes in graph.blocks().values())
    return 1 + len({n.stage for n in graph if n.op != "input"})


def drawable_level(graph: Graph, level: str) -> str:
    """``level``, or the finest coarser level whose view of ``graph`` is drawn (at most
    MAX_DRAWN nodes; the stage level always is)."""
    finer_first = LEVELS[:LEVELS.index(level) + 1][::-1]
    return next((v for v in finer_first if drawn_nodes(graph, v) <= MAX_DRAWN), LEVELS[0])


def check_drawable(graph: Graph, level: str) -> None:
    """Raise TooLarge when ``level``'s view of ``graph`` has more than MAX_DRAWN nodes."""
    drawn = drawn_nodes(graph, level)
    if drawn > MAX_DRAWN:
        coarser = " or ".join(v for v in LEVELS[:LEVELS.index(level)]
                              if drawn_nodes(graph, v) <= MAX_DRAWN)
        raise TooLarge(f"the {level} level of {graph.name} draws {drawn:,} nodes; at most "
                       f"{MAX_DRAWN:,} are drawn (Graphviz's layout slows and then fails "
                       f"beyond); draw the {coarser} level")


def to_dot(graph: Graph, level: str = "block", counts: Counts | None = None,
           groups: Sequence[tuple[str, Sequence[str]]] = (),
           precision: Precisions | None = None) -> str:
    """DOT source of one view; ``groups`` (rule, member nodes) are drawn as shaded
    clusters at the layer level (a fusion plan's overlay), each node outlined by its
    ``precision`` (an int8 plan's, or what ``archdsl quantize`` measured, with its SQNR).
    A view of more than MAX_DRAWN nodes is refused (TooLarge)."""
    check_drawable(graph, level)
    if level == "layer":
        g = _layer(graph, counts, groups, precision)
    elif level == "block":
        g = _block(graph, counts)
    elif level == "stage":
        g = _stage(graph, counts)
    else:
        raise ValueError(f"unknown level {level!r}; allowed: {', '.join(LEVELS)}")
    return g.source
