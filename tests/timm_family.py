"""timm's ResNet family as archdsl specs, generated from timm's own constructor arguments.

Every model registered in ``timm/models/resnet.py``, ``resnetv2.py`` and ``senet.py`` is
an entrypoint that gathers keyword arguments and hands them to the module's create
function (``_create_resnet``, ``_create_resnetv2``, ``_create_senet``). ``timm_kwargs``
calls the entrypoint with that function patched to return its arguments, and the
translator of the module (``_from_resnet``, ``_from_resnetv2``, ``_from_senet``) turns
them into a spec: the same mapping a YAML spec is once ``extends:`` is resolved.

Each translator consumes every constructor argument (the signature's defaults under the
captured ones), so a new timm argument or value raises ``UnknownTimmConstruct`` instead of
being ignored; a known construct the spec language cannot state yet raises
``NotExpressible`` with the message ``construct not expressible yet: ...``.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import timm
import timm.layers
import timm.models
import yaml
from timm.models import resnet, resnetv2, senet
from torch import nn

from archdsl.analysis.counts import count
from archdsl.ir.graph import Graph
from archdsl.load import load_solved, load_spec
from archdsl.spec.schema import Spec as SpecModel

# registered architectures per source module (timm 1.0.31)
MODULES = {"resnet": 81, "resnetv2": 20, "senet": 9}
_CREATE = {"resnet": "_create_resnet", "resnetv2": "_create_resnetv2", "senet": "_create_senet"}

Spec = dict[str, Any]


class UnknownTimmConstruct(ValueError):
    """A timm argument or value this generator has never seen: teach the translator."""


class NotExpressible(Exception):
    """A known timm construct that the spec language cannot state yet."""

    def __init__(self, constructs: list[str]) -> None:
        self.constructs = constructs
        super().__init__("construct not expressible yet: " + "; ".join(constructs))


# ---------------------------------------------------------------------------- registry


def model_names(module: str) -> list[str]:
    """The architectures registered in ``timm/models/<module>.py``."""
    return timm.list_models(module=module)


def all_names() -> list[str]:
    names = [n for m in MODULES for n in model_names(m)]
    counts = {m: len(model_names(m)) for m in MODULES}
    assert counts == MODULES, f"timm registers {counts}, expected {MODULES}"
    return names


def _module_of(name: str) -> ModuleType:
    return sys.modules[timm.models.model_entrypoint(name).__module__]


def timm_kwargs(name: str, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments ``timm.create_model(name, **overrides)`` gives the model's
    constructor: the entrypoint's own, then the pretrained config's defaults
    (num_classes, in_chans, global_pool), as timm's builder sets them."""
    module = _module_of(name)
    short = module.__name__.rsplit(".", 1)[-1]

    def capture(variant: str, pretrained: bool = False, **kwargs: Any) -> dict[str, Any]:
        assert variant == name and not pretrained, (variant, pretrained)
        return kwargs

    with mock.patch.object(module, _CREATE[short], capture):
        kwargs = dict(timm.models.model_entrypoint(name)(**overrides))
    cfg = timm.models.get_pretrained_cfg(name).to_dict()
    if cfg.get("num_classes") is not None and cfg["num_classes"] >= 0:
        kwargs.setdefault("num_classes", cfg["num_classes"])
    kwargs.setdefault("in_chans", cfg["input_size"][0])
    if cfg.get("global_pool") is not None:
        kwargs.setdefault("global_pool", cfg["global_pool"])
    return kwargs


def input_size(name: str) -> int | list[int]:
    """timm's default input size (H, W) for the model, as a spec's ``input.size``."""
    _, h, w = timm.models.get_pretrained_cfg(name).input_size
    return h if h == w else [h, w]


# ------------------------------------------------------------------ argument handling


