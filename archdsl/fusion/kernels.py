"""The fused kernels archdsl.fuse() runs itself on CUDA: cuDNN's conv+bias+ReLU and
conv+bias+add+ReLU (plain ops elsewhere, so a fused module still runs on the CPU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _cudnn(x: torch.Tensor) -> bool:
    """Whether ``x`` runs cuDNN's fused conv kernels: on CUDA with cuDNN, in a dtype they
    have (not float64), outside ``torch.compile`` (they have no fake kernel; Inductor
    lowers the plain ops itself)."""
    return x.is_cuda and x.dtype != torch.float64 and torch.backends.cudnn.enabled \
        and not torch.compiler.is_compiling()


def _autocast(*ts: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """The operands as autocast would cast a conv's: cuDNN's fused ops have no autocast
    rule, so under ``torch.autocast`` they are cast to its dtype by hand."""
    dev = next(t for t in ts if t is not None).device.type
    if not torch.is_autocast_enabled(dev):
        return ts
    dt = torch.get_autocast_dtype(dev)
    return tuple(t.to(dt) if t is not None else None for t in ts)


class _FusedConv(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
                 padding: int, groups: int, dilation: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.stride, self.padding, self.groups = (stride, stride), (padding, padding), groups
        self.dilation = (dilation, dilation)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return (f"{i * self.groups}, {o}, kernel_size={k}, stride={self.stride[0]}, "
                f"padding={self.padding[0]}, dilation={self.dilation[0]}, groups={self.groups}, "
                f"bias={self.bias is not None}")


class ConvReLU(_FusedConv):
    """relu(conv(x) + b) as one kernel: cuDNN's ``torch.cudnn_convolution_relu`` on CUDA;
    ``conv2d`` then ``relu`` elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, w, b = _autocast(x, self.weight, self.bias)
        if _cudnn(x):
            return torch.cudnn_convolution_relu(x, w, b, self.stride, self.padding,
                                                self.dilation, self.groups)
        return F.relu(F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups))


class ConvAddReLU(_FusedConv):
    """relu(conv(x) + b + z) as one kernel: cuDNN's ``torch.cudnn_convolution_add_relu``
    on CUDA; ``conv2d``, ``add`` and ``relu`` elsewhere."""

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        alias = z is x  # cuDNN before 8.3 read a z that is the input wrongly (torch#62926)
        x, w, b, z = _autocast(x, self.weight, self.bias, z)
        if _cudnn(x) and not alias:
            return torch.cudnn_convolution_add_relu(x, w, z, 1.0, b, self.stride, self.padding,
                                                    self.dilation, self.groups)
        return F.relu(F.conv2d(x, w, b, self.stride, self.padding, self.dilation,
                               self.groups) + z)
