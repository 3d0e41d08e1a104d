"""A spec from a state_dict's keys and shapes alone (torch-free).

The naming layout is recognised from the stem's keys; every other name is asked of the
layout's table (``layouts.name_in``), so the inference reads canonical (torchvision)
names whatever the checkpoint's library. Depths, widths, cardinality, inner widths, the
stem, the shortcut, SE/ECA, the norm kind and the head follow from keys and shapes; what
they cannot tell is assumed (``Draft.assume``), with the reason.
"""

from __future__ import annotations

from typing import Any

from ..blocks import READERS
from ..layouts import LAYOUTS, name_in
from ..spec.errors import SpecError
from ..spec.fields import ECA, SE
from .draft import Draft, refuse
from .keys import CONV, CONV1D, LINEAR, MISSING, WHY, Keys, Shapes

__all__ = ["MISSING", "WHY", "infer", "recognises"]


def _readers(layout: str) -> list[Any]:
    """The readers of the layout's block family."""
    return [r for r in READERS if r.family == LAYOUTS[layout].family]


def _asked(k: Keys, b0: str) -> list[Any]:
    """The readers to ask of the stage whose first block is ``b0``, in order: those whose
    key shows in it, then those without one; each where the block's first key is."""
    readers = [r for r in _readers(k.layout) if k.get(f"{b0}.{r.first}") is not None]
    return [r for r in readers if r.shows and k.get(f"{b0}.{r.shows}") is not None] + \
        [r for r in readers if not r.shows]


def _firsts(layout: str) -> list[str]:
    """The local names a block's first key can have: each of the family's readers'."""
    return list(dict.fromkeys(r.first for r in _readers(layout)))


def _layout(shapes: Shapes, source: str) -> tuple[str, bool]:
    """The naming layout and whether the stem is deep, from the stem's keys."""
    for layout in LAYOUTS:  # the stem's key and the first block's first key
        for deep in (True, False):
            stem = name_in(layout, "conv1.3" if deep else "conv1", deep=deep)
            if f"{stem}.weight" in shapes and any(
                    f"{name_in(layout, f'layer1.0.{f}')}.weight" in shapes
                    for f in _firsts(layout)):
                return layout, deep
    first = next(iter(shapes), "")
    stems = ", ".join(dict.fromkeys(name_in(t, "conv1") for t in LAYOUTS))
    blocks = ", ".join(dict.fromkeys(name_in(t, "layer1.0") for t in LAYOUTS))
    raise refuse(source, first, f"not a ResNet-family state_dict: no stem conv ({stems}) "
                 f"before a first block ({blocks})")


def recognises(shapes: Shapes) -> bool:
    """Whether the keys are of a naming layout archdsl reads (a stem and a first block)."""
    try:
        _layout(shapes, "")
    except SpecError:
        return False
    return True


def _stem(k: Keys, d: Draft, source: str) -> None:
    spec = d.spec
    if k.deep:
        spec["stem"] = {"kind": "deep", "widths": [k.out(f"conv1.{i}") for i in (0, 3, 6)]}
    else:
        shape = k.get("conv1", CONV)  # _layout found it
        if k.family == "regnet":
            if shape[2:] != (3, 3):
                raise refuse(source, k.key("conv1"), f"a {shape[2]}x{shape[3]} stem conv; "
                             "allowed: 3x3 (RegNet's stem)")
            spec["stem"] = {"kind": "regnet", "width": shape[0],
                            "norm": k.get("bn1") is not None}
            return
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


def _se(widths: list[int], inputs: list[int], squeezes: list[int],
        layout: str) -> dict[str, dict[str, Any]]:
    """The SE fields that give each stage's first squeeze width, by rounding (the
    nominal ratio nearest the widths' own first, 16 where it fits): sized from the
    block's width, or in RegNets (pycls, timm, torchvision) from its input, rounded."""
    options = ((("round", "input"),) if LAYOUTS[layout].family == "regnet" else
               (("floor", "output"), ("divisor8", "output")) if layout == "timm_senet" else
               (("divisor8", "output"), ("floor", "output")))
    out: dict[str, dict[str, Any]] = {}
    for rounding, of in options:
        base = inputs if of == "input" else widths
        fits = [r for r in range(1, min(base) + 1)
                if all(SE(ratio=r, rounding=rounding).channels(w) == s
                       for w, s in zip(base, squeezes, strict=True))]
        if fits:
            nominal = base[0] / squeezes[0]
            ratio = min(fits, key=lambda r: (r != 16, abs(r - nominal), r))
            out[rounding] = {"ratio": ratio, "rounding": rounding,
                             **({"of": of} if of != "output" else {})}
    return out


def infer(shapes: Shapes, source: str, name: str) -> Draft:
    """The spec of the network whose state_dict has these ``shapes``; raises the one-line
    refusal (a SpecError) when it is not a network archdsl can say."""
    layout, deep = _layout(shapes, source)
    k = Keys(shapes, layout, deep, source)
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
    if k.family == "regnet":  # the family has SiLU variants
        d.assume("act", "relu", WHY["act"])
    _head(k, d, source)
    return d