class _Args:
    """A constructor's arguments: its signature's defaults under the captured keyword
    arguments. A translator takes each one; ``done`` raises for any left untaken."""

    def __init__(self, owner: str, cls: Callable[..., Any], captured: dict[str, Any]) -> None:
        self.owner = owner
        params = inspect.signature(cls).parameters
        self.left = {k: p.default for k, p in params.items()
                     if p.default is not inspect.Parameter.empty}
        self.left.update(captured)
        self.pending: list[str] = []

    def take(self, key: str) -> Any:
        if key not in self.left:
            raise UnknownTimmConstruct(f"{self.owner}: required argument {key!r} is missing")
        return self.left.pop(key)

    def expect(self, key: str, *allowed: Any) -> Any:
        """Take ``key``, which must be one of ``allowed`` (compared with ==)."""
        value = self.take(key)
        if not any(value == a for a in allowed):
            raise UnknownTimmConstruct(f"{self.owner}: {key}={value!r}; this generator knows "
                                       f"{', '.join(map(repr, allowed))}")
        return value

    def unsupported(self, what: str) -> None:
        """Record a known construct the language cannot state; raised by ``done``."""
        self.pending.append(what)

    def done(self) -> None:
        if self.left:
            raise UnknownTimmConstruct(f"{self.owner}: unknown argument(s) "
                                       f"{', '.join(f'{k}={v!r}' for k, v in self.left.items())}")
        if self.pending:
            raise NotExpressible(self.pending)


def _default(fn: Callable[..., Any], param: str) -> Any:
    """The default of ``param`` in ``fn``'s signature (timm's own value, not a copy)."""
    return inspect.signature(fn).parameters[param].default


def _is(value: Any, target: Any) -> bool:
    """``value`` is ``target`` itself, or a partial of it without arguments."""
    return value is target or (isinstance(value, functools.partial) and value.func is target
                               and not value.args and not value.keywords)


def _partial_of(value: Any, target: Any) -> dict[str, Any] | None:
    """The keyword arguments of ``value`` when it is ``target`` or a partial of it."""
    if value is target:
        return {}
    if isinstance(value, functools.partial) and value.func is target and not value.args:
        return dict(value.keywords)
    return None


def _common(a: _Args) -> tuple[dict[str, Any], dict[str, Any]]:
    """The arguments every family shares: input channels, classes, pooling, stride,
    activation, the training-only rates, device and dtype. Returns (input, head)."""
    a.expect("global_pool", "avg")
    a.expect("device", None)
    a.expect("dtype", None)
    if "output_stride" in a.left and a.take("output_stride") != 32:
        a.unsupported("dilated stages (output_stride < 32)")
    if "act_layer" in a.left:
        a.expect("act_layer", nn.ReLU, "relu")
    for rate in ("drop_path_rate", "drop_block_rate"):
        if rate in a.left and a.take(rate):
            a.unsupported(f"{rate} (stochastic depth / DropBlock)")
    if "zero_init_last" in a.left:
        a.take("zero_init_last")  # initialisation only: the parity tests randomise weights
    return ({"channels": a.take("in_chans")},
            {"classes": a.take("num_classes"), "dropout": float(a.take("drop_rate"))})


def _se(rd_ratio: float, rounding: str, owner: str) -> dict[str, Any]:
    ratio = round(1 / rd_ratio)
    if abs(1 / ratio - rd_ratio) > 1e-12:
        raise UnknownTimmConstruct(f"{owner}: SE rd_ratio {rd_ratio} is not 1/integer")
    return {"ratio": ratio, "rounding": rounding}


# ------------------------------------------------------------------ timm/models/resnet.py


def _attention(attn: Any, owner: str) -> dict[str, Any]:
    """resnet.py's ``block_args['attn_layer']`` as a stage's se/eca field."""
    if attn is None:
        return {}
    se_cls, eca_cls = timm.layers.get_attn("se"), timm.layers.get_attn("eca")
    kw = {} if attn == "se" else _partial_of(attn, se_cls)
    if kw is not None:
        extra = set(kw) - {"rd_ratio"}
        if extra:
            raise UnknownTimmConstruct(f"{owner}: SE arguments {sorted(extra)}")
        # timm's SEModule: make_divisible(C * rd_ratio, rd_divisor, round_limit=0)
        if _default(se_cls, "rd_divisor") != 8:
            raise UnknownTimmConstruct(f"{owner}: SEModule's rd_divisor is no longer 8")
        return {"se": _se(kw.get("rd_ratio", _default(se_cls, "rd_ratio")), "divisor8", owner)}
    if attn == "eca":
        return {"eca": {"kernel": "auto", "gamma": _default(eca_cls, "gamma"),
                        "beta": _default(eca_cls, "beta")}}
    raise UnknownTimmConstruct(f"{owner}: attn_layer={attn!r}")


