"""Naming layouts: tables that map the IR's canonical (torchvision) names to another
library's state_dict names. Data, not branches: a new layout is a new table entry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .ir.graph import Graph, Node


@dataclass(frozen=True)
class Layout:
    """How one library names a residual network's modules.

    ``stage`` and ``block`` are templates over ``{stage}`` (1-based), ``{stage0}``
    (0-based), ``{index}`` (0-based) and ``{index1}``; ``local`` renames a block's
    members (``bn1`` → ``norm1``; a key ``name@op`` applies only to a node of that op,
    checked first),
    ``top`` renames everything outside blocks, and ``deep_stem`` over it the nodes of a
    deep stem (a graph with a node ``conv1.0``), whose names may differ; ``classifier``
    says whether the final classifier is a Linear or a 1x1 conv with bias; ``held``
    names the module of the library's model that computes a parameter-free node (timm's
    ``BatchNormAct2d`` holds the ReLU after its norm), by local (or top-level) name after
    renaming; ``stages``: the stage count the library's network holds (None: any);
    ``family``: the block family whose names these are (None: the ResNets'), whose
    readers ``archdsl import`` asks.
    """

    stage: str = "layer{stage}"
    block: str = "{stage_name}.{index}"
    local: dict[str, str] = field(default_factory=dict)
    top: dict[str, str] = field(default_factory=dict)
    deep_stem: dict[str, str] = field(default_factory=dict)
    classifier: Literal["linear", "conv"] = "linear"
    held: dict[str, str] = field(default_factory=dict)
    stages: int | None = None
    family: str | None = None
    preact: bool = False  # its names are of pre-activation blocks
    # generated Python builds its modules under these names; else under the IR's, with
    # the state_dict keys renamed to these on saving and back on loading
    python_names: bool = True


# timm's RegNet (regnet.py): ConvNormAct modules (conv, bn with its act inside: held by
# the bn, whose statistics the tools sum its child's into), SE after
# the 3x3, the shortcut downsample (conv + bn; ResNet-D's pool then ConvNormAct), the
# RegNetZ final_conv, head.fc; exactly four stages s1..s4 of blocks b1..
_TIMM_REGNET_TOP = {"conv1": "stem.conv", "bn1": "stem.bn", "relu": "stem.bn.act",
                    "final_conv": "final_conv.conv", "final_bn": "final_conv.bn",
                    "final_conv_act": "final_conv.bn.act", "final_act": "final_conv",
                    "avgpool": "head.global_pool", "fc": "head.fc", "flatten": "head.flatten",
                    "dropout": "head.drop"}
LAYOUTS: dict[str, Layout] = {
    # torchvision.models.resnet / timm.models.resnet: the IR's own names.
    "torchvision": Layout(),
    # timm.models.resnetv2.ResNetV2 (resnetv2_50, resnetv2_101): stem.conv (a deep stem:
    # stem.conv1..3 with norm1..2), stages.N.blocks.M with norm1..3 before conv1..3,
    # downsample.conv (no norm; ResNet-D's average pool before it is downsample.pool), the
    # final norm, head.fc as a 1x1 conv with bias.
    "timm_resnetv2": Layout(
        stage="stages.{stage0}",
        block="{stage_name}.blocks.{index}",
        local={"bn1": "norm1", "bn2": "norm2", "bn3": "norm3", "downsample.0": "downsample.conv",
               "downsample.1": "downsample.norm", "downsample.0@avg_pool": "downsample.pool",
               "downsample.1@conv2d": "downsample.conv"},
        top={"conv1": "stem.conv", "bn1": "stem.norm", "relu": "stem.act", "maxpool": "stem.pool",
             "pad": "stem.pad",
             "avgpool": "head.global_pool", "fc": "head.fc", "flatten": "head.flatten",
             "dropout": "head.drop"},
        deep_stem={"conv1.0": "stem.conv1", "conv1.1": "stem.norm1", "conv1.2": "stem.act1",
                   "conv1.3": "stem.conv2", "conv1.4": "stem.norm2", "conv1.5": "stem.act2",
                   "conv1.6": "stem.conv3"},
        classifier="conv", preact=True,
        held={"relu1": "norm1", "relu2": "norm2", "relu3": "norm3", "norm_act": "norm",
              "stem.act1": "stem.norm1", "stem.act2": "stem.norm2"}),
    # timm.models.senet.SENet (legacy_seresnet*, legacy_seresnext*, legacy_senet154): the
    # stem is layer0 (conv1, bn1, relu1; a deep stem conv1..3, bn1..3, relu1..3) and pool0,
    # SE is se_module (fc1, relu, fc2, sigmoid), the classifier last_linear after
    # global_pool. The stem pool (max_ceil) and the stride on the first 1x1 of an SE-ResNet
    # bottleneck are the spec's to say, as legacy_seresnet50.yaml does.
    "timm_senet": Layout(
        local={"se.pool": "se_module.pool", "se.fc1": "se_module.fc1",
               "se.act": "se_module.relu", "se.fc2": "se_module.fc2",
               "se.gate": "se_module.sigmoid", "se.scale": "se_module.scale"},
        top={"conv1": "layer0.conv1", "bn1": "layer0.bn1", "relu": "layer0.relu1",
             "maxpool": "pool0", "avgpool": "global_pool", "fc": "last_linear"},
        deep_stem={"conv1.0": "layer0.conv1", "conv1.1": "layer0.bn1",
                   "conv1.2": "layer0.relu1", "conv1.3": "layer0.conv2",
                   "conv1.4": "layer0.bn2", "conv1.5": "layer0.relu2",
                   "conv1.6": "layer0.conv3", "bn1": "layer0.bn3", "relu": "layer0.relu3"}),
    # torchvision.models.regnet: stem.0/1/2, trunk_output.blockN.blockN-M with f.a/f.b/f.c
    # (conv, BN, ReLU), SE f.se (fc1, activation, fc2, scale_activation), proj.0/1, the
    # ReLU after the addition `activation`, fc.
    "torchvision_regnet": Layout(
        stage="trunk_output.block{stage}",
        block="{stage_name}.block{stage}-{index}",
        local={"conv1": "f.a.0", "bn1": "f.a.1", "relu1": "f.a.2", "conv2": "f.b.0",
               "bn2": "f.b.1", "relu2": "f.b.2", "conv3": "f.c.0", "bn3": "f.c.1",
               "relu3": "activation", "se.pool": "f.se.avgpool", "se.fc1": "f.se.fc1",
               "se.act": "f.se.activation", "se.fc2": "f.se.fc2",
               "se.gate": "f.se.scale_activation", "se.scale": "f.se.scale",
               "downsample.0": "proj.0", "downsample.1": "proj.1"},
        top={"conv1": "stem.0", "bn1": "stem.1", "relu": "stem.2"},
        family="regnet", python_names=False),
    "timm_regnet": Layout(
        stage="s{stage}", block="{stage_name}.b{index1}",
        local={"conv1": "conv1.conv", "bn1": "conv1.bn", "relu1": "conv1.bn.act",
               "conv2": "conv2.conv", "bn2": "conv2.bn", "relu2": "conv2.bn.act",
               "conv3": "conv3.conv", "bn3": "conv3.bn", "relu3": "act3",
               "downsample.0": "downsample.conv", "downsample.0@avg_pool": "downsample.0",
               "downsample.1": "downsample.bn", "downsample.1@conv2d": "downsample.1.conv",
               "downsample.2": "downsample.1.bn"},
        top=_TIMM_REGNET_TOP, stages=4, family="regnet", python_names=False,
        held={"conv1.bn.act": "conv1.bn", "conv2.bn.act": "conv2.bn",
              "stem.bn.act": "stem.bn", "final_conv.bn.act": "final_conv.bn"}),
    # timm's SKNet (sknet.py): ResNet's names, but a conv outside the selective kernel is a
    # ConvNormAct (conv1.conv, conv1.bn holding its act), as is each path of the kernel
    # (conv1.paths.0.conv, .bn), and the ReLU after the addition is act
    "timm_sknet": Layout(
        local={"conv1": "conv1.conv", "bn1": "conv1.bn", "relu1": "conv1.bn.act",
               "conv2": "conv2.conv", "bn2": "conv2.bn", "relu2": "act",
               "conv3": "conv3.conv", "bn3": "conv3.bn", "relu3": "act"},
        family="sknet",
        held={"conv1.bn.act": "conv1.bn", **{f"conv{i}.paths.{p}.act": f"conv{i}.paths.{p}.bn"
                                              for i in (1, 2) for p in range(4)}}),
    # timm's RegNetV (PreBottleneck): norm1..3 (with their act) before bare conv1..3, the
    # shortcut a bare conv (or ResNet-D's pool then conv), the stem a bare conv.
    "timm_regnetv": Layout(
        stage="s{stage}", block="{stage_name}.b{index1}",
        local={"bn1": "norm1", "relu1": "norm1.act", "bn2": "norm2", "relu2": "norm2.act",
               "bn3": "norm3", "relu3": "norm3.act", "downsample.0@conv2d": "downsample"},
        top={**_TIMM_REGNET_TOP, "conv1": "stem"}, stages=4, family="regnet", preact=True,
        python_names=False, held={"norm1.act": "norm1", "norm2.act": "norm2",
                                  "norm3.act": "norm3"}),
}

_BLOCK = re.compile(r"^layer(\d+)\.(\d+)$")
_STAGE = re.compile(r"^layer(\d+)$")


def _stage_name(layout: Layout, stage: str) -> str:
    m = _STAGE.match(stage)
    if not m:
        return stage
    i = int(m.group(1))
    return layout.stage.format(stage=i, stage0=i - 1)


def _block_name(layout: Layout, block: str) -> str:
    i, j = map(int, _BLOCK.match(block).groups())  # type: ignore[union-attr]
    stage_name = layout.stage.format(stage=i, stage0=i - 1)
    return layout.block.format(stage_name=stage_name, stage=i, stage0=i - 1, index=j,
                               index1=j + 1)


def _rename(layout: Layout, n: Node, deep: bool, block: str | None = None) -> str:
    """``n``'s name in ``layout``; ``block``: its block's, where already known."""
    if n.block is None:
        if deep and n.name in layout.deep_stem:
            return layout.deep_stem[n.name]
        return layout.top.get(n.name, n.name)
    local = n.name[len(n.block) + 1:]
    renamed = layout.local.get(f"{local}@{n.op}", layout.local.get(local, local))
    return f"{block or _block_name(layout, n.block)}.{renamed}"


_IN_BLOCK = re.compile(r"^(layer\d+\.\d+)\.(.+)$")


def name_in(layout: str, canonical: str, op: str = "", *, deep: bool = False) -> str:
    """The name layout ``layout`` gives the node that the IR names ``canonical``
    (``layer1.0.bn1`` → ``stages.0.blocks.0.norm1``); ``op`` picks an ``@op`` rename and
    ``deep`` the deep stem's names. Reading a state_dict back (archdsl.importer) asks this."""
    if _BLOCK.match(canonical):
        return _block_name(LAYOUTS[layout], canonical)
    m = _IN_BLOCK.match(canonical)
    block = m.group(1) if m else None
    return _rename(LAYOUTS[layout], Node(canonical, op, (), {}, (), "", block), deep)


def module_of(graph: Graph, node: Node) -> str:
    """The name of the module that computes ``node`` in the layout's library: its own
    name, or the module that holds it (``Layout.held``)."""
    held = LAYOUTS[graph.layout].held
    if node.block is None:
        return held.get(node.name, node.name)
    local = node.local
    return f"{node.block}.{held[local]}" if local in held else node.name


def apply_layout(graph: Graph, name: str) -> Graph:
    """``graph`` with every node (and its stage and block) named by layout ``name``."""
    layout = LAYOUTS[name]
    if layout == Layout():
        return graph
    deep = any(n.name == "conv1.0" for n in graph)
    # each block's and stage's name once (a sweep lowers thousands of graphs)
    blocks = {b: _block_name(layout, b) for b in graph.kinds}
    stages = {st: _stage_name(layout, st) for st in dict.fromkeys(n.stage for n in graph)}
    names = {n.name: _rename(layout, n, deep, blocks.get(n.block or "")) for n in graph}
    nodes = tuple(
        Node(names[n.name], n.op, tuple(names[i] for i in n.inputs), n.attrs, n.shape,
             stages[n.stage], blocks[n.block] if n.block else None, n.role, n.part)
        for n in graph)
    kinds = {blocks[k]: v for k, v in graph.kinds.items()}
    canonical = {new: old for table in (names, blocks, stages) for old, new in table.items()}
    return Graph(graph.name, nodes, kinds, name, canonical)


@dataclass(frozen=True)
class Foreign:
    """Another library's checkpoint naming, read back as a layout's above (``archdsl
    import`` and ``--weights`` rename its keys to that layout's names).

    ``shows``: a key only this naming has (a regex); ``rename``: (regex, template)
    pairs, the first whose regex matches a key's start replaces that start, ``{g1}`` in
    a template being group ``g`` plus one; ``keys`` says which keys those are;
    ``aside``: keys that are not the ResNet's (a detector's heads), set aside;
    ``trunk``: the ResNet has no classifier by design (the spec's head has ``classes:
    0``); ``config``: the ``model_type`` of the Hugging Face ``config.json`` that says
    what the keys cannot.
    """

    what: str
    keys: str  # the keys it reads, said in a refusal
    shows: str
    rename: tuple[tuple[str, str], ...]
    aside: tuple[str, ...] = ()
    trunk: bool = False
    config: str | None = None


_HF_BLOCK = r"^(?:{model}\.)?encoder\.stages\.(?P<s>\d+)\.layers\.(?P<b>\d+)\."
_HF_STEM = r"^(?:{model}\.)?embedder\.embedder\."
_TV_REGNET_BLOCK = "trunk_output.block{s1}.block{s1}-{b}."


def _conv_norm(src: str, conv: str, norm: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """A transformers conv layer at ``src`` (its convolution, its normalization) renamed to
    ``conv`` and ``norm``."""
    return (src + r"convolution\.", conv), (src + r"normalization\.", norm)


FOREIGN: dict[str, Foreign] = {
    # torchvision.models.detection (Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS):
    # backbone.body is an IntermediateLayerGetter over a ResNet without avgpool and fc
    "torchvision_detection": Foreign(
        "torchvision.models.detection", "backbone.body.* (set aside: backbone.fpn.*, rpn.*, "
        "roi_heads.*, head.*)", r"^backbone\.body\.conv1\.weight$",
        ((r"^backbone\.body\.", ""),),
        aside=(r"^backbone\.fpn\.", r"^rpn\.", r"^roi_heads\.", r"^head\."), trunk=True),
    # mmpretrain's ImageClassifier(backbone=ResNet, head=LinearClsHead): torchvision's
    # names under backbone., the classifier head.fc
    "mmpretrain": Foreign(
        "mmpretrain", "backbone.*, head.fc.*", r"^backbone\.conv1\.weight$",
        ((r"^backbone\.", ""), (r"^head\.fc\.", "fc."))),
    # transformers' ResNetForImageClassification (ResNetModel without its classifier):
    # embedder.embedder (conv, BN; then a max-pool), stages.N.layers.M with
    # shortcut (conv, BN) and layer.K (ResNetConvLayer: convolution, normalization),
    # classifier = Sequential(Flatten, Linear)
    "hf_resnet": Foreign(
        "Hugging Face transformers' ResNet", "[resnet.]embedder.embedder.*, "
        "[resnet.]encoder.stages.N.layers.M.{shortcut,layer.K}.{convolution,normalization}.*, "
        "classifier.1.*",
        r"^(?:resnet\.)?embedder\.embedder\.convolution\.weight$",
        (*_conv_norm(_HF_STEM.format(model="resnet"), "conv1.", "bn1."),
         *_conv_norm(_HF_BLOCK.format(model="resnet") + r"shortcut\.",
                     "layer{s1}.{b}.downsample.0.", "layer{s1}.{b}.downsample.1."),
         *_conv_norm(_HF_BLOCK.format(model="resnet") + r"layer\.(?P<c>\d)\.",
                     "layer{s1}.{b}.conv{c1}.", "layer{s1}.{b}.bn{c1}."),
         (r"^classifier\.1\.", "fc.")),
        config="resnet"),
    # transformers' RegNetForImageClassification: the same embedder and stages, as
    # torchvision's RegNet names; RegNetY's layer.2 is SE (a pooler, then attention: conv,
    # ReLU, conv, sigmoid) and its last conv layer.3, RegNetX's layer.2
    "hf_regnet": Foreign(
        "Hugging Face transformers' RegNet", "[regnet.]embedder.embedder.*, "
        "[regnet.]encoder.stages.N.layers.M.{shortcut,layer.K}.{convolution,normalization}.*, "
        "…layer.2.attention.{0,2}.*, classifier.1.*",
        r"^(?:regnet\.)?embedder\.embedder\.convolution\.weight$",
        (*_conv_norm(_HF_STEM.format(model="regnet"), "stem.0.", "stem.1."),
         *_conv_norm(_HF_BLOCK.format(model="regnet") + r"shortcut\.",
                     _TV_REGNET_BLOCK + "proj.0.", _TV_REGNET_BLOCK + "proj.1."),
         *_conv_norm(_HF_BLOCK.format(model="regnet") + r"layer\.0\.",
                     _TV_REGNET_BLOCK + "f.a.0.", _TV_REGNET_BLOCK + "f.a.1."),
         *_conv_norm(_HF_BLOCK.format(model="regnet") + r"layer\.1\.",
                     _TV_REGNET_BLOCK + "f.b.0.", _TV_REGNET_BLOCK + "f.b.1."),
         (_HF_BLOCK.format(model="regnet") + r"layer\.2\.attention\.0\.",
          _TV_REGNET_BLOCK + "f.se.fc1."),
         (_HF_BLOCK.format(model="regnet") + r"layer\.2\.attention\.2\.",
          _TV_REGNET_BLOCK + "f.se.fc2."),
         *_conv_norm(_HF_BLOCK.format(model="regnet") + r"layer\.[23]\.",
                     _TV_REGNET_BLOCK + "f.c.0.", _TV_REGNET_BLOCK + "f.c.1."),
         (r"^classifier\.1\.", "fc.")),
        config="regnet"),
}
