"""Other tools' counting conventions as data: which ops fvcore, ptflops, thop and
torchinfo count, at what cost, and what they skip (``counters/*.yaml``).

A rule matches an op or an op family (``activation``: any op of that family that no
earlier rule prices), optionally only in one place (``stage: head``; ``role: attention``
and ``part: se``, the node's Node.role and Node.part) or in one twin layout (``layout:
timm_resnetv2``, where timm's ``BatchNormAct2d`` holds BN and ReLU), or only for a node
with an attribute (``has: standardize``: a weight-
standardised conv); the first rule that fits a node prices it. A cost is a sum of terms
of the node: ``macs`` (the conv/linear multiply-accumulates), ``bias`` (1 per output element
when the op has a bias), ``out`` and ``in`` (output and first-input elements),
``params``, ``channels`` (of the output) and ``groups`` (a grouped norm's, per sample).
``outside_modules`` is the part of a cost that the tool counts in no module's per-layer
figure (ptflops' patched functionals). No torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from math import prod
from typing import Any

import yaml

from ..ir.graph import Graph, Node
from ..ir.ops import FAMILIES, OPS, OPTIONAL_ATTRS, op
from ..layouts import module_of

TERMS = ("macs", "bias", "in", "out", "params", "channels", "groups")
_WHERE = ("stage", "role", "part", "layout", "has")


@dataclass(frozen=True)
class Rule:
    """What one tool counts for one op (in one place)."""

    ops: tuple[str, ...]
    where: tuple[tuple[str, tuple[str, ...]], ...]  # each place: the values it may be
    cost: tuple[tuple[str, int], ...]
    outside_modules: tuple[tuple[str, int], ...]
    why: str

    def covers(self, opname: str) -> bool:
        """Whether the rule is about this op: it names the op, or the op's family."""
        return opname in self.ops or op(opname).family in self.ops

    def fits(self, graph: Graph, node: Node) -> bool:
        """Whether this rule is about ``node``'s op, in ``node``'s place."""
        if not self.covers(node.op):
            return False
        place = {"stage": node.stage, "role": node.role, "part": node.part or "",
                 "layout": graph.layout}
        return all(v[0] in node.attrs if k == "has" else place[k] in v
                   for k, v in self.where)

    @property
    def formula(self) -> str:
        """The cost as text: ``macs + bias``, ``2·out``, ``0``."""
        return _formula(self.cost)

    def formula_at(self, graph: Graph, node: Node) -> str:
        """The cost as text without the terms that are zero at ``node`` (a conv without
        a bias: ``macs``, not ``macs + bias``)."""
        terms = _terms(graph, node)
        return _formula(tuple((t, k) for t, k in self.cost if terms[t]))


@dataclass(frozen=True)
class Tool:
    """One tool's convention: the tool, how it is called, its rules, where users asked."""

    name: str
    column: str
    summary: str
    distribution: str
    version: str
    call: str
    per_module: str
    source: str
    asked: tuple[tuple[str, str], ...]
    rules: tuple[Rule, ...]

    def rule(self, graph: Graph, node: Node) -> Rule:
        """The rule that prices ``node`` (the first that fits)."""
        for r in self.rules:
            if r.fits(graph, node):
                return r
        raise KeyError(f"{self.name}: no rule for {node.name} ({node.op})")

    def cost(self, graph: Graph, node: Node) -> int:
        """What the tool counts for ``node``."""
        return _price(self.rule(graph, node).cost, graph, node)

    def module_cost(self, graph: Graph, node: Node) -> int:
        """The part of ``cost`` the tool puts in a module's per-layer figure."""
        r = self.rule(graph, node)
        return _price(r.cost, graph, node) - _price(r.outside_modules, graph, node)

    @property
    def label(self) -> str:
        """The release the convention reproduces: ``thop 0.1.1.post2209072238``."""
        return f"{self.distribution} {self.version}"

    @property
    def reproduces(self) -> dict[str, str]:
        """The release and the call, as the JSON outputs carry them."""
        return {"distribution": self.distribution, "version": self.version, "call": self.call}


def _formula(cost: tuple[tuple[str, int], ...]) -> str:
    return " + ".join(t if k == 1 else f"{k}·{t}" for t, k in cost) or "0"


