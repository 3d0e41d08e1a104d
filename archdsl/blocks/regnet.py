"""The RegNet block family (Radosavovic et al., "Designing Network Design Spaces", 2020):
the ResNeXt bottleneck given by a group width and a bottleneck ratio, SE after the 3x3
(RegNetY), its pre-activation form (timm's RegNetV), and the quantized-linear rule that
gives a whole network's stages from (w0, wa, wm, depth) — schemas, lowering, the rule,
generated-Python classes and the state_dict reader."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ..importer.draft import refuse
from ..importer.keys import CONV, MISSING, Keys, stage_width
from ..ir.graph import GraphBuilder
from ..spec.fields import FieldError, Model, PosInt, StageBase
from .common import PLACEMENT_DOC, BlockCtx, ConvSpec, Placement, make_divisible, residual_unit
from .registry import PyClass, block, reader, stage_rule

BottleneckRatio = Annotated[float, Field(gt=0.0, le=64.0, allow_inf_nan=False)]


def bottleneck_width(width: int, ratio: float) -> int:
    """The 3x3's width: int(round(width · ratio)), as timm's and torchvision's blocks."""
    return int(round(width * ratio))


class RegNetStage(StageBase):
    """A stage of RegNet bottlenecks: 1x1, 3x3 grouped by group width, [SE], 1x1, the
    three at width · bottleneck_ratio but the last (pycls's ResBottleneckBlock)."""

    block: Literal["regnet"] = Field(description="block kind")
    group_width: PosInt = Field(
        description="channels per group of the 3x3 conv (g); its groups are the bottleneck "
                    "width / g", examples=[16])
    bottleneck_ratio: BottleneckRatio = Field(
        1.0, description="b: the bottleneck width is int(round(width · b)) (RegNetX/Y: 1; "
                         "RegNetZ: 4, the 3x3 wider than the block)", examples=[1.0, 4.0])
    placement: Placement = Field("post", description=PLACEMENT_DOC)

    def inner(self) -> int:
        return bottleneck_width(self.width, self.bottleneck_ratio)

    def check(self) -> None:
        v = self.inner()
        if v < 1 or v % self.group_width:
            raise FieldError("group_width", f"the bottleneck width int(round({self.width} × "
                             f"{self.bottleneck_ratio:g})) = {v} is not a positive multiple "
                             f"of the group width {self.group_width}; allowed: a divisor "
                             f"of {v} (the rule's roundings make one)")
        super().check()


class PreactRegNetStage(RegNetStage):
    """Pre-activation RegNet bottlenecks (timm's RegNetV PreBottleneck): norm and
    activation before each conv; every shortcut reads the first one's output."""

    block: Literal["preact_regnet"] = Field(description="block kind")  # type: ignore[assignment]
    placement: Placement = Field("full_preact_shortcut", description=PLACEMENT_DOC)


def lower_regnet(b: GraphBuilder, x: str, st: RegNetStage, ctx: BlockCtx) -> str:
    """1x1, 3x3 (grouped by the group width), [SE sized from the block's input], 1x1,
    add the shortcut, ReLU (in the default placement)."""
    v = st.inner()
    # timm's RegNet reads a block's first dilation alone, the projection's pool too
    ctx = replace(ctx, dilation=ctx.first_dilation)
    convs = [ConvSpec(v, 1), ConvSpec(v, 3, ctx.stride, v // st.group_width,
                                      dilation=ctx.dilation, downsamples=True),
             ConvSpec(st.width, 1)]
    return residual_unit(b, x, convs, st.placement, st.attention, ctx, attend_after=2)


block(RegNetStage, PyClass("RegNetBottleneck", "RegNet bottleneck: 1x1, 3x3 by group "
                                               "width, [SE], 1x1", inner=True))(lower_regnet)
block(PreactRegNetStage, PyClass(
    "PreActRegNetBottleneck", "Pre-activation RegNet bottleneck: (BN, act, conv) x 3, "
    "[SE] after the 3x3", inner=True))(lower_regnet)


# --- the rule ---------------------------------------------------------------------------

ROUNDINGS = ("pycls", "torchvision")


def _round_pycls(v: int, g: int) -> int:
    """pycls's and timm's quantize_float: the nearest multiple (Python's round, ties to
    even)."""
    return int(round(v / g) * g)


