"""Shape rules and costs of the primitives (the ops table's formulas, archdsl.ir.ops).

Shapes are ``(C, H, W)`` feature maps or ``(F,)`` vectors, batch excluded.
"""

from __future__ import annotations

from collections.abc import Callable
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


def window(a: Attrs, ins: list[Shape], channels: int) -> Shape:
    c, h, w = ins[0]
    k, s, p = a.get("dilation", 1) * (a["kernel"] - 1) + 1, a["stride"], a.get("padding", 0)
    ceil = a.get("ceil_mode", False)
    out = (channels, _out_len(h, k, s, p, ceil), _out_len(w, k, s, p, ceil))
    if min(out[1:]) <= 0:
        raise ShapeError(f"{k}x{k}/{s} window on a {h}x{w} map leaves nothing")
    return out


def conv_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if ins[0][0] != a["in_channels"]:
        raise ShapeError(f"expects {a['in_channels']} input channels, gets {ins[0][0]}")
    return window(a, ins, a["out_channels"])


def same(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


def add_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if len(set(ins)) != 1:
        raise ShapeError(f"adds tensors of different shapes {ins}")
    return ins[0]


def mul_shape(a: Attrs, ins: list[Shape]) -> Shape:
    x, s = ins
    if x == s or s == (x[0], 1, 1):
        return x
    if x == (s[0], 1, 1):
        return s
    raise ShapeError(f"multiplies a {x} map by a {s} tensor; expected equal shapes or a "
                     "(C, 1, 1) channel scale")


def pad_channels_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = ins[0]
    if a["out_channels"] < c:
        raise ShapeError(f"option A zero-pads channels and cannot narrow {c} to "
                         f"{a['out_channels']}; use kind B or C where a stage gets narrower",
                         field="shortcut.kind")
    s = a["stride"]
    return (a["out_channels"], -(-h // s), -(-w // s))


def group_norm_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if c % a["groups"]:
        raise ShapeError(f"a group norm of {a['groups']} groups over {c} channels; every "
                         f"normed width must be a multiple of the groups", field="norm.groups")
    return ins[0]


def channel_gate_shape(a: Attrs, ins: list[Shape]) -> Shape:
    x = ins[0]
    if x[1:] != (1, 1):
        raise ShapeError(f"a channel conv reads a pooled (C, 1, 1) map, got {x}")
    return x


def slice_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if not 0 <= a["start"] < a["stop"] <= c:
        raise ShapeError(f"channels {a['start']}:{a['stop']} of a {c}-channel map")
    return (a["stop"] - a["start"], *ins[0][1:])


def concat_shape(a: Attrs, ins: list[Shape]) -> Shape:
    if len({x[1:] for x in ins}) != 1:
        raise ShapeError(f"joins maps of different sizes {ins} along the channels")
    return (sum(x[0] for x in ins), *ins[0][1:])


def split_sum_shape(a: Attrs, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if c % a["parts"]:
        raise ShapeError(f"sums {a['parts']} equal splits of {c} channels")
    return (c // a["parts"], *ins[0][1:])


def _pooled_groups(what: str, groups: int, ins: list[Shape]) -> Shape:
    if ins[0][1:] != (1, 1) or ins[0][0] % groups:
        raise ShapeError(f"a softmax across {what} reads a pooled (C, 1, 1) map whose C they "
                         f"divide, got {ins[0]}")
    return ins[0]


def split_softmax_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return _pooled_groups(f"{a['parts']} splits", a["parts"], ins)


def radix_softmax_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return _pooled_groups(f"{a['radix']} splits in {a['cardinality']} groups",
                          a["radix"] * a["cardinality"], ins)


def numel(out: Shape) -> int:
    return prod(out)


def per_out(n: int = 1, flops: int = 1) -> Callable[[Attrs, list[Shape], Shape], tuple[int, int]]:
    return lambda a, ins, out: (n * numel(out), flops * numel(out))


def window_cost(a: Attrs, ins: list[Shape], out: Shape) -> tuple[int, int]:
    n = numel(out) * a["kernel"] ** 2
    return n, n


def conv_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return numel(out) * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2


def conv_params(a: Attrs, ins: list[Shape]) -> int:
    weight = a["out_channels"] * (a["in_channels"] // a["groups"]) * a["kernel"] ** 2
    return weight + (a["out_channels"] if a["bias"] else 0)


def none(*_: Any) -> int:
    return 0


def no_elem(*_: Any) -> tuple[int, int]:
    return 0, 0
