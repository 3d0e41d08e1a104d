"""What a module's types and attributes tell that its state_dict cannot.

``check`` walks every submodule: a construct of a neighbouring family or a module type
archdsl has no form for (an activation other than ReLU, a max-pooling head, a dilated
conv, stochastic depth) is refused where it sits. ``settle`` then reads each open
assumption of a draft (archdsl.importer.infer) from the modules that decide it: conv
strides, the stem pool's padding and ceil mode, anti-aliasing layers, weight
standardisation, the norms' groups and ε, SE's class, the blocks' classes, dropout.
Classes are recognised by name along their MRO, so timm need not be installed and
subclasses count as their base.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import nn

from ..layouts import name_in
from .draft import Draft, refuse

# constructs archdsl has no form for that no weights show, by class name
FOREIGN = {"DropPath": "stochastic depth (DropPath)", "DropBlock2d": "DropBlock"}
# leaf modules archdsl has a form for (its parameters are read from the state_dict)
LEAVES = {"Conv2d", "Conv1d", "Linear", "BatchNorm2d", "GroupNorm", "EvoNorm2dS0",
          "FilterResponseNormTlu2d", "ReLU", "SiLU", "Sigmoid", "MaxPool2d", "AvgPool2d",
          "AdaptiveAvgPool2d", "BlurPool2d", "Identity", "Dropout", "Flatten",
          "ConstantPad2d", "RadixSoftmax"}
# the blocks whose forward archdsl knows, with their placement
BLOCKS = {"BasicBlock": "post", "Bottleneck": "post", "PreActBasic": "full_preact",
          "PreActBottleneck": "full_preact", "SEResNetBlock": "relu_before_and_after_add",
          "SEResNetBottleneck": "post", "SEResNeXtBottleneck": "post", "SEBottleneck": "post",
          "PreBottleneck": "full_preact_shortcut", "ResBottleneckBlock": "post",
          "ResNestBottleneck": "post", "SelectiveKernelBasic": "post",
          "SelectiveKernelBottleneck": "post", "Bottle2neck": "post"}
_TOPS = (("conv1", "layer1"), ("stem", "stages"), ("layer0", "layer1"), ("stem", "s1"),
         ("stem", "trunk_output"))
ACTS = {"ReLU": "relu", "SiLU": "silu"}


def classes(m: nn.Module) -> set[str]:
    """The names of ``m``'s class and its bases."""
    return {c.__name__ for c in type(m).__mro__}


def check(module: nn.Module, source: str) -> None:
    """Refuse, in one line naming the module, anything archdsl cannot say."""
    if not any(all(hasattr(module, a) for a in pair) for pair in _TOPS):
        raise refuse(source, type(module).__name__, "not a ResNet-family network: no stem "
                     "and residual stages (conv1 and layer1, stem and stages, layer0 and "
                     "layer1, stem and s1, or stem and trunk_output)")
    # a selective kernel's paths are dilated (its larger receptive fields)
    kernels = tuple(f"{n}." for n, m in module.named_modules()
                    if "SelectiveKernel" in classes(m))
    for name, m in module.named_modules():
        known = classes(m) & FOREIGN.keys()
        if known:
            raise refuse(source, name, f"{FOREIGN[known.pop()]} has no spec form")
        if next(m.children(), None) is None and not classes(m) & LEAVES:
            raise refuse(source, name, f"{type(m).__name__} has no spec form (archdsl "
                         "has ReLU and SiLU activations, max/average pools, BN, GroupNorm, "
                         "EvoNorm-S0 and FRN)")
        if isinstance(m, nn.Conv2d) and m.dilation != (1, 1) and not name.startswith(kernels):
            raise refuse(source, name, f"a dilated conv (dilation {m.dilation[0]}, an "
                         "output stride under 32) has no spec form")
        pool = getattr(m, "pool_type", "avg")
        if "SelectAdaptivePool2d" in classes(m) and pool != "avg":
            raise refuse(source, name, f"global {pool} pooling has no spec form; allowed: "
                         "avg")


def _blocks(module: nn.Module, draft: Draft) -> Iterator[tuple[int, str, nn.Module]]:
    """(index in its stage, block name, block module) of every block, in the draft's
    layout."""
    layout = draft.spec["layout"]
    modules = dict(module.named_modules())
    for i, stage in enumerate(draft.spec["stages"]):
        for j in range(stage["depth"]):
            name = name_in(layout, f"layer{i + 1}.{j}")
            yield j, name, modules[name]


