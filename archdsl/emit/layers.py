"""archdsl's own torch layers: what the ops table names where torch has no module of its
own (``archdsl.emit.layers.NAME``): ECA's channel conv, the anti-aliasing blur, weight-
standardised convs, EvoNorm-S0, FRN, option A's zero-padded shortcut and the joins, sums
and softmaxes across a branch's channel groups."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def pad_channels(x: torch.Tensor, extra: int, stride: int) -> torch.Tensor:
    """Shortcut option A: subsample by ``stride``, append ``extra`` zero channels."""
    return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, extra))


def avg_pool_same(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """A k×k average at stride 1 over the map zero-padded to keep its size (the padding
    after the last row and column, and counted: timm's AvgPool2dSame)."""
    lo = (kernel - 1) // 2
    return F.avg_pool2d(F.pad(x, (lo, kernel - 1 - lo, lo, kernel - 1 - lo)), kernel, 1)


class ChannelConv(nn.Conv1d):
    """ECA's k-tap 1-D conv across the channels of a pooled (N, C, 1, 1) map (one input
    and one output channel, zero padding, no bias; timm's ``EcaModule.conv``)."""

    def __init__(self, kernel: int) -> None:
        super().__init__(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.view(x.shape[0], 1, -1)).view_as(x)


class BlurPool(nn.Module):
    """Anti-aliased downsampling (Zhang, 2019): a k×k binomial filter per channel, reflect
    padding, stride 2 (timm's BlurPool2d; the filter is a constant, not in state_dict)."""

    def __init__(self, channels: int, size: int, stride: int) -> None:
        super().__init__()
        row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
        row = row / row.sum()
        self.register_buffer("filt", (row[:, None] * row[None, :]).expand(
            channels, 1, size, size).contiguous(), persistent=False)
        self.stride, self.pad = stride, size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.conv2d(x, self.filt, stride=self.stride, groups=x.shape[1])


def standardized(weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Weight standardisation (Qiao et al., 2019): each output channel's weights shifted
    to mean 0 and scaled by 1/sqrt(variance + ε), the variance biased as BN's."""
    var, mean = torch.var_mean(weight, dim=(1, 2, 3), unbiased=False, keepdim=True)
    return (weight - mean) * torch.rsqrt(var + eps)


class StdConv2d(nn.Conv2d):
    """A conv whose weights are standardised on every call (BiT; timm's StdConv2d): the
    stored weights are the raw ones, as timm's state_dict holds them."""

    def __init__(self, *args: Any, eps: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, standardized(self.weight, self.eps), self.bias)


class EvoNormS0(nn.Module):
    """EvoNorm-S0 (Liu et al., "Evolving Normalization-Activation Layers", 2020) as timm's
    EvoNorm2dS0: x·σ(v·x) / std(x over each sample's group of channels) ·γ + β, the std
    biased, +ε under the root; without its activation (``act`` false) only ·γ + β."""

    def __init__(self, channels: int, groups: int, eps: float, act: bool) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels)) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is not None:
            g = x.unflatten(1, (self.groups, -1))
            std = (g.var(dim=(2, 3, 4), unbiased=False, keepdim=True) + self.eps).sqrt()
            gated = x * torch.sigmoid(x * self.v.view(1, -1, 1, 1))
            x = (gated.view_as(g) / std).view_as(x)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class FilterResponseNorm(nn.Module):
    """Filter Response Normalization with a thresholded linear unit (Singh and Krishnan,
    2020) as timm's FilterResponseNormTlu2d: max(γ·x / √(mean over the map of x² + ε) + β,
    τ); without its activation (``act`` false) no τ and no max."""

    def __init__(self, channels: int, eps: float, act: bool) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.tau = nn.Parameter(torch.zeros(channels)) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + self.eps)
        x = x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return x if self.tau is None else torch.maximum(x, self.tau.view(1, -1, 1, 1))


def concat(*xs: torch.Tensor) -> torch.Tensor:
    """Maps joined along the channels (Res2Net's splits, SKNet's stacked paths)."""
    return torch.cat(xs, 1)


def split_sum(x: torch.Tensor, parts: int) -> torch.Tensor:
    """The sum of ``x``'s ``parts`` equal channel splits (ResNeSt's radix, SKNet's paths)."""
    return x.unflatten(1, (parts, -1)).sum(1)


def split_softmax(x: torch.Tensor, parts: int) -> torch.Tensor:
    """A softmax across ``x``'s ``parts`` equal channel splits (SKNet's paths)."""
    c = x.shape[1]  # the batch as -1: a traced x.shape[0] would be the tracing batch's
    return x.reshape(-1, parts, c // parts).softmax(1).reshape(-1, c, 1, 1)


def radix_softmax(x: torch.Tensor, radix: int, cardinality: int) -> torch.Tensor:
    """timm's RadixSoftmax: logits ordered (group, split, channel), a softmax across the
    splits, the result split-major."""
    c = x.shape[1]
    y = x.reshape(-1, cardinality, radix, c // (cardinality * radix)).transpose(1, 2)
    return y.softmax(1).reshape(-1, c, 1, 1)
