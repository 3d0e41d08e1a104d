"""The layers a block builds with, chosen once from the spec (timm's ``LayerFn`` is the
model): the norm kind, the conv kind (plain or weight-standardised), the anti-aliased
downsampling and the channel attentions, each a registry entry. Blocks and stems call
``Layers``; none reads a spec section or a builder flag to decide what a layer is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ir.graph import GraphBuilder
from ..ir.shapes import ShapeError
from ..spec.fields import Norm


@dataclass(frozen=True)
class NormKind:
    """A normalization: the op it lowers to with its attributes, and whether it carries
    its own activation (EvoNorm-S0, FRN: a ReLU straight after it is its ``act``)."""

    op: str
    attrs: Callable[[Norm, int], dict[str, Any]]  # (the spec's norm, channels normed)
    carries_act: bool = False


def _grouped(n: Norm, channels: int) -> dict[str, Any]:
    if n.group_size and channels % n.group_size:
        raise ShapeError(f"a group norm of {n.group_size} channels a group over {channels} "
                         "channels; every normed width must be a multiple", "norm.group_size")
    return {"groups": n.groups_of(channels), "eps": n.eps}


NORMS: dict[str, NormKind] = {
    "batch": NormKind("batch_norm", lambda n, c: {"eps": n.eps}),
    "frozen_batch": NormKind("batch_norm", lambda n, c: {"eps": n.eps, "frozen": True}),
    "group": NormKind("group_norm", _grouped),
    "evonorm_s0": NormKind("evonorm_s0", _grouped, carries_act=True),
    "frn": NormKind("frn", lambda n, c: {"eps": n.eps}, carries_act=True),
}


def _blur(b: GraphBuilder, x: str, name: str, size: int, stride: int) -> str:
    return b.add("blur_pool", name, (x,), size=size, stride=stride)


def _avg(b: GraphBuilder, x: str, name: str, size: int, stride: int) -> str:
    if stride == 1:  # timm's AvgPool2d(1): the identity
        return x
    return b.add("avg_pool", name, (x,), kernel=stride, stride=stride, padding=0,
                 ceil_mode=False, count_include_pad=True)


# the anti-aliased stride (2; 1 where a dilated stage starts) after a conv run at stride 1
# (spec ``antialias.kind``)
DOWNSAMPLES: dict[str, Callable[[GraphBuilder, str, str, int, int], str]] = {
    "blur": _blur, "avg": _avg}


@dataclass(frozen=True)
class Layers:
    """What ``norm``, ``conv``, ``act`` and ``downsample`` add for one spec."""

    norm_spec: Norm = field(default_factory=Norm)
    standardize: float | None = None  # weight standardisation's ε, for convs without bias
    antialias: tuple[str, int] | None = None  # (DOWNSAMPLES kind, blur taps)
    act_op: str = "relu"  # the spec's activation (``act.kind``)

    @classmethod
    def of(cls, norm: Norm, standardize: float | None,
           antialias: tuple[str, int] | None, act: str = "relu") -> Layers:
        return cls(norm, standardize, antialias, act)

    @property
    def norm_kind(self) -> NormKind:
        return NORMS[self.norm_spec.kind]

    def _norm_attrs(self, b: GraphBuilder, x: str) -> dict[str, Any]:
        return self.norm_kind.attrs(self.norm_spec, b.shape(x)[0])

    def act(self, b: GraphBuilder, x: str, name: str) -> str:
        """The spec's activation."""
        return b.act(x, name, self.act_op)

    def conv(self, b: GraphBuilder, x: str, name: str, out: int, kernel: int, *,
             stride: int = 1, groups: int = 1, bias: bool = False, dilation: int = 1) -> str:
        """A conv, padded to keep the map at stride 1; one without a bias standardises its
        weights where the spec says so (BiT's StdConv2d; SE's FCs and a conv classifier,
        with biases, keep plain ones)."""
        ws = {} if bias or self.standardize is None else {"standardize": self.standardize}
        if dilation > 1:
            ws["dilation"] = dilation
        return b.conv(x, name, out, kernel, stride=stride, groups=groups, bias=bias,
                      padding=dilation * (kernel // 2), **ws)

    def norm(self, b: GraphBuilder, x: str, name: str) -> str:
        """The spec's normalization with no activation after it."""
        extra = {"act": False} if self.norm_kind.carries_act else {}
        return b.add(self.norm_kind.op, name, (x,), **self._norm_attrs(b, x), **extra)

    def norm_act(self, b: GraphBuilder, x: str, name: str, act_name: str) -> str:
        """The normalization then the activation: one node where the norm carries its
        activation (``act: true``; ``act_name`` unused), else two."""
        if self.norm_kind.carries_act:
            return b.add(self.norm_kind.op, name, (x,), **self._norm_attrs(b, x), act=True)
        return self.act(b, self.norm(b, x, name), act_name)

    def downsample(self, b: GraphBuilder, x: str, name: str, stride: int = 2) -> str:
        """The anti-aliased stride after a conv run at stride 1 (timm's blur at stride 1
        where a dilated stage starts)."""
        if self.antialias is None:
            raise ValueError(f"{name}: an anti-aliased downsample where the spec has none")
        kind, size = self.antialias
        return DOWNSAMPLES[kind](b, x, name, size, stride)
