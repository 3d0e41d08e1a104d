"""The spec schema: the top-level sections and the registered stage and stem kinds."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, StrictInt, field_validator, model_validator

from ..blocks import BLOCKS, STEMS
from ..blocks.shortcut import Shortcut
from ..layouts import LAYOUTS
from .fields import Act, Antialias, Conv, FieldError, Model, Norm, PosInt, Ratio

MAX_BLOCKS = 2000  # ResNet-1001 has 333; beyond this a spec is a mistake or an attack

Stage = Annotated[Union[tuple(k.schema for k in BLOCKS.values())],  # noqa: UP007
                  Field(discriminator="block")]
Stem = Annotated[Union[tuple(k.schema for k in STEMS.values())],  # noqa: UP007
                 Field(discriminator="kind")]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class Input(Model):
    """The image the network reads."""

    channels: PosInt = Field(3, description="input channels", examples=[3])
    size: PosInt | tuple[PosInt, PosInt] = Field(
        224, description="N for N×N, or [H, W]", examples=[224, [160, 192]])

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: int) -> int:
        if v > 4096:
            raise ValueError(f"{v} input channels is too many; allowed: 1 to 4096")
        return v

    @field_validator("size", mode="before")
    @classmethod
    def _size_form(cls, v: object) -> object:
        if isinstance(v, list) and len(v) != 2:
            raise ValueError(f"expected N or [H, W], got a list of {len(v)}")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: int | tuple[int, int]) -> int | tuple[int, int]:
        if max(v if isinstance(v, tuple) else (v,)) > 16384:
            raise ValueError(f"{v} is too large; allowed: 1 to 16384 pixels a side")
        return v

    @property
    def hw(self) -> tuple[int, int]:
        return self.size if isinstance(self.size, tuple) else (self.size, self.size)


class Head(Model):
    """Global average pool, flatten, [dropout], fully connected classifier."""

    classes: Annotated[StrictInt, Field(ge=0)] = Field(
        1000, description="outputs of the classifier; 0: no classifier, the output is the "
                          "pooled features (timm's num_classes=0)", examples=[1000, 0])
    dropout: Ratio = Field(0.0, description="dropout before the classifier (train only)",
                           examples=[0.2])
    norm: bool = Field(False, description="a final BN and ReLU before pooling, as "
                                          "pre-activation (ResNet-v2) nets end")
    act: bool = Field(False, description="a final activation, without a norm, before "
                                         "pooling (timm's RegNetV and regnetz_040: "
                                         "final_conv is the activation)")
    conv: PosInt | None = Field(None, description="a final 1x1 conv, norm and activation "
                                                  "to this many channels before pooling "
                                                  "(RegNetZ's num_features: final_conv)",
                                examples=[1024])

    @model_validator(mode="after")
    def _final(self) -> Head:
        if self.act and (self.norm or self.conv):
            other = "norm" if self.norm else "conv"
            raise FieldError("act", f"{other} already ends with the activation; allowed: "
                                    f"one of act and {other}")
        if self.norm and self.conv:
            raise FieldError("conv", "a final conv after the final norm; allowed: one of "
                                     "norm and conv")
        if self.conv is not None and self.conv > 65536:
            raise FieldError("conv", f"{self.conv} channels; allowed: 1 to 65536")
        return self


class Spec(Model):
    """A complete (resolved) residual-network spec."""

    name: str = Field(pattern=NAME_PATTERN, description="model name: letters, digits, "
                      "'_', '.', '-'", examples=["resnext50_32x4d"])
    input: Input = Field(default_factory=Input, description="the image the network reads",
                         examples=[{"channels": 3, "size": 224}])
    stem: Stem = Field(default_factory=lambda: STEMS["classic"].schema(kind="classic"),
                       description="what runs before the first stage, by kind",
                       examples=[{"kind": "classic", "width": 64}])
    stages: tuple[Stage, ...] = Field(
        min_length=1, max_length=64, description="the stages in order; the first block of "
        "each carries its stride and projection", examples=[[
            {"block": "bottleneck", "depth": 3, "width": 256}]])
    shortcut: Shortcut = Field(default_factory=Shortcut, description="shortcut policy of "
                               "every block", examples=[{"kind": "B"}])
    head: Head = Field(default_factory=Head, description="pooling and classifier",
                       examples=[{"classes": 1000}])
    norm: Norm = Field(default_factory=Norm, description="the normalization layers' kind: "
                       "batch (default), group, evonorm_s0 or frn",
                       examples=[{"kind": "group", "groups": 32}])
    act: Act = Field(default_factory=Act, description="the activation's kind: relu "
                     "(default) or silu", examples=[{"kind": "silu"}])
    conv: Conv = Field(default_factory=Conv, description="the convs' weights: plain "
                       "(default) or standardized (BiT)",
                       examples=[{"kind": "standardized", "eps": 1e-8}])
    antialias: Antialias | None = Field(
        None, description="anti-aliased downsampling in every strided block and the stem",
        examples=[{"kind": "blur"}, {"kind": "avg"}])
    features: tuple[StrictInt, ...] | None = Field(
        None, description="a backbone: the network returns these feature maps, numbered as "
                          "timm's out_indices (0: the stem's last map at reduction 2, 1 to "
                          "N: each stage's output), and ends at the last (no head)",
        examples=[[1, 2, 3, 4], [0, 1, 2, 3, 4]])
    output_stride: Literal[8, 16, 32] | None = Field(
        None, description="the most the network downsamples (timm's output_stride): a "
                          "stage that would stride past it dilates its 3x3 convs instead, "
                          "keeping the map (segmentation backbones: 8 or 16); none: the "
                          "stages' strides", examples=[16, 8])
    layout: Literal[tuple(LAYOUTS)] = Field(  # type: ignore[valid-type]
        "torchvision", description="state_dict naming: torchvision (also timm's ResNet), "
                                   "timm_resnetv2 (timm's ResNetV2), timm_senet (timm's "
                                   "legacy SENet: layer0, pool0, se_module, last_linear), "
                                   "torchvision_regnet (trunk_output.block1.block1-0.f.a.0), "
                                   "timm_regnet (s1.b1.conv1.conv) or timm_regnetv (timm's "
                                   "pre-activation RegNetV: s1.b1.norm1)")

    @field_validator("features")
    @classmethod
    def _features(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and (not v or list(v) != sorted(set(v)) or v[0] < 0):
            raise ValueError(f"{list(v)}: allowed: distinct increasing indices from 0 (the "
                             "stem) to the number of stages")
        return v

    @model_validator(mode="after")
    def _budget(self) -> Spec:
        if self.features is not None and self.features[-1] > len(self.stages):
            raise FieldError("features", f"feature {self.features[-1]} of a network of "
                                         f"{len(self.stages)} stages; allowed: 0 (the stem) "
                                         f"to {len(self.stages)}")
        blocks = sum(s.depth for s in self.stages)
        if blocks > MAX_BLOCKS:
            raise FieldError("stages", f"{blocks} residual blocks in all; allowed: at most "
                                       f"{MAX_BLOCKS}")
        held = LAYOUTS[self.layout].stages
        if held is not None and len(self.stages) != held:
            raise FieldError("stages", f"{len(self.stages)} stages; layout {self.layout} "
                                       f"holds {held} (its library's network has {held})")
        pool = getattr(self.stem, "pool", None)
        if self.antialias is not None and pool in ("max_ceil", "zero_pad_max"):
            raise FieldError("antialias", f"anti-aliasing replaces the stem's padded max-pool, "
                                          f"not its {pool} pool; allowed: stem pool max or "
                                          "conv")
        return self