def _terms(graph: Graph, node: Node) -> dict[str, int]:
    spec = op(node.op)
    ins = [graph[i].shape for i in node.inputs]
    out = prod(node.shape)
    return {"macs": spec.macs(node.attrs, ins, node.shape),
            "bias": out if node.attrs.get("bias") else 0,
            "out": out, "in": prod(ins[0]) if ins else 0,
            "params": spec.params(node.attrs, ins), "channels": node.shape[0],
            "groups": node.attrs.get("groups", 0) if op(node.op).family == "norm" else 0}


def _price(cost: tuple[tuple[str, int], ...], graph: Graph, node: Node) -> int:
    if not cost:
        return 0
    terms = _terms(graph, node)
    return sum(k * terms[t] for t, k in cost)


def _cost(raw: Any, where: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, dict) or any(t not in TERMS or not isinstance(k, int)
                                        for t, k in raw.items()):
        raise ValueError(f"{where}: a cost maps terms ({', '.join(TERMS)}) to integers, "
                         f"got {raw!r}")
    return tuple((t, raw[t]) for t in TERMS if t in raw)


_RULE_KEYS = {"op", "cost", "outside_modules", "why", *_WHERE}


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict) or not {"op", "cost", "why"} <= raw.keys() or \
            raw.keys() - _RULE_KEYS:
        raise ValueError(f"{where}: a rule has op, cost and why, and may have "
                         f"outside_modules, stage, role, part, layout and has; got {raw!r}")
    ops = (raw["op"],) if isinstance(raw["op"], str) else tuple(raw["op"])
    unknown = [o for o in ops if o not in OPS and o not in FAMILIES]
    if unknown:
        raise ValueError(f"{where}: unknown op or op family {unknown[0]!r}")
    if "has" in raw and raw["has"] not in OPTIONAL_ATTRS:
        raise ValueError(f"{where}: has {raw['has']!r}: no op carries it; allowed: "
                         f"{', '.join(OPTIONAL_ATTRS)}")
    # a place may be one of several (a list)
    where_ = tuple((k, (raw[k],) if isinstance(raw[k], str) else tuple(raw[k]))
                   for k in _WHERE if k in raw)
    return Rule(ops, where_,
                _cost(raw["cost"], where), _cost(raw.get("outside_modules", {}), where),
                raw["why"])


def names() -> tuple[str, ...]:
    """The shipped counters, by name."""
    folder = resources.files("archdsl.analysis") / "counters"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


@cache
def load(name: str) -> Tool:
    """A shipped counter's convention (``fvcore``, ``ptflops``, ``thop``, …). Every op
    of the IR has a rule without conditions, so any node of any spec has a price."""
    where = f"counters/{name}.yaml"
    raw = yaml.safe_load((resources.files("archdsl.analysis") / "counters" /
                          f"{name}.yaml").read_text())
    tool = raw["tool"]
    rules = tuple(_rule(r, f"{where} rule {i + 1}") for i, r in enumerate(raw["rules"]))
    unpriced = [o for o in OPS if o != "input" and not any(
        r.covers(o) for r in rules if not r.where)]
    if unpriced:
        raise ValueError(f"{where}: no rule without conditions for {unpriced} (by op or "
                         "by its family)")
    return Tool(
        raw["name"], raw["column"], raw["summary"], tool["distribution"],
        str(tool["version"]), tool["call"], tool.get("per_module", ""), raw["source"],
        tuple((a["ref"], a["what"]) for a in raw.get("asked", ())), rules)


def per_module(graph: Graph, tool: Tool) -> dict[str, int]:
    """What ``tool`` reports per module of the twin, keyed by module name: each module
    with parameters (with the parameter-free nodes it holds: ``Layout.held``), each
    residual block and stage, and the whole model (``""``). The share a tool counts
    outside any module (``outside_modules``) is in none of them."""
    out: dict[str, int] = {"": 0}
    weighted = {n.name for n in graph
                if op(n.op).params(n.attrs, [graph[i].shape for i in n.inputs])}
    for node in graph:
        if node.op == "input":
            continue
        figure = tool.module_cost(graph, node)
        keys = {"", node.block or "", node.stage if node.block else ""}
        owner = module_of(graph, node)
        if owner in weighted:
            keys.add(owner)
        for key in keys:
            out[key] = out.get(key, 0) + figure
    return out
