"""The SKNet block family (Li et al., "Selective Kernel Networks", CVPR 2019, as timm
builds it): a conv of the basic block or the bottleneck's 3x3 becomes a selective kernel,
paths of other receptive fields (3x3s, dilated for the larger) whose sum is pooled to a
softmax across the paths that weighs them — schemas, lowering, generated-Python classes
and the state_dict readers."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from pydantic import Field

from ..importer.draft import refuse
from ..importer.keys import CONV, MISSING, Keys, stage_width
from ..ir.graph import GraphBuilder
from ..ir.shapes import ShapeError
from ..spec.fields import Model, PosInt, StageBase
from .bottleneck import check_expansion, inner_width
from .common import BlockCtx, ConvSpec, make_divisible, residual_unit
from .registry import PyClass, block, reader

Dilation = Annotated[int, Field(ge=1, le=16)]


class SelectiveKernel(Model):
    """A selective kernel: its paths and the attention's width."""

    dilations: tuple[Dilation, ...] = Field(
        (1, 2), min_length=2, max_length=4,
        description="each path a 3x3 with this dilation (timm's keep_3x3: a 5x5's receptive "
                    "field as a 3x3 of dilation 2)", examples=[[1, 2]])
    split_input: bool = Field(True, description="each path reads its share of the input "
                                                "channels (timm's split_input), else all")
    attn_ratio: float = Field(1 / 16, gt=0.0, le=1.0, description="the attention's width "
                              "is make_divisible(width · attn_ratio, attn_divisor)",
                              examples=[0.125])
    attn_divisor: PosInt = Field(8, le=1024, description="see attn_ratio", examples=[16])

    def attn_width(self, width: int) -> int:
        return make_divisible(width * self.attn_ratio, self.attn_divisor)


class SKBasicStage(StageBase):
    """A stage of selective-kernel basic blocks (timm's SelectiveKernelBasic): the
    selective kernel with the stride, then a 3x3."""

    block: Literal["sk_basic"] = Field(description="block kind")
    sk: SelectiveKernel = Field(default_factory=SelectiveKernel,
                                description="the selective kernel in place of the first 3x3")
    placement: Literal["post"] = Field("post", description="where BN and ReLU sit: post "
                                       "only (timm's block has no other)")


class SKBottleneckStage(StageBase):
    """A stage of selective-kernel bottlenecks (timm's SelectiveKernelBottleneck): 1x1,
    the selective kernel with the stride and the cardinality, 1x1."""

    block: Literal["sk_bottleneck"] = Field(description="block kind")
    cardinality: PosInt = Field(1, description="C, the groups of each path's 3x3",
                                examples=[32])
    base_width: PosInt = Field(64, description="inner width = floor(width / 4 × base_width / "
                                               "64) × cardinality", examples=[4])
    sk: SelectiveKernel = Field(default_factory=SelectiveKernel,
                                description="the selective kernel in place of the 3x3")
    placement: Literal["post"] = Field("post", description="where BN and ReLU sit: post "
                                       "only (timm's block has no other)")

    def inner(self) -> int:
        return inner_width(self.width, 4, self.base_width, self.cardinality)

    def check(self) -> None:
        check_expansion(self.width, self.inner(), self.base_width)
        super().check()


