"""The planner's working state: which IR nodes run as one kernel (a union-find over
node names), what each rule refused and why, and the non-merging notes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..ir.graph import Graph, Node


@dataclass(frozen=True)
class RuleUse:
    """One rule as a profile enables it: the kernel it yields and its options."""

    id: str
    kernel: str = ""
    source: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """IR nodes that one rule made into (or annotated as) one kernel."""

    rule: str
    nodes: tuple[str, ...]
    kernel: str
    rules: tuple[str, ...] = ()
    macs_saved: int = 0


@dataclass(frozen=True)
class Refusal:
    rule: str
    nodes: tuple[str, ...]
    reason: str


@dataclass
class State:
    graph: Graph
    consumers: dict[str, list[str]] = field(init=False)
    parent: dict[str, str] = field(init=False)
    label: dict[str, str] = field(default_factory=dict)
    applied: dict[str, list[str]] = field(default_factory=dict)
    elided: set[str] = field(default_factory=set)
    notes: list[Group] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    extra: Counter[str] = field(default_factory=Counter)  # kernels a rule inserts

    def __post_init__(self) -> None:
        self.consumers = {n.name: [] for n in self.graph}
        for n in self.graph:
            for i in n.inputs:
                self.consumers[i].append(n.name)
        self.parent = {n.name: n.name for n in self.graph}
        self.order = {n.name: k for k, n in enumerate(self.graph)}

    def node(self, name: str) -> Node:
        return self.graph[name]

    def find(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def members(self, name: str) -> list[str]:
        root = self.find(name)
        return [n.name for n in self.graph if self.find(n.name) == root]

    def merge(self, names: list[str], rule: str, kernel: str) -> None:
        """Run ``names`` (and whatever kernels they already belong to) as one kernel."""
        roots = sorted({self.find(n) for n in names}, key=self.order.__getitem__)
        first = roots[0]
        rules = [r for root in roots for r in self.applied.pop(root, [])]
        for other in roots[1:]:
            self.parent[other] = first
            self.label.pop(other, None)
        self.applied[first] = [*dict.fromkeys([*rules, rule])]
        self.label[first] = kernel

    def fuse_if_only_reader(self, rule: str, producer: str, consumer: str, kernel: str,
                            why: str = "") -> None:
        """Merge ``producer`` and ``consumer`` if nothing else reads ``producer``; else
        record the refusal, naming the other readers."""
        if self.consumers[producer] != [consumer]:
            self.refuse(rule, [producer, consumer], f"{producer}'s output is also read by "
                        f"{self.others(producer, consumer)}{why}")
        else:
            self.merge([producer, consumer], rule, kernel)

    def refuse(self, rule: str, names: list[str], reason: str) -> None:
        self.refused.append(Refusal(rule, tuple(names), reason))

    def producer(self, n: Node, index: int = 0) -> Node:
        return self.graph[n.inputs[index]]

    def only_consumer(self, name: str) -> str | None:
        cons = self.consumers[name]
        return cons[0] if len(cons) == 1 else None

    def read_only_by(self, name: str, ops: set[str]) -> bool:
        """``name``'s output has one reader, and it is one of ``ops``."""
        only = self.only_consumer(name)
        return only is not None and self.node(only).op in ops

    def only_of(self, name: str, ops: set[str]) -> bool:
        """Every node of ``name``'s kernel is one of ``ops``."""
        return all(self.node(m).op in ops for m in self.members(name))

    def conv_tail(self, name: str) -> bool:
        """``name`` is the last node of a kernel that holds a conv: its output is the
        conv's result (possibly with a folded BN or scale, or the sum a sum merge's conv
        computes)."""
        members = self.members(name)
        if members[-1] == name and "sum_merge" in self.applied.get(self.find(name), []):
            return True  # the sum merge's conv: the add is its result
        return (members[-1] == name and self.node(name).op in ("conv2d", "batch_norm", "scale")
                and any(self.node(m).op == "conv2d" for m in members))

    def others(self, name: str, but: str) -> str:
        return ", ".join(c for c in self.consumers[name] if c != but)
