"""The ops table: every primitive, once — its family, shape rule, parameter count and
cost, its label in diagrams, the torch module or function that runs it (by name: the IR
stays torch-free) and its rendering in generated Python.

``macs`` is the conv+linear convention (torchvision's ``_ops``, and
``torch.utils.flop_counter.FlopCounterMode`` total / 2). ``elem`` is the extra
cost that the ``all`` convention adds for everything else, as
``(mac-equivalents, flops)``; docs/counting.md lists each rule. Every back end that
treats ops alike by kind reads ``family`` (FAMILIES): the diagram's styles, the fusion
rules' groupings, a counter convention's or a device profile's default for a family.
An op registered with ``define`` is known to all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .shapes import (
    Attrs,
    Shape,
    ShapeError,
    add_shape,
    channel_gate_shape,
    concat_shape,
    conv_macs,
    conv_params,
    conv_shape,
    group_norm_shape,
    mul_shape,
    no_elem,
    none,
    numel,
    pad_channels_shape,
    per_out,
    radix_softmax_shape,
    same,
    slice_shape,
    split_softmax_shape,
    split_sum_shape,
    window,
    window_cost,
)

__all__ = ["FAMILIES", "OPS", "OPTIONAL_ATTRS", "OpDef", "PyArgs", "Shape",
           "ShapeError", "define", "family_ops", "op"]

# what an op is, for every back end that treats ops alike by kind
FAMILIES = ("input", "conv", "linear", "norm", "activation", "elementwise", "pool", "reduce",
            "view")


@dataclass(frozen=True)
class PyArgs:
    """The expressions generated Python gives a module's arguments: its input and output
    channels (``in_channels``, ``inner``, ``num_classes`` or a number), and the stride and
    groups where the block class takes them as arguments (None: the node's own)."""

    inp: str
    out: str
    stride: str | None = None
    groups: str | None = None
    top: bool = False  # a module of the model itself, not of a block class


Render = Callable[[Attrs, PyArgs], list[str]]


@dataclass(frozen=True)
class OpDef:
    """One primitive: what it is, how it shapes, what it holds and costs, how it runs.

    ``torch`` names the module class (``module``: the node is a submodule holding the
    state_dict entries under its name) or function that computes it, as
    ``package.module.Name``, or a function of the attributes giving the name;
    ``torch_args`` the positional and keyword arguments (after the inputs, for a
    function) from the attributes and the output shape. ``python`` renders the module in
    generated Python (its class, then its arguments), ``py_expr`` the op as an
    expression over its inputs ``{0}``, ``{1}`` and attributes (None: it is a module
    there too), ``py_call`` a module's call. A device profile that names no kernels for
    the op or its family takes them from ``kernels``."""

    family: str
    shape: Callable[[Attrs, list[Shape]], Shape]
    params: Callable[[Attrs, list[Shape]], int] = none
    macs: Callable[[Attrs, list[Shape], Shape], int] = none
    elem: Callable[[Attrs, list[Shape], Shape], tuple[int, int]] = no_elem
    doc: str = ""
    # ``elem``'s MAC-equivalents as a formula (``out``, ``k²·out``), or the formula of a
    # node's attributes where they decide it
    elem_text: str | Callable[[Attrs], str] = "0"
    pointwise: bool = False  # each output element from the same place of each input
    label: Callable[[Attrs], str] | None = None  # default: the op's name
    torch: str | Callable[[Attrs], str] = ""
    torch_args: Callable[[Attrs, Shape], tuple[tuple[Any, ...], dict[str, Any]]] = \
        lambda a, out: ((), {})
    module: bool = False
    python: Render | None = None
    py_expr: str | None = None
    py_call: str = "self.{module}({0})"
    # the kernels a device runs the op as, by profile name, where the profile names none
    # for it (an op an engine treats unlike its family; the family's entry otherwise)
    kernels: dict[str, list[str]] = field(default_factory=dict)
    # flag attributes under which an engine runs the op as other kernels: a profile gives
    # those apart as ``op.flag`` (``avg_pool.same``: the zero pad ONNX Runtime keeps)
    forms: tuple[str, ...] = ()
    # ``always``: the output is never negative (ReLU, sigmoid, a softmax); ``inputs``: never
    # where no input is (pools, views, sums); ``complement``: 1 − x of a sigmoid's x; "":
    # it may be. An int8 plan reads it: a quantizer gives such a tensor an unsigned range
    nonneg: str = ""


def _norm_act(shape: Callable[[Attrs, list[Shape]], Shape], with_act: tuple[int, int],
              without: tuple[int, int], doc: str, **how: Any) -> OpDef:
    """A norm with its activation built in (attribute ``act``): γ, β and, when it applies
    the activation, a third per-channel parameter; ``with_act``/``without``: ops and
    FLOPs per output element."""
    def cost(a: Attrs, ins: list[Shape], out: Shape) -> tuple[int, int]:
        n, flops = with_act if a["act"] else without
        return n * numel(out), flops * numel(out)
    return OpDef("norm", shape=shape, params=lambda a, ins: (3 if a["act"] else 2) * ins[0][0],
                 elem=cost, elem_text=lambda a: _times_out(with_act if a["act"] else without),
                 doc=doc, module=True, **how)


def _times_out(cost: tuple[int, int]) -> str:
    return "out" if cost[0] == 1 else f"{cost[0]}·out"


def _eps(a: Attrs) -> list[str]:
    return [] if a["eps"] == 1e-5 else [f"eps={a['eps']}"]


def _py_conv(a: Attrs, p: PyArgs) -> list[str]:
    args = [p.inp, p.out, str(a["kernel"])]
    s = p.stride or str(a["stride"])
    args += [f"stride={s}"] if s != "1" else []
    args += [f"padding={a['padding']}"] if a["padding"] else []
    args += [f"dilation={a['dilation']}"] if a.get("dilation", 1) > 1 else []
    g = p.groups or str(a["groups"])
    args += [f"groups={g}"] if g != "1" else []
    args += [] if a["bias"] else ["bias=False"]
    if "standardize" in a:
        return ["StdConv2d", *args, f"eps={a['standardize']}"]
    return ["nn.Conv2d", *args]


def _conv_label(a: Attrs) -> str:
    s = f"conv {a['kernel']}×{a['kernel']}"
    s += f"/{a['stride']}" if a["stride"] > 1 else ""
    s += f" d{a['dilation']}" if a.get("dilation", 1) > 1 else ""
    s += f" g{a['groups']}" if a["groups"] > 1 else ""
    s += " WS" if "standardize" in a else ""
    return f"{s} → {a['out_channels']}"


def _pool_label(name: str, ceil: bool) -> Callable[[Attrs], str]:
    def label(a: Attrs) -> str:
        c = " ceil" if ceil and a.get("ceil_mode") else ""
        return f"{name} {a['kernel']}×{a['kernel']}/{a['stride']}{c}"
    return label


def _pool_args(a: Attrs, out: Shape) -> tuple[tuple[Any, ...], dict[str, Any]]:
    kw = {"ceil_mode": a["ceil_mode"]}
    if "count_include_pad" in a:
        kw["count_include_pad"] = a["count_include_pad"]
    return (a["kernel"], a["stride"], a["padding"]), kw


# attributes a node carries only where they apply (a weight-standardised conv's ε, a
# dilated conv's dilation, a frozen BN, a same-padded average pool)
OPTIONAL_ATTRS = ("standardize", "dilation", "frozen", "same")
_NN, _F, _OWN = "torch.nn.", "torch.nn.functional.", "archdsl.emit.layers."

OPS: dict[str, OpDef] = {
    "input": OpDef("input", shape=lambda a, ins: tuple(a["shape"]), doc="the image batch"),
    "conv2d": OpDef(
        "conv", shape=conv_shape, params=conv_params, macs=conv_macs,
        doc="Cout·H·W·(Cin/groups)·k² MACs (a dilation spreads the k² taps, costing "
            "nothing); FLOPs = 2×MACs (bias adds not counted, "
            "as FlopCounterMode)",
        label=_conv_label, module=True, python=_py_conv,
        torch=lambda a: f"{_OWN}StdConv2d" if "standardize" in a else f"{_NN}Conv2d",
        torch_args=lambda a, out: (
            (a["in_channels"], a["out_channels"], a["kernel"]),
            {"stride": a["stride"], "padding": a["padding"], "groups": a["groups"],
             "bias": a["bias"], "dilation": a.get("dilation", 1),
             **({"eps": a["standardize"]} if "standardize" in a else {})})),
    "channel_conv": OpDef(
        "conv", shape=channel_gate_shape,
        params=lambda a, ins: a["kernel"], macs=lambda a, ins, out: numel(out) * a["kernel"],
        doc="ECA's 1-D conv of k taps across the channels of a (C, 1, 1) map, zero-padded, "
            "no bias: C·k MACs",
        label=lambda a: f"ECA conv1d k={a['kernel']}", module=True,
        torch=f"{_OWN}ChannelConv", torch_args=lambda a, out: ((a["kernel"],), {}),
        python=lambda a, p: ["nn.Conv1d", "1", "1", str(a["kernel"]),
                             f"padding={(a['kernel'] - 1) // 2}", "bias=False"],
        # across the channels of the pooled (N, C, 1, 1) map
        py_call="self.{module}({0}.view({0}.shape[0], 1, -1)).view_as({0})"),
    "linear": OpDef(
        "linear", shape=lambda a, ins: (a["out_features"],),
        params=lambda a, ins: a["in_features"] * a["out_features"]
        + (a["out_features"] if a["bias"] else 0),
        macs=lambda a, ins, out: a["in_features"] * a["out_features"],
        doc="in·out MACs; FLOPs = 2×MACs",
        label=lambda a: f"fc → {a['out_features']}", module=True, torch=f"{_NN}Linear",
        torch_args=lambda a, out: ((a["in_features"], a["out_features"]), {"bias": a["bias"]}),
        python=lambda a, p: ["nn.Linear", str(a["in_features"]), p.out]),
    "batch_norm": OpDef(
        "norm", shape=same, params=lambda a, ins: 0 if a.get("frozen") else 2 * ins[0][0],
        elem=per_out(1, 2), elem_text="out", pointwise=True,
        doc="inference form y = s·x + b: 1 multiply-add (2 FLOPs) per element; "
            "the running mean and variance are buffers, not parameters (a frozen BN's "
            "γ and β too: torchvision's FrozenBatchNorm2d)",
        module=True,
        torch=lambda a: "torchvision.ops.misc.FrozenBatchNorm2d" if a.get("frozen")
        else f"{_NN}BatchNorm2d",
        torch_args=lambda a, out: ((out[0],), {"eps": a["eps"]}),
        python=lambda a, p: ["FrozenBatchNorm2d" if a.get("frozen") else "nn.BatchNorm2d",
                             p.out, *_eps(a)]),
    "group_norm": OpDef(
        "norm", shape=group_norm_shape, params=lambda a, ins: 2 * ins[0][0],
        elem=per_out(5, 7), elem_text="5·out",
        doc="statistics per sample and group at inference too: mean (1 add), variance (1 "
            "subtract, 1 multiply-add), then (x − μ)·γ/σ + β (1 subtract, 1 multiply-add): "
            "5 ops (7 FLOPs) per element; γ and β are the parameters",
        module=True, torch=f"{_NN}GroupNorm",
        torch_args=lambda a, out: ((a["groups"], out[0]), {"eps": a["eps"]}),
        python=lambda a, p: ["nn.GroupNorm", str(a["groups"]), p.out, *_eps(a)]),
    "evonorm_s0": _norm_act(
        group_norm_shape, (7, 9), (1, 2),
        "EvoNorm-S0 (Liu et al., 2020) with its activation: x·σ(v·x) / std(x over the "
        "group) ·γ + β: v·x, σ, ×, the group variance (1 subtract, 1 multiply-add), ÷, then "
        "·γ + β: 7 ops (9 FLOPs) per element; γ, β, v are the parameters. Without its "
        "activation (act false, as timm's apply_act=False) only ·γ + β",
        label=lambda a: "EvoNorm-S0" + (" + act" if a["act"] else ""),
        torch=f"{_OWN}EvoNormS0",
        torch_args=lambda a, out: ((out[0], a["groups"], a["eps"], a["act"]), {}),
        python=lambda a, p: ["EvoNormS0", p.out, f"groups={a['groups']}", f"eps={a['eps']}",
                             f"act={a['act']}"]),
    "frn": _norm_act(
        same, (4, 6), (3, 5),
        "Filter Response Normalization with a TLU (Singh and Krishnan, 2020): "
        "max(γ·x/√(mean(x²) + ε) + β, τ), the mean over each channel's map: mean of squares "
        "(1 multiply-add), the scale, ·γ + β, the max with τ: 4 ops (6 FLOPs) per element; "
        "γ, β, τ are the parameters (no τ, no max with act false)",
        label=lambda a: "FRN" + (" + act" if a["act"] else ""),
        torch=f"{_OWN}FilterResponseNorm",
        torch_args=lambda a, out: ((out[0], a["eps"], a["act"]), {}),
        python=lambda a, p: ["FilterResponseNorm", p.out, f"eps={a['eps']}",
                             f"act={a['act']}"]),
    "relu": OpDef("activation", shape=same, elem=per_out(), elem_text="out",
                  doc="1 op per element", pointwise=True, torch=f"{_F}relu",
                  python=lambda a, p: ["nn.ReLU", *(["inplace=True"] if p.top else [])],
                  py_expr="F.relu({0})", nonneg="always"),
    "silu": OpDef("activation", shape=same, elem=per_out(2, 2), elem_text="2·out",
                  doc="x·σ(x): the sigmoid and a product, 2 ops per element",
                  pointwise=True, torch=f"{_F}silu",
                  python=lambda a, p: ["nn.SiLU", *(["inplace=True"] if p.top else [])],
                  py_expr="F.silu({0})"),
    "sigmoid": OpDef("activation", shape=same, elem=per_out(), elem_text="out",
                     doc="1 op per element", pointwise=True, torch="torch.sigmoid",
                     python=lambda a, p: ["nn.Sigmoid"], py_expr="torch.sigmoid({0})",
                     nonneg="always"),
    "add": OpDef("elementwise", shape=add_shape, elem=per_out(), elem_text="out",
                 doc="1 op per output element", pointwise=True, torch="operator.add",
                 py_expr="{0} + {1}", nonneg="inputs"),
    "mul": OpDef("elementwise", shape=mul_shape, elem=per_out(), elem_text="out",
                 doc="elementwise product, or a channel-wise scale x·s[c]: 1 op per output "
                     "element", pointwise=True, torch="operator.mul", py_expr="{0} * {1}",
                     nonneg="inputs"),
    "one_minus": OpDef("elementwise", shape=same, elem=per_out(), elem_text="out",
                       doc="1 − x: 1 op per element", pointwise=True, torch="torch.rsub",
                       torch_args=lambda a, out: ((1.0,), {}), py_expr="1 - {0}",
                       nonneg="complement"),
    "scale": OpDef("elementwise", shape=same, elem=per_out(), elem_text="out",
                   doc="multiplication by a constant: 1 op per element", pointwise=True,
                   label=lambda a: f"× {a['factor']}", torch="operator.mul",
                   torch_args=lambda a, out: ((a["factor"],), {}), py_expr="{0} * {factor}"),
    "max_pool": OpDef(
        "pool", shape=lambda a, ins: window(a, ins, ins[0][0]), elem=window_cost,
        elem_text="k²·out", doc="k² comparisons per output element",
        label=_pool_label("max pool", ceil=True), torch=f"{_F}max_pool2d", torch_args=_pool_args,
        python=lambda a, p: ["nn.MaxPool2d", str(a["kernel"]), f"stride={a['stride']}",
                             f"padding={a['padding']}",
                             *(["ceil_mode=True"] if a["ceil_mode"] else [])], nonneg="inputs"),
    "avg_pool": OpDef(
        "pool", shape=lambda a, ins: same(a, ins) if a.get("same") else window(a, ins,
                                                                              ins[0][0]),
        elem=window_cost, elem_text="k²·out",
        doc="k² adds per output element; same: stride 1, the map zero-padded after its "
            "last row and column (timm's AvgPool2dSame in a dilated ResNet-D projection)",
        label=_pool_label("avg pool", ceil=False),
        torch=lambda a: f"{_OWN}avg_pool_same" if a.get("same") else f"{_F}avg_pool2d",
        torch_args=lambda a, out: ((a["kernel"],), {}) if a.get("same") else _pool_args(a, out),
        python=lambda a, p: ["AvgPool2dSame", str(a["kernel"])] if a.get("same") else [
                             "nn.AvgPool2d", str(a["kernel"]),
                             f"stride={p.stride or a['stride']}",
                             *([f"padding={a['padding']}"] if a["padding"] else []),
                             f"ceil_mode={a['ceil_mode']}",
                             f"count_include_pad={a['count_include_pad']}"],
        forms=("same",), nonneg="inputs"),
    "blur_pool": OpDef(
        "pool", shape=lambda a, ins: window({"kernel": a["size"], "stride": a["stride"],
                                             "padding": a["size"] // 2}, ins, ins[0][0]),
        macs=lambda a, ins, out: numel(out) * a["size"] ** 2,
        doc="anti-aliasing blur (Zhang, 2019): a fixed k×k binomial filter per channel, "
            "reflect-padded, at stride 2: out·k² MACs, counted as the depthwise conv it "
            "is (as FlopCounterMode); no parameters (the filter is a constant)",
        label=lambda a: f"blur {a['size']}×{a['size']}/{a['stride']}", module=True,
        torch=f"{_OWN}BlurPool", torch_args=lambda a, out: ((out[0], a["size"], a["stride"]), {}),
        python=lambda a, p: ["BlurPool", p.out, str(a["size"]),
                             f"stride={p.stride or a['stride']}"], nonneg="inputs"),
    "global_avg_pool": OpDef(
        "reduce", shape=lambda a, ins: (ins[0][0], 1, 1),
        elem=lambda a, ins, out: (numel(ins[0]), numel(ins[0])), elem_text="in",
        doc="1 add per input element", torch=f"{_F}adaptive_avg_pool2d",
        torch_args=lambda a, out: ((1,), {}),
        python=lambda a, p: ["nn.AdaptiveAvgPool2d", "1"],
        py_expr="{0}.mean((2, 3), keepdim=True)", nonneg="inputs"),
    "flatten": OpDef("view", shape=lambda a, ins: (numel(ins[0]),), doc="free (a view)",
                     torch="torch.flatten", torch_args=lambda a, out: ((1,), {}),
                     python=lambda a, p: ["nn.Flatten", "1"], nonneg="inputs"),
    "dropout": OpDef("view", shape=same, doc="identity at inference", pointwise=True,
                     module=True, torch=f"{_NN}Dropout",
                     torch_args=lambda a, out: ((a["p"],), {}),
                     python=lambda a, p: ["nn.Dropout", str(a.get("p"))],
                     py_expr="F.dropout({0}, {p}, self.training)", nonneg="inputs"),
    "pad": OpDef(
        "view", shape=lambda a, ins: (ins[0][0], ins[0][1] + 2 * a["padding"],
                                      ins[0][2] + 2 * a["padding"]),
        doc="constant zero padding on every side (BiT's stem, before its unpadded "
            "max-pool): free (a copy)",
        label=lambda a: f"zero pad {a['padding']}", torch=f"{_F}pad",
        torch_args=lambda a, out: (((a["padding"],) * 4,), {"value": 0.0}),
        python=lambda a, p: ["nn.ConstantPad2d", str(a["padding"]), "0.0"], nonneg="inputs"),
    "pad_channels": OpDef(
        "view", shape=pad_channels_shape,
        doc="shortcut option A: subsample by the stride, zero-pad the new channels; "
            "free (a copy)",
        label=lambda a: f"zero-pad → {a['out_channels']} /{a['stride']}",
        torch=f"{_OWN}pad_channels",
        torch_args=lambda a, out: ((a["out_channels"] - a["in_channels"], a["stride"]), {}),
        nonneg="inputs"),
    # the channel groups of a block's branch (Res2Net's splits, SKNet's paths, ResNeSt's
    # radix): slices and joins are views or copies; the sum and softmax across groups cost
    "slice": OpDef(
        "view", shape=slice_shape, doc="channels start:stop of a map (a split): free (a view)",
        label=lambda a: f"channels {a['start']}:{a['stop']}", torch="torch.narrow",
        torch_args=lambda a, out: ((1, a["start"], a["stop"] - a["start"]), {}),
        py_expr="{0}[:, {start}:{stop}]", nonneg="inputs"),
    "concat": OpDef("view", shape=concat_shape, doc="maps joined along the channels: free "
                    "(a copy)", torch=f"{_OWN}concat", py_expr="torch.cat([{inputs}], 1)",
                    nonneg="inputs"),
    "split_sum": OpDef(
        "reduce", shape=split_sum_shape,
        elem=lambda a, ins, out: ((a["parts"] - 1) * numel(out),) * 2,
        elem_text=lambda a: _times_out((a["parts"] - 1, 0)),
        doc="the sum of a map's equal channel splits (ResNeSt's radix, SKNet's paths): "
            "parts − 1 adds per output element",
        label=lambda a: f"sum of {a['parts']} splits", torch=f"{_OWN}split_sum",
        torch_args=lambda a, out: ((a["parts"],), {}),
        py_expr="{0}.unflatten(1, ({parts}, -1)).sum(1)", nonneg="inputs"),
    "split_softmax": OpDef(
        "reduce", shape=split_softmax_shape, elem=per_out(3, 3), elem_text="3·out",
        doc="a softmax across the equal channel splits of a pooled map (SKNet's across its "
            "paths, ResNeSt's across the radix with one cardinal group): exp, the sum "
            "across the splits, a division: 3 ops per element",
        label=lambda a: f"softmax across {a['parts']}", torch=f"{_OWN}split_softmax",
        torch_args=lambda a, out: ((a["parts"],), {}),
        py_expr="{0}.view({0}.shape[0], {parts}, -1).softmax(1).view_as({0})", nonneg="always"),
    "radix_softmax": OpDef(
        "reduce", shape=radix_softmax_shape, elem=per_out(3, 3), elem_text="3·out",
        doc="ResNeSt's RadixSoftmax over cardinal groups: the logits ordered (group, split, "
            "channel) turned split-major, a softmax across the splits: 3 ops per element "
            "(the transposition is a copy)",
        label=lambda a: f"softmax across {a['radix']} in {a['cardinality']} groups",
        torch=f"{_OWN}radix_softmax",
        torch_args=lambda a, out: ((a["radix"], a["cardinality"]), {}),
        py_expr="{0}.view({0}.shape[0], {cardinality}, {radix}, -1).transpose(1, 2)"
                ".softmax(1).reshape({0}.shape)", nonneg="always"),
}


def define(name: str, opdef: OpDef) -> None:
    """Register a new op (a block family's own primitive): every back end that reads the
    table knows it from here on; a counter convention or device profile that neither
    prices the op nor its family refuses to load, naming it."""
    if name in OPS:
        raise ValueError(f"op {name!r} is defined twice")
    if opdef.family not in FAMILIES:
        raise ValueError(f"op {name!r}: unknown family {opdef.family!r}; allowed: "
                         f"{', '.join(FAMILIES)}")
    OPS[name] = opdef


def family_ops(family: str) -> tuple[str, ...]:
    """The ops of one family, in table order."""
    return tuple(k for k, d in OPS.items() if d.family == family)


def label(name: str, attrs: Attrs) -> str:
    """An op's text in diagrams: its label, or its name (``global avg pool``)."""
    d = op(name)
    return d.label(attrs) if d.label else name.replace("_", " ")


def op(name: str) -> OpDef:
    """The table entry of an op, with a clear error for a name it lacks."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known: {', '.join(sorted(OPS))}") from None
