"""Stems: what runs before the first stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..ir.graph import GraphBuilder
from ..spec.fields import Model, PosInt
from .registry import stem


class ClassicStem(Model):
    """7x7/2 conv, BN, ReLU, 3x3/2 max-pool (ResNet paper, Table 1)."""

    kind: Literal["classic"] = Field(description="stem kind")
    width: PosInt = Field(64, description="channels of the 7x7 conv", examples=[64])


class DeepStem(Model):
    """ResNet-C (Bag of Tricks, 2019): three 3x3 convs (the first at stride 2), then
    BN, ReLU and a 3x3/2 max-pool; timm's keys conv1.0/.3/.6, BNs .1/.4, then bn1."""

    kind: Literal["deep"] = Field(description="stem kind")
    widths: tuple[PosInt, PosInt, PosInt] = Field(
        (32, 32, 64), description="channels of the three 3x3 convs", examples=[[32, 32, 64]])


@stem(ClassicStem)
def lower_classic(b: GraphBuilder, x: str, st: ClassicStem) -> str:
    y = b.conv(x, "conv1", st.width, 7, stride=2)
    y = b.act(b.bn(y, "bn1"), "relu")
    return b.add("max_pool", "maxpool", (y,), kernel=3, stride=2, padding=1)


@stem(DeepStem)
def lower_deep(b: GraphBuilder, x: str, st: DeepStem) -> str:
    w1, w2, w3 = st.widths
    y = b.act(b.bn(b.conv(x, "conv1.0", w1, 3, stride=2), "conv1.1"), "conv1.2")
    y = b.act(b.bn(b.conv(y, "conv1.3", w2, 3), "conv1.4"), "conv1.5")
    y = b.conv(y, "conv1.6", w3, 3)
    y = b.act(b.bn(y, "bn1"), "relu")
    return b.add("max_pool", "maxpool", (y,), kernel=3, stride=2, padding=1)
