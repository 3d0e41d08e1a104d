"""What every block kind shares: its lowering context, the residual unit with its
activation placements, the shortcut with its forms, and SE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from ..ir.graph import GraphBuilder
from ..spec.fields import ECA, SE, FieldError, Model, Ratio

Placement = Literal["post", "bn_after_add", "relu_before_add", "relu_before_and_after_add",
                    "relu_preact", "full_preact"]
PLACEMENT_DOC = (
    "where BN and ReLU sit (Identity Mappings paper, Fig. 4): post: the original, ReLU "
    "after the addition; bn_after_add: BN and ReLU after the addition; relu_before_add: "
    "the branch ends with ReLU, nothing after the addition; relu_before_and_after_add: the "
    "branch ends with ReLU (before SE) and another follows the addition (timm's legacy "
    "SEResNetBlock: legacy_seresnet18/34); relu_preact: ReLU before each conv, BN after "
    "it; full_preact: BN and ReLU before each conv (ResNet-v2)")


class Shortcut(Model):
    """How a block's input reaches its addition (ResNet paper, section 3.3; Identity
    Mappings paper, Fig. 2)."""

    kind: Literal["A", "B", "C"] = Field(
        "B", description="A: zero-padded identity (no parameters); B: projection where "
                         "the shape changes; C: projection in every block")
    downsample: Literal["conv", "avgpool"] = Field(
        "conv", description="conv: strided 1x1 projection; avgpool: ResNet-D's 2x2 average "
                            "pool then a 1x1 projection at stride 1")
    form: Literal["identity", "scaling", "exclusive_gating", "shortcut_gating", "conv1x1",
                  "dropout"] = Field(
        "identity", description="the shortcut's form (Identity Mappings paper, Fig. 2): "
                                "identity; scaling: × scale; exclusive_gating: "
                                "g·F + (1−g)·x with g = sigmoid(1x1 conv(x)); "
                                "shortcut_gating: F + (1−g)·x; conv1x1: a 1x1 conv in every "
                                "block; dropout: dropout(x) with p = dropout")
    scale: float = Field(0.5, gt=0.0, description="λ of the scaling form", examples=[0.5])
    dropout: Ratio = Field(0.5, description="p of the dropout form", examples=[0.5])
    kernel: Literal[1, 3] = Field(
        1, description="kernel of a strided projection conv: 1, or 3 (padding 1) as "
                       "SENet-154's (timm's down_kernel_size=3); a projection at stride 1 "
                       "stays 1x1", examples=[3])

    @model_validator(mode="after")
    def _kernel(self) -> Shortcut:
        if self.kernel == 1:
            return self
        if self.downsample == "avgpool":
            raise FieldError("kernel", f"a {self.kernel}x{self.kernel} projection after "
                                       "ResNet-D's average pool; allowed: 1 with downsample "
                                       "avgpool, 3 with downsample conv")
        if self.kind == "A" or self.form == "conv1x1":
            why = "kind A has none" if self.kind == "A" else "form conv1x1 is a 1x1 in every block"
            raise FieldError("kernel", f"a {self.kernel}x{self.kernel} projection, but {why}; "
                                       "allowed: kernel 3 with kind B or C")
        return self


@dataclass(frozen=True)
class BlockCtx:
    """Where a block sits: its name prefix, its stride, the shortcut policy, its index."""

    prefix: str
    stride: int
    shortcut: Shortcut
    index: int = 0  # the block's place in its stage

    def name(self, local: str) -> str:
        return f"{self.prefix}.{local}"


@dataclass(frozen=True)
class ConvSpec:
    """One conv of a residual branch."""

    out: int
    kernel: int
    stride: int = 1
    groups: int = 1


def _branch(b: GraphBuilder, x: str, convs: list[ConvSpec], placement: str,
            ctx: BlockCtx) -> tuple[str, str]:
    """The residual branch F(x); also returns the pre-activated input (what a
    pre-activation block's projection reads)."""
    y, preact, n = x, x, len(convs)
    for i, c in enumerate(convs, start=1):
        last = i == n
        if placement == "full_preact":
            y = b.act(b.bn(y, ctx.name(f"bn{i}")), ctx.name(f"relu{i}"))
        elif placement == "relu_preact":
            y = b.act(y, ctx.name(f"relu{i}"))
        if i == 1:
            preact = y
        aa = c.stride > 1 and b.antialias is not None  # the stride moves to a low-pass
        y = b.conv(y, ctx.name(f"conv{i}"), c.out, c.kernel, stride=1 if aa else c.stride,
                   groups=c.groups)
        if placement == "relu_preact" or (
                placement != "full_preact" and not (last and placement == "bn_after_add")):
            y = b.bn(y, ctx.name(f"bn{i}"))
        if placement in ("post", "bn_after_add") and not last or placement in (
                "relu_before_add", "relu_before_and_after_add"):
            y = b.act(y, ctx.name(f"relu{i}"))
        if aa:
            y = b.downsample(y, ctx.name("aa"))
    return y, preact


def residual_unit(b: GraphBuilder, x: str, convs: list[ConvSpec], placement: str,
                  attention: SE | ECA | None, ctx: BlockCtx) -> str:
    """Branch [+SE or ECA], shortcut, merge, and what follows the addition."""
    y, preact = _branch(b, x, convs, placement, ctx)
    if attention is not None:
        y = ATTENTION[type(attention)](b, y, attention, ctx)
    out = convs[-1].out
    projects = needs_projection(b, x, out, ctx)
    source = preact if placement == "full_preact" and projects else x
    sc = shortcut(b, source, out, ctx, norm=placement != "full_preact")
    y = merge(b, x, y, sc, ctx)
    if placement == "bn_after_add":
        y = b.bn(y, ctx.name("bn_out"))
    if placement in ("post", "bn_after_add"):
        y = b.act(y, ctx.name(f"relu{len(convs)}"))
    elif placement == "relu_before_and_after_add":
        y = b.act(y, ctx.name("relu_out"))
    return y


def needs_projection(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx) -> bool:
    changes = b.shape(x)[0] != out_channels or ctx.stride != 1
    return ctx.shortcut.kind == "C" or (ctx.shortcut.kind == "B" and changes)


def shortcut(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx, *,
             norm: bool = True) -> str:
    """The shortcut path of a block whose branch ends with ``out_channels``."""
    sc = ctx.shortcut
    changes = b.shape(x)[0] != out_channels or ctx.stride != 1
    if sc.form == "conv1x1":
        return b.conv(x, ctx.name("downsample.0"), out_channels, 1, stride=ctx.stride)
    if needs_projection(b, x, out_channels, ctx):
        y = _projection(b, x, out_channels, ctx, norm)
    elif changes:
        # ResNet paper option A: subsample by the stride, zero-pad the extra channels
        # after the existing ones.
        y = b.add("pad_channels", ctx.name("shortcut"), (x,), in_channels=b.shape(x)[0],
                  out_channels=out_channels, stride=ctx.stride)
    else:
        y = x
    if sc.form == "scaling":
        y = b.add("scale", ctx.name("shortcut_scale"), (y,), factor=sc.scale)
    elif sc.form == "dropout":
        y = b.add("dropout", ctx.name("shortcut_dropout"), (y,), p=sc.dropout)
    return y


def _projection(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx,
                norm: bool) -> str:
    if ctx.shortcut.downsample == "avgpool":
        # ResNet-D (He et al., "Bag of Tricks", 2019): average-pool, then a 1x1 at stride 1.
        # timm keeps the indices .1/.2 even where the pool is an Identity (stride 1).
        if ctx.stride > 1:
            x = b.add("avg_pool", ctx.name("downsample.0"), (x,), kernel=2,
                      stride=ctx.stride, padding=0, ceil_mode=True,
                      count_include_pad=False)
        y = b.conv(x, ctx.name("downsample.1"), out_channels, 1)
        return b.bn(y, ctx.name("downsample.2")) if norm else y
    kernel = ctx.shortcut.kernel if ctx.stride > 1 else 1
    y = b.conv(x, ctx.name("downsample.0"), out_channels, kernel, stride=ctx.stride)
    return b.bn(y, ctx.name("downsample.1")) if norm else y


def merge(b: GraphBuilder, x: str, y: str, sc: str, ctx: BlockCtx) -> str:
    """Add the branch and the shortcut; the gating forms weigh them by
    g = sigmoid(1x1 conv(x)) (Identity Mappings paper, Fig. 2c/2d)."""
    form = ctx.shortcut.form
    if form not in ("exclusive_gating", "shortcut_gating"):
        return b.add("add", ctx.name("add"), (y, sc))
    g = b.conv(x, ctx.name("gate.conv"), b.shape(y)[0], 1, stride=ctx.stride, bias=True)
    g = b.act(g, ctx.name("gate.sigmoid"), "sigmoid")
    keep = b.add("one_minus", ctx.name("gate.complement"), (g,))
    sc = b.add("mul", ctx.name("gate.shortcut"), (keep, sc))
    if form == "exclusive_gating":
        y = b.add("mul", ctx.name("gate.branch"), (g, y))
    return b.add("add", ctx.name("add"), (y, sc))


def squeeze_excite(b: GraphBuilder, x: str, se: SE, ctx: BlockCtx) -> str:
    """SE on the branch (Hu et al., 2018): pool, 1x1 reduce, ReLU, 1x1 expand,
    sigmoid, scale. The FCs are 1x1 convs with bias, named as timm's."""
    c = b.shape(x)[0]
    s = b.add("global_avg_pool", ctx.name("se.pool"), (x,))
    s = b.conv(s, ctx.name("se.fc1"), se.channels(c), 1, bias=True)
    s = b.act(s, ctx.name("se.act"))
    s = b.conv(s, ctx.name("se.fc2"), c, 1, bias=True)
    s = b.act(s, ctx.name("se.gate"), "sigmoid")
    return b.add("mul", ctx.name("se.scale"), (x, s))


def efficient_channel_attention(b: GraphBuilder, x: str, eca: ECA, ctx: BlockCtx) -> str:
    """ECA on the branch (Wang et al., 2020): pool, a k-tap 1-D conv across the channels
    (no bias), sigmoid, scale; named as timm's (``se.conv``)."""
    s = b.add("global_avg_pool", ctx.name("se.pool"), (x,))
    s = b.add("channel_conv", ctx.name("se.conv"), (s,), kernel=eca.size(b.shape(x)[0]))
    s = b.act(s, ctx.name("se.gate"), "sigmoid")
    return b.add("mul", ctx.name("se.scale"), (x, s))


# the channel attentions a block can carry, by the kind of its spec field
ATTENTION = {SE: squeeze_excite, ECA: efficient_channel_attention}
