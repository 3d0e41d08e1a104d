"""The bottleneck block family: 1x1, 3x3 (grouped for ResNeXt), 1x1 [+SE] and its
pre-activation form — schemas, lowering, generated-Python classes and the state_dict
reader."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..importer.draft import refuse
from ..importer.keys import CONV, MISSING, Keys, stage_width
from ..ir.graph import GraphBuilder
from ..spec.fields import FieldError, PosInt, StageBase
from .common import PLACEMENT_DOC, BlockCtx, ConvSpec, Placement, residual_unit
from .registry import PyClass, block, reader


def inner_width(width: int, expansion: int, base_width: int, cardinality: int) -> int:
    """torchvision's inner width: floor(width / expansion × base_width / 64) × cardinality."""
    return width // expansion * base_width // 64 * cardinality


def check_expansion(width: int, inner: int, base_width: int) -> None:
    """A bottleneck of the fixed expansion 4 (timm's ResNeSt, SKNet and Res2Net blocks):
    its width a multiple of 4, its inner width at least a channel a group."""
    if width % 4:
        raise FieldError("width", f"{width} is not divisible by the expansion 4; allowed: "
                                  "multiples of 4")
    if inner < 1:
        raise FieldError("base_width", f"gives {width // 4} × {base_width} / 64 < 1 channel "
                                       "per group; raise it")


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
    inner_widths: tuple[tuple[PosInt, PosInt], ...] | None = Field(
        None, description="per block, the widths of the first 1x1 and of the 3x3 (pruned "
                          "nets: timm's ecaresnet50d_pruned); overrides inner_width, "
                          "base_width and reduce_first, and frees width from the expansion",
        examples=[[[47, 18], [52, 22], [64, 35]]])
    reduce_first: PosInt = Field(
        1, description="the first 1x1 conv outputs inner width / reduce_first channels "
                       "(SENet-154's 2; timm's block_reduce_first)", examples=[2])
    placement: Placement = Field("post", description=PLACEMENT_DOC)

    def inner(self) -> int:
        """Channels of the 3x3 conv (torchvision's formula)."""
        if self.inner_width is not None:
            return self.inner_width
        return inner_width(self.width, self.expansion, self.base_width, self.cardinality)

    def check(self) -> None:
        if self.inner_widths is not None:
            self._check_inner_widths()
        else:
            self._check_inner()
        super().check()

    def _check_inner(self) -> None:
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
        first, unit = self.inner() // self.reduce_first, self.cardinality
        if first < 1 or first % unit:
            raise FieldError("reduce_first", f"leaves floor({self.inner()} / "
                             f"{self.reduce_first}) = {first} channels for the first 1x1, "
                             f"not a positive multiple of the 3x3's {unit} groups; allowed: "
                             f"a reduce_first that leaves one (e.g. 1)")

    def _check_inner_widths(self) -> None:
        for other, value in (("inner_width", self.inner_width is not None),
                             ("reduce_first", self.reduce_first != 1)):
            if value:
                raise FieldError("inner_widths", f"given with {other}, which it overrides; "
                                                 f"allowed: one of inner_widths and {other}")
        widths = self.inner_widths or ()
        if len(widths) != self.depth:
            raise FieldError("inner_widths", f"{len(widths)} pairs for {self.depth} blocks; "
                                             "allowed: one [1x1, 3x3] pair a block")
        for i, pair in enumerate(widths):
            if any(w % self.cardinality for w in pair):
                raise FieldError("inner_widths", f"block {i}'s {list(pair)} are not "
                                 f"multiples of the cardinality {self.cardinality}; allowed: "
                                 f"multiples of {self.cardinality}")

    def widths(self, index: int) -> tuple[int, int]:
        """The first 1x1's and the 3x3's widths in block ``index`` of the stage."""
        if self.inner_widths is not None:
            return self.inner_widths[index]
        return self.inner() // self.reduce_first, self.inner()


class PreactBottleneckStage(BottleneckStage):
    """Pre-activation bottlenecks (ResNet-v2, He et al., 2016): BN-ReLU before each conv;
    a projection reads the first BN-ReLU's output and has no BN of its own."""

    block: Literal["preact_bottleneck"] = Field(description="block kind")  # type: ignore[assignment]
    placement: Placement = Field("full_preact", description=PLACEMENT_DOC)


def lower_bottleneck(b: GraphBuilder, x: str, st: BottleneckStage, ctx: BlockCtx) -> str:
    """1x1 reduce, 3x3 (grouped), 1x1 expand, [SE], add the shortcut, ReLU (in the
    default placement)."""
    s1, s3 = (ctx.stride, 1) if st.stride_on == "1x1" else (1, ctx.stride)
    first, inner = st.widths(ctx.index)
    convs = [ConvSpec(first, 1, s1, downsamples=st.stride_on == "1x1"),
             ConvSpec(inner, 3, s3, st.cardinality, dilation=ctx.first_dilation,
                      downsamples=st.stride_on == "3x3"),
             ConvSpec(st.width, 1)]
    return residual_unit(b, x, convs, st.placement, st.attention, ctx)


block(BottleneckStage, PyClass("Bottleneck", "Bottleneck: 1x1, 3x3, 1x1",
                               inner=True))(lower_bottleneck)
block(PreactBottleneckStage, PyClass(
    "PreActBottleneck", "Pre-activation bottleneck: (BN, ReLU, conv) x 3",
    inner=True))(lower_bottleneck)


def _widths(k: Keys, blocks: list[str], width: int, where: str,
            source: str) -> dict[str, Any]:
    """cardinality, and base_width, inner_width, reduce_first or inner_widths."""
    pairs = []
    groups = set()
    for b in blocks:
        first, inner = k.out(f"{b}.conv1"), k.out(f"{b}.conv2")
        per_group = k.get(f"{b}.conv2", CONV)
        if first is None or inner is None or per_group is None:
            raise refuse(source, k.key(f"{b}.conv2"), MISSING)
        pairs.append((first, inner))
        groups.add(first // per_group[1])
    if len(groups) != 1:
        raise refuse(source, where, f"the 3x3 convs of one stage have {sorted(groups)} "
                     "groups; a stage has one cardinality")
    card = groups.pop()
    out: dict[str, Any] = {"cardinality": card}
    if len(set(pairs)) > 1:
        return {**out, "inner_widths": [list(p) for p in pairs]}
    first, inner = pairs[0]
    base, rest = divmod(inner * 64, max(width // 4 * card, 1))
    if width % 4 == 0 and not rest and inner_width(width, 4, base, card) == inner:
        out["base_width"] = base
    else:
        out["inner_width"] = inner
    if first != inner:
        reduce = inner // first
        if reduce < 1 or inner // reduce != first:
            return {"cardinality": card, "inner_widths": [list(p) for p in pairs]}
        out["reduce_first"] = reduce
    return out


@reader(first="conv1")
def read_bottleneck(k: Keys, blocks: list[str], preact: bool,
                    source: str) -> dict[str, Any] | None:
    """A stage of blocks with three convs: width, cardinality and inner widths."""
    if k.get(f"{blocks[0]}.conv3") is None:
        return None
    width = stage_width(k, blocks, "conv3", source)
    return {"block": "preact_bottleneck" if preact else "bottleneck", "depth": len(blocks),
            "width": width,
            **_widths(k, blocks, width, k.key(f"{blocks[0]}.conv2"), source)}
