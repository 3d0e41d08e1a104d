"""Lowering: the one place that turns a Spec into the IR."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .blocks import BLOCKS, STEMS
from .blocks.common import BlockCtx
from .ir.graph import Graph, GraphBuilder
from .layouts import LAYOUTS, apply_layout
from .spec.fields import Norm
from .spec.schema import Spec

# the norm kinds: the op each lowers to, with its attributes
NORMS: dict[str, Callable[[Norm], tuple[str, dict[str, Any]]]] = {
    "batch": lambda n: ("batch_norm", {"eps": n.eps}),
    "group": lambda n: ("group_norm", {"groups": n.groups, "eps": n.eps}),
    # norms with their activation built in: the ReLU after one is absorbed (act: true)
    "evonorm_s0": lambda n: ("evonorm_s0", {"groups": n.groups, "eps": n.eps, "act": False}),
    "frn": lambda n: ("frn", {"eps": n.eps, "act": False}),
}


def lower(spec: Spec) -> Graph:
    """Flatten a spec into shaped primitive nodes named like torchvision's modules."""
    h, w = spec.input.hw
    b = GraphBuilder(spec.name, (spec.input.channels, h, w))
    b.norm = NORMS[spec.norm.kind](spec.norm)
    if spec.conv.kind == "standardized":
        b.standardize = spec.conv.eps
    if spec.antialias is not None:
        b.antialias = (spec.antialias.kind, spec.antialias.size)
    x = STEMS[spec.stem.kind].lower(b, "x", spec.stem)
    for i, stage in enumerate(spec.stages, start=1):
        b.stage = f"layer{i}"
        lower_block = BLOCKS[stage.block].lower
        for j in range(stage.depth):
            b.block = f"layer{i}.{j}"
            b.kinds[b.block] = stage.block
            ctx = BlockCtx(prefix=b.block, stride=stage.stride if j == 0 else 1,
                           shortcut=spec.shortcut, index=j)
            x = lower_block(b, x, stage, ctx)
    b.stage, b.block = "head", None
    head = spec.head
    if head.norm:
        x = b.act(b.bn(x, "norm"), "norm_act")
    x = b.add("global_avg_pool", "avgpool", (x,))
    if head.dropout:
        x = b.add("dropout", "dropout", (x,), p=head.dropout)
    if LAYOUTS[spec.layout].classifier == "conv":
        x = b.conv(x, "fc", head.classes, 1, bias=True)
        b.add("flatten", "flatten", (x,))
    else:
        x = b.add("flatten", "flatten", (x,))
        b.add("linear", "fc", (x,), in_features=b.shape(x)[0], out_features=head.classes,
              bias=True)
    return apply_layout(b.build(), spec.layout)
