"""A spec from a state_dict's keys and shapes alone (torch-free).

The naming layout is recognised from the stem's keys; every other name is asked of the
layout's table (``layouts.name_in``), so the inference reads canonical (torchvision)
names whatever the checkpoint's library. Depths, widths, cardinality, inner widths, the
stem, the shortcut, SE/ECA, the norm kind and the head follow from keys and shapes; what
they cannot tell is assumed (``Draft.assume``), with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..blocks.bottleneck import inner_width
from ..layouts import name_in
from ..spec.fields import ECA, SE
from .draft import Draft, refuse

Shapes = Mapping[str, tuple[int, ...]]

# constructs of neighbouring families, recognised by a module's class name (modules) or
# by a key (checkpoints; None: no weights show it); the capture group of the key pattern
# is the module that shows it
FOREIGN: tuple[tuple[str, str | None, str], ...] = (
    ("SelectiveKernel", r"^(.*)\.paths\.\d+\.", "selective-kernel convolution (SKNet)"),
    ("SplitAttn", r"^(.*\.conv2)\.fc1\.", "split attention (ResNeSt)"),
    ("Bottle2neck", r"^(.*)\.convs\.\d+\.", "Res2Net's hierarchical split convolution"),
    ("DropPath", None, "stochastic depth (DropPath)"),
    ("DropBlock2d", None, "DropBlock"),
)

MISSING = ("is not in the source: a truncated checkpoint, or a network archdsl reads "
           "differently")
WHY = {
    "input_size": "a checkpoint does not record its input size; --input-size",
    "strides": "a checkpoint cannot tell stage strides or dilation (no weights); --strides",
    "stride_on": "a checkpoint cannot tell the MSRA stride on the first 1x1 from v1.5's on "
                 "the 3x3 (identical weights); --stride-on 1x1",
    "stem_pool": "the stem pool has no weights: its padding or ceil mode can't be told; "
                 "--stem-pool max_ceil|zero_pad_max",
    "antialias": "anti-aliasing blur or average pools have no weights; --anti-alias "
                 "blur|avg",
    "antialias_kind": "the anti-aliasing pool has no weights: blur or average can't be "
                      "told; --anti-alias avg",
    "downsample": "ResNet-v2's average-pool shortcut has no weights (resnetv2_50 and "
                  "resnetv2_50d both hold only downsample.conv); --downsample avgpool",
    "conv": "weight standardisation keeps the keys and shapes of a plain conv (BiT); "
            "--conv standardized",
    "conv_eps": "ε of the standardisation has no weight; --conv-eps",
    "norm_groups": "a group norm's group count has no weight; --norm-groups",
    "norm_eps": "ε has no weight; --norm-eps",
    "se": "both roundings give these SE widths; --se-rounding",
    "placement": "relu_before_add and relu_preact have the same weights; --placement",
    "shortcut_form": "a scaled or dropout shortcut has the same weights; --shortcut-scale, "
                     "--shortcut-dropout",
    "gate_form": "exclusive and shortcut-only gating have the same weights; "
                 "--shortcut-form shortcut_gating",
    "dropout": "dropout has no weights (training only); --dropout",
}


def foreign_key(shapes: Shapes) -> tuple[str, str] | None:
    """(module, construct) of the first key that shows a neighbouring family's construct."""
    for key in shapes:
        for _, pattern, what in FOREIGN:
            m = re.match(pattern, key) if pattern else None
            if m:
                return m.group(1), what
    return None


