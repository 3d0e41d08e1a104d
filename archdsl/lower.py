"""Lowering: the one place that turns a Spec into the IR."""

from __future__ import annotations

from .blocks import BLOCKS, STEMS
from .blocks.common import BlockCtx
from .blocks.layers import Layers
from .ir.features import backbone
from .ir.graph import Graph, GraphBuilder
from .layouts import LAYOUTS, apply_layout
from .spec.schema import Spec


def lower(spec: Spec, *, named: bool = True) -> Graph:
    """Flatten a spec into shaped primitive nodes named as its layout's library names its
    modules; ``named=False`` keeps the IR's canonical (torchvision) names, which no count
    depends on (a design-space sampler lowers thousands)."""
    h, w = spec.input.hw
    b = GraphBuilder(spec.name, (spec.input.channels, h, w))
    layers = Layers.of(spec.norm, spec.conv.eps if spec.conv.kind == "standardized" else None,
                       (spec.antialias.kind, spec.antialias.size) if spec.antialias else None,
                       spec.act.kind)
    x = STEMS[spec.stem.kind].lower(b, "x", spec.stem, layers)
    for i, stage in enumerate(spec.stages, start=1):
        b.stage = f"layer{i}"
        lower_block = BLOCKS[stage.block].lower
        for j in range(stage.depth):
            b.block, b.role = f"layer{i}.{j}", "branch"
            b.kinds[b.block] = stage.block
            ctx = BlockCtx(prefix=b.block, stride=stage.stride if j == 0 else 1,
                           shortcut=spec.shortcut, index=j, layers=layers,
                           in_channels=b.shape(x)[0])
            x = lower_block(b, x, stage, ctx)
    b.stage, b.block, b.role = "head", None, "head"
    head = spec.head
    if head.norm:
        x = layers.norm_act(b, x, "norm", "norm_act")
    elif head.conv:
        x = layers.conv(b, x, "final_conv", head.conv, 1)
        x = layers.norm_act(b, x, "final_bn", "final_conv_act")
    elif head.act:
        x = layers.act(b, x, "final_act")
    x = b.add("global_avg_pool", "avgpool", (x,))
    if head.dropout:
        x = b.add("dropout", "dropout", (x,), p=head.dropout)
    if not head.classes:
        b.add("flatten", "flatten", (x,))
    elif LAYOUTS[spec.layout].classifier == "conv":
        with b.scope("head", "classifier"):
            x = layers.conv(b, x, "fc", head.classes, 1, bias=True)
        b.add("flatten", "flatten", (x,))
    else:
        x = b.add("flatten", "flatten", (x,))
        with b.scope("head", "classifier"):
            b.add("linear", "fc", (x,), in_features=b.shape(x)[0],
                  out_features=head.classes, bias=True)
    graph = apply_layout(b.build(), spec.layout) if named else b.build()
    return graph if spec.features is None else backbone(graph, spec.features)