def selective_kernel(b: GraphBuilder, x: str, c: ConvSpec, ctx: BlockCtx, i: int, *,
                     sk: SelectiveKernel) -> str:
    """The paths (conv, norm, act; each on its share of ``x`` where the input is split),
    stacked; their sum pooled, reduced, normed, activated and expanded to a softmax across
    the paths; the paths weighed by it and summed."""
    def name(local: str) -> str:
        return ctx.name(f"conv{i}.{local}")

    n, cin = len(sk.dilations), b.shape(x)[0]
    if sk.split_input and cin % n:
        raise ShapeError(f"{name('paths')}: {cin} input channels do not split into {n} "
                         "paths; allowed: an input width the paths divide, or split_input: "
                         "false", "sk.split_input")
    paths = []
    for p, d in enumerate(sk.dilations):
        src = b.add("slice", name(f"split.{p}"), (x,), start=p * cin // n,
                    stop=(p + 1) * cin // n) if sk.split_input else x
        y = ctx.layers.conv(b, src, name(f"paths.{p}.conv"), c.out, 3, stride=c.stride,
                            groups=min(c.out, c.groups), dilation=d * c.dilation)
        paths.append(ctx.layers.norm_act(b, y, name(f"paths.{p}.bn"), name(f"paths.{p}.act")))
    stacked = b.add("concat", name("stack"), tuple(paths))
    with b.scope("attention", "sk"):
        s = b.add("split_sum", name("attn.sum"), (stacked,), parts=n)
        s = b.add("global_avg_pool", name("attn.pool"), (s,))
        s = ctx.layers.conv(b, s, name("attn.fc_reduce"), sk.attn_width(c.out), 1)
        s = ctx.layers.norm_act(b, s, name("attn.bn"), name("attn.act"))
        s = ctx.layers.conv(b, s, name("attn.fc_select"), n * c.out, 1)
        s = b.add("split_softmax", name("attn.softmax"), (s,), parts=n)
        y = b.add("mul", name("attn.scale"), (stacked, s))
        return b.add("split_sum", name("sum"), (y,), parts=n)


def lower_sk_basic(b: GraphBuilder, x: str, st: SKBasicStage, ctx: BlockCtx) -> str:
    """The selective kernel, 3x3, [SE], add the shortcut, ReLU."""
    unit = partial(selective_kernel, sk=st.sk)
    convs = [ConvSpec(st.width, 3, ctx.stride, unit=unit, part="sk",
                      dilation=ctx.first_dilation, downsamples=True),
             ConvSpec(st.width, 3, dilation=ctx.dilation)]
    return residual_unit(b, x, convs, st.placement, st.attention, ctx)


def lower_sk_bottleneck(b: GraphBuilder, x: str, st: SKBottleneckStage, ctx: BlockCtx) -> str:
    """1x1, the selective kernel, 1x1, [SE], add the shortcut, ReLU."""
    v = st.inner()
    unit = partial(selective_kernel, sk=st.sk)
    convs = [ConvSpec(v, 1), ConvSpec(v, 3, ctx.stride, st.cardinality, unit, "sk",
                      dilation=ctx.first_dilation, downsamples=True),
             ConvSpec(st.width, 1)]
    return residual_unit(b, x, convs, st.placement, st.attention, ctx)


block(SKBasicStage, PyClass("SelectiveKernelBasic", "Selective-kernel basic block: the "
                                                    "selective kernel, 3x3"))(lower_sk_basic)
block(SKBottleneckStage, PyClass("SelectiveKernelBottleneck", "Selective-kernel "
                                 "bottleneck: 1x1, the selective kernel, 1x1",
                                 inner=True))(lower_sk_bottleneck)


# --- reading a state_dict ---------------------------------------------------------------

# the attention's (ratio, divisor) of timm's SKNets: skresnet50/50d, skresnet18/34,
# skresnext50_32x4d; another width is read as its own ratio
_ATTN = ((1 / 16, 8), (1 / 8, 16), (1 / 16, 32))


def _read_sk(k: Keys, unit: str, cin: int, source: str) -> tuple[dict[str, Any], int]:
    """The selective kernel at ``unit`` (``layer1.0.conv1``) reading ``cin`` channels:
    the fields its widths tell (a split input, the attention's ratio and divisor) and its
    paths' groups. A split input and groups are one reading of a path's shape: an
    unsplit input in paths × the groups reads alike; a split with one group is taken."""
    paths = 0
    while k.get(f"{unit}.paths.{paths}.conv") is not None:
        paths += 1
    conv, attn = k.get(f"{unit}.paths.0.conv", CONV), k.out(f"{unit}.attn.fc_reduce")
    if conv is None or attn is None or paths < 2:
        raise refuse(source, k.key(f"{unit}.paths.0.conv"), MISSING)
    width = conv[0]
    split = conv[1] * paths == cin
    groups = 1 if split else cin // conv[1]
    sk: dict[str, Any] = {} if split else {"split_input": False}
    if paths != 2:
        sk["dilations"] = list(range(1, paths + 1))
    return {"sk": sk, "_attn": (width, attn)}, groups


def _attention_widths(stages: list[dict[str, Any]]) -> None:
    """The attention's ratio and divisor: timm's first pair that gives every stage's
    width, else each stage's own ratio."""
    widths = [s.pop("_attn") for s in stages]
    fit = next(((r, d) for r, d in _ATTN if all(
        SelectiveKernel(attn_ratio=r, attn_divisor=d).attn_width(w) == a for w, a in widths)),
        None)
    for stage, (w, a) in zip(stages, widths, strict=True):
        r, d = fit or (a / w, 1)
        if (r, d) != _ATTN[0]:
            stage["sk"] |= {"attn_ratio": r, "attn_divisor": d}
        if not stage["sk"]:
            del stage["sk"]


@reader(first="conv1.paths.0.conv", family="sknet", finish=_attention_widths)
def read_sk_basic(k: Keys, blocks: list[str], preact: bool,
                  source: str) -> dict[str, Any] | None:
    """A stage of selective-kernel basic blocks; a block after the first reads the
    stage's width, the first its projection's input."""
    if k.get(f"{blocks[0]}.conv3") is not None:
        return None
    width = stage_width(k, blocks, "conv2", source)
    if len(blocks) > 1:
        block, cin = blocks[1], width
    else:
        proj = k.get(f"{blocks[0]}.downsample.0", CONV)
        block, cin = blocks[0], proj[1] if proj else width
    fields, groups = _read_sk(k, f"{block}.conv1", cin, source)
    if groups != 1:
        raise refuse(source, k.key(f"{block}.conv1.paths.0.conv"), f"paths of {groups} "
                     "groups; a selective-kernel basic block has one")
    return {"block": "sk_basic", "depth": len(blocks), "width": width, **fields}


@reader(first="conv1", family="sknet", finish=_attention_widths)
def read_sk_bottleneck(k: Keys, blocks: list[str], preact: bool,
                       source: str) -> dict[str, Any] | None:
    """A stage of selective-kernel bottlenecks: the inner width, the cardinality and the
    base width it gives."""
    width = stage_width(k, blocks, "conv3", source)
    inner = k.out(f"{blocks[0]}.conv1")
    if inner is None:
        raise refuse(source, k.key(f"{blocks[0]}.conv1"), MISSING)
    fields, card = _read_sk(k, f"{blocks[0]}.conv2", inner, source)
    base = -(-inner // card * 64 // (width // 4))  # the least that gives the inner width
    if inner_width(width, 4, base, card) != inner:
        raise refuse(source, k.key(f"{blocks[0]}.conv1"), f"an inner width {inner} that no "
                     f"base width of the stage width {width} gives")
    out: dict[str, Any] = {"block": "sk_bottleneck", "depth": len(blocks), "width": width}
    if card > 1:
        out["cardinality"] = card
    if base != 64:
        out["base_width"] = base
    return out | fields
