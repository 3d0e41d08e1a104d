"""The shortcut: its kinds and forms (the spec's ``shortcut`` section), the projection,
and the merge of branch and shortcut, gated or not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from ..ir.graph import GraphBuilder
from ..spec.fields import FieldError, Model, Ratio

if TYPE_CHECKING:
    from .common import BlockCtx


class Shortcut(Model):
    """How a block's input reaches its addition (ResNet paper, section 3.3; Identity
    Mappings paper, Fig. 2)."""

    kind: Literal["A", "B", "C", "identity_only"] = Field(
        "B", description="A: zero-padded identity (no parameters); B: projection where "
                         "the shape changes; C: projection in every block; identity_only: "
                         "no shortcut where the shape changes (the block is plain there: "
                         "RegNetZ's downsample=None), the identity elsewhere")
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
    def _identity_only(self) -> Shortcut:
        if self.kind != "identity_only":
            return self
        if self.form not in ("identity", "scaling", "dropout"):
            raise FieldError("form", f"{self.form} has a conv, but kind identity_only has no "
                                     "projection; allowed: identity, scaling or dropout")
        if self.downsample != "conv":
            raise FieldError("downsample", "kind identity_only has no projection to "
                                           "downsample; allowed: conv (the default)")
        return self

    @model_validator(mode="after")
    def _kernel(self) -> Shortcut:
        if self.kernel == 1:
            return self
        if self.downsample == "avgpool":
            raise FieldError("kernel", f"a {self.kernel}x{self.kernel} projection after "
                                       "ResNet-D's average pool; allowed: 1 with downsample "
                                       "avgpool, 3 with downsample conv")
        if self.kind in ("A", "identity_only") or self.form == "conv1x1":
            why = f"kind {self.kind} has none" if self.kind in ("A", "identity_only") else \
                "form conv1x1 is a 1x1 in every block"
            raise FieldError("kernel", f"a {self.kernel}x{self.kernel} projection, but {why}; "
                                       "allowed: kernel 3 with kind B or C")
        return self


def _changes(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx) -> bool:
    """Whether the block changes the shape of its input ``x``."""
    return b.shape(x)[0] != out_channels or ctx.stride != 1


def has_shortcut(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx) -> bool:
    """Whether the block adds a shortcut at all (not where kind identity_only meets a
    change of shape)."""
    return not (ctx.shortcut.kind == "identity_only" and _changes(b, x, out_channels, ctx))


def needs_projection(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx) -> bool:
    changes = _changes(b, x, out_channels, ctx)
    return ctx.shortcut.kind == "C" or (ctx.shortcut.kind == "B" and changes)


def shortcut(b: GraphBuilder, x: str, out_channels: int, ctx: BlockCtx, *,
             norm: bool = True) -> str:
    """The shortcut path of a block whose branch ends with ``out_channels``."""
    sc = ctx.shortcut
    changes = _changes(b, x, out_channels, ctx)
    if sc.form == "conv1x1":
        return ctx.layers.conv(b, x, ctx.name("downsample.0"), out_channels, 1,
                               stride=ctx.stride)
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
        # timm keeps the indices .1/.2 even where the pool is an Identity (stride 1); in a
        # dilated stage the pool stays, at stride 1 and same-padded (timm's AvgPool2dSame)
        if ctx.dilation > 1:
            x = b.add("avg_pool", ctx.name("downsample.0"), (x,), kernel=2, stride=1,
                      padding=0, ceil_mode=False, count_include_pad=False, same=True)
        elif ctx.stride > 1:
            x = b.add("avg_pool", ctx.name("downsample.0"), (x,), kernel=2,
                      stride=ctx.stride, padding=0, ceil_mode=True,
                      count_include_pad=False)
        y = ctx.layers.conv(b, x, ctx.name("downsample.1"), out_channels, 1)
        return ctx.layers.norm(b, y, ctx.name("downsample.2")) if norm else y
    # a 3x3 projection where it strides or dilates, at the stage's first dilation
    wide = ctx.stride > 1 or ctx.dilation > 1
    kernel = ctx.shortcut.kernel if wide else 1
    y = ctx.layers.conv(b, x, ctx.name("downsample.0"), out_channels, kernel,
                        stride=ctx.stride, dilation=ctx.first_dilation if kernel > 1 else 1)
    return ctx.layers.norm(b, y, ctx.name("downsample.1")) if norm else y


def merge(b: GraphBuilder, x: str, y: str, sc: str, ctx: BlockCtx) -> str:
    """Add the branch and the shortcut; the gating forms weigh them by
    g = sigmoid(1x1 conv(x)) (Identity Mappings paper, Fig. 2c/2d)."""
    form = ctx.shortcut.form
    if form not in ("exclusive_gating", "shortcut_gating"):
        return b.add("add", ctx.name("add"), (y, sc))
    with b.scope("gate", form):
        g = ctx.layers.conv(b, x, ctx.name("gate.conv"), b.shape(y)[0], 1, stride=ctx.stride,
                            bias=True)
        g = b.act(g, ctx.name("gate.sigmoid"), "sigmoid")
        keep = b.add("one_minus", ctx.name("gate.complement"), (g,))
        sc = b.add("mul", ctx.name("gate.shortcut"), (keep, sc))
        if form == "exclusive_gating":
            y = b.add("mul", ctx.name("gate.branch"), (g, y))
    return b.add("add", ctx.name("add"), (y, sc))
