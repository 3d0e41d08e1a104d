"""What every block kind shares: its lowering context, the shortcut, and SE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ..ir.graph import GraphBuilder
from ..spec.fields import SE, Model


class Shortcut(Model):
    """How a block's input reaches its addition (ResNet paper, section 3.3)."""

    kind: Literal["A", "B", "C"] = Field(
        "B", description="A: zero-padded identity (no parameters); B: projection where "
                         "the shape changes; C: projection in every block")
    downsample: Literal["conv", "avgpool"] = Field(
        "conv", description="conv: strided 1x1 projection; avgpool: ResNet-D's 2x2 average "
                            "pool then a 1x1 projection at stride 1")


@dataclass(frozen=True)
class BlockCtx:
    """Where a block sits: its name prefix, its stride, the shortcut policy."""

    prefix: str
    stride: int
    shortcut: Shortcut

    def name(self, local: str) -> str:
        return f"{self.prefix}.{local}"


def shortcut(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx) -> str:
    """The shortcut path of a block whose branch ends with ``out_channels``."""
    changes = b.shape(x)[0] != out_channels or ctx.stride != 1
    kind = ctx.shortcut.kind
    if kind == "A":
        if not changes:
            return x
        # ResNet paper option A: subsample by the stride, zero-pad the extra channels
        # after the existing ones.
        return b.add("pad_channels", ctx.name("shortcut"), (x,), out_channels=out_channels,
                     stride=ctx.stride)
    if kind == "B" and not changes:
        return x
    if ctx.shortcut.downsample == "avgpool":
        # ResNet-D (He et al., "Bag of Tricks", 2019): average-pool, then a 1x1 at stride 1.
        # timm keeps the indices .1/.2 even where the pool is an Identity (stride 1).
        if ctx.stride > 1:
            x = b.add("avg_pool", ctx.name("downsample.0"), (x,), kernel=2,
                      stride=ctx.stride, padding=0, ceil_mode=True,
                      count_include_pad=False)
        y = b.conv(x, ctx.name("downsample.1"), out_channels, 1)
        return b.bn(y, ctx.name("downsample.2"))
    y = b.conv(x, ctx.name("downsample.0"), out_channels, 1, stride=ctx.stride)
    return b.bn(y, ctx.name("downsample.1"))


def squeeze_excite(b: GraphBuilder, x: str, se: SE | None, ctx: BlockCtx) -> str:
    """SE on the branch (Hu et al., 2018): pool, 1x1 reduce, ReLU, 1x1 expand,
    sigmoid, scale. The FCs are 1x1 convs with bias, named as timm's."""
    if se is None:
        return x
    c = b.shape(x)[0]
    s = b.add("global_avg_pool", ctx.name("se.pool"), (x,))
    s = b.conv(s, ctx.name("se.fc1"), se.channels(c), 1, bias=True)
    s = b.act(s, ctx.name("se.act"))
    s = b.conv(s, ctx.name("se.fc2"), c, 1, bias=True)
    s = b.act(s, ctx.name("se.gate"), "sigmoid")
    return b.add("mul", ctx.name("se.scale"), (x, s))
