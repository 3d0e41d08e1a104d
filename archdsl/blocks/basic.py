"""The basic block family: 3x3, 3x3 [+SE] (ResNet-18/34) and its pre-activation form —
schemas, lowering, generated-Python classes and the state_dict reader."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictInt

from ..importer.keys import Keys, stage_width
from ..ir.graph import GraphBuilder
from ..spec.fields import FieldError, StageBase
from .common import PLACEMENT_DOC, BlockCtx, ConvSpec, Placement, residual_unit
from .registry import PyClass, block, reader


class BasicStage(StageBase):
    """A stage of basic blocks: two 3x3 convs, the stride on the first."""

    block: Literal["basic"] = Field(description="block kind")
    cardinality: StrictInt = Field(1, description="must be 1: basic blocks have no groups")
    base_width: StrictInt = Field(64, description="must be 64: basic blocks have no "
                                                  "bottleneck width")
    placement: Placement = Field("post", description=PLACEMENT_DOC)

    def check(self) -> None:
        if self.cardinality != 1:
            raise FieldError("cardinality", f"a basic block has no groups, got "
                             f"{self.cardinality}; allowed: 1 (use block: bottleneck for "
                             "ResNeXt)")
        if self.base_width != 64:
            raise FieldError("base_width", f"a basic block has no bottleneck width, got "
                             f"{self.base_width}; allowed: 64 (use block: bottleneck)")
        super().check()


class PreactBasicStage(BasicStage):
    """Pre-activation basic blocks (ResNet-v2): BN-ReLU-conv, twice, then the addition."""

    block: Literal["preact_basic"] = Field(description="block kind")  # type: ignore[assignment]
    placement: Placement = Field("full_preact", description=PLACEMENT_DOC)


def lower_basic(b: GraphBuilder, x: str, st: BasicStage, ctx: BlockCtx) -> str:
    """conv-BN-ReLU, conv-BN [SE], add the shortcut, ReLU (in the default placement)."""
    convs = [ConvSpec(st.width, 3, ctx.stride, dilation=ctx.first_dilation, downsamples=True),
             ConvSpec(st.width, 3, dilation=ctx.dilation)]
    return residual_unit(b, x, convs, st.placement, st.attention, ctx)


block(BasicStage, PyClass("BasicBlock", "Basic block: 3x3, 3x3"))(lower_basic)
block(PreactBasicStage, PyClass("PreActBasicBlock",
                                "Pre-activation basic block: (BN, ReLU, 3x3) x 2"))(lower_basic)


@reader(first="conv1")
def read_basic(k: Keys, blocks: list[str], preact: bool,
               source: str) -> dict[str, Any] | None:
    """A stage of blocks with two convs and no third."""
    if k.get(f"{blocks[0]}.conv3") is not None:
        return None
    return {"block": "preact_basic" if preact else "basic", "depth": len(blocks),
            "width": stage_width(k, blocks, "conv2", source)}