def _resnet_norm(norm: Any, owner: str) -> dict[str, Any]:
    if norm is nn.BatchNorm2d:
        return {"kind": "batch", "eps": _default(nn.BatchNorm2d, "eps")}
    if norm == "groupnorm" or norm is timm.layers.GroupNorm:
        gn = timm.layers.GroupNorm
        return {"kind": "group", "groups": _default(gn, "num_groups"), "eps": _default(gn, "eps")}
    raise UnknownTimmConstruct(f"{owner}: norm_layer={norm!r}")


def _antialias(aa: Any, owner: str) -> dict[str, Any] | None:
    if aa is None:
        return None
    if _is(aa, timm.layers.BlurPool2d):
        return {"kind": "blur", "size": _default(timm.layers.BlurPool2d, "filt_size")}
    if _is(aa, nn.AvgPool2d):
        return {"kind": "avg"}
    raise UnknownTimmConstruct(f"{owner}: aa_layer={aa!r}")


def pruned_shapes(name: str) -> dict[str, list[int]]:
    """The weight shapes timm's ``*_pruned`` models are adapted to
    (``timm/models/_pruned/NAME.txt``: ``key:[shape]`` entries joined by ``***``)."""
    text = (Path(timm.models.__file__).parent / "_pruned" / f"{name}.txt").read_text()
    entries = (e.split(":") for e in text.strip().split("***"))
    return {k: [int(x) for x in v.strip("[]").split(",")] for k, v in entries}


def _prune(name: str, stem: dict[str, Any], stages: list[dict[str, Any]]) -> None:
    """The pruned widths of timm's file on the unpruned spec: each stage's output, each
    block's first 1x1 and 3x3, and the ECA kernels timm keeps from the unpruned widths."""
    shapes = pruned_shapes(name)
    if [shapes[f"conv1.{i}.weight"][0] for i in (0, 3, 6)] != stem.get("widths"):
        raise UnknownTimmConstruct(f"{name}: a pruned stem")
    for i, stage in enumerate(stages, start=1):
        blocks = [f"layer{i}.{j}" for j in range(stage["depth"])]
        widths = {shapes[f"{b}.conv3.weight"][0] for b in blocks}
        if len(widths) != 1 or stage.get("cardinality", 1) != 1:
            raise UnknownTimmConstruct(f"{name}: layer{i}'s pruned widths {widths}")
        stage["width"] = widths.pop()
        stage["inner_widths"] = [[shapes[f"{b}.conv{c}.weight"][0] for c in (1, 2)]
                                 for b in blocks]
        if "eca" in stage:
            kernels = {shapes[f"{b}.se.conv.weight"][2] for b in blocks}
            if len(kernels) != 1:
                raise UnknownTimmConstruct(f"{name}: layer{i}'s ECA kernels {kernels}")
            stage["eca"] = {**stage["eca"], "kernel": kernels.pop()}


