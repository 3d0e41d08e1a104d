"""The basic block: 3x3, 3x3 [+SE] (ResNet-18/34)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from ..ir.graph import GraphBuilder
from ..spec.fields import FieldError, StageBase
from .common import BlockCtx, shortcut, squeeze_excite
from .registry import block


class BasicStage(StageBase):
    """A stage of basic blocks: two 3x3 convs, the stride on the first."""

    block: Literal["basic"] = Field(description="block kind")
    cardinality: StrictInt = Field(1, description="must be 1: basic blocks have no groups")
    base_width: StrictInt = Field(64, description="must be 64: basic blocks have no "
                                                  "bottleneck width")

    def check(self) -> None:
        if self.cardinality != 1:
            raise FieldError("cardinality", f"a basic block has no groups, got "
                             f"{self.cardinality}; allowed: 1 (use block: bottleneck for "
                             "ResNeXt)")
        if self.base_width != 64:
            raise FieldError("base_width", f"a basic block has no bottleneck width, got "
                             f"{self.base_width}; allowed: 64 (use block: bottleneck)")
        super().check()


@block(BasicStage)
def lower_basic(b: GraphBuilder, x: str, st: BasicStage, ctx: BlockCtx) -> str:
    """conv-BN-ReLU, conv-BN [SE], add the shortcut, ReLU."""
    y = b.conv(x, ctx.name("conv1"), st.width, 3, stride=ctx.stride)
    y = b.act(b.bn(y, ctx.name("bn1")), ctx.name("relu1"))
    y = b.bn(b.conv(y, ctx.name("conv2"), st.width, 3), ctx.name("bn2"))
    y = squeeze_excite(b, y, st.se, ctx)
    y = b.add("add", ctx.name("add"), (y, shortcut(b, x, st.width, ctx)))
    return b.act(y, ctx.name("relu2"))