def _stride(block: nn.Module) -> int:
    """A block's stride: its branch convs' and its anti-aliasing pool's."""
    s = max(int(c.stride[0]) for c in block.modules() if isinstance(c, nn.Conv2d))
    aa = getattr(block, "aa", None)
    avd = [getattr(block, a, None) for a in ("avd_first", "avd_last")]  # ResNeSt's
    s = max([s, *(int(p.stride) for p in avd if isinstance(p, nn.AvgPool2d))])
    return 2 if aa is not None and not isinstance(aa, nn.Identity) else s


def _of(module: nn.Module, *names: str) -> list[nn.Module]:
    return [m for m in module.modules() if classes(m) & set(names)]


def settle(module: nn.Module, draft: Draft, source: str) -> None:
    """Settle every assumption the module's attributes decide."""
    blocks = list(_blocks(module, draft))
    for _, name, block in blocks:
        if not classes(block) & BLOCKS.keys():
            raise refuse(source, name, f"a block of class {type(block).__name__}: archdsl "
                         f"reads {', '.join(sorted(BLOCKS))}")
        _attention(block, name, source)
    firsts = [b for j, _, b in blocks if j == 0]
    draft.settle("strides", [_stride(b) for b in firsts])
    if "placement" in draft.assumed:  # the nearest known class along the MRO
        block_class = next(c.__name__ for c in type(blocks[0][2]).__mro__ if c.__name__ in BLOCKS)
        linear = isinstance(getattr(blocks[0][2], "act3", None), nn.Identity)  # timm RegNetZ
        draft.settle("placement", "post_linear" if linear else BLOCKS[block_class])
    _acts(module, draft, source)
    if "stride_on" in draft.assumed:
        strided = [b for b in firsts if "conv3" in dict(b.named_children()) and _stride(b) > 1]
        on = {"1x1" if b.conv1.stride[0] > 1 else "3x3" for b in strided} or {"3x3"}
        if len(on) > 1:
            raise refuse(source, "stride_on", "stages stride on different convs")
        draft.settle("stride_on", on.pop())
    _branch_forms(blocks, draft, source)
    _stem_pool(module, draft, source)
    blur, avg = _of(module, "BlurPool2d"), [getattr(b, "aa", None) for _, _, b in blocks]
    if "antialias" in draft.assumed:
        if blur:
            draft.settle("antialias", {"kind": "blur", "size": int(blur[0].filt_size)})
        elif any(isinstance(a, nn.AvgPool2d) for a in avg):
            draft.settle("antialias", {"kind": "avg", "size": 3})
        else:
            draft.settle("antialias", None)
    if "downsample" in draft.assumed:
        pooled = any(n.endswith("downsample.pool") for n, _ in module.named_modules())
        draft.settle("downsample", "avgpool" if pooled else "conv")
    _convs_norms(module, draft, source)
    if "se" in draft.assumed:
        se = _of(module, "SEModule")[0]
        draft.settle("se", "floor" if type(se).__module__.endswith("senet") else "divisor8")
    if "shortcut_form" in draft.assumed:  # the known blocks add an identity shortcut
        draft.settle("shortcut_form", {"form": "identity"})
    drops = _of(module, "Dropout")
    draft.settle("dropout", float(drops[0].p) if drops else
                 float(getattr(module, "drop_rate", 0.0)))


def _acts(module: nn.Module, draft: Draft, source: str) -> None:
    """The network's activation, and whether a lone one ends the trunk (timm's RegNet
    ``final_conv``)."""
    if "act" in draft.assumed:
        kinds = {ACTS[c] for m in module.modules() for c in classes(m) & ACTS.keys()}
        draft.settle("act", _one(kinds, "act", source))
    if "head_act" in draft.assumed:
        final = getattr(module, "final_conv", None)
        draft.settle("head_act", bool(classes(final) & ACTS.keys()) if final else False)


