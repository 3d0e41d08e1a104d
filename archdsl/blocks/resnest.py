"""The ResNeSt block family (Zhang et al., "ResNeSt: Split-Attention Networks", 2020, as
timm builds it): the bottleneck's 3x3 becomes split attention, a conv giving radix ×
the channels in cardinality × radix groups whose splits are summed, pooled and turned into
a softmax across the radix that weighs them; the stride moves to a 3x3 average pool
(``avd``) — schema, lowering, generated-Python class and the state_dict reader."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from pydantic import Field

from ..importer.draft import refuse
from ..importer.keys import CONV, MISSING, Keys, stage_width
from ..ir.graph import GraphBuilder
from ..spec.fields import FieldError, PosInt, StageBase
from .bottleneck import check_expansion, inner_width
from .common import BlockCtx, ConvSpec, make_divisible, residual_unit
from .registry import PyClass, block, reader


class ResNeStStage(StageBase):
    """A stage of ResNeSt bottlenecks (timm's ResNestBottleneck): 1x1, [avd pool], split
    attention, [avd pool], 1x1."""

    block: Literal["resnest"] = Field(description="block kind")
    radix: PosInt = Field(2, le=64, description="r, the splits each cardinal group's conv "
                                                "gives (1: a sigmoid gate, no softmax)",
                          examples=[4])
    cardinality: PosInt = Field(1, description="C, the cardinal groups", examples=[2])
    base_width: PosInt = Field(64, description="inner width = floor(width / 4 × base_width "
                                               "/ 64) × cardinality", examples=[40])
    avd: bool = Field(True, description="a strided block's stride on a 3x3 average pool "
                                        "(padding 1, padding counted) instead of the conv")
    avd_first: bool = Field(False, description="the avd pool before the split-attention "
                                               "conv, else after it")
    attn_ratio: float = Field(0.25, gt=0.0, le=4.0, description="the attention's width is "
                              "make_divisible(inner · radix · attn_ratio, attn_divisor, at "
                              "least attn_min)", examples=[0.25])
    attn_divisor: PosInt = Field(8, le=1024, description="see attn_ratio", examples=[8])
    attn_min: PosInt = Field(32, le=65536, description="see attn_ratio", examples=[32])
    placement: Literal["post"] = Field("post", description="where BN and ReLU sit: post "
                                       "only (timm's block has no other)")

    def inner(self) -> int:
        return inner_width(self.width, 4, self.base_width, self.cardinality)

    def attn_width(self) -> int:
        return make_divisible(self.inner() * self.radix * self.attn_ratio, self.attn_divisor,
                              self.attn_min)

    def check(self) -> None:
        check_expansion(self.width, self.inner(), self.base_width)
        if self.attn_width() % self.cardinality:
            raise FieldError("attn_divisor", f"the attention's width {self.attn_width()} is "
                             f"not a multiple of the cardinality {self.cardinality}; allowed: "
                             "a divisor that makes one")
        if self.attention is not None:
            raise FieldError("se" if self.se else "eca", "ResNeSt's block has no channel "
                             "attention but its own (timm refuses one); allowed: none")
        super().check()


def split_attention(b: GraphBuilder, x: str, c: ConvSpec, ctx: BlockCtx, i: int, *,
                    st: ResNeStStage) -> str:
    """[avd pool], the conv to radix × the channels, norm, act; the radix splits summed,
    pooled, fc1, norm, act, fc2 (grouped by the cardinality), the softmax across the radix
    (a sigmoid at radix 1); the splits weighed and summed; [avd pool]."""
    def name(local: str) -> str:
        return ctx.name(f"conv{i}.{local}")

    def avd(y: str, where: str) -> str:
        return b.add("avg_pool", ctx.name(f"avd_{where}"), (y,), kernel=3, stride=c.stride,
                     padding=1, ceil_mode=False, count_include_pad=True)

    pooled = st.avd and c.stride > 1
    if pooled and st.avd_first:
        x = avd(x, "first")
    r, card = st.radix, st.cardinality
    y = ctx.layers.conv(b, x, name("conv"), c.out * r, 3, stride=1 if pooled else c.stride,
                        groups=card * r, dilation=c.dilation)
    y = ctx.layers.norm_act(b, y, name("bn0"), name("act0"))
    with b.scope("attention", "split_attn"):
        s = b.add("split_sum", name("sum"), (y,), parts=r) if r > 1 else y
        s = b.add("global_avg_pool", name("pool"), (s,))
        s = ctx.layers.conv(b, s, name("fc1"), st.attn_width(), 1, groups=card, bias=True)
        s = ctx.layers.norm_act(b, s, name("bn1"), name("act1"))
        s = ctx.layers.conv(b, s, name("fc2"), c.out * r, 1, groups=card, bias=True)
        if r == 1:
            s = b.act(s, name("rsoftmax"), "sigmoid")
        elif card == 1:
            s = b.add("split_softmax", name("rsoftmax"), (s,), parts=r)
        else:
            s = b.add("radix_softmax", name("rsoftmax"), (s,), radix=r, cardinality=card)
        y = b.add("mul", name("scale"), (y, s))
        if r > 1:
            y = b.add("split_sum", name("out"), (y,), parts=r)
    return avd(y, "last") if pooled and not st.avd_first else y


def lower_resnest(b: GraphBuilder, x: str, st: ResNeStStage, ctx: BlockCtx) -> str:
    """1x1, split attention (with the stride, or the avd pool's), 1x1, add the shortcut,
    ReLU."""
    v = st.inner()
    convs = [ConvSpec(v, 1), ConvSpec(v, 3, ctx.stride, unit=partial(split_attention, st=st),
                      part="split_attn", dilation=ctx.first_dilation, downsamples=True),
             ConvSpec(st.width, 1)]
    return residual_unit(b, x, convs, st.placement, None, ctx)


block(ResNeStStage, PyClass("ResNestBottleneck", "ResNeSt bottleneck: 1x1, split attention, "
                                                 "1x1", inner=True))(lower_resnest)


@reader(first="conv1", shows="conv2.fc1")
def read_resnest(k: Keys, blocks: list[str], preact: bool,
                 source: str) -> dict[str, Any] | None:
    """A stage of ResNeSt blocks: radix and cardinality from the split-attention conv, the
    base width from the inner width, the attention's width as timm's formula gives it or
    as its own ratio."""
    b0 = blocks[0]
    if preact:
        return None
    width = stage_width(k, blocks, "conv3", source)
    conv, fc1 = k.get(f"{b0}.conv2.conv", CONV), k.get(f"{b0}.conv2.fc1", CONV)
    inner = k.out(f"{b0}.conv1")
    if conv is None or fc1 is None or inner is None:
        raise refuse(source, k.key(f"{b0}.conv2.conv"), MISSING)
    radix = conv[0] // inner
    card = inner // fc1[1]
    base = -(-inner // card * 64 // (width // 4))  # the least that gives the inner width
    if radix * inner != conv[0] or inner_width(width, 4, base, card) != inner:
        raise refuse(source, k.key(f"{b0}.conv2.conv"), f"a split-attention conv of "
                     f"{conv[0]} channels over an inner width {inner} that no radix, "
                     "cardinality and base width give")
    out: dict[str, Any] = {"block": "resnest", "depth": len(blocks), "width": width,
                           "radix": radix}
    if card > 1:
        out["cardinality"] = card
    if base != 64:
        out["base_width"] = base
    if ResNeStStage(**out).attn_width() != fc1[0]:
        out |= {"attn_ratio": fc1[0] / (inner * radix), "attn_divisor": 1, "attn_min": 1}
    return out