class _Keys:
    """A state_dict's shapes by canonical names through a layout; a shape read for its
    sizes (``dims`` given) must have those dimensions, none 0, or the key is refused."""

    def __init__(self, shapes: Shapes, layout: str, deep: bool, source: str) -> None:
        self.shapes, self.layout, self.deep, self.source = shapes, layout, deep, source

    def key(self, canonical: str, param: str = "weight", op: str = "") -> str:
        return f"{name_in(self.layout, canonical, op, deep=self.deep)}.{param}"

    def get(self, canonical: str, dims: tuple[int, ...] = ()) -> tuple[int, ...] | None:
        key = self.key(canonical)
        shape = self.shapes.get(key)
        if shape is not None and dims and (len(shape) not in dims or 0 in shape):
            raise refuse(self.source, key, f"has shape {list(shape)}; allowed: "
                         f"{' or '.join(map(str, dims))} dimensions, none of them 0")
        return shape

    def out(self, canonical: str) -> int | None:  # a conv's output channels
        shape = self.get(canonical, CONV)
        return shape[0] if shape else None


CONV, CONV1D, LINEAR = (4,), (3,), (2, 4)  # a 1x1 conv may stand for a linear


def _layout(shapes: Shapes, source: str) -> tuple[str, bool]:
    """The naming layout and whether the stem is deep, from the stem's keys."""
    for layout in ("timm_senet", "timm_resnetv2", "torchvision"):
        for deep in (True, False):
            stem = name_in(layout, "conv1.3" if deep else "conv1", deep=deep)
            first = name_in(layout, "layer1.0.conv1")
            if f"{stem}.weight" in shapes and f"{first}.weight" in shapes:
                return layout, deep
    first = next(iter(shapes), "")
    raise refuse(source, first, "not a ResNet-family state_dict: no stem conv (conv1, "
                 "stem.conv or layer0.conv1) before a first block (layer1.0 or "
                 "stages.0.blocks.0)")


def _stem(k: _Keys, d: Draft, source: str) -> None:
    spec = d.spec
    if k.deep:
        spec["stem"] = {"kind": "deep", "widths": [k.out(f"conv1.{i}") for i in (0, 3, 6)]}
    else:
        shape = k.get("conv1", CONV)  # _layout found it
        if shape[2:] == (3, 3):
            spec["stem"] = {"kind": "cifar", "width": shape[0],
                            "norm": k.get("bn1") is not None}
            return
        if shape[2:] != (7, 7):
            raise refuse(source, k.key("conv1"), f"a {shape[2]}x{shape[3]} stem conv; "
                         "allowed: 7x7 (classic), 3x3 (cifar) or three 3x3 (deep)")
        spec["stem"] = {"kind": "classic", "width": shape[0]}
    spec["stem"]["norm"] = k.get("bn1") is not None
    if k.get("maxpool.0") is not None:  # ResNet-RS's conv in the pool's place
        spec["stem"]["pool"] = "conv"
        if k.get("maxpool.2") is not None:  # its BN shifted by an anti-aliasing pool
            d.assume("antialias", {"kind": "blur", "size": 3}, WHY["antialias_kind"])
    elif k.layout == "timm_senet":
        spec["stem"]["pool"] = "max_ceil"
    else:
        d.assume("stem_pool", "max", WHY["stem_pool"])
    if k.layout == "torchvision" and "antialias" not in d.assumed:
        d.assume("antialias", None, WHY["antialias"])


def _norm_kind(shapes: Shapes) -> str:
    """batch (running statistics), evonorm_s0 (v), frn (tau), else group."""
    ends = {key.rsplit(".", 1)[-1] for key in shapes}
    for leaf, kind in (("tau", "frn"), ("v", "evonorm_s0"), ("running_mean", "batch")):
        if leaf in ends:
            return kind
    return "group"


def _se(widths: list[int], squeezes: list[int], layout: str) -> dict[str, dict[str, Any]]:
    """The SE fields that give each stage's squeeze width, by rounding (the nominal
    ratio nearest the widths' own first, 16 where it fits)."""
    out: dict[str, dict[str, Any]] = {}
    for rounding in ("floor", "divisor8") if layout == "timm_senet" else ("divisor8", "floor"):
        fits = [r for r in range(1, min(widths) + 1)
                if all(SE(ratio=r, rounding=rounding).channels(w) == s
                       for w, s in zip(widths, squeezes, strict=True))]
        if fits:
            nominal = widths[0] / squeezes[0]
            ratio = min(fits, key=lambda r: (r != 16, abs(r - nominal), r))
            out[rounding] = {"ratio": ratio, "rounding": rounding}
    return out