def _branch_forms(blocks: list[tuple[int, str, nn.Module]], draft: Draft,
                  source: str) -> None:
    """ResNeSt's avd pool and a selective kernel's dilations, from the blocks."""
    if "avd" in draft.assumed:
        where = {"before" if getattr(b, "avd_first", None) is not None else
                 "after" if getattr(b, "avd_last", None) is not None else "none"
                 for j, _, b in blocks if j == 0 and _stride(b) > 1}
        draft.settle("avd", _one(where, "avd", source))
    if "sk_dilations" in draft.assumed:
        kernels = _of(blocks[0][2], "SelectiveKernel")
        dilations = {tuple(int(p.conv.dilation[0]) for p in k.paths) for _, _, b in blocks
                     for k in _of(b, "SelectiveKernel")}
        if kernels:
            draft.settle("sk_dilations", list(_one(dilations, "sk.dilations", source)))


def _attention(block: nn.Module, name: str, source: str) -> None:
    """A block's channel attention must be SE (without a BN) or ECA."""
    for attr in ("se", "se_module"):
        att = getattr(block, attr, None)
        if att is None or isinstance(att, nn.Identity):
            continue
        kind = classes(att) & {"SEModule", "EcaModule"}
        if not kind:
            raise refuse(source, f"{name}.{attr}", f"{type(att).__name__} has no spec form; "
                         "allowed: SE (SEModule) or ECA (EcaModule) channel attention")
        if not isinstance(getattr(att, "bn", None), (nn.Identity, type(None))):
            raise refuse(source, f"{name}.{attr}.bn", "an SE module with a BN between its "
                         "FCs has no spec form")


def _stem_pool(module: nn.Module, draft: Draft, source: str) -> None:
    if "stem_pool" not in draft.assumed:
        return
    modules = dict(module.named_modules())
    pool = modules.get(name_in(draft.spec["layout"], "maxpool"))
    if isinstance(pool, nn.Sequential):  # anti-aliased: the padded max-pool, at stride 1
        pool = pool[0]
    if not isinstance(pool, nn.MaxPool2d):  # anti-aliased by an average pool
        draft.settle("stem_pool", "max")
        return
    padded = pool.padding in (1, (1, 1))
    pad = modules.get(name_in(draft.spec["layout"], "pad"))
    if not (padded or pad is not None or pool.ceil_mode):
        raise refuse(source, name_in(draft.spec["layout"], "maxpool"), "an unpadded stem "
                     "max-pool that rounds down has no spec form; allowed: padding 1, a "
                     "zero pad before it, or ceil mode")
    draft.settle("stem_pool", "max" if padded else "zero_pad_max" if pad is not None
                 else "max_ceil")


def _one(values: set[Any], what: str, source: str) -> Any:
    if len(values) != 1:
        raise refuse(source, what, f"differs between layers: {sorted(values, key=str)}; "
                     "archdsl has one for the whole network")
    return values.pop()


def _convs_norms(module: nn.Module, draft: Draft, source: str) -> None:
    if "conv" in draft.assumed:
        std = _of(module, "StdConv2d")
        draft.settle("conv", "standardized" if std else "plain")
        if std:
            draft.settle("conv_eps", _one({float(c.eps) for c in std}, "conv.eps", source))
    kind = draft.spec["norm"]["kind"]
    norm = {"batch": ("BatchNorm2d",), "group": ("GroupNorm",),
            "evonorm_s0": ("EvoNorm2dS0",), "frn": ("FilterResponseNormTlu2d",)}[kind]
    norms = _of(module, *norm)
    if not norms:
        raise refuse(source, "norm", f"the state_dict reads as {kind} norms, but the module "
                     f"has no {' or '.join(norm)}")
    if "norm_groups" in draft.assumed:
        groups = {int(getattr(n, "num_groups", getattr(n, "groups", 0))) for n in norms}
        sizes = {int(n.num_channels) // int(n.num_groups) for n in norms
                 if hasattr(n, "num_groups")}
        if len(groups) > 1 and len(sizes) == 1:  # timm's GroupNormAct(group_size=...)
            draft.assumed.pop("norm_groups")
            draft.settle("norm_group_size", sizes.pop())
        else:
            draft.settle("norm_groups", _one(groups, "norm.groups", source))
    eps = _one({float(n.eps) for n in norms}, "norm.eps", source)
    if "norm_eps" in draft.assumed or eps != 1e-5:
        draft.settle("norm_eps", eps)
