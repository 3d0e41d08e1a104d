"""The torch emitter: a ``torch.fx.GraphModule`` generated straight from the IR.

Ops with parameters become submodules at their qualified names (the state_dict
prefixes); everything else is a plain function call in the generated forward,
so a call runs exactly the IR's ops with no interpretation.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import fx, nn

from ..ir.graph import Graph, Node
from ..spec.schema import Spec


class ArchdslModule(fx.GraphModule):
    """A ``torch.fx.GraphModule`` that keeps archdsl's attributes (``archdsl_graph``, the
    IR the fusion executor and the exporters read back; ``archdsl_applied``) through
    ``copy.deepcopy``, which rebuilds a GraphModule from its graph and drops them."""

    KEPT = ("archdsl_graph", "archdsl_applied")

    def __deepcopy__(self, memo: dict[int, Any]) -> fx.GraphModule:
        res = super().__deepcopy__(memo)
        for key in self.KEPT:
            if key in self.__dict__:  # immutable (a frozen Graph, a tuple): shared
                setattr(res, key, self.__dict__[key])
        return res


def pad_channels(x: torch.Tensor, extra: int, stride: int) -> torch.Tensor:
    """Shortcut option A: subsample by ``stride``, append ``extra`` zero channels."""
    return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, extra))


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


def _conv(n: Node) -> nn.Module:
    a = n.attrs
    kw = {"eps": a["standardize"]} if "standardize" in a else {}
    return (StdConv2d if kw else nn.Conv2d)(
        a["in_channels"], a["out_channels"], a["kernel"], stride=a["stride"],
        padding=a["padding"], groups=a["groups"], bias=a["bias"], **kw)


MODULES: dict[str, Callable[[Node], nn.Module]] = {
    "conv2d": _conv,
    "channel_conv": lambda n: ChannelConv(n.attrs["kernel"]),
    "blur_pool": lambda n: BlurPool(n.shape[0], n.attrs["size"], n.attrs["stride"]),
    "batch_norm": lambda n: nn.BatchNorm2d(n.shape[0], eps=n.attrs["eps"]),
    "group_norm": lambda n: nn.GroupNorm(n.attrs["groups"], n.shape[0], eps=n.attrs["eps"]),
    "evonorm_s0": lambda n: EvoNormS0(n.shape[0], n.attrs["groups"], n.attrs["eps"],
                                      n.attrs["act"]),
    "frn": lambda n: FilterResponseNorm(n.shape[0], n.attrs["eps"], n.attrs["act"]),
    "linear": lambda n: nn.Linear(n.attrs["in_features"], n.attrs["out_features"],
                                  bias=n.attrs["bias"]),
    "dropout": lambda n: nn.Dropout(n.attrs["p"]),
}

Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

FUNCTIONS: dict[str, Callable[[Node], Call]] = {
    "relu": lambda n: (F.relu, (), {}),
    "sigmoid": lambda n: (torch.sigmoid, (), {}),
    "add": lambda n: (operator.add, (), {}),
    "mul": lambda n: (operator.mul, (), {}),
    "one_minus": lambda n: (torch.rsub, (1.0,), {}),
    "scale": lambda n: (operator.mul, (n.attrs["factor"],), {}),
    "max_pool": lambda n: (F.max_pool2d, (n.attrs["kernel"], n.attrs["stride"],
                                          n.attrs["padding"]),
                           {"ceil_mode": n.attrs["ceil_mode"]}),
    "avg_pool": lambda n: (F.avg_pool2d, (n.attrs["kernel"], n.attrs["stride"],
                                          n.attrs["padding"]),
                           {"ceil_mode": n.attrs["ceil_mode"],
                            "count_include_pad": n.attrs["count_include_pad"]}),
    "global_avg_pool": lambda n: (F.adaptive_avg_pool2d, (1,), {}),
    "flatten": lambda n: (torch.flatten, (1,), {}),
    "pad": lambda n: (F.pad, ((n.attrs["padding"],) * 4,), {"value": 0.0}),
    "pad_channels": lambda n: (pad_channels, (n.attrs["out_channels"] - n.attrs["in_channels"],
                                              n.attrs["stride"]), {}),
}


def _init(module: nn.Module) -> None:
    """torchvision's initialisation: He normal (fan_out) convs, BN γ=1, β=0. Nothing on
    the meta device, where there are no values (and where torch's normal_ would import
    the whole of torch._dynamo, seconds, to draw none)."""
    if next(module.parameters(recurse=False), torch.empty(0)).is_meta:
        return
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def emit(graph: Graph) -> fx.GraphModule:
    """The IR as a GraphModule whose state_dict keys are the IR's qualified names."""
    fxg = fx.Graph()
    values: dict[str, fx.Node] = {}
    modules: dict[str, nn.Module] = {}
    for n in graph:
        args = tuple(values[i] for i in n.inputs)
        hint = n.name.replace(".", "_")
        if n.op == "input":
            values[n.name] = fxg.placeholder(hint)
        elif n.op in MODULES:
            modules[n.name] = MODULES[n.op](n)
            values[n.name] = fxg.call_module(n.name, args)
        elif n.op in FUNCTIONS:
            fn, extra, kwargs = FUNCTIONS[n.op](n)
            values[n.name] = fxg.create_node("call_function", fn, args + extra, kwargs,
                                             name=hint)
        else:
            raise NotImplementedError(f"{n.name}: the torch emitter has no rule for op "
                                      f"{n.op!r}")
    fxg.output(values[graph.output.name])
    model = ArchdslModule(modules, fxg, class_name="ArchdslNet")
    model.apply(_init)
    model.archdsl_graph = graph  # lets analyses and the fusion executor read the IR back
    return model


def build_model(spec_or_path: Spec | Graph | str | os.PathLike[str]) -> fx.GraphModule:
    """Build the module of a Spec, a lowered Graph, or a spec file."""
    if isinstance(spec_or_path, Graph):
        graph = spec_or_path
    elif isinstance(spec_or_path, Spec):
        from ..lower import lower

        graph = lower(spec_or_path)
    else:
        from ..load import load_spec_with_graph

        graph = load_spec_with_graph(spec_or_path)[1]
    return emit(graph)


def check_output(model: nn.Module, graph: Graph) -> None:
    """Run one image through ``model`` (on its device: the meta device checks shapes
    without computing) and check the shape the IR predicts."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        y = model(torch.zeros((1, *graph.input.shape), device=device))
    model.train(was_training)
    if tuple(y.shape[1:]) != graph.output.shape:
        raise RuntimeError(f"internal error: the built module outputs {tuple(y.shape[1:])}, "
                           f"the IR predicts {graph.output.shape}")
