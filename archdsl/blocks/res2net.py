"""The Res2Net block family (Gao et al., "Res2Net: A New Multi-scale Backbone
Architecture", TPAMI 2019): a bottleneck whose 3x3 is a hierarchy of 3x3s over ``scale``
channel splits, each split added to the previous one's output before its own conv —
schema, lowering, generated-Python class and the state_dict reader."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from pydantic import Field, StrictInt

from ..importer.draft import refuse
from ..importer.keys import CONV, MISSING, Keys, stage_width
from ..ir.graph import GraphBuilder
from ..spec.fields import PosInt, StageBase
from .bottleneck import check_expansion, inner_width
from .common import BlockCtx, ConvSpec, residual_unit
from .registry import PyClass, block, reader
from .shortcut import needs_projection


class Res2NetStage(StageBase):
    """A stage of Res2Net bottlenecks (timm's Bottle2neck): 1x1 to scale × the split
    width, the hierarchical 3x3s, 1x1 to the width; the first block of a stage (a stride
    or a projection) convolves each split alone and average-pools the last."""

    block: Literal["res2net"] = Field(description="block kind")
    scale: StrictInt = Field(4, ge=2, le=64, description="s, the channel splits of the 3x3 "
                                                      "stage; s − 1 of them get a 3x3",
                          examples=[4])
    base_width: PosInt = Field(26, description="the split width is floor(width / 4 × "
                                               "base_width / 64) × cardinality", examples=[26])
    cardinality: PosInt = Field(1, description="the groups of each split's 3x3 (Res2NeXt: 8)",
                                examples=[8])
    placement: Literal["post"] = Field("post", description="where BN and ReLU sit: post "
                                       "only (timm's block has no other)")

    def split(self) -> int:
        """Channels of one split."""
        return inner_width(self.width, 4, self.base_width, self.cardinality)

    def check(self) -> None:
        check_expansion(self.width, self.split(), self.base_width)
        super().check()


def hierarchical(b: GraphBuilder, x: str, c: ConvSpec, ctx: BlockCtx, i: int, *,
                 scale: int, first: bool) -> str:
    """The splits of ``x``; split j > 0 (j < s − 1) convolved after adding split j − 1's
    output (``first``: each alone, with the stride), the last passed through (``first``:
    a 3x3 average pool with the stride), all joined."""
    w = c.out // scale
    splits = [b.add("slice", ctx.name(f"split.{j}"), (x,), start=j * w, stop=(j + 1) * w)
              for j in range(scale)]
    outs: list[str] = []
    for j in range(scale - 1):
        y = splits[j] if j == 0 or first else \
            b.add("add", ctx.name(f"sum.{j}"), (outs[-1], splits[j]))
        y = ctx.layers.conv(b, y, ctx.name(f"convs.{j}"), w, 3, stride=c.stride,
                            groups=c.groups, dilation=c.dilation)
        outs.append(ctx.layers.norm_act(b, y, ctx.name(f"bns.{j}"), ctx.name(f"act.{j}")))
    last = splits[-1]
    if first:
        last = b.add("avg_pool", ctx.name("pool"), (last,), kernel=3, stride=c.stride,
                     padding=1, ceil_mode=False, count_include_pad=True)
    return b.add("concat", ctx.name("cat"), (*outs, last))


def lower_res2net(b: GraphBuilder, x: str, st: Res2NetStage, ctx: BlockCtx) -> str:
    """1x1, the hierarchical 3x3s, 1x1, [SE], add the shortcut, ReLU."""
    inner = st.split() * st.scale
    unit = partial(hierarchical, scale=st.scale,
                   first=ctx.stride > 1 or needs_projection(b, x, st.width, ctx))
    convs = [ConvSpec(inner, 1), ConvSpec(inner, 3, ctx.stride, st.cardinality, unit, "res2net",
                      dilation=ctx.first_dilation, downsamples=True),
             ConvSpec(st.width, 1)]
    return residual_unit(b, x, convs, st.placement, st.attention, ctx)


block(Res2NetStage, PyClass("Bottle2neck", "Res2Net bottleneck: 1x1, hierarchical 3x3s "
                                           "over the splits, 1x1", inner=True))(lower_res2net)


@reader(first="conv1", shows="convs.0")
def read_res2net(k: Keys, blocks: list[str], preact: bool,
                 source: str) -> dict[str, Any] | None:
    """A stage of Res2Net blocks: the split width, the scale and the groups from the
    first hierarchical 3x3."""
    if preact:
        return None
    width = stage_width(k, blocks, "conv3", source)
    conv = k.get(f"{blocks[0]}.convs.0", CONV)
    inner = k.out(f"{blocks[0]}.conv1")
    if conv is None or inner is None:
        raise refuse(source, k.key(f"{blocks[0]}.conv1"), MISSING)
    split, cardinality = conv[0], conv[0] // conv[1]
    scale = inner // split
    if scale * split != inner or k.get(f"{blocks[0]}.convs.{scale - 2}") is None \
            or k.get(f"{blocks[0]}.convs.{scale - 1}") is not None:
        raise refuse(source, k.key(f"{blocks[0]}.convs.0"), f"{inner} channels in splits "
                     f"of {split} that are not scale − 1 hierarchical 3x3s")
    base = -(-split // cardinality * 64 // (width // 4))  # the least that gives the split
    if inner_width(width, 4, base, cardinality) != split:
        raise refuse(source, k.key(f"{blocks[0]}.convs.0"), f"a split width {split} that "
                     f"no base width of the stage width {width} gives")
    out: dict[str, Any] = {"block": "res2net", "depth": len(blocks), "width": width,
                           "scale": scale, "base_width": base}
    if cardinality > 1:
        out["cardinality"] = cardinality
    return out
