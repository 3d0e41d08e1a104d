"""What every residual block kind shares: its lowering context (where it sits and the
layers it builds with), the placements of BN and ReLU as data, and the residual unit:
branch, attention, shortcut, merge and what follows the addition."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..ir.graph import GraphBuilder
from ..ir.shapes import ShapeError
from ..spec.fields import ECA, SE
from .attention import attend
from .layers import Layers
from .shortcut import Shortcut, has_shortcut, merge, needs_projection, shortcut

Placement = Literal["post", "bn_after_add", "relu_before_add", "relu_before_and_after_add",
                    "relu_preact", "full_preact", "post_linear", "full_preact_shortcut"]
PLACEMENT_DOC = (
    "where BN and ReLU sit (Identity Mappings paper, Fig. 4): post: the original, ReLU "
    "after the addition; bn_after_add: BN and ReLU after the addition; relu_before_add: "
    "the branch ends with ReLU, nothing after the addition; relu_before_and_after_add: the "
    "branch ends with ReLU (before SE) and another follows the addition (timm's legacy "
    "SEResNetBlock: legacy_seresnet18/34); relu_preact: ReLU before each conv, BN after "
    "it; full_preact: BN and ReLU before each conv (ResNet-v2); post_linear: post without "
    "the ReLU after the addition (RegNetZ's linear_out); full_preact_shortcut: "
    "full_preact, and every shortcut, the identity too, reads the first BN-ReLU's output "
    "(timm's RegNetV)")


@dataclass(frozen=True)
class Steps:
    """A placement as data: the steps (``norm``, ``act``) before each conv of the branch,
    after each conv but the last, after the last, and after the addition (each with its
    name; ``{n}``: the number of convs). A norm straight before an act is one
    ``Layers.norm_act``: a norm that carries its activation absorbs it. ``shortcut``:
    what the shortcut reads, the block's input or its first pre-activation (``preact``,
    or ``projection``: only where it projects), and whether a projection has a norm."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    after_add: tuple[tuple[str, str], ...] = ()
    shortcut: Literal["input", "projection", "preact"] = "input"
    projection_norm: bool = True


PLACEMENTS: dict[str, Steps] = {
    "post": Steps(after=("norm", "act"), last=("norm",), after_add=(("act", "relu{n}"),)),
    "bn_after_add": Steps(after=("norm", "act"),
                          after_add=(("norm", "bn_out"), ("act", "relu{n}"))),
    "relu_before_add": Steps(after=("norm", "act"), last=("norm", "act")),
    "relu_before_and_after_add": Steps(after=("norm", "act"), last=("norm", "act"),
                                       after_add=(("act", "relu_out"),)),
    "relu_preact": Steps(before=("act",), after=("norm",), last=("norm",)),
    "full_preact": Steps(before=("norm", "act"), shortcut="projection", projection_norm=False),
    "post_linear": Steps(after=("norm", "act"), last=("norm",)),
    "full_preact_shortcut": Steps(before=("norm", "act"), shortcut="preact",
                                  projection_norm=False),
}


@dataclass(frozen=True)
class BlockCtx:
    """Where a block sits: its name prefix, its stride, the shortcut policy, its index in
    its stage, the layers it builds with, its input's channels and its dilations (timm's
    ``output_stride``: a stage past it dilates its 3x3 convs by ``dilation`` instead of
    striding; the conv at the block's stride keeps ``first_dilation``, the previous
    stage's, in the stage's first block)."""

    prefix: str
    stride: int
    shortcut: Shortcut
    index: int = 0  # the block's place in its stage
    layers: Layers = Layers()
    in_channels: int = 0
    dilation: int = 1
    first_dilation: int = 1

    def name(self, local: str) -> str:
        return f"{self.prefix}.{local}"

    @property
    def dilating(self) -> bool:
        """Whether the block is where a dilated stage starts (its stride turned into
        dilation)."""
        return self.first_dilation != self.dilation


@dataclass(frozen=True)
class ConvSpec:
    """One conv of a residual branch; ``unit``: a construct that stands in its place with
    the norms and activations after it (ResNeSt's split attention, SKNet's selective
    kernel, Res2Net's hierarchical split), lowered as ``unit(b, x, conv, ctx, i)``
    (``i``: the conv's 1-based place, which names it); ``part``: the construct's name, the
    Node.part of its nodes (on the branch; its attention is role ``attention``);
    ``downsamples``: the block's stride sits on it (anti-aliased there where the spec says
    so, at stride 1 where a dilated stage starts, as timm's)."""

    out: int
    kernel: int
    stride: int = 1
    groups: int = 1
    unit: Callable[[GraphBuilder, str, ConvSpec, BlockCtx, int], str] | None = None
    part: str | None = None
    dilation: int = 1
    downsamples: bool = False