def _from_resnet(name: str, captured: dict[str, Any]) -> Spec:
    a = _Args(name, resnet.ResNet, captured)
    inp, head = _common(a)
    pruned = "pruned" in a.left and a.take("pruned")  # an argument of timm's builder

    # stem: stem_width only matters to a deep stem; a 7x7 stem is always 64 wide
    stem_type, stem_width = a.expect("stem_type", "", "deep", "deep_tiered"), a.take("stem_width")
    pool = "conv" if a.expect("replace_stem_pool", False, True) else "max"
    if stem_type == "":
        stem: dict[str, Any] = {"kind": "classic", "width": 64, "norm": True, "pool": pool}
    else:
        first = 3 * (stem_width // 4) if stem_type == "deep_tiered" else stem_width
        stem = {"kind": "deep", "widths": [first, stem_width, 2 * stem_width], "norm": True,
                "pool": pool}

    # stages
    layers, channels = list(a.take("layers")), list(a.take("channels"))
    blocks = a.take("block")
    blocks = list(blocks) if isinstance(blocks, (list, tuple)) else [blocks] * len(channels)
    cardinality, base_width = a.take("cardinality"), a.take("base_width")
    reduce_first = a.take("block_reduce_first")
    block_args = dict(a.take("block_args") or {})
    attention = _attention(block_args.pop("attn_layer", None), name)
    if block_args:
        raise UnknownTimmConstruct(f"{name}: block_args {sorted(block_args)}")
    if not len(layers) == len(channels) == len(blocks) == 4:
        raise UnknownTimmConstruct(f"{name}: {len(layers)} stages; ResNet has 4")
    stages = []
    for i, (block, depth, planes) in enumerate(zip(blocks, layers, channels, strict=True)):
        stage: dict[str, Any] = {"block": None, "depth": depth,
                                 "width": planes * getattr(block, "expansion", 0),
                                 "stride": 1 if i == 0 else 2}
        if block is resnet.BasicBlock:
            stage["block"] = "basic"
            if (cardinality, base_width) != (1, 64):
                raise UnknownTimmConstruct(f"{name}: a BasicBlock with cardinality "
                                           f"{cardinality}, base_width {base_width}")
            if reduce_first != 1:
                a.unsupported("reduce_first on a basic block")
        elif block is resnet.Bottleneck:
            stage.update(block="bottleneck", expansion=block.expansion, cardinality=cardinality,
                         base_width=base_width, stride_on="3x3")
            if reduce_first != 1:
                stage["reduce_first"] = reduce_first
        else:
            raise UnknownTimmConstruct(f"{name}: block {block!r}")
        stages.append({**stage, **attention})

    # shortcut: the projection's kernel is down_kernel_size where it strides (timm's
    # downsample_conv); ResNet-D's average-pool projection is always 1x1
    avg_down = a.expect("avg_down", False, True)
    kernel = a.expect("down_kernel_size", 1, 3)
    if avg_down and kernel != 1:
        raise UnknownTimmConstruct(f"{name}: avg_down with down_kernel_size={kernel}")
    shortcut: dict[str, Any] = {"kind": "B", "downsample": "avgpool" if avg_down else "conv"}
    if kernel != 1:
        shortcut["kernel"] = kernel

    if pruned:
        _prune(name, stem, stages)
    spec: Spec = {"name": name, "input": inp, "stem": stem, "stages": stages,
                  "shortcut": shortcut, "norm": _resnet_norm(a.take("norm_layer"), name),
                  "head": {**head, "norm": False}, "layout": "torchvision"}
    aa = _antialias(a.take("aa_layer"), name)
    if aa is not None:
        spec["antialias"] = aa
    a.done()
    return spec


# ---------------------------------------------------------------- timm/models/resnetv2.py


def _resnetv2_norm(norm: Any, a: _Args) -> dict[str, Any]:
    """ResNetV2's norm_layer (a norm+act layer) as a spec's norm."""
    if norm is timm.layers.BatchNormAct2d:
        return {"kind": "batch", "eps": _default(norm, "eps")}
    gn = _partial_of(norm, timm.layers.GroupNormAct)
    if gn is not None:
        extra = set(gn) - {"num_groups"}
        if extra:
            raise UnknownTimmConstruct(f"{a.owner}: GroupNormAct arguments {sorted(extra)}")
        return {"kind": "group",
                "groups": gn.get("num_groups", _default(timm.layers.GroupNormAct, "num_groups")),
                "eps": _default(timm.layers.GroupNormAct, "eps")}
    if _is(norm, timm.layers.EvoNorm2dS0):
        evo = timm.layers.EvoNorm2dS0
        if _default(evo, "group_size") is not None:
            raise UnknownTimmConstruct(f"{a.owner}: EvoNorm2dS0 by group size")
        return {"kind": "evonorm_s0", "groups": _default(evo, "groups"),
                "eps": _default(evo, "eps")}
    if _is(norm, timm.layers.FilterResponseNormTlu2d):
        frn = timm.layers.FilterResponseNormTlu2d
        if _default(frn, "rms") is not True:
            raise UnknownTimmConstruct(f"{a.owner}: FilterResponseNormTlu2d without rms")
        return {"kind": "frn", "eps": _default(frn, "eps")}
    raise UnknownTimmConstruct(f"{a.owner}: norm_layer={norm!r}")


def _from_resnetv2(name: str, captured: dict[str, Any]) -> Spec:
    a = _Args(name, resnetv2.ResNetV2, captured)
    inp, head = _common(a)
    if not a.expect("preact", True, False):
        a.unsupported("ResNetV2 without pre-activation (preact=False)")
    wf = a.take("width_factor")

    def widen(c: int) -> int:
        return timm.layers.make_divisible(c * wf)

    conv, conv_spec = a.take("conv_layer"), None
    std = _partial_of(conv, timm.layers.StdConv2d)
    if std is not None:
        if set(std) - {"eps"}:
            raise UnknownTimmConstruct(f"{name}: StdConv2d arguments {sorted(std)}")
        conv_spec = {"kind": "standardized",
                     "eps": std.get("eps", _default(timm.layers.StdConv2d, "eps"))}
    elif conv is not timm.layers.create_conv2d:
        raise UnknownTimmConstruct(f"{name}: conv_layer={conv!r}")
    norm = _resnetv2_norm(a.take("norm_layer"), a)

    # stem: the pre-activation stem has no norm after its last conv; BiT's 'fixed' stem
    # pads with zeros, then max-pools without padding
    stem_type, width = a.take("stem_type"), widen(a.take("stem_chs"))
    if stem_type in ("", "fixed"):
        stem: dict[str, Any] = {"kind": "classic", "width": width, "norm": False,
                                "pool": "zero_pad_max" if stem_type == "fixed" else "max"}
    elif stem_type in ("deep", "tiered"):
        first = 3 * width // 8 if stem_type == "tiered" else width // 2
        stem = {"kind": "deep", "widths": [first, width // 2, width], "norm": False,
                "pool": "max"}
    else:
        raise UnknownTimmConstruct(f"{name}: stem_type={stem_type!r}")

    basic, ratio = a.expect("basic", False, True), a.take("bottle_ratio")
    layers, channels = list(a.take("layers")), list(a.take("channels"))
    if len(layers) != len(channels):
        raise UnknownTimmConstruct(f"{name}: {len(layers)} depths, {len(channels)} widths")
    stages, prev = [], width
    for i, (depth, c) in enumerate(zip(layers, channels, strict=True)):
        out = widen(c)
        stage: dict[str, Any] = {"block": None, "depth": depth, "width": out,
                                 "stride": 1 if i == 0 else 2}
        if not basic and prev == out and stage["stride"] == 1:
            # PreActBottleneck projects in every stage's first block, shape change or not
            a.unsupported("a projection in a first block whose shape does not change")
        prev = out
        if basic:
            if ratio != 1.0:
                raise UnknownTimmConstruct(f"{name}: PreActBasic with bottle_ratio {ratio}")
            stage["block"] = "preact_basic"
        else:
            expansion = round(1 / ratio)
            if timm.layers.make_divisible(out * ratio) * expansion != out:
                raise UnknownTimmConstruct(f"{name}: bottle_ratio {ratio} on {out} channels")
            stage.update(block="preact_bottleneck", expansion=expansion, stride_on="3x3")
        stages.append(stage)

    avg_down = a.expect("avg_down", False, True)
    spec: Spec = {"name": name, "input": inp, "stem": stem, "stages": stages,
                  "shortcut": {"kind": "B", "downsample": "avgpool" if avg_down else "conv"},
                  "head": {**head, "norm": True}, "layout": "timm_resnetv2", "norm": norm}
    if conv_spec is not None:
        spec["conv"] = conv_spec
    a.done()
    return spec


# ------------------------------------------------------------------- timm/models/senet.py

# SENet's planes per stage are fixed in its constructor (layer1..4)
SENET_PLANES = (64, 128, 256, 512)


def _inner(planes: int, inner: int, groups: int) -> dict[str, int]:
    """A bottleneck's inner width as resnet.py states it where it can, base_width with
    inner = planes · base_width / 64 · groups; else as inner_width."""
    base_width, rest = divmod(inner * 64, planes * groups)
    if rest or planes * base_width // 64 * groups != inner:
        return {"inner_width": inner}
    return {"base_width": base_width}


def _from_senet(name: str, captured: dict[str, Any]) -> Spec:
    a = _Args(name, senet.SENet, captured)
    inp, head = _common(a)
    block, groups = a.take("block"), a.take("groups")
    se = {"se": _se(1 / a.take("reduction"), "floor", name)}  # SEModule: C // reduction
    inplanes = a.take("inplanes")
    if a.expect("input_3x3", False, True):
        stem: dict[str, Any] = {"kind": "deep", "widths": [64, 64, inplanes], "norm": True,
                                "pool": "max_ceil"}
    else:
        stem = {"kind": "classic", "width": inplanes, "norm": True, "pool": "max_ceil"}

    kernel, padding = a.take("downsample_kernel_size"), a.take("downsample_padding")
    if (kernel, padding) not in ((1, 0), (3, 1)):
        raise UnknownTimmConstruct(f"{name}: downsample kernel {kernel}, padding {padding}")
    shortcut: dict[str, Any] = {"kind": "B", "downsample": "conv"}
    if kernel != 1:
        shortcut["kernel"] = kernel

    layers = list(a.take("layers"))
    stages = []
    for i, (depth, planes) in enumerate(zip(layers, SENET_PLANES, strict=True)):
        stage: dict[str, Any] = {"block": None, "depth": depth,
                                 "width": planes * getattr(block, "expansion", 0),
                                 "stride": 1 if i == 0 else 2, **se}
        bottleneck = {"block": "bottleneck", "expansion": getattr(block, "expansion", 0),
                      "cardinality": groups}
        if block is senet.SEResNetBlock:  # a ReLU ends the branch, another the block
            stage.update(block="basic", placement="relu_before_and_after_add")
            if groups != 1:
                raise UnknownTimmConstruct(f"{name}: SEResNetBlock with groups={groups}")
        elif block is senet.SEResNetBottleneck:  # Caffe's: the stride on the first 1x1
            stage.update(bottleneck, stride_on="1x1", **_inner(planes, planes, groups))
        elif block is senet.SEResNeXtBottleneck:  # base_width: the class default, never passed
            stage.update(bottleneck, stride_on="3x3",
                         base_width=_default(senet.SEResNeXtBottleneck, "base_width"))
        elif block is senet.SEBottleneck:  # SENet-154: 1x1 to 2·planes, 3x3 to 4·planes
            stage.update(bottleneck, stride_on="3x3", **_inner(planes, planes * 4, groups),
                         reduce_first=2)
        else:
            raise UnknownTimmConstruct(f"{name}: block {block!r}")
        stages.append(stage)
    spec: Spec = {"name": name, "input": inp, "stem": stem, "stages": stages,
                  "shortcut": shortcut, "norm": {"kind": "batch",
                                                 "eps": _default(nn.BatchNorm2d, "eps")},
                  "head": {**head, "norm": False}, "layout": "timm_senet"}
    a.done()
    return spec


# ------------------------------------------------------------------------------ the specs

TRANSLATORS: dict[str, Callable[[str, dict[str, Any]], Spec]] = {
    "resnet": _from_resnet, "resnetv2": _from_resnetv2, "senet": _from_senet}


def spec_for(name: str, **overrides: Any) -> Spec:
    """The archdsl spec of timm's ``name`` (built with ``overrides``, e.g. ``layers``), at
    timm's default input size. Raises NotExpressible or UnknownTimmConstruct."""
    short = _module_of(name).__name__.rsplit(".", 1)[-1]
    spec = TRANSLATORS[short](name, timm_kwargs(name, **overrides))
    spec["input"]["size"] = input_size(name)
    return spec


def to_yaml(spec: Spec) -> str:
    """``spec`` as YAML, in its own order, every value written out (no anchors)."""

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(spec, Dumper=Dumper, sort_keys=False)


def load(spec: Spec) -> tuple[SpecModel, Graph]:
    """Validate and lower ``spec`` as archdsl loads a file (its text is the YAML of the
    mapping; the path only names it in errors): returns (Spec, Graph)."""
    spec_model, graph, _ = load_solved(Path(f"timm:{spec['name']}.yaml"), text=to_yaml(spec))
    return spec_model, graph


# ------------------------------------------------------------------- docs/family.md's table

BEGIN = "<!-- generated by benchmarks/family.py --write: from timm's own arguments -->"
END = "<!-- end of the generated table -->"

_BLOCKS = {"basic": "basic", "bottleneck": "bottleneck", "preact_basic": "pre-act basic",
           "preact_bottleneck": "pre-act bottleneck"}


def constructs(spec: SpecModel) -> list[str]:
    """What a spec is made of, in a few words each."""
    out = [" + ".join(_BLOCKS[k] for k in dict.fromkeys(s.block for s in spec.stages))]
    first = spec.stages[0]
    card, base = getattr(first, "cardinality", 1), getattr(first, "base_width", 64)
    if card > 1:
        out.append(f"ResNeXt {card}x{base}d")
    elif base != 64:
        out.append(f"wide ×{base // 64}")
    stem = spec.stem
    if stem.kind == "deep":
        w = stem.widths
        out.append(f"{'tiered' if w[0] != w[1] else 'deep'} stem {w[0]}-{w[1]}-{w[2]}")
    pool = getattr(stem, "pool", "max")
    out += {"conv": ["conv stem pool"], "max_ceil": ["ceil-mode pool"],
            "zero_pad_max": ["zero-pad pool"]}.get(pool, [])
    if spec.shortcut.downsample == "avgpool":
        out.append("avg-pool projection")
    if spec.shortcut.kernel == 3:
        out.append("3x3 projection")
    if getattr(first, "stride_on", "3x3") == "1x1":
        out.append("stride on 1x1")
    if getattr(first, "inner_widths", None) is not None:
        out.append("pruned widths")
    if getattr(first, "reduce_first", 1) > 1:
        out.append(f"first 1x1 ÷{first.reduce_first}")
    if first.se is not None:
        out.append(f"SE 1/{first.se.ratio}" + (" floor" if first.se.rounding == "floor" else ""))
    if first.eca is not None:
        out.append("ECA")
    if spec.antialias is not None:
        out.append(f"anti-alias {spec.antialias.kind}")
    out += {"group": ["GroupNorm"], "evonorm_s0": ["EvoNorm-S0"], "frn": ["FRN"]}.get(
        spec.norm.kind, [])
    if spec.conv.kind == "standardized":
        out.append("weight standardisation")
    if spec.layout == "timm_senet":
        out.append("senet.py names")
    return out


def _flat(spec: SpecModel) -> dict[str, Any]:
    data = spec.model_dump(mode="json", exclude={"name", "input", "stages"})
    flat = {f"{k}.{sub}": v for k, d in data.items() if isinstance(d, dict)
            for sub, v in d.items()}
    flat.update({k: v for k, v in data.items() if not isinstance(v, dict)})
    return flat


def _flow(value: Any) -> str:
    """A value as a spec writes it: strings bare, the rest as JSON (lists, null)."""
    return value if isinstance(value, str) else json.dumps(value)


def changes(base: SpecModel, spec: SpecModel) -> list[str]:
    """The fields to change in ``base`` to write ``spec`` (stage fields as defaults where
    every stage takes one value, depths as one list)."""
    a, b = _flat(base), _flat(spec)
    out = [f"{k}: {_flow(b.get(k))}" for k in b if a.get(k) != b.get(k)]
    if len(base.stages) != len(spec.stages):
        return [*out, f"stages: {len(spec.stages)} stages"]
    old = [s.model_dump(mode="json") for s in base.stages]
    new = [s.model_dump(mode="json") for s in spec.stages]
    for key in dict.fromkeys(k for s in new for k in s):
        was, now = [s.get(key) for s in old], [s.get(key) for s in new]
        if was == now:
            continue
        if key == "depth":
            out.append(f"depths: {'-'.join(map(str, now))}")
        elif all(v == now[0] for v in now):
            out.append(f"defaults.{key}: {_flow(now[0])}")
        else:
            out.append(f"stages.{key}: {_flow(now)}")
    return out


def shipped_specs() -> dict[str, SpecModel]:
    """The shipped specs (not the ablations), by name."""
    specs = Path(__file__).resolve().parents[1] / "specs"
    return {p.stem: load_spec(p) for p in sorted(specs.glob("*.yaml"))}


def family_table(shipped: dict[str, SpecModel]) -> str:
    """Every architecture: its parameters and MACs (archdsl's, equal to timm's and
    FlopCounterMode's: tests/test_timm_family.py), its constructs, and its shipped spec or
    the nearest shipped spec with what to change."""
    rows = ["| architecture | params | MACs (input) | constructs | spec |",
            "|---|---:|---:|---|---|"]
    for name in all_names():
        try:
            spec, graph = load(spec_for(name))
        except NotExpressible as exc:
            rows.append(f"| {name} | | | {exc} | — |")
            continue
        c = count(graph).total
        h = graph.input.shape[1]
        if name in shipped:
            where = f"[{name}.yaml](../specs/{name}.yaml)"
        else:
            base, diff = min(((b, changes(s, spec)) for b, s in shipped.items()
                              if s.layout == spec.layout),
                             key=lambda bd: (len(bd[1]), len(bd[0]), bd[0]))
            where = f"`{base}.yaml` with " + "; ".join(f"`{d}`" for d in diff)
        rows.append(f"| {name} | {c.params:,} | {c.macs / 1e9:.3f} G ({h}) | "
                    f"{', '.join(constructs(spec))} | {where} |")
    return f"{BEGIN}\n\n" + "\n".join(rows) + f"\n\n{END}"
