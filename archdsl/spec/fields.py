"""Building blocks of the schema shared by every section and block kind."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator


class FieldError(ValueError):
    """A cross-field check that blames one field of the model it runs in."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Model(BaseModel):
    """Frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


PosInt = Annotated[StrictInt, Field(ge=1)]
Ratio = Annotated[float, Field(ge=0.0, lt=1.0)]
ActKind = Literal["relu", "silu"]
ACT_DOC = ("relu: max(x, 0); silu: x·σ(x) (Swish; timm's act_layer='silu', RegNetV/Z and "
           "regnety_040_sgn)")


class Act(Model):
    """The activation after every norm and addition that has one (not SE's gate)."""

    kind: ActKind = Field("relu", description=ACT_DOC)


class SE(Model):
    """Squeeze-and-excitation on the residual branch (Hu et al., 2018)."""

    # what an imported spec writes of an SE whose rounding it assumed (with the fields
    # that differ from their defaults)
    WRITTEN: ClassVar[tuple[str, ...]] = ("ratio", "rounding")

    ratio: PosInt = Field(16, description="reduction ratio r: squeeze C channels to C/r",
                          examples=[16])
    rounding: Literal["floor", "divisor8", "round"] = Field(
        "divisor8",
        description="floor: the SE paper's floor(C/r); divisor8: timm's "
                    "make_divisible(C/r, 8, round_limit=0); round: int(round(C/r)), ties "
                    "to even (RegNet's int(round(in · se_ratio)))")
    of: Literal["output", "input"] = Field(
        "output", description="C, the width the squeeze is sized from: output: the "
                              "channels SE scales (the block's width, ResNet's); input: "
                              "the block's input channels (RegNetY's se_ratio · in)")
    act: ActKind = Field("relu", description="the activation between the FCs: " + ACT_DOC
                         + " (RegNet's SE takes the network's; ResNets' is ReLU)")

    def channels(self, width: int) -> int:
        """Width of the squeeze sized from ``width`` channels (see ``of``)."""
        if self.rounding == "floor":
            return width // self.ratio
        if self.rounding == "round":
            return max(1, round(width / self.ratio))
        v = width / self.ratio
        return max(8, int(v + 4) // 8 * 8)


class Norm(Model):
    """The normalization after every conv (and before, in pre-activation nets)."""

    kind: Literal["batch", "frozen_batch", "group", "evonorm_s0", "frn"] = Field(
        "batch", description="batch: BatchNorm (running statistics, folds into convs); "
                             "frozen_batch: BatchNorm with its statistics and affine "
                             "fixed, buffers not parameters (torchvision's "
                             "FrozenBatchNorm2d, as its pretrained detectors' backbones); "
                             "group: GroupNorm (Wu and He, 2018: statistics per sample "
                             "and group of channels; timm's norm_layer=GroupNorm); "
                             "evonorm_s0: EvoNorm-S0 (Liu et al., 2020), x·σ(v·x) / "
                             "group std ·γ + β, and frn: Filter Response Normalization "
                             "with a TLU (Singh and Krishnan, 2020), max(γ·x / "
                             "√(mean(x²) + ε) + β, τ): each takes the ReLU after it as "
                             "its own activation (timm's EvoNorm2dS0, "
                             "FilterResponseNormTlu2d)")
    groups: PosInt = Field(32, description="channel groups of a group norm or EvoNorm-S0; "
                                           "every normed width must be a multiple",
                           examples=[32])
    group_size: PosInt | None = Field(
        None, description="channels per group instead of a number of groups: each norm "
                          "of C channels has C / group_size groups (timm's "
                          "GroupNormAct(group_size=16), regnety_040_sgn)", examples=[16])
    eps: float = Field(1e-5, gt=0.0, allow_inf_nan=False,
                       description="ε added to the variance (FRN: to the mean of squares)",
                       examples=[1e-5])

    @model_validator(mode="after")
    def _groups(self) -> Norm:
        if self.groups != 32 and self.kind not in ("group", "evonorm_s0"):
            raise FieldError("groups", f"{self.kind} has no channel groups; allowed: groups "
                                       "with kind group or evonorm_s0")
        if self.group_size is not None and (self.kind != "group" or self.groups != 32):
            why = "with groups" if self.kind == "group" else f"{self.kind} has no group size"
            raise FieldError("group_size", f"{why}; allowed: group_size with kind group, "
                                           "without groups")
        return self

    def groups_of(self, channels: int) -> int:
        """The groups of a norm over ``channels`` channels."""
        return channels // self.group_size if self.group_size else self.groups


class Conv(Model):
    """The weights of every conv without a bias (the stem's, the blocks', the
    projections'; not SE's FCs or a conv classifier)."""

    kind: Literal["plain", "standardized"] = Field(
        "plain", description="plain: as stored; standardized: weight standardisation "
                             "(Qiao et al., 2019; BiT): each output channel's weights "
                             "shifted to mean 0 and scaled to variance 1 before the conv "
                             "(timm's StdConv2d)")
    eps: float = Field(1e-6, gt=0.0, allow_inf_nan=False,
                       description="ε added to the weights' variance (timm's "
                                                 "StdConv2d: 1e-6; BiT: 1e-8)",
                       examples=[1e-8])

    @model_validator(mode="after")
    def _eps(self) -> Conv:
        if self.kind == "plain" and self.eps != 1e-6:
            raise FieldError("eps", "plain convs have no weight standardisation; allowed: "
                                    "eps with kind standardized")
        return self


class Antialias(Model):
    """Anti-aliased downsampling (Zhang, "Making Convolutional Networks Shift-Invariant
    Again", 2019): every stride-2 conv of a block runs at stride 1 and a low-pass
    downsampling follows it (after its BN and ReLU); the stem's max-pool is treated alike.
    timm's aa_layer (resnetblur*, resnetaa*)."""

    kind: Literal["blur", "avg"] = Field(
        description="blur: a fixed binomial filter, reflect-padded, at stride 2 (timm's "
                    "BlurPool2d; the stem keeps a 3x3/1 max-pool before it); avg: a 2x2/2 "
                    "average pool (the stem's max-pool becomes one)")
    size: Literal[3, 5] = Field(3, description="taps of the blur filter a side", examples=[3])


class ECA(Model):
    """Efficient channel attention on the residual branch (Wang et al., ECA-Net, 2020):
    global average pool, a 1-D conv of k taps across the channels (no bias), sigmoid,
    scale. Sits where SE would (timm's attn_layer='eca', keys ``se.conv``)."""

    kernel: PosInt | Literal["auto"] = Field(
        "auto", description="taps of the 1-D conv, odd; auto: the paper's (and timm's) "
                            "k = |log2(C) + beta| / gamma rounded to odd, at least 3",
        examples=["auto", 5])
    gamma: float = Field(2.0, gt=0.0, description="γ of the auto kernel size", examples=[2])
    beta: float = Field(1.0, description="b of the auto kernel size", examples=[1])

    @field_validator("kernel", mode="before")
    @classmethod
    def _form(cls, v: object) -> object:
        if v != "auto" and (not isinstance(v, int) or isinstance(v, bool)):
            raise ValueError(f"expected an odd number of taps or 'auto', got {v!r}")
        return v

    @field_validator("kernel")
    @classmethod
    def _odd(cls, v: int | str) -> int | str:
        if isinstance(v, int) and (v % 2 == 0 or v > 255):
            raise ValueError(f"a kernel of {v} taps; allowed: an odd number from 1 to 255 "
                             "(the conv pads (k − 1) / 2 each side)")
        return v

    def size(self, channels: int) -> int:
        """Taps of the conv for a block with ``channels`` output channels."""
        if self.kernel != "auto":
            return int(self.kernel)
        t = int(abs(math.log2(channels) + self.beta) / self.gamma)
        return max(t if t % 2 else t + 1, 3)


class StageBase(Model):
    """Fields every block kind shares."""

    depth: PosInt = Field(description="number of residual blocks", examples=[3])
    width: PosInt = Field(description="output channels of the stage", examples=[256])
    stride: StrictInt = Field(1, description="stride of the stage's first block: 1 or 2",
                              examples=[2], json_schema_extra={"enum": [1, 2]})
    se: SE | None = Field(None, description="squeeze-and-excitation on every block")
    eca: ECA | None = Field(None, description="efficient channel attention (ECA-Net) on "
                                              "every block, where SE would sit")

    @field_validator("stride")
    @classmethod
    def _stride(cls, v: int) -> int:
        if v not in (1, 2):
            raise ValueError(f"a stride of {v} is not supported; allowed: 1 or 2")
        return v

    @field_validator("depth")
    @classmethod
    def _depth(cls, v: int) -> int:
        if v > 1000:
            raise ValueError(f"a depth of {v} blocks is beyond any ResNet; allowed: 1 to 1000")
        return v

    @field_validator("width")
    @classmethod
    def _width(cls, v: int) -> int:
        if v > 65536:
            raise ValueError(f"a width of {v} channels is too large; allowed: 1 to 65536")
        return v

    def out_channels(self) -> int:
        return self.width

    @model_validator(mode="after")
    def _cross_checks(self) -> StageBase:
        self.check()
        return self

    @property
    def attention(self) -> SE | ECA | None:
        """The channel attention of every block: SE, ECA or none."""
        return self.se or self.eca

    def check(self) -> None:
        """Cross-field checks; raise FieldError naming the field to fix."""
        if self.se is not None and self.eca is not None:
            raise FieldError("eca", "a block has one channel attention; allowed: se or "
                                    "eca, not both")
        if self.se is None:
            return
        # ratio ≤ width keeps floor(width / ratio) ≥ 1, so no squeeze is ever empty
        if self.se.ratio > self.width:
            raise FieldError("se", f"ratio {self.se.ratio} exceeds the block's "
                                   f"{self.width} channels; allowed: 1 to {self.width}")