def _bottleneck(k: _Keys, blocks: list[str], width: int, where: str,
                source: str) -> dict[str, Any]:
    """cardinality, and base_width, inner_width, reduce_first or inner_widths."""
    pairs = []
    groups = set()
    for b in blocks:
        first, inner = k.out(f"{b}.conv1"), k.out(f"{b}.conv2")
        per_group = k.get(f"{b}.conv2", CONV)
        if first is None or inner is None or per_group is None:
            raise refuse(source, k.key(f"{b}.conv2"), MISSING)
        pairs.append((first, inner))
        groups.add(first // per_group[1])
    if len(groups) != 1:
        raise refuse(source, where, f"the 3x3 convs of one stage have {sorted(groups)} "
                     "groups; a stage has one cardinality")
    card = groups.pop()
    out: dict[str, Any] = {"cardinality": card}
    if len(set(pairs)) > 1:
        return {**out, "inner_widths": [list(p) for p in pairs]}
    first, inner = pairs[0]
    base, rest = divmod(inner * 64, max(width // 4 * card, 1))
    if width % 4 == 0 and not rest and inner_width(width, 4, base, card) == inner:
        out["base_width"] = base
    else:
        out["inner_width"] = inner
    if first != inner:
        reduce = inner // first
        if reduce < 1 or inner // reduce != first:
            return {"cardinality": card, "inner_widths": [list(p) for p in pairs]}
        out["reduce_first"] = reduce
    return out


def infer(shapes: Shapes, source: str, name: str) -> Draft:
    """The spec of the network whose state_dict has these ``shapes``; raises the one-line
    refusal (a SpecError) when it is not a network archdsl can say."""
    found = foreign_key(shapes)
    if found:
        raise refuse(source, found[0], f"{found[1]} has no spec form")
    layout, deep = _layout(shapes, source)
    k = _Keys(shapes, layout, deep, source)
    d = Draft({"name": name, "layout": layout})
    spec = d.spec
    stem_shape = k.get("conv1.0" if deep else "conv1", CONV)
    if stem_shape is None:
        raise refuse(source, k.key("conv1.0"), MISSING)
    spec["input"] = {"channels": stem_shape[1]}
    _stem(k, d, source)
    d.assume("input_size", 32 if spec["stem"]["kind"] == "cifar" else 224, WHY["input_size"])
    spec["shortcut"] = {"kind": "B"}
    kind = _norm_kind(shapes)
    spec["norm"] = {"kind": kind}
    spec["conv"] = {"kind": "plain"}
    if kind in ("group", "evonorm_s0"):
        d.assume("norm_groups", 32, WHY["norm_groups"])
    if kind != "batch":
        d.assume("norm_eps", 1e-5, WHY["norm_eps"])  # timm's, for each of these kinds
    d.assume("conv", "plain", WHY["conv"])
    _stages(k, d, source)
    _head(k, d, source)
    return d


def _block_names(k: _Keys) -> list[list[str]]:
    """Each stage's block names (canonical), as far as their first conv goes."""
    stages = []
    while True:
        i = len(stages) + 1
        blocks = []
        while k.get(f"layer{i}.{len(blocks)}.conv1") is not None:
            blocks.append(f"layer{i}.{len(blocks)}")
        if not blocks:
            return stages
        stages.append(blocks)


def _projection(k: _Keys, b: str) -> tuple[str, int] | None:
    """The projection of block ``b``: (downsample kind, kernel), or None."""
    d0, d1 = k.get(f"{b}.downsample.0"), k.get(f"{b}.downsample.1")
    if d0 is not None and len(d0) == 4:
        return "conv", d0[2]
    if d1 is not None and len(d1) == 4:
        return "avgpool", 1
    return None


def _stages(k: _Keys, d: Draft, source: str) -> None:
    spec = d.spec
    stages_blocks = _block_names(k)
    # pre-activation blocks: ResNetV2's names, or a final norm before the head
    preact = k.layout == "timm_resnetv2" or k.get("norm") is not None
    prev = spec["stem"].get("widths", [spec["stem"].get("width")])[-1]
    stages: list[dict[str, Any]] = []
    inputs: list[int] = []
    for blocks in stages_blocks:
        b0 = blocks[0]
        bottleneck = k.get(f"{b0}.conv3") is not None
        last = "conv3" if bottleneck else "conv2"
        width = k.out(f"{b0}.{last}")
        if width is None:
            raise refuse(source, k.key(f"{b0}.{last}"), MISSING)
        for b in blocks[1:]:
            if k.out(f"{b}.{last}") is None:
                raise refuse(source, k.key(f"{b}.{last}"), MISSING)
            if k.out(f"{b}.{last}") != width:
                raise refuse(source, k.key(f"{b}.{last}"), f"ends at {k.out(f'{b}.{last}')} "
                             f"channels, the stage's first block at {width}; a stage has "
                             "one width")
        block = ("preact_" if preact else "") + ("bottleneck" if bottleneck else "basic")
        stage: dict[str, Any] = {"block": block, "depth": len(blocks), "width": width}
        if bottleneck:
            stage.update(_bottleneck(k, blocks, width, k.key(f"{b0}.conv2"), source))
        _attention(k, stage, blocks, source)
        if k.get(f"{b0}.bn_out") is not None:
            stage["placement"] = "bn_after_add"
        stages.append(stage)
        inputs.append(prev)
        prev = width
    eca = [s for s in stages if "eca" in s]
    if eca and all(ECA().size(s["width"]) == s["eca"]["kernel"] for s in eca):
        for s in eca:  # the paper's formula gives every kernel: say so
            s["eca"] = {"kernel": "auto"}
    spec["stages"] = stages
    _shortcut(k, d, stages_blocks, inputs, source)
    _placements(k, d, source)


def _attention(k: _Keys, stage: dict[str, Any], blocks: list[str], source: str) -> None:
    """SE (its squeeze width, turned into SE fields across stages later) or ECA."""
    b0 = blocks[0]
    fc1, conv = k.get(f"{b0}.se.fc1", CONV), k.get(f"{b0}.se.conv", CONV1D)
    if fc1 is not None:
        stage["se"] = fc1[0]
    elif conv is not None:
        for b in blocks[1:]:
            other = k.get(f"{b}.se.conv", CONV1D)
            if other is None:
                raise refuse(source, k.key(f"{b}.se.conv"), MISSING)
            if other != conv:
                raise refuse(source, k.key(f"{b}.se.conv"), f"an ECA kernel of {other[-1]}, "
                             f"the stage's first block {conv[-1]}; a stage has one kernel")
        stage["eca"] = {"kernel": conv[-1]}


def _shortcut(k: _Keys, d: Draft, blocks: list[list[str]], inputs: list[int],
              source: str) -> None:
    """The shortcut's kind, form and projection, and the stage strides they show."""
    stages, sc = d.spec["stages"], d.spec["shortcut"]
    projected = [[_projection(k, b) for b in bs] for bs in blocks]
    forms = {p[0] for ps in projected for p in ps if p is not None}
    kernels = {p[1] for ps in projected for p in ps if p is not None}
    if len(forms) > 1:
        raise refuse(source, k.key(f"{blocks[0][0]}.downsample.0"),
                     f"projections of several forms: {sorted(forms)}")
    every = all(p is not None for ps in projected for p in ps)
    gated = k.get(f"{blocks[0][0]}.gate.conv") is not None
    if every and all(k.get(f"{b}.downsample.1") is None for bs in blocks for b in bs):
        sc["form"] = "conv1x1"  # a bare 1x1 conv in every block
    elif every and sum(map(len, blocks)) > len(blocks):
        sc["kind"] = "C"
    elif not forms and any(s["width"] != i for s, i in zip(stages, inputs, strict=True)):
        sc["kind"] = "A"
    if forms and sc.get("form") != "conv1x1":
        sc["downsample"] = forms.pop()
        if max(kernels) != 1:  # a projection at stride 1 stays 1x1
            sc["kernel"] = max(kernels)
    strides = [1] + [2] * (len(stages) - 1)
    if sc["kind"] == "B" and sc.get("form") != "conv1x1":
        for i, (stage, ps, inp) in enumerate(zip(stages, projected, inputs, strict=True)):
            if stage["width"] == inp:  # a projection where the channels stay: a stride
                strides[i] = 2 if ps[0] is not None else 1
    d.assume("strides", strides, WHY["strides"])
    if k.layout == "timm_resnetv2" and any(p is not None for ps in projected for p in ps):
        d.assume("downsample", "conv", WHY["downsample"])
    if gated:
        d.assume("shortcut_form", {"form": "exclusive_gating"}, WHY["gate_form"])
    elif sc.get("form") != "conv1x1":
        d.assume("shortcut_form", {"form": "identity"}, WHY["shortcut_form"])


def _placements(k: _Keys, d: Draft, source: str) -> None:
    """What the layout implies of its blocks; the placement and stride assumptions; the SE
    fields from the squeeze widths."""
    stages = d.spec["stages"]
    if k.layout == "timm_senet":
        implied = {"the Caffe stem pool (max_ceil)"}
        for stage in stages:
            if stage["block"] == "basic":
                stage["placement"] = "relu_before_and_after_add"
                implied.add("a ReLU before and after a basic block's addition")
            elif stage["cardinality"] == 1:
                stage["stride_on"] = "1x1"
                implied.add("an SE-ResNet bottleneck's stride on its first 1x1")
            else:
                stage["stride_on"] = "3x3"
                implied.add("an SE-ResNeXt bottleneck's stride on its 3x3")
        d.notes.append("the timm_senet layout (senet.py's names) implies senet.py's "
                       f"conventions: {', '.join(sorted(implied))}")
    elif any(s["block"] in ("bottleneck", "preact_bottleneck") for s in stages):
        d.assume("stride_on", "3x3", WHY["stride_on"])
    if all(s["block"] in ("basic", "bottleneck") and "placement" not in s for s in stages) \
            and k.layout == "torchvision":
        d.assume("placement", "post", WHY["placement"])
    squeezed = [s for s in stages if "se" in s]
    if squeezed:
        widths, squeezes = [s["width"] for s in squeezed], [s["se"] for s in squeezed]
        choices = _se(widths, squeezes, k.layout)
        if not choices:
            raise refuse(source, k.key("layer1.0.se.fc1"), f"SE widths {squeezes} for "
                         f"{widths} channels fit no ratio and rounding")
        first = next(iter(choices.values()))
        for stage in squeezed:
            stage["se"] = first
        d.choices["se"] = choices
        if len(choices) > 1 and k.layout != "timm_senet":  # senet.py's SE floors
            d.assume("se", first, WHY["se"])


def _head(k: _Keys, d: Draft, source: str) -> None:
    """The classes of a classifier; none where the source has no keys under it at all."""
    spec = d.spec
    fc = k.get("fc", LINEAR)
    spec["head"] = {"norm": k.get("norm") is not None}
    if fc is not None:
        spec["head"]["classes"] = fc[0]
    module = k.key("fc").removesuffix(".weight")
    other = next((key for key in k.shapes if key.startswith(f"{module}.")), None)
    if fc is None and other is not None:
        raise refuse(source, other, f"a classifier archdsl has no form for (keys under "
                     f"{module}. but no {module}.weight); allowed: one Linear, "
                     f"{module}.weight and {module}.bias (a Sequential(Dropout, Linear) "
                     f"head loads once its keys {module}.1.* are renamed {module}.*, with "
                     "--dropout P)")
    d.assume("dropout", 0.0, WHY["dropout"])


