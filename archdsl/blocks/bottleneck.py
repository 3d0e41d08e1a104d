"""The bottleneck block: 1x1, 3x3 (grouped for ResNeXt), 1x1 [+SE]."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..ir.graph import GraphBuilder
from ..spec.fields import FieldError, PosInt, StageBase
from .common import BlockCtx, shortcut, squeeze_excite
from .registry import block


class BottleneckStage(StageBase):
    """A stage of bottleneck blocks (ResNet-50+, ResNeXt, wide ResNet)."""

    block: Literal["bottleneck"] = Field(description="block kind")
    cardinality: PosInt = Field(1, description="C, the groups of the 3x3 conv", examples=[32])
    base_width: PosInt = Field(
        64, description="d in torchvision's sense: inner width = "
                        "floor(width / expansion × base_width / 64) × cardinality",
        examples=[4])
    inner_width: PosInt | None = Field(
        None, description="absolute inner width; overrides base_width", examples=[128])
    stride_on: Literal["1x1", "3x3"] = Field(
        "3x3", description="3x3: stride on the 3x3 conv (torchvision, 'v1.5'); 1x1: on the "
                           "first 1x1 (the original MSRA ResNet)")
    expansion: PosInt = Field(4, description="width / bottleneck planes", examples=[4])

    def inner(self) -> int:
        """Channels of the 3x3 conv (torchvision's formula)."""
        if self.inner_width is not None:
            return self.inner_width
        return self.width // self.expansion * self.base_width // 64 * self.cardinality

    def check(self) -> None:
        if self.inner_width is None:
            if self.width % self.expansion:
                raise FieldError("width", f"{self.width} is not divisible by the expansion "
                                 f"{self.expansion}; allowed: multiples of {self.expansion}")
            if self.inner() < 1:
                raise FieldError("base_width", f"gives {self.width // self.expansion} × "
                                 f"{self.base_width} / 64 < 1 channel per group; raise it")
        elif self.inner_width % self.cardinality:
            raise FieldError("inner_width", f"{self.inner_width} is not divisible by the "
                             f"cardinality {self.cardinality}; allowed: multiples of "
                             f"{self.cardinality}")
        super().check()


@block(BottleneckStage)
def lower_bottleneck(b: GraphBuilder, x: str, st: BottleneckStage, ctx: BlockCtx) -> str:
    """1x1 reduce, 3x3 (grouped), 1x1 expand, [SE], add the shortcut, ReLU."""
    s1, s3 = (ctx.stride, 1) if st.stride_on == "1x1" else (1, ctx.stride)
    inner = st.inner()
    y = b.conv(x, ctx.name("conv1"), inner, 1, stride=s1)
    y = b.act(b.bn(y, ctx.name("bn1")), ctx.name("relu1"))
    y = b.conv(y, ctx.name("conv2"), inner, 3, stride=s3, groups=st.cardinality)
    y = b.act(b.bn(y, ctx.name("bn2")), ctx.name("relu2"))
    y = b.bn(b.conv(y, ctx.name("conv3"), st.width, 1), ctx.name("bn3"))
    y = squeeze_excite(b, y, st.se, ctx)
    y = b.add("add", ctx.name("add"), (y, shortcut(b, x, st.width, ctx)))
    return b.act(y, ctx.name("relu3"))
