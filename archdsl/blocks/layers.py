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
from ..spec.fields import Norm


@dataclass(frozen=True)
class NormKind:
    """A normalization: the op it lowers to with its attributes, and whether it carries
    its own activation (EvoNorm-S0, FRN: a ReLU straight after it is its ``act``)."""

    op: str
    attrs: Callable[[Norm], dict[str, Any]]
    carries_act: bool = False


NORMS: dict[str, NormKind] = {
    "batch": NormKind("batch_norm", lambda n: {"eps": n.eps}),
    "group": NormKind("group_norm", lambda n: {"groups": n.groups, "eps": n.eps}),
    "evonorm_s0": NormKind("evonorm_s0", lambda n: {"groups": n.groups, "eps": n.eps},
                           carries_act=True),
    "frn": NormKind("frn", lambda n: {"eps": n.eps}, carries_act=True),
}


def _blur(b: GraphBuilder, x: str, name: str, size: int) -> str:
    return b.add("blur_pool", name, (x,), size=size, stride=2)


def _avg(b: GraphBuilder, x: str, name: str, size: int) -> str:
    return b.add("avg_pool", name, (x,), kernel=2, stride=2, padding=0, ceil_mode=False,
                 count_include_pad=True)


# the anti-aliased stride 2 after a conv run at stride 1 (spec ``antialias.kind``)
DOWNSAMPLES: dict[str, Callable[[GraphBuilder, str, str, int], str]] = {
    "blur": _blur, "avg": _avg}


@dataclass(frozen=True)
class Layers:
    """What ``norm``, ``conv``, ``act`` and ``downsample`` add for one spec."""

    norm_kind: NormKind = NORMS["batch"]
    norm_attrs: dict[str, Any] = field(default_factory=lambda: {"eps": 1e-5})
    standardize: float | None = None  # weight standardisation's ε, for convs without bias
    antialias: tuple[str, int] | None = None  # (DOWNSAMPLES kind, blur taps)

    @classmethod
    def of(cls, norm: Norm, standardize: float | None,
           antialias: tuple[str, int] | None) -> Layers:
        kind = NORMS[norm.kind]
        return cls(kind, kind.attrs(norm), standardize, antialias)

    def conv(self, b: GraphBuilder, x: str, name: str, out: int, kernel: int, *,
             stride: int = 1, groups: int = 1, bias: bool = False) -> str:
        """A conv; one without a bias standardises its weights where the spec says so
        (BiT's StdConv2d; SE's FCs and a conv classifier, with biases, keep plain ones)."""
        ws = {} if bias or self.standardize is None else {"standardize": self.standardize}
        return b.conv(x, name, out, kernel, stride=stride, groups=groups, bias=bias, **ws)

    def norm(self, b: GraphBuilder, x: str, name: str) -> str:
        """The spec's normalization with no activation after it."""
        extra = {"act": False} if self.norm_kind.carries_act else {}
        return b.add(self.norm_kind.op, name, (x,), **self.norm_attrs, **extra)

    def norm_act(self, b: GraphBuilder, x: str, name: str, act_name: str) -> str:
        """The normalization then a ReLU: one node where the norm carries its activation
        (``act: true``; ``act_name`` unused), else two."""
        if self.norm_kind.carries_act:
            return b.add(self.norm_kind.op, name, (x,), **self.norm_attrs, act=True)
        return b.act(self.norm(b, x, name), act_name)

    def downsample(self, b: GraphBuilder, x: str, name: str) -> str:
        """The anti-aliased stride 2 after a conv run at stride 1."""
        if self.antialias is None:
            raise ValueError(f"{name}: an anti-aliased downsample where the spec has none")
        kind, size = self.antialias
        return DOWNSAMPLES[kind](b, x, name, size)
