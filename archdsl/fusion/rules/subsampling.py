"""Subsampling moved upstream: a tensor that is only read at every other pixel is computed
only there (kernel = 1 pooling; OpenVINO's StridesOptimization)."""

from __future__ import annotations

from collections.abc import Callable

from ...ir.graph import Node
from ...ir.ops import op
from ..state import Group, RuleUse, State
from .base import conv_desc, pointwise_ops, rule


def _subsampling_reader(c: Node) -> bool:
    a = c.attrs
    return c.op == "conv2d" and a["kernel"] == 1 and a["stride"] == 2 and a["padding"] == 0


def _passes(st: State, c: Node, producer: str, sub: set[str]) -> bool:
    """Does ``c``, computed at every other pixel, need ``producer`` only there too?"""
    if c.name not in sub:
        return False
    if c.op == "conv2d":
        return c.attrs["kernel"] == 1 and c.attrs["padding"] == 0
    if c.op == "mul":
        return st.node(producer).shape == c.shape  # the full map, not SE's 1x1 gate
    return c.op in pointwise_ops(views=True) or c.op == "pad_channels"


def _subsampled(st: State, passes: Callable[[Node, str, set[str]], bool]) -> set[str]:
    """Nodes whose every reader reads every other pixel: a 1x1/2 conv, or a reader that
    ``passes`` (given the reader, the node and the set so far) lets the subsampling through."""
    sub: set[str] = set()
    for n in reversed(st.graph.nodes):
        cons = [st.node(c) for c in st.consumers[n.name]]
        if n.op == "input" or not cons or len(n.shape) != 3 or n.shape[1:] == (1, 1):
            continue
        if all(_subsampling_reader(c) or passes(c, n.name, sub) for c in cons):
            sub.add(n.name)
    return sub


def subsampled_only(st: State) -> set[str]:
    """Nodes whose every pixel-reader reads every other pixel (kernel = 1 pooling)."""
    return _subsampled(st, lambda c, producer, sub: _passes(st, c, producer, sub))


def _half(shape: tuple[int, ...]) -> tuple[int, ...]:
    c, h, w = shape
    return (c, -(-h // 2), -(-w // 2))


def _conv_macs(st: State, c: Node, out: tuple[int, ...]) -> int:
    return op("conv2d").macs(c.attrs, [st.producer(c).shape], out)


def _upstream(st: State, start: str, sub: set[str]) -> list[str]:
    seen, todo = [], [start]
    while todo:
        n = todo.pop()
        if n in sub and n not in seen:
            seen.append(n)
            todo.extend(st.node(n).inputs)
    return sorted(seen, key=st.order.__getitem__)


@rule("kernel1_pool")
def kernel1_pool(st: State, use: RuleUse) -> None:
    """The article's "kernel = 1 pooling": a 1x1/2 conv reads every other pixel, so the
    subsampling moves upstream and the producers compute a quarter of the pixels."""
    sub = subsampled_only(st)
    readers: dict[str, list[str]] = {}
    for c in st.graph:
        if _subsampling_reader(c):
            readers.setdefault(c.inputs[0], []).append(c.name)
    for x, convs in readers.items():
        if x not in sub:
            full = [c for c in st.consumers[x] if c not in convs and not _passes(
                st, st.node(c), x, sub)]
            desc = ", ".join(f"{c} ({conv_desc(st.node(c))})" if st.node(c).op == "conv2d"
                             else c for c in full)
            st.refuse("kernel1_pool", [x, *convs], f"{x} is also read at every pixel by "
                      f"{desc}" + (", where the stride sits on the 3x3" if any(
                          st.node(c).op == "conv2d" and st.node(c).attrs["kernel"] == 1
                          for c in full) else ""))
            continue
        region = _upstream(st, x, sub)
        saved = sum(_conv_macs(st, st.node(n), st.node(n).shape)
                    - _conv_macs(st, st.node(n), _half(st.node(n).shape))
                    for n in region if st.node(n).op == "conv2d")
        if saved == 0:
            st.refuse("kernel1_pool", [x, *convs], f"no conv upstream of {x} can run at fewer "
                      "pixels (a global pool, such as SE's, reads the full map)")
            continue
        st.notes.append(Group("kernel1_pool", (*region, *convs),
                              f"subsample moved upstream of {x}: {len(region)} producers at "
                              "a quarter of the pixels", macs_saved=saved))


def _takes_stride(n: Node) -> bool:
    a = n.attrs
    return n.op == "conv2d" and a["kernel"] == 1 and a["stride"] == 1 and not a["padding"]


@rule("strides_opt")
def strides_opt(st: State, use: RuleUse) -> None:
    """OpenVINO's StridesOptimization, a narrower kernel = 1 pooling: when every reader of a
    tensor is a 1x1/2 conv, the stride moves to its producer, through element-wise ops,
    onto a 1x1/1 conv (which then runs at a quarter of the pixels); an input of the
    element-wise ops that is also read at full size, or that no stride passes (an SE
    scale), gets a 1x1/2 pooling of its own, even where no conv takes the stride (the
    legacy SE-ResNets: two poolings before each stage's add instead of two strided
    convs after it)."""
    # OpenVINO moves a stride through kernel1_pool's element-wise ops, but not a product
    # (SE's scale) or option A's padding (it has a stride of its own)
    passes = pointwise_ops(views=True) - {"mul"}
    sub = _subsampled(st, lambda c, producer, sub: c.name in sub and c.op in passes)
    taken: set[str] = set()  # a node two walks reach takes the stride once
    for x in st.graph:
        if x.name not in sub or any(c in sub for c in st.consumers[x.name]):
            continue
        region: list[str] = []
        absorbed: list[str] = []
        pools = 0
        todo = [x.name]
        while todo:
            n = st.node(todo.pop())
            if n.name in taken:
                continue
            taken.add(n.name)
            region.append(n.name)
            if _takes_stride(n):
                absorbed.append(n.name)
                continue
            for i in n.inputs if n.op in passes else []:
                if i in sub and (st.node(i).op in passes or _takes_stride(st.node(i))):
                    todo.append(i)
                else:
                    pools += 1
        if not absorbed and len(region) == 1:
            continue  # nothing to move through
        if pools:
            st.extra[use.kernel] += pools
        saved = sum(_conv_macs(st, st.node(n), st.node(n).shape)
                    - _conv_macs(st, st.node(n), _half(st.node(n).shape)) for n in absorbed)
        region.sort(key=st.order.__getitem__)
        onto = f"onto {', '.join(absorbed)}" if absorbed else "through element-wise ops only"
        st.notes.append(Group("strides_opt", tuple(region), f"stride moved upstream of "
                              f"{x.name} {onto}; {pools} 1x1/2 pooling(s) inserted",
                              macs_saved=saved))