def _block_names(k: Keys) -> list[list[str]]:
    """Each stage's block names (canonical), as far as the blocks' first keys go (the
    first parameter of any block family's block)."""
    firsts = _firsts(k.layout)
    stages = []
    while True:
        i = len(stages) + 1
        blocks = []
        while any(k.get(f"layer{i}.{len(blocks)}.{f}") is not None for f in firsts):
            blocks.append(f"layer{i}.{len(blocks)}")
        if not blocks:
            return stages
        stages.append(blocks)


def _projection(k: Keys, b: str) -> tuple[str, int] | None:
    """The projection of block ``b``: (downsample kind, kernel), or None."""
    d0, d1 = k.get(f"{b}.downsample.0", op="conv2d"), k.get(f"{b}.downsample.1", op="conv2d")
    if d0 is not None and len(d0) == 4:
        return "conv", d0[2]
    if d1 is not None and len(d1) == 4:
        return "avgpool", 1
    return None


def _stages(k: Keys, d: Draft, source: str) -> None:
    spec = d.spec
    stages_blocks = _block_names(k)
    # pre-activation blocks: a pre-activation layout's names, or a final norm
    preact = LAYOUTS[k.layout].preact or k.get("norm") is not None
    prev = spec["stem"].get("widths", [spec["stem"].get("width")])[-1]
    stages: list[dict[str, Any]] = []
    inputs: list[int] = []
    read: dict[Any, list[dict[str, Any]]] = {}  # each finishing reader's stages
    for blocks in stages_blocks:
        b0 = blocks[0]
        found = next(((r, s) for r in _asked(k, b0)
                      if (s := r.read(k, blocks, preact, source)) is not None), None)
        if found is None:
            raise refuse(source, k.key(f"{b0}.conv1"), "a block no block family reads")
        stage = found[1]
        read.setdefault(found[0].finish, []).append(stage)
        width = stage["width"]
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
    for finish, theirs in read.items():
        if finish is not None:
            finish(theirs)
    spec["stages"] = stages
    _shortcut(k, d, stages_blocks, inputs, source)
    _placements(k, d, inputs, source)


def _attention(k: Keys, stage: dict[str, Any], blocks: list[str], source: str) -> None:
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


def _shortcut(k: Keys, d: Draft, blocks: list[list[str]], inputs: list[int],
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
        # no weights where the shape changes: option A's zero padding, or in a RegNet
        # (which has none) no shortcut there (RegNetZ)
        sc["kind"] = "identity_only" if k.family == "regnet" else "A"
    if forms and sc.get("form") != "conv1x1":
        sc["downsample"] = forms.pop()
        if max(kernels) != 1:  # a projection at stride 1 stays 1x1
            sc["kernel"] = max(kernels)
    # a RegNet's every stage strides 2 (its stem did too), a ResNet's but the first
    first = 2 if k.family == "regnet" else 1
    strides = [first] + [2] * (len(stages) - 1)
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


def _placements(k: Keys, d: Draft, inputs: list[int], source: str) -> None:
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
    if all(s["block"] == "regnet" for s in stages):
        d.assume("placement", "post", WHY["linear_out"])
    if any(s["block"] == "resnest" for s in stages):
        d.assume("avd", "after", WHY["avd"])
    sk = [s for s in stages if s["block"] in ("sk_basic", "sk_bottleneck")]
    if sk:
        paths = len(sk[0].get("sk", {}).get("dilations", (1, 2)))
        d.assume("sk_dilations", list(range(1, paths + 1)), WHY["sk_dilations"])
    squeezed = [s for s in stages if "se" in s]
    if squeezed:
        widths, squeezes = [s["width"] for s in squeezed], [s["se"] for s in squeezed]
        ins = [i for s, i in zip(stages, inputs, strict=True) if "se" in s]
        choices = _se(widths, ins, squeezes, k.layout)
        if not choices:
            raise refuse(source, k.key("layer1.0.se.fc1"), f"SE widths {squeezes} for "
                         f"{widths} channels fit no ratio and rounding")
        first = next(iter(choices.values()))
        for stage in squeezed:
            stage["se"] = first
        d.choices["se"] = choices
        if len(choices) > 1 and k.layout != "timm_senet":  # senet.py's SE floors
            d.assume("se", first, WHY["se"])


def _head(k: Keys, d: Draft, source: str) -> None:
    """The classes of a classifier; none where the source has no keys under it at all."""
    spec = d.spec
    fc = k.get("fc", LINEAR)
    spec["head"] = {"norm": k.get("norm") is not None}
    final = k.out("final_conv")
    if final is not None:  # RegNetZ's final 1x1 conv, norm and activation
        spec["head"]["conv"] = final
    elif k.family == "regnet" and LAYOUTS[k.layout].preact:
        spec["head"]["act"] = True  # timm's RegNetV ends with its activation
    elif k.family == "regnet":
        d.assume("head_act", False, WHY["head_act"])
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


