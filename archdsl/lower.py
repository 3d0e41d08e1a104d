"""Lowering: the one place that turns a Spec into the IR."""

from __future__ import annotations

import math

from .blocks import BLOCKS, STEMS
from .blocks.common import BlockCtx
from .blocks.layers import Layers
from .ir.features import backbone
from .ir.graph import Graph, GraphBuilder
from .layouts import LAYOUTS, apply_layout
from .spec.schema import Spec


def dilations(spec: Spec, stem_reduction: float) -> list[tuple[int, int, int]]:
    """Each stage's (stride, dilation, first block's first dilation) under the spec's
    ``output_stride`` (timm's rule: a stage that would stride past it runs at stride 1
    and dilates by the stride instead, from its second block on; the first keeps the
    previous stage's dilation at the conv that would have strided)."""
    net = 2 ** round(math.log2(stem_reduction)) if stem_reduction >= 1 else 1
    limit, dilation, out = spec.output_stride or 0, 1, []
    for stage in spec.stages:
        stride, first = stage.stride, dilation
        if limit and net >= limit:
            stride, dilation = 1, dilation * stage.stride
        else:
            net *= stride
        out.append((stride, dilation, first))
    return out


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
    for i, (stage, (stride, dilation, first)) in enumerate(
            zip(spec.stages, dilations(spec, h / b.shape(x)[1]), strict=True), start=1):
        b.stage = f"layer{i}"
        lower_block = BLOCKS[stage.block].lower
        for j in range(stage.depth):
            b.block, b.role = f"layer{i}.{j}", "branch"
            b.kinds[b.block] = stage.block
            ctx = BlockCtx(prefix=b.block, stride=stride if j == 0 else 1,
                           shortcut=spec.shortcut, index=j, layers=layers,
                           in_channels=b.shape(x)[0], dilation=dilation,
                           first_dilation=first if j == 0 else dilation)
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
