"""Stems: what runs before the first stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..ir.graph import GraphBuilder
from ..spec.fields import Model, PosInt
from .layers import Layers
from .registry import stem

StemPool = Literal["max", "max_ceil", "zero_pad_max", "conv"]
POOL_DOC = ("how the stem halves the map at its end: max: a 3x3/2 max-pool, padding 1; "
            "max_ceil: a 3x3/2 max-pool without padding that rounds up (Caffe's, kept by "
            "timm's legacy SENets as pool0); zero_pad_max: a zero pad of 1, then a 3x3/2 "
            "max-pool without padding (BiT's 'fixed' stem: zeros, not −∞, at the border; "
            "keys pad, maxpool); conv: a 3x3/2 conv, BN and ReLU in its place "
            "(ResNet-RS; timm's replace_stem_pool, keys maxpool.0/.1)")
NORM_DOC = ("BN and ReLU after the conv; false for pre-activation nets, whose first block "
            "normalizes its input (timm's ResNetV2 stem is conv and max-pool only)")


class ClassicStem(Model):
    """7x7/2 conv, BN, ReLU, 3x3/2 max-pool (ResNet paper, Table 1)."""

    kind: Literal["classic"] = Field(description="stem kind")
    width: PosInt = Field(64, description="channels of the 7x7 conv", examples=[64])
    norm: bool = Field(True, description=NORM_DOC)
    pool: StemPool = Field("max", description=POOL_DOC)


class CifarStem(Model):
    """One 3x3 conv at stride 1, BN, ReLU, no pooling: the ResNet paper's CIFAR-10 nets
    (section 4.2) and the Identity Mappings paper's ablations."""

    kind: Literal["cifar"] = Field(description="stem kind")
    width: PosInt = Field(16, description="channels of the 3x3 conv", examples=[16])
    norm: bool = Field(True, description=NORM_DOC)


class DeepStem(Model):
    """ResNet-C (Bag of Tricks, 2019): three 3x3 convs (the first at stride 2), then
    BN, ReLU and a 3x3/2 max-pool; timm's keys conv1.0/.3/.6, BNs .1/.4, then bn1."""

    kind: Literal["deep"] = Field(description="stem kind")
    widths: tuple[PosInt, PosInt, PosInt] = Field(
        (32, 32, 64), description="channels of the three 3x3 convs", examples=[[32, 32, 64]])
    norm: bool = Field(True, description="BN and ReLU after the third conv; false for "
                                         "pre-activation nets, whose first block normalizes "
                                         "its input (timm's ResNetV2 deep stems)")
    pool: StemPool = Field("max", description=POOL_DOC)


def _conv_norm(b: GraphBuilder, x: str, width: int, kernel: int, stride: int,
               norm: bool, layers: Layers) -> str:
    y = layers.conv(b, x, "conv1", width, kernel, stride=stride)
    return layers.norm_act(b, y, "bn1", "relu") if norm else y


def _pool(b: GraphBuilder, x: str, pool: str, layers: Layers) -> str:
    """The stem's last halving: a 3x3/2 max-pool or conv, anti-aliased as timm's: the
    conv at stride 1 then the low-pass (keys shift by one), the max-pool at stride 1 then
    the blur, or a 2x2/2 average pool in the max-pool's place."""
    aa = layers.antialias
    if pool == "conv":
        y = layers.conv(b, x, "maxpool.0", b.shape(x)[0], 3, stride=1 if aa else 2)
        if aa:
            y = layers.downsample(b, y, "maxpool.1")
        k = 2 if aa else 1
        return layers.norm_act(b, y, f"maxpool.{k}", f"maxpool.{k + 1}")
    if aa and aa[0] == "blur":
        y = b.add("max_pool", "maxpool.0", (x,), kernel=3, stride=1, padding=1,
                  ceil_mode=False)
        return layers.downsample(b, y, "maxpool.1")
    if aa:
        return layers.downsample(b, x, "maxpool")
    if pool == "zero_pad_max":
        x = b.add("pad", "pad", (x,), padding=1)
    ceil = pool == "max_ceil"
    padding = 1 if pool == "max" else 0
    return b.add("max_pool", "maxpool", (x,), kernel=3, stride=2, padding=padding,
                 ceil_mode=ceil)


class RegNetStem(Model):
    """One 3x3 conv at stride 2, BN, ReLU, no pooling: the RegNet stem (Radosavovic et
    al., 2020; pycls's SimpleStemIN, timm's and torchvision's ``stem``)."""

    kind: Literal["regnet"] = Field(description="stem kind")
    width: PosInt = Field(32, description="channels of the 3x3 conv", examples=[32])
    norm: bool = Field(True, description="BN and activation after the conv; false for "
                                         "pre-activation nets (timm's RegNetV stem is the "
                                         "conv alone)")


@stem(ClassicStem)
def lower_classic(b: GraphBuilder, x: str, st: ClassicStem, layers: Layers) -> str:
    return _pool(b, _conv_norm(b, x, st.width, 7, 2, st.norm, layers), st.pool, layers)


@stem(CifarStem)
def lower_cifar(b: GraphBuilder, x: str, st: CifarStem, layers: Layers) -> str:
    return _conv_norm(b, x, st.width, 3, 1, st.norm, layers)


@stem(DeepStem)
def lower_deep(b: GraphBuilder, x: str, st: DeepStem, layers: Layers) -> str:
    w1, w2, w3 = st.widths
    y = layers.norm_act(b, layers.conv(b, x, "conv1.0", w1, 3, stride=2), "conv1.1", "conv1.2")
    y = layers.norm_act(b, layers.conv(b, y, "conv1.3", w2, 3), "conv1.4", "conv1.5")
    y = layers.conv(b, y, "conv1.6", w3, 3)
    if st.norm:
        y = layers.norm_act(b, y, "bn1", "relu")
    return _pool(b, y, st.pool, layers)


@stem(RegNetStem)
def lower_regnet(b: GraphBuilder, x: str, st: RegNetStem, layers: Layers) -> str:
    return _conv_norm(b, x, st.width, 3, 2, st.norm, layers)
