"""A block family and an op from outside the package, written as docs/architecture.md's
recipes say: the ResNet paper's "plain" baseline (two 3x3 convs and no shortcut) with the
Mish activation (Misra, 2019), an op archdsl does not ship. tests/test_recipe.py loads it
through ``ARCHDSL_PLUGINS`` in a process of its own, so it never reaches another test or
the committed schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from archdsl.blocks.common import BlockCtx
from archdsl.blocks.registry import PyClass, block, reader
from archdsl.importer.keys import Keys, stage_width
from archdsl.ir.graph import GraphBuilder
from archdsl.ir.ops import OpDef, define
from archdsl.ir.shapes import per_out, same
from archdsl.spec.fields import StageBase

# The op: its family prices and fuses it wherever a counter or an engine treats every
# activation alike; ``kernels`` is the data for the devices that name each activation's
# kernel after the op (aten's mish, ONNX's Mish, TFLite's decomposition).
define("mish", OpDef(
    "activation", shape=same, elem=per_out(4, 6), elem_text="4·out", pointwise=True,
    doc="x·tanh(softplus(x)): exp, log1p, tanh, × — 4 ops (6 FLOPs) per element",
    torch="torch.nn.functional.mish",
    python=lambda a, p: ["nn.Mish", *(["inplace=True"] if p.top else [])],
    py_expr="F.mish({0})",
    kernels={"eager": ["mish"], "eager-cuda": ["mish"], "onnxruntime-cpu": ["Mish"],
             "mobile": ["EXP", "ADD", "LOG", "TANH", "MUL"]}))


class PlainStage(StageBase):
    """A stage of plain blocks: two 3x3 convs, BN and Mish after each, no shortcut."""

    block: Literal["plain"] = Field(description="block kind")


@block(PlainStage, PyClass("PlainBlock", "Plain block: (3x3, BN, Mish) x 2, no shortcut"))
def lower_plain(b: GraphBuilder, x: str, st: PlainStage, ctx: BlockCtx) -> str:
    layers = ctx.layers
    y = layers.conv(b, x, ctx.name("conv_a"), st.width, 3, stride=ctx.stride)
    y = b.act(layers.norm(b, y, ctx.name("bn_a")), ctx.name("act_a"), "mish")
    y = layers.conv(b, y, ctx.name("conv_b"), st.width, 3)
    return b.act(layers.norm(b, y, ctx.name("bn_b")), ctx.name("act_b"), "mish")


@reader(first="conv_a")
def read_plain(k: Keys, blocks: list[str], preact: bool, source: str) -> dict[str, Any] | None:
    """A stage whose blocks hold conv_a and conv_b."""
    if k.get(f"{blocks[0]}.conv_a") is None:
        return None
    return {"block": "plain", "depth": len(blocks),
            "width": stage_width(k, blocks, "conv_b", source)}
