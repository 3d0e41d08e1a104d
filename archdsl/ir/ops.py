"""The ops table: every primitive's shape rule, parameter count and cost, once.

Shapes are ``(C, H, W)`` feature maps or ``(F,)`` vectors, batch excluded.
``macs`` is the conv+linear convention (torchvision's ``_ops``, and
``torch.utils.flop_counter.FlopCounterMode`` total / 2). ``elem`` is the extra
cost that the ``all`` convention adds for everything else, as
``(mac-equivalents, flops)``; docs/counting.md lists each rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Any

Shape = tuple[int, ...]
Attrs = dict[str, Any]


class ShapeError(ValueError):
    """An op whose output would be empty or whose inputs don't fit together; ``field``
    names the spec field to blame (the input size unless said otherwise)."""

    def __init__(self, message: str, field: str = "input.size") -> None:
        super().__init__(message)
        self.field = field


def _out_len(size: int, kernel: int, stride: int, padding: int, ceil: bool = False) -> int:
    """PyTorch's pooling/convolution output length (``pooling_output_shape``)."""
    out = (size + 2 * padding - kernel + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _window(a: Attrs, ins: list[Shape], channels: int) -> Shape:
    c, h, w = ins[0]
    k, s, p = a["kernel"], a["stride"], a.get("padding", 0)
    ceil = a.get("ceil_mode", False)
    out = (channels, _out_len(h, k, s, p, ceil), _out_len(w, k, s, p, ceil))
    if min(out[1:]) <= 0:
        raise ShapeError(f"{k}x{k}/{s} window on a {h}x{w} map leaves nothing")
    return out


def _conv_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if ins[0][0] != a["in_channels"]:
        raise ShapeError(f"expects {a['in_channels']} input channels, gets {ins[0][0]}")
    return _window(a, ins, a["out_channels"])


def _same(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


def _add_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if len(set(ins)) != 1:
        raise ShapeError(f"adds tensors of different shapes {ins}")
    return ins[0]


def _mul_shape(a: Attrs, ins: list[Shape]) -> Shape:
    x, s = ins
    if x == s or s == (x[0], 1, 1):
        return x
    if x == (s[0], 1, 1):
        return s
    raise ShapeError(f"multiplies a {x} map by a {s} tensor; expected equal shapes or a "
                     "(C, 1, 1) channel scale")


def _pad_channels_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    if a["out_channels"] < c:
        raise ShapeError(f"option A zero-pads channels and cannot narrow {c} to "
                         f"{a['out_channels']}; use kind B or C where a stage gets narrower",
                         field="shortcut.kind")
    s = a["stride"]
    return (a["out_channels"], -(-h // s), -(-w // s))


def _group_norm_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if c % a["groups"]:
        raise ShapeError(f"a group norm of {a['groups']} groups over {c} channels; every "
                         f"normed width must be a multiple of the groups", field="norm.groups")
    return ins[0]


def _channel_gate_shape(a: Attrs, ins: list[Shape]) -> Shape:
    x = ins[0]
    if x[1:] != (1, 1):
        raise ShapeError(f"a channel conv reads a pooled (C, 1, 1) map, got {x}")
    return x


def _numel(out: Shape) -> int:
    return prod(out)


def _per_out(n: int = 1, flops: int = 1) -> Callable[[Attrs, list[Shape], Shape], tuple[int, int]]:
    return lambda a, ins, out: (n * _numel(out), flops * _numel(out))


def _window_cost(a: Attrs, ins: list[Shape], out: Shape) -> tuple[int, int]:
    n = _numel(out) * a["kernel"] ** 2
    return n, n


def _conv_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return _numel(out) * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2


def _conv_params(a: Attrs, ins: list[Shape]) -> int:
    weight = a["out_channels"] * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2
    return weight + (a["out_channels"] if a["bias"] else 0)


def _none(*_: Any) -> int:
    return 0


def _no_elem(*_: Any) -> tuple[int, int]:
    return 0, 0


@dataclass(frozen=True)
class OpDef:
    """One primitive: how it shapes, how many parameters it holds, what it costs."""

    shape: Callable[[Attrs, list[Shape]], Shape]
    params: Callable[[Attrs, list[Shape]], int] = _none
    macs: Callable[[Attrs, list[Shape], Shape], int] = _none
    elem: Callable[[Attrs, list[Shape], Shape], tuple[int, int]] = _no_elem
    doc: str = ""
    # ``elem``'s MAC-equivalents as a formula (``out``, ``k²·out``), or the formula of a
    # node's attributes where they decide it
    elem_text: str | Callable[[Attrs], str] = "0"


def _norm_act(shape: Callable[[Attrs, list[Shape]], Shape], with_act: tuple[int, int],
              without: tuple[int, int], doc: str) -> OpDef:
    """A norm with its activation built in (attribute ``act``): γ, β and, when it applies
    the activation, a third per-channel parameter; ``with_act``/``without``: ops and
    FLOPs per output element."""
    def cost(a: Attrs, ins: list[Shape], out: Shape) -> tuple[int, int]:
        n, flops = with_act if a["act"] else without
        return n * _numel(out), flops * _numel(out)
    return OpDef(shape=shape, params=lambda a, ins: (3 if a["act"] else 2) * ins[0][0],
                 elem=cost, elem_text=lambda a: _times_out(with_act if a["act"] else without),
                 doc=doc)


def _times_out(cost: tuple[int, int]) -> str:
    return "out" if cost[0] == 1 else f"{cost[0]}·out"


# attributes a node carries only where they apply (a weight-standardised conv's ε)
OPTIONAL_ATTRS = ("standardize",)

# the normalizations (EvoNorm-S0 and FRN carry their activation: attribute ``act``)
NORM_OPS = ("batch_norm", "group_norm", "evonorm_s0", "frn")

OPS: dict[str, OpDef] = {
    "input": OpDef(shape=lambda a, ins: tuple(a["shape"]), doc="the image batch"),
    "conv2d": OpDef(
        shape=_conv_shape, params=_conv_params, macs=_conv_macs,
        doc="Cout·H·W·(Cin/groups)·k² MACs; FLOPs = 2×MACs (bias adds not counted, "
            "as FlopCounterMode)"),
    "channel_conv": OpDef(
        shape=_channel_gate_shape,
        params=lambda a, ins: a["kernel"], macs=lambda a, ins, out: _numel(out) * a["kernel"],
        doc="ECA's 1-D conv of k taps across the channels of a (C, 1, 1) map, zero-padded, "
            "no bias: C·k MACs"),
    "linear": OpDef(
        shape=lambda a, ins: (a["out_features"],),
        params=lambda a, ins: a["in_features"] * a["out_features"]
        + (a["out_features"] if a["bias"] else 0),
        macs=lambda a, ins, out: a["in_features"] * a["out_features"],
        doc="in·out MACs; FLOPs = 2×MACs"),
    "batch_norm": OpDef(
        shape=_same, params=lambda a, ins: 2 * ins[0][0], elem=_per_out(1, 2), elem_text="out",
        doc="inference form y = s·x + b: 1 multiply-add (2 FLOPs) per element; "
            "the running mean and variance are buffers, not parameters"),
    "group_norm": OpDef(
        shape=_group_norm_shape, params=lambda a, ins: 2 * ins[0][0], elem=_per_out(5, 7),
        elem_text="5·out",
        doc="statistics per sample and group at inference too: mean (1 add), variance (1 "
            "subtract, 1 multiply-add), then (x − μ)·γ/σ + β (1 subtract, 1 multiply-add): "
            "5 ops (7 FLOPs) per element; γ and β are the parameters"),
    "evonorm_s0": _norm_act(
        _group_norm_shape, (7, 9), (1, 2),
        "EvoNorm-S0 (Liu et al., 2020) with its activation: x·σ(v·x) / std(x over the "
        "group) ·γ + β: v·x, σ, ×, the group variance (1 subtract, 1 multiply-add), ÷, then "
        "·γ + β: 7 ops (9 FLOPs) per element; γ, β, v are the parameters. Without its "
        "activation (act false, as timm's apply_act=False) only ·γ + β"),
    "frn": _norm_act(
        _same, (4, 6), (3, 5),
        "Filter Response Normalization with a TLU (Singh and Krishnan, 2020): "
        "max(γ·x/√(mean(x²) + ε) + β, τ), the mean over each channel's map: mean of squares "
        "(1 multiply-add), the scale, ·γ + β, the max with τ: 4 ops (6 FLOPs) per element; "
        "γ, β, τ are the parameters (no τ, no max with act false)"),
    "relu": OpDef(shape=_same, elem=_per_out(), elem_text="out", doc="1 op per element"),
    "sigmoid": OpDef(shape=_same, elem=_per_out(), elem_text="out", doc="1 op per element"),
    "add": OpDef(shape=_add_shape, elem=_per_out(), elem_text="out", doc="1 op per output element"),
    "mul": OpDef(shape=_mul_shape, elem=_per_out(), elem_text="out",
                 doc="elementwise product, or a channel-wise scale x·s[c]: 1 op per output "
                     "element"),
    "one_minus": OpDef(shape=_same, elem=_per_out(), elem_text="out",
                       doc="1 − x: 1 op per element"),
    "scale": OpDef(shape=_same, elem=_per_out(), elem_text="out",
                   doc="multiplication by a constant: 1 op per element"),
    "max_pool": OpDef(shape=lambda a, ins: _window(a, ins, ins[0][0]), elem=_window_cost,
                      elem_text="k²·out", doc="k² comparisons per output element"),
    "avg_pool": OpDef(shape=lambda a, ins: _window(a, ins, ins[0][0]), elem=_window_cost,
                      elem_text="k²·out", doc="k² adds per output element"),
    "blur_pool": OpDef(
        shape=lambda a, ins: _window({"kernel": a["size"], "stride": a["stride"],
                                      "padding": a["size"] // 2}, ins, ins[0][0]),
        macs=lambda a, ins, out: _numel(out) * a["size"] ** 2,
        doc="anti-aliasing blur (Zhang, 2019): a fixed k×k binomial filter per channel, "
            "reflect-padded, at stride 2: out·k² MACs, counted as the depthwise conv it "
            "is (as FlopCounterMode); no parameters (the filter is a constant)"),
    "global_avg_pool": OpDef(
        shape=lambda a, ins: (ins[0][0], 1, 1),
        elem=lambda a, ins, out: (_numel(ins[0]), _numel(ins[0])), elem_text="in",
        doc="1 add per input element"),
    "flatten": OpDef(shape=lambda a, ins: (_numel(ins[0]),), doc="free (a view)"),
    "dropout": OpDef(shape=_same, doc="identity at inference"),
    "pad": OpDef(
        shape=lambda a, ins: (ins[0][0], ins[0][1] + 2 * a["padding"],
                              ins[0][2] + 2 * a["padding"]),
        doc="constant zero padding on every side (BiT's stem, before its unpadded "
            "max-pool): free (a copy)"),
    "pad_channels": OpDef(
        shape=_pad_channels_shape,
        doc="shortcut option A: subsample by the stride, zero-pad the new channels; "
            "free (a copy)"),
}


def op(name: str) -> OpDef:
    """The table entry of an op, with a clear error for a name it lacks."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known: {', '.join(sorted(OPS))}") from None