def make_divisible(v: float, divisor: int, least: int | None = None) -> int:
    """timm's make_divisible: ``v`` to the nearest multiple of ``divisor`` (halves up), at
    least ``least`` (default: the divisor), never more than 10 % below ``v``."""
    out = max(least or divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def apply_steps(b: GraphBuilder, x: str, steps: list[tuple[str, str]], ctx: BlockCtx) -> str:
    """``x`` through the steps, each (``norm`` or ``act``, local name)."""
    i = 0
    while i < len(steps):
        kind, name = steps[i]
        if kind == "norm" and i + 1 < len(steps) and steps[i + 1][0] == "act":
            x = ctx.layers.norm_act(b, x, ctx.name(name), ctx.name(steps[i + 1][1]))
            i += 2
            continue
        x = ctx.layers.norm(b, x, ctx.name(name)) if kind == "norm" else \
            ctx.layers.act(b, x, ctx.name(name))
        i += 1
    return x


def _named(steps: tuple[str, ...], i: int) -> list[tuple[str, str]]:
    return [(s, f"{'bn' if s == 'norm' else 'relu'}{i}") for s in steps]


def _branch(b: GraphBuilder, x: str, convs: list[ConvSpec], placement: str,
            ctx: BlockCtx, attention: tuple[SE | ECA, int] | None) -> tuple[str, str]:
    """The residual branch F(x), with the attention after the conv it names (and its
    steps); also returns the pre-activated input (what a pre-activation block's shortcut
    may read)."""
    steps, layers = PLACEMENTS[placement], ctx.layers
    y, preact, pending = x, x, []
    for i, c in enumerate(convs, start=1):
        y = apply_steps(b, y, pending + _named(steps.before, i), ctx)
        if i == 1:
            preact = y
        aa = layers.antialias is not None and c.downsamples and (c.stride > 1 or ctx.dilating)
        if c.unit is not None:  # it carries its own norms and activations
            if aa:
                raise ShapeError(f"{ctx.name(f'conv{i}')}: {c.part} has no anti-aliased "
                                 "form (timm's has none); allowed: no antialias", "antialias")
            with b.scope(b.role, c.part):
                y, pending = c.unit(b, y, c, ctx, i), []
            continue
        # an anti-aliased stride moves to a low-pass after the conv
        y = layers.conv(b, y, ctx.name(f"conv{i}"), c.out, c.kernel,
                        stride=1 if aa else c.stride, groups=c.groups, dilation=c.dilation)
        pending = _named(steps.last if i == len(convs) else steps.after, i)
        if aa:
            y = layers.downsample(b, apply_steps(b, y, pending, ctx), ctx.name("aa"), c.stride)
            pending = []
        if attention is not None and attention[1] == i:
            y, pending = attend(b, apply_steps(b, y, pending, ctx), attention[0], ctx), []
    return apply_steps(b, y, pending, ctx), preact


def residual_unit(b: GraphBuilder, x: str, convs: list[ConvSpec], placement: str,
                  attention: SE | ECA | None, ctx: BlockCtx, *, attend_after: int = 0) -> str:
    """Branch [+ attention: after the last conv, or after conv ``attend_after`` (1-based)
    and its steps], shortcut, merge, and what follows the addition."""
    steps = PLACEMENTS[placement]
    at = (attention, attend_after or len(convs)) if attention is not None else None
    y, preact = _branch(b, x, convs, placement, ctx, at)
    out = convs[-1].out
    projects = needs_projection(b, x, out, ctx)
    reads_preact = steps.shortcut == "preact" or (steps.shortcut == "projection" and projects)
    if has_shortcut(b, x, out, ctx):  # not where kind identity_only meets a shape change
        with b.scope("shortcut"):
            sc = shortcut(b, preact if reads_preact else x, out, ctx,
                          norm=steps.projection_norm)
        y = merge(b, x, y, sc, ctx)
    after = [(s, name.format(n=len(convs))) for s, name in steps.after_add]
    return apply_steps(b, y, after, ctx)
