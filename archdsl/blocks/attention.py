"""Channel attentions on a block's branch, a registry by name: each entry is the spec
field that asks for it and its lowering, whose nodes are role ``attention``, part NAME."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..ir.graph import GraphBuilder
from ..spec.fields import ECA, SE

if TYPE_CHECKING:
    from .common import BlockCtx


def squeeze_excite(b: GraphBuilder, x: str, se: SE, ctx: BlockCtx) -> str:
    """SE on the branch (Hu et al., 2018): pool, 1x1 reduce, ReLU, 1x1 expand,
    sigmoid, scale. The FCs are 1x1 convs with bias, named as timm's."""
    c = b.shape(x)[0]
    s = b.add("global_avg_pool", ctx.name("se.pool"), (x,))
    squeeze = se.channels(ctx.in_channels if se.of == "input" else c)
    s = ctx.layers.conv(b, s, ctx.name("se.fc1"), squeeze, 1, bias=True)
    s = b.act(s, ctx.name("se.act"), se.act)
    s = ctx.layers.conv(b, s, ctx.name("se.fc2"), c, 1, bias=True)
    s = b.act(s, ctx.name("se.gate"), "sigmoid")
    return b.add("mul", ctx.name("se.scale"), (x, s))


def efficient_channel_attention(b: GraphBuilder, x: str, eca: ECA, ctx: BlockCtx) -> str:
    """ECA on the branch (Wang et al., 2020): pool, a k-tap 1-D conv across the channels
    (no bias), sigmoid, scale; named as timm's (``se.conv``)."""
    s = b.add("global_avg_pool", ctx.name("se.pool"), (x,))
    s = b.add("channel_conv", ctx.name("se.conv"), (s,), kernel=eca.size(b.shape(x)[0]))
    s = b.act(s, ctx.name("se.gate"), "sigmoid")
    return b.add("mul", ctx.name("se.scale"), (x, s))


@dataclass(frozen=True)
class Attention:
    """One channel attention: the spec field's class and its lowering."""

    schema: type
    lower: Callable[[GraphBuilder, str, Any, BlockCtx], str]


ATTENTIONS: dict[str, Attention] = {
    "se": Attention(SE, squeeze_excite),
    "eca": Attention(ECA, efficient_channel_attention),
}


def attend(b: GraphBuilder, x: str, field: SE | ECA, ctx: BlockCtx) -> str:
    """The branch ``x`` through the attention ``field`` asks for (its part in the IR)."""
    name = next(k for k, a in ATTENTIONS.items() if isinstance(field, a.schema))
    with b.scope("attention", name):
        return ATTENTIONS[name].lower(b, x, field, ctx)