class RegNetRule(Model):
    """The RegNet rule (Radosavovic et al., 2020, section 3.3): block j's width u_j = w0 +
    wa·j, quantized to w0·wm^round(log(u_j / w0) / log(wm)) rounded to a multiple of q;
    the stages are the runs of equal width, each at stride 2; then per stage the
    bottleneck width and the group width are made compatible (the two roundings)."""

    w0: PosInt = Field(description="initial width w0, a multiple of q", examples=[24])
    wa: float = Field(ge=0.0, le=1e6, allow_inf_nan=False, description="slope wa",
                      examples=[24.48])
    wm: float = Field(gt=1.0, le=1e6, allow_inf_nan=False, description="width multiplier wm",
                      examples=[2.54])
    depth: PosInt = Field(description="blocks in all, d", examples=[22])
    group_width: PosInt = Field(description="g, the 3x3's channels per group", examples=[16])
    bottleneck_ratio: BottleneckRatio = Field(1.0, description="b, every stage's bottleneck ratio",
                                    examples=[1.0])
    q: PosInt = Field(8, description="the width quantum", examples=[8])
    rounding: Literal[ROUNDINGS] = Field(  # type: ignore[valid-type]
        "pycls", description="how a stage's bottleneck width is made a multiple of its "
                             "group width: pycls: the nearest multiple, ties to even (pycls, "
                             "timm); torchvision: half up and at most 10 % down "
                             "(torchvision, timm's _tv models)")

    @model_validator(mode="after")
    def _checks(self) -> RegNetRule:
        if self.w0 % self.q:
            raise FieldError("w0", f"{self.w0} is not a multiple of q = {self.q}; allowed: "
                                   f"multiples of {self.q}")
        if self.depth > 1000:
            raise FieldError("depth", f"{self.depth} blocks; allowed: 1 to 1000")
        return self

    def block_widths(self) -> list[int]:
        """Each block's quantized width (float64; the libraries' float32 agrees on every
        RegNet they ship)."""
        out = []
        for j in range(self.depth):
            k = round(math.log((self.w0 + self.wa * j) / self.w0) / math.log(self.wm))
            out.append(int(round(self.w0 * self.wm ** k / self.q) * self.q))
        return out

    def stages(self) -> list[dict[str, Any]]:
        """The per-stage fields: depth, width, group width, bottleneck ratio, stride 2."""
        runs: list[list[int]] = []
        for w in self.block_widths():
            if runs and runs[-1][0] == w:
                runs[-1][1] += 1
            else:
                runs.append([w, 1])
        # torchvision's _make_divisible (timm's _tv models, group_min_ratio 0.9)
        fit = _round_pycls if self.rounding == "pycls" else make_divisible
        b, out = self.bottleneck_ratio, []
        for w, d in runs:
            v = int(w * b)
            g = min(self.group_width, v)
            v = fit(v, g)
            out.append({"depth": d, "width": int(v / b), "group_width": g,
                        "bottleneck_ratio": b, "stride": 2})
        return out


stage_rule("regnet", RegNetRule)


# --- reading a state_dict ---------------------------------------------------------------

@reader(first="conv1", family="regnet")
def read_regnet(k: Keys, blocks: list[str], preact: bool,
                source: str) -> dict[str, Any] | None:
    """A stage of RegNet blocks: width, group width and bottleneck ratio from the 3x3."""
    width = stage_width(k, blocks, "conv3", source)
    first = k.get(f"{blocks[0]}.conv2", CONV)
    v = k.out(f"{blocks[0]}.conv2")
    if first is None or v is None:
        raise refuse(source, k.key(f"{blocks[0]}.conv2"), MISSING)
    for b in blocks:
        if (k.out(f"{b}.conv1"), k.out(f"{b}.conv2")) != (v, v):
            raise refuse(source, k.key(f"{b}.conv2"), f"a bottleneck width other than the "
                         f"stage's {v}; a RegNet stage has one")
    ratio = v / width
    if bottleneck_width(width, ratio) != v:
        raise refuse(source, k.key(f"{blocks[0]}.conv2"), f"a bottleneck width {v} that no "
                     f"ratio of the width {width} gives")
    out: dict[str, Any] = {"block": "preact_regnet" if preact else "regnet",
                           "depth": len(blocks), "width": width, "group_width": first[1]}
    if ratio != 1:
        out["bottleneck_ratio"] = ratio
    return out

