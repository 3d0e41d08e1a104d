"""A network as a backbone: its feature maps numbered as timm numbers them (0 the stem's
last map at reduction 2, then each stage's output), and the graph cut after the last
one asked for, or without its classifier (pooled features)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .graph import Graph, Node

_POOLS = ("max_pool", "avg_pool", "blur_pool", "pad")


@dataclass(frozen=True)
class Feature:
    """One feature map: its index, the node computing it, its channels, its reduction
    (the input's height over the map's) and the module whose output it is (a stage's,
    or in the stem the outermost whose last node computes it: ``relu``, ``stem``)."""

    index: int  # the reduction is nominal: a power of 2 (176 pixels over 6 is 32)
    node: str
    channels: int
    reduction: int
    module: str


def _module(graph: Graph, node: str) -> str:
    """The shortest name prefix of ``node`` whose last node (in run order) is ``node``."""
    last: dict[str, str] = {}
    for n in graph:
        parts = n.name.split(".")
        for k in range(1, len(parts) + 1):
            last[".".join(parts[:k])] = n.name
    parts = node.split(".")
    return next(p for k in range(1, len(parts) + 1)
                if last.get(p := ".".join(parts[:k])) == node)


def features(graph: Graph) -> list[Feature]:
    """Every feature map the network has: the stem's last one at reduction 2 before its
    pool, then the output of each stage."""
    h = graph.input.shape[1]
    ends: dict[str, Node] = {}
    stem: Node | None = None
    pooled = False  # the stem's map is the one its pool (or the pool's padding) reads
    for n in graph.nodes[1:]:
        pooled = pooled or n.op in _POOLS
        if n.role == "stem" and not pooled and n.shape[1] * 2 in (h, h + 1):
            stem = n
        if n.block is not None:
            ends[n.stage] = n
    nodes = ([stem] if stem is not None else []) + list(ends.values())
    return [Feature(i, n.name, n.shape[0], 2 ** round(math.log2(h / n.shape[1])),
                    n.stage if n.block is not None else _module(graph, n.name))
            for i, n in enumerate(nodes, start=0 if stem is not None else 1)]


def check_indices(graph: Graph, indices: tuple[int, ...]) -> list[Feature]:
    """The features at ``indices`` (as given, in increasing order); a ValueError names
    what is allowed."""
    have = {f.index: f for f in features(graph)}
    bad = [i for i in indices if i not in have]
    if bad or not indices or list(indices) != sorted(set(indices)):
        raise ValueError(f"feature indices {list(indices)}: allowed: distinct increasing "
                         f"indices among {sorted(have)} (0 the stem, then each stage)")
    return [have[i] for i in indices]


def backbone(graph: Graph, indices: tuple[int, ...]) -> Graph:
    """The graph up to its last feature map at ``indices``, those maps its outputs."""
    chosen = check_indices(graph, indices)
    last = next(k for k, n in enumerate(graph.nodes) if n.name == chosen[-1].node)
    nodes = graph.nodes[:last + 1]
    blocks = {n.block for n in nodes}
    return replace(graph, nodes=nodes, kinds={k: v for k, v in graph.kinds.items()
                                              if k in blocks},
                   features=tuple(f.node for f in chosen))


def outputs(graph: Graph) -> tuple[str, ...]:
    """The nodes whose values a built module returns (its feature maps, else its output)."""
    return graph.features or (graph.output.name,)


def head_split(graph: Graph) -> tuple[Node, Node | None]:
    """The head's global pool (forward_features ends at its input, forward_head starts
    there) and its classifier, if it has one."""
    pool = next((n for n in graph if n.role == "head" and n.op == "global_avg_pool"), None)
    if pool is None:
        raise ValueError(f"{graph.name} is a backbone: it has no head to split at")
    return pool, next((n for n in graph if n.part == "classifier"), None)


def with_classes(graph: Graph, classes: int, classifier: Node | None = None) -> Graph:
    """The graph with a classifier of ``classes`` outputs, or none for 0 (its readers
    read its input: the pooled features). A graph without one takes ``classifier`` (the
    one it had) back, after the node it read."""
    if classes < 0:
        raise ValueError(f"{classes} classes: allowed: 0 (no classifier) or more")
    _, fc = head_split(graph)
    present, fc = fc is not None, fc or classifier
    if fc is None:
        if not classes:
            return graph
        raise ValueError(f"{graph.name} was built without a classifier (classes 0); build "
                         "it with one to give it one")
    src = fc.inputs[0]
    key = "out_features" if fc.op == "linear" else "out_channels"
    new = replace(fc, attrs={**fc.attrs, key: classes}, shape=(classes, *fc.shape[1:]))
    out = fc.name if classes else src
    nodes: list[Node] = []
    for n in graph:
        if n.name == fc.name:
            nodes += [new] if classes else []
            continue
        if n.role == "head" and n.name != src and (fc.name in n.inputs or not present
                                                  and src in n.inputs):
            n = replace(n, inputs=tuple(out if i in (fc.name, src) else i for i in n.inputs),
                        shape=((classes or graph[src].shape[0]),) if n.op == "flatten"
                        else n.shape)
        nodes.append(n)
        if n.name == src and not present and classes:
            nodes.append(new)
    return replace(graph, nodes=tuple(nodes))


class FeatureInfo(list[Feature]):
    """A built module's feature maps, read as timm's ``feature_info`` is."""

    def channels(self) -> list[int]:
        return [f.channels for f in self]

    def reduction(self) -> list[int]:
        return [f.reduction for f in self]

    def module_name(self) -> list[str]:
        return [f.module for f in self]

    def get_dicts(self) -> list[dict[str, object]]:
        return [{"num_chs": f.channels, "reduction": f.reduction, "module": f.module,
                 "index": f.index} for f in self]


def feature_info(graph: Graph) -> FeatureInfo:
    """A backbone's maps, or every map the network has."""
    return FeatureInfo(f for f in features(graph)
                       if not graph.features or f.node in graph.features)
