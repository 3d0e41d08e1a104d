"""Exact analytic counts from the IR: parameters, MACs, FLOPs and activations
per node, rolled up per block, per stage and in total. No torch, no tracing."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal

from ..ir.graph import Graph, Node
from ..ir.ops import OpDef, op
from . import counters

BUILT_IN: tuple[str, ...] = ("conv+linear", "all")
CONVENTIONS: tuple[str, ...] = (*BUILT_IN, *counters.names())
Level = Literal["node", "block", "stage"]
LEVELS: tuple[str, ...] = ("node", "block", "stage")
BYTES_FP32 = 4
_VIEWS = {"input", "flatten", "dropout"}  # write no new tensor at inference


@dataclass(frozen=True)
class Row:
    """Counts of one node, block, stage, or of the whole model."""

    name: str
    op: str
    shape: tuple[int, ...]
    params: int
    macs: int
    flops: int
    activations: int

    @property
    def param_bytes(self) -> int:
        return self.params * BYTES_FP32

    @property
    def activation_bytes(self) -> int:
        return self.activations * BYTES_FP32


@dataclass(frozen=True)
class Counts:
    """Every node's counts under one convention, with roll-ups."""

    model: str
    convention: str
    input: tuple[int, ...]
    nodes: tuple[Row, ...]
    stages: tuple[Row, ...]
    blocks: tuple[Row, ...]
    total: Row

    def rows(self, level: str) -> tuple[Row, ...]:
        return {"node": self.nodes, "block": self.blocks, "stage": self.stages}[level]


def _node_row(graph: Graph, n: Node, convention: str) -> Row:
    spec = op(n.op)
    ins = [graph[i].shape for i in n.inputs]
    if convention in BUILT_IN:
        macs = spec.macs(n.attrs, ins, n.shape)
        flops = 2 * macs
        if convention == "all":
            extra_macs, extra_flops = spec.elem(n.attrs, ins, n.shape)
            macs += extra_macs
            flops += extra_flops
    else:  # another tool's count: it reports MACs, and FLOPs are twice that
        macs = counters.load(convention).cost(graph, n)
        flops = 2 * macs
    return Row(n.name, n.op, n.shape, spec.params(n.attrs, ins), macs, flops, _activations(n))


def _activations(n: Node) -> int:
    """The elements a node writes (none for a view)."""
    return 0 if n.op in _VIEWS else prod(n.shape)


def _roll_up(name: str, rows: list[Row]) -> Row:
    return Row(name, "", rows[-1].shape, sum(r.params for r in rows),
               sum(r.macs for r in rows), sum(r.flops for r in rows),
               sum(r.activations for r in rows))


def count(graph: Graph, convention: str = "conv+linear") -> Counts:
    """Count ``graph`` under a named convention (see docs/counting.md)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; allowed: "
                         f"{', '.join(CONVENTIONS)}")
    nodes = [_node_row(graph, n, convention) for n in graph if n.op != "input"]
    groups: dict[str, dict[str, list[Row]]] = {"stage": {}, "block": {}}
    for row in nodes:
        n = graph[row.name]
        groups["stage"].setdefault(n.stage, []).append(row)
        groups["block"].setdefault(n.block or n.stage, []).append(row)
    roll = {k: tuple(_roll_up(name, rows) for name, rows in g.items())
            for k, g in groups.items()}
    return Counts(graph.name, convention, graph.input.shape, tuple(nodes), roll["stage"],
                  roll["block"], _roll_up("total", nodes))


def total(graph: Graph) -> Row:
    """The whole network's row of ``count(graph)`` (its built-in convention) alone,
    without a row a node, block or stage: a design-space sampler counts thousands."""
    params = macs = acts = 0
    shapes = {n.name: n.shape for n in graph}
    for n in graph.nodes[1:]:
        spec, ins = op(n.op), [shapes[i] for i in n.inputs]
        params += spec.params(n.attrs, ins)
        macs += spec.macs(n.attrs, ins, n.shape)
        acts += _activations(n)
    return Row("total", "", graph.output.shape, params, macs, 2 * macs, acts)


def pycls_activations(graph: Graph) -> int:
    """The paper's activations (Radosavovic et al., 2020; pycls's complexity): the output
    elements of every conv, pool and linear layer (12.2 M for RegNetX-4.0GF)."""
    return sum(prod(n.shape) for n in graph if op(n.op).family in ("conv", "linear", "pool"))


def formula(graph: Graph, name: str, convention: str) -> str:
    """How ``convention`` prices node ``name``, as text: ``macs + bias``, ``2·out``, ``0``
    (terms: archdsl.analysis.counters)."""
    n = graph[name]
    if convention not in BUILT_IN:
        return counters.load(convention).rule(graph, n).formula_at(graph, n)
    spec = op(n.op)
    parts = ["macs"] if spec.macs is not OpDef.macs else []
    text = spec.elem_text(n.attrs) if callable(spec.elem_text) else spec.elem_text
    if convention == "all" and text != "0":
        parts.append(text)
    return " + ".join(parts) or "0"


@dataclass(frozen=True)
class Item:
    """One line of a comparison: an op kind in one place (``where``), or one node (with
    its ``op``), block or stage, under conventions A and B."""

    name: str
    a: int
    b: int
    op: str = ""
    where: str = ""
    a_formula: str = ""
    b_formula: str = ""

    @property
    def delta(self) -> int:
        return self.b - self.a


@dataclass(frozen=True)
class Versus:
    """Two conventions' MACs of one model, the difference itemised by op kind (and where
    in the network it runs) and by node, block or stage; each list sums to the totals."""

    model: str
    input: tuple[int, ...]
    a: Counts
    b: Counts
    by_op: tuple[Item, ...]
    by_level: tuple[Item, ...]
    level: Level


def versus(graph: Graph, a: str, b: str, level: Level = "stage") -> Versus:
    """MACs under conventions ``a`` and ``b``, with their difference itemised."""
    ca, cb = count(graph, a), count(graph, b)
    groups: dict[tuple[str, str], list[int]] = {}
    formulas: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    nodes = []
    for ra, rb in zip(ca.nodes, cb.nodes, strict=True):
        n = graph[ra.name]
        fa, fb = formula(graph, n.name, a), formula(graph, n.name, b)
        nodes.append(Item(n.name, ra.macs, rb.macs, op=n.op, a_formula=fa, b_formula=fb))
        key = (n.op, n.part if n.role == "attention" and n.part else n.role)
        acc = groups.setdefault(key, [0, 0])
        acc[0] += ra.macs
        acc[1] += rb.macs
        sa, sb = formulas.setdefault(key, (set(), set()))
        sa.add(fa)
        sb.add(fb)
    by_op = tuple(Item(k[0], va, vb, where=k[1], a_formula=" / ".join(sorted(formulas[k][0])),
                       b_formula=" / ".join(sorted(formulas[k][1])))
                  for k, (va, vb) in groups.items() if va or vb)
    by_level = tuple(nodes) if level == "node" else tuple(
        Item(ra.name, ra.macs, rb.macs)
        for ra, rb in zip(ca.rows(level), cb.rows(level), strict=True))
    return Versus(graph.name, graph.input.shape, ca, cb, by_op, by_level, level)
