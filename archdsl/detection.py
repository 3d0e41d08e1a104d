"""An archdsl network as a torchvision detection backbone: torchvision's own
``BackboneWithFPN`` over the built module, its stages frozen as torchvision's
``resnet_fpn_backbone`` freezes them and its BatchNorm frozen as the pretrained
detectors' (``FrozenBatchNorm2d``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

from .emit.torch import build_model
from .load import load_spec, respec
from .spec.schema import Spec


def freeze(model: nn.Module, trainable_layers: int) -> None:
    """Stop the gradients of all but the last ``trainable_layers`` stages (one more: the
    stem too), as torchvision's detection backbones do (3 by default)."""
    stages = [f.module for f in model.feature_info if f.index > 0]
    if not 0 <= trainable_layers <= len(stages) + 1:
        raise ValueError(f"trainable_layers {trainable_layers}: allowed: 0 to "
                         f"{len(stages) + 1} (the stages, then the stem)")
    train = stages[len(stages) - trainable_layers:] if trainable_layers <= len(stages) \
        else [""]
    for name, p in model.named_parameters():
        if not any(name == t or name.startswith(f"{t}.") or t == "" for t in train):
            p.requires_grad_(False)


def fpn_backbone(spec: Spec | str | os.PathLike[str], *, trainable_layers: int = 3,
                 returned_layers: Sequence[int] = (1, 2, 3, 4), out_channels: int = 256,
                 frozen_bn: bool = True, extra_blocks: ExtraFPNBlock | None = None
                 ) -> BackboneWithFPN:
    """``resnet_fpn_backbone``'s backbone for a spec: torchvision's ``BackboneWithFPN``
    over archdsl's module, the maps of the stages in ``returned_layers`` (1 the first)
    named ``"0"``, ``"1"``… as torchvision names them, BatchNorm frozen (``frozen_bn``)
    and all but ``trainable_layers`` stages frozen. The spec's stages must be children of
    the network (torchvision's and timm's ResNet layouts, RegNet's)."""
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    if frozen_bn and spec.norm.kind == "batch":
        spec = respec(spec, norm={"kind": "frozen_batch"})
    model = build_model(spec)
    freeze(model, trainable_layers)
    info = {f.index: f for f in model.feature_info}
    chosen = [info[i] for i in returned_layers if i in info and i > 0]
    if len(chosen) != len(returned_layers):
        raise ValueError(f"returned_layers {list(returned_layers)}: allowed: stages 1 to "
                         f"{max(info)}")
    children = dict(model.named_children())
    nested = [f.module for f in chosen if f.module not in children]
    if nested:
        raise ValueError(f"{spec.name}: stage {nested[0]} is not a child of the network "
                         "(its layout nests the stages); IntermediateLayerGetter reads "
                         "children only: use torchvision's create_feature_extractor")
    return BackboneWithFPN(model, {f.module: str(k) for k, f in enumerate(chosen)},
                           [f.channels for f in chosen], out_channels,
                           extra_blocks=extra_blocks)
