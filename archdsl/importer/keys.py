"""A state_dict's keys and shapes as the importer and the block families' readers ask
for them (torch-free): by canonical (torchvision) names, through the layout's table."""

from __future__ import annotations

from collections.abc import Mapping

from ..layouts import LAYOUTS, name_in
from .draft import refuse

Shapes = Mapping[str, tuple[int, ...]]

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
    "act": "an activation has no weights: ReLU or SiLU (RegNetV/Z) can't be told; --act",
    "head_act": "a final activation has no weights (regnetz_040's); --head-act true",
    "avd": "ResNeSt's avd pool has no weights: after the split-attention conv (resnest50d), "
           "before it (resnest50d_4s2x40d) or none can't be told; --avd before|none",
    "sk_dilations": "a dilation has no weights: a selective kernel's paths are taken as "
                    "timm's 3x3 and 5x5 (a 3x3 of dilation 2), 7x7…; --sk-dilations 1,3",
    "linear_out": "the activation after the addition has no weights (RegNetZ has none); "
                  "--placement post_linear",
}


class Keys:
    """A state_dict's shapes by canonical names through a layout; a shape read for its
    sizes (``dims`` given) must have those dimensions, none 0, or the key is refused."""

    def __init__(self, shapes: Shapes, layout: str, deep: bool, source: str) -> None:
        self.shapes, self.layout, self.deep, self.source = shapes, layout, deep, source
        self.family = LAYOUTS[layout].family  # whose names: None (ResNets) or "regnet"

    def key(self, canonical: str, param: str = "weight", op: str = "") -> str:
        return f"{name_in(self.layout, canonical, op, deep=self.deep)}.{param}"

    def get(self, canonical: str, dims: tuple[int, ...] = (), *,
            op: str = "") -> tuple[int, ...] | None:
        """The shape under ``canonical`` (the name of an ``op`` node, where a layout names
        ops apart)."""
        key = self.key(canonical, op=op)
        shape = self.shapes.get(key)
        if shape is not None and dims and (len(shape) not in dims or 0 in shape):
            raise refuse(self.source, key, f"has shape {list(shape)}; allowed: "
                         f"{' or '.join(map(str, dims))} dimensions, none of them 0")
        return shape

    def out(self, canonical: str) -> int | None:  # a conv's output channels
        shape = self.get(canonical, CONV)
        return shape[0] if shape else None


CONV, CONV1D, LINEAR = (4,), (3,), (2, 4)  # a 1x1 conv may stand for a linear


def stage_width(k: Keys, blocks: list[str], last: str, source: str) -> int:
    """The width every block of a stage ends at (its conv ``last``); refused where a
    block lacks that conv or ends at another width."""
    width = k.out(f"{blocks[0]}.{last}")
    if width is None:
        raise refuse(source, k.key(f"{blocks[0]}.{last}"), MISSING)
    for b in blocks[1:]:
        other = k.out(f"{b}.{last}")
        if other is None:
            raise refuse(source, k.key(f"{b}.{last}"), MISSING)
        if other != width:
            raise refuse(source, k.key(f"{b}.{last}"), f"ends at {other} channels, the "
                         f"stage's first block at {width}; a stage has one width")
    return width
