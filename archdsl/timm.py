"""Specs as timm models: ``register(PATH_OR_DIR)`` puts each spec into timm's registry as
``archdsl_<name>``, so ``timm.create_model`` builds it and timm's training tools
(``timm.data``, ``timm.optim``, ``timm.utils``, ``train.py``) take it unchanged.

Importing this module registers the specs of ``ARCHDSL_SPECS`` (files or folders, joined
by the path separator): ``ARCHDSL_SPECS=specs python train.py --device-modules
archdsl.timm --model archdsl_resnet50 …`` trains a spec with timm's ``train.py``, which
imports its ``--device-modules`` before it builds the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import register_model
from torch import nn

from .load import load_spec, respec
from .spec.schema import Spec

PREFIX = "archdsl_"
# what timm.create_model passes that changes nothing here (None-valued ones it drops)
IGNORED = ("cache_dir", "scriptable", "exportable", "no_jit")


def data_cfg(spec: Spec, name: str, file: str | None) -> dict[str, Any]:
    """timm's pretrained config of a spec (what ``resolve_data_config`` reads): the spec's
    input, ImageNet's mean and std and timm's ResNet crop, bicubic (a spec states no
    preprocessing of its own)."""
    h, w = spec.input.hw
    return {"architecture": name, "input_size": (spec.input.channels, h, w),
            "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
            "interpolation": "bicubic", "crop_pct": 0.95, "num_classes": spec.head.classes,
            "first_conv": "", "classifier": "", "file": file}


def _entrypoint(path: Path, name: str) -> Callable[..., nn.Module]:
    def create(pretrained: bool = False, pretrained_cfg: Any = None,
               pretrained_cfg_overlay: dict[str, Any] | None = None,
               features_only: bool = False, out_indices: tuple[int, ...] | None = None,
               num_classes: int | None = None, in_chans: int | None = None,
               drop_rate: float | None = None, output_stride: int | None = None,
               **kwargs: Any) -> nn.Module:
        from . import build_model, load_weights

        unknown = sorted(k for k in kwargs if k not in IGNORED)
        if unknown:
            raise TypeError(f"{name}: timm argument(s) {', '.join(unknown)} have no spec "
                            "field; allowed: num_classes, in_chans, drop_rate, "
                            "output_stride, features_only, out_indices, pretrained, "
                            "pretrained_cfg_overlay")
        spec = load_spec(path)
        fields: dict[str, Any] = {}
        if in_chans is not None:
            fields["input"] = {"channels": in_chans}
        if drop_rate is not None:
            fields["head"] = {"dropout": drop_rate}
        if output_stride is not None:
            fields["output_stride"] = output_stride
        spec = respec(spec, **fields) if fields else spec
        cfg = {**(pretrained_cfg if isinstance(pretrained_cfg, dict) else {}),
               **(pretrained_cfg_overlay or {})}
        file = cfg.get("file")
        if pretrained and not file:
            raise ValueError(f"{name}: pretrained=True needs a local file "
                             "(pretrained_cfg_overlay=dict(file=PATH)); archdsl downloads "
                             "nothing")
        # the checkpoint holds the spec's classifier: load it, then resize
        model = build_model(spec, features_only=features_only, out_indices=out_indices) \
            if features_only else build_model(spec)
        if pretrained:
            load_weights(model, file, source="timm")
        if num_classes is not None and not features_only and \
                num_classes != spec.head.classes:
            model.reset_classifier(num_classes)
        model.pretrained_cfg = model.default_cfg = {
            **data_cfg(spec, name, file),
            "num_classes": num_classes if num_classes is not None else spec.head.classes}
        return model

    create.__name__ = create.__qualname__ = name
    create.__module__ = __name__
    create.__doc__ = f"The archdsl spec {path} as a timm model."
    return create



def register(path: str | os.PathLike[str]) -> list[str]:
    """Register a spec file, or every ``*.yaml`` spec of a folder, as timm models named
    ``archdsl_<spec name>``; returns the names."""
    root = Path(path)
    files = sorted(root.glob("*.yaml")) if root.is_dir() else [root]
    names = []
    for f in files:
        name = PREFIX + load_spec(f).name
        register_model(_entrypoint(f, name))
        names.append(name)
    return names


for _entry in filter(None, os.environ.get("ARCHDSL_SPECS", "").split(os.pathsep)):
    register(_entry)
