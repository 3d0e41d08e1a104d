"""Specs registered as timm models (archdsl.timm): ``timm.create_model`` builds them with
timm's arguments honoured, and timm's data config, optimizer factory, EMA and loss train
one on synthetic data as they train timm's own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import timm
import torch
from helpers import ROOT, SPECS, assert_close, outputs, randomised
from PIL import Image
from timm.data import create_transform, resolve_data_config
from timm.loss import LabelSmoothingCrossEntropy
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3

from archdsl.timm import register

INPUT = (3, 64, 64)


@pytest.fixture(scope="module", autouse=True)
def registered() -> list[str]:
    return register(SPECS / "resnet18.yaml")


def test_registered_names(registered) -> None:
    assert registered == ["archdsl_resnet18"]
    assert "archdsl_resnet18" in timm.list_models("archdsl_*")


def test_create_model_is_timms_twin() -> None:
    ref = randomised(timm.create_model("resnet18", num_classes=10), INPUT)
    ours = timm.create_model("archdsl_resnet18", num_classes=10)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), 1e-5)
    feats = timm.create_model("archdsl_resnet18", features_only=True, out_indices=(1, 3))
    assert feats.feature_info.channels() == [64, 256]
    ref = randomised(timm.create_model("resnet18", features_only=True, output_stride=8), INPUT)
    ours = timm.create_model("archdsl_resnet18", features_only=True, output_stride=8)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert ours.feature_info.reduction() == [2, 4, 8, 8, 8]
    for a, b in zip(outputs(ours, INPUT), outputs(ref, INPUT), strict=True):
        assert_close(a, b, 1e-5)
    with pytest.raises(TypeError, match="drop_path_rate"):
        timm.create_model("archdsl_resnet18", drop_path_rate=0.1)


def test_pretrained_from_a_local_file(tmp_path) -> None:
    ref = randomised(timm.create_model("resnet18"), INPUT)
    file = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), file)
    ours = timm.create_model("archdsl_resnet18", pretrained=True,
                             pretrained_cfg_overlay={"file": str(file)})
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), 1e-5)
    with pytest.raises(ValueError, match="downloads nothing"):
        timm.create_model("archdsl_resnet18", pretrained=True)


def test_data_config_and_transform() -> None:
    model = timm.create_model("archdsl_resnet18")
    cfg = resolve_data_config({}, model=model)
    assert cfg["input_size"] == (3, 224, 224)
    x = create_transform(**cfg)(Image.new("RGB", (300, 260)))
    assert tuple(x.shape) == (3, 224, 224)


def test_training_steps_with_timms_tools() -> None:
    torch.manual_seed(0)
    model = timm.create_model("archdsl_resnet18", num_classes=10, drop_rate=0.0)
    optimizer = create_optimizer_v2(model, "sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
    ema = ModelEmaV3(model, decay=0.9)
    loss_fn = LabelSmoothingCrossEntropy(smoothing=0.1)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn((8, *INPUT), generator=g), torch.randint(0, 10, (8,), generator=g)
    losses = []
    model.train()
    for _ in range(8):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(model)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert ema.module.eval()(x).shape == (8, 10)


def test_import_registers_the_env_specs() -> None:
    """train.py --device-modules archdsl.timm imports the module before create_model."""
    code = ("import archdsl.timm, timm; m = timm.create_model('archdsl_resnet50', "
            "num_classes=3); print(m.fc.out_features)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT,
                         env={**os.environ, "ARCHDSL_SPECS": str(SPECS)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"
