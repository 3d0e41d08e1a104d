"""``archdsl import CHECKPOINT`` from where checkpoints live (docs/import.md, "Checkpoints
of training frameworks and other libraries"): DistributedDataParallel, Lightning (any
attribute), timm's training checkpoints (``--ema``), torchvision's detectors, Hugging Face
transformers' ResNet and RegNet, mmpretrain.

Each format round-trips exactly: the real library's model, its weights and BN statistics
randomised, is saved the way that library saves it, imported by the CLI, and the spec's
module loads the file strictly (``load_weights`` reads it as ``--weights`` does) and
computes the same outputs on a fixed input, within 1e-5·max|y|.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import timm
import torch
import torchvision
from helpers import assert_close, outputs, randomised
from torch import nn
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

from archdsl import build_model, import_spec
from archdsl.cli.main import main
from archdsl.weights import load_weights

INPUT = (3, 64, 64)
RTOL = 1e-5


def imported(ckpt: Path, tmp_path: Path, *flags: str) -> tuple[str, nn.Module]:
    """The spec ``archdsl import`` writes for ``ckpt``, and its module with the file's
    weights loaded strictly."""
    out = tmp_path / "spec.yaml"
    assert main(["import", str(ckpt), "-o", str(out), "--input-size", "64", *flags]) == 0
    model = build_model(out)
    weights = ckpt / "model.safetensors" if ckpt.is_dir() else ckpt
    report = load_weights(model, weights, ema="--ema" in flags)
    assert report.exact, report.text()
    return out.read_text(), model


def header(text: str) -> str:
    """The written spec's header comments as one line."""
    lines = [line[2:] for line in text.splitlines()[1:] if line.startswith("# ")]
    return " ".join(lines)


# ----------------------------------------------------------- training frameworks


def test_distributed_data_parallel(tmp_path: Path) -> None:
    ref = randomised(torchvision.models.resnet18(), INPUT)
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, tmp_path / "ddp.pth")
    text, ours = imported(tmp_path / "ddp.pth", tmp_path)
    assert "Removed the key prefix 'module.'." in header(text)
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), RTOL)


def lightning(state: dict[str, torch.Tensor], attribute: str) -> dict[str, Any]:
    """What Lightning's Trainer.save_checkpoint writes for a LightningModule whose network
    is ``self.<attribute>``: its state_dict under the attribute, optimizer states, loops."""
    return {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"{attribute}.{k}": v for k, v in state.items()},
            "loops": {}, "callbacks": {}, "lr_schedulers": [],
            "optimizer_states": [{"state": {0: {"momentum_buffer": torch.zeros(3)}},
                                  "param_groups": [{"lr": 0.1, "params": [0]}]}]}


@pytest.mark.parametrize("attribute", ["model", "net", "backbone_model", "model.net"])
def test_lightning(attribute: str, tmp_path: Path) -> None:
    ref = randomised(torchvision.models.resnet18(num_classes=10), INPUT)
    torch.save(lightning(ref.state_dict(), attribute), tmp_path / "last.ckpt")
    text, ours = imported(tmp_path / "last.ckpt", tmp_path)
    said = header(text)
    assert "Unwrapped {'state_dict': …}" in said
    for part in attribute.split("."):
        assert f"Removed the key prefix '{part}.'" in said
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), RTOL)


@pytest.mark.parametrize("ema", [False, True])
def test_timm_training_checkpoint(ema: bool, tmp_path: Path) -> None:
    """timm's train.py saves state_dict and, with --model-ema, state_dict_ema beside it."""
    model = randomised(timm.create_model("resnet18d", num_classes=10), INPUT, seed=0)
    average = randomised(timm.create_model("resnet18d", num_classes=10), INPUT, seed=5)
    torch.save({"epoch": 9, "arch": "resnet18d", "state_dict": model.state_dict(),
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": []}]},
                "state_dict_ema": average.state_dict(), "metric": 71.3},
               tmp_path / "checkpoint-9.pth.tar")
    text, ours = imported(tmp_path / "checkpoint-9.pth.tar", tmp_path,
                          *(["--ema"] if ema else []))
    said = header(text)
    if ema:
        assert "Unwrapped {'state_dict_ema': …} (the EMA weights)." in said
    else:
        assert ("Unwrapped {'state_dict': …} (EMA weights are present too: "
                "'state_dict_ema', read with --ema).") in said
    ref = average if ema else model
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), RTOL)


def test_ema_without_ema_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"state_dict": torchvision.models.resnet18().state_dict()}, tmp_path / "a.pth")
    assert main(["import", str(tmp_path / "a.pth"), "--ema"]) == 2
    assert capsys.readouterr().err == (
        f"{tmp_path / 'a.pth'}: --ema: no EMA weights (no 'state_dict_ema' in the "
        "checkpoint); allowed: --ema for a timm training checkpoint that has them\n")


# ------------------------------------------------------------------------- detectors


@torch.no_grad()
def frozen_randomised(model: nn.Module, seed: int = 3) -> nn.Module:
    """``randomised``, and FrozenBatchNorm2d's buffers (not parameters, no running
    statistics to calibrate) drawn too: γ and the variance ~ U(0.5, 1.5), β and the mean
    ~ U(-0.2, 0.2)."""
    randomised(model, INPUT, seed)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, FrozenBatchNorm2d):
            for name in ("weight", "running_var", "bias", "running_mean"):
                buf = getattr(m, name)
                low = 0.5 if name in ("weight", "running_var") else -0.2
                buf.copy_(torch.rand(buf.shape, generator=g) * (1.0 if low > 0 else 0.4) + low)
    return model.eval()


def detectors() -> dict[str, nn.Module]:
    frozen = resnet_fpn_backbone(backbone_name="resnet50", weights=None)
    return {"batch_norm": fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None),
            "frozen_batch_norm": FasterRCNN(frozen, num_classes=91)}


@pytest.mark.parametrize("norm", ["batch_norm", "frozen_batch_norm"])
def test_torchvision_detector(norm: str, tmp_path: Path) -> None:
    detector = detectors()[norm]
    body = frozen_randomised(detector.backbone.body)
    torch.save(detector.state_dict(), tmp_path / "fasterrcnn.pth")
    text, ours = imported(tmp_path / "fasterrcnn.pth", tmp_path)
    said = header(text)
    assert "Read torchvision.models.detection's naming" in said
    assert "backbone.fpn.* (" in said and "rpn.* (" in said and "roi_heads.* (" in said
    assert "classes 0" in said
    assert ("norm: {kind: frozen_batch}" in text) == (norm == "frozen_batch_norm")
    x = torch.randn((2, *INPUT), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        features = body(x)["3"].mean((2, 3))  # layer4's output, pooled
    assert_close(outputs(ours, INPUT), features, RTOL)


@pytest.mark.parametrize("builder", ["maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn",
                                     "retinanet_resnet50_fpn", "fcos_resnet50_fpn"])
def test_every_resnet_detector_reads(builder: str) -> None:
    """The other detectors' heads are set aside too (keys and shapes, on the meta device)."""
    with torch.device("meta"):
        detector = getattr(torchvision.models.detection, builder)(weights=None,
                                                                  weights_backbone=None)
    said = header(import_spec(detector.state_dict()))
    assert "Set aside what is not the ResNet: backbone.fpn.* (" in said and "classes 0" in said


# ------------------------------------------------------------ other libraries' names


def test_mmpretrain(tmp_path: Path) -> None:
    """mmpretrain's ImageClassifier(ResNet, LinearClsHead) names torchvision's ResNet
    modules under ``backbone.`` and its classifier ``head.fc``: the fixture is
    torchvision's resnet50 state_dict renamed so, in mmengine's checkpoint dict."""
    ref = randomised(torchvision.models.resnet50(num_classes=10), INPUT)
    state = {(f"head.{k}" if k.startswith("fc.") else f"backbone.{k}"): v
             for k, v in ref.state_dict().items()}
    torch.save({"meta": {"epoch": 100, "mmengine_version": "0.10.4"}, "state_dict": state,
                "message_hub": {}, "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "epoch_100.pth")
    text, ours = imported(tmp_path / "epoch_100.pth", tmp_path)
    assert "Read mmpretrain's naming, renamed to archdsl's." in header(text)
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), RTOL)


def hf_models() -> dict[str, Any]:
    """transformers' ResNet and RegNet classifiers built from configs (random init), each
    config choosing what a state_dict cannot show."""
    transformers = pytest.importorskip("transformers")
    resnet, regnet = transformers.ResNetConfig, transformers.RegNetConfig
    return {
        "resnet_bottleneck_msra": (transformers.ResNetForImageClassification, resnet(
            layer_type="bottleneck", depths=[1, 2, 1, 1], hidden_sizes=[64, 128, 256, 512],
            embedding_size=32, downsample_in_bottleneck=True, num_labels=10)),
        "resnet_basic_first_stage": (transformers.ResNetForImageClassification, resnet(
            layer_type="basic", depths=[2, 1, 1, 1], hidden_sizes=[32, 64, 96, 128],
            downsample_in_first_stage=True, num_labels=7)),
        "regnet_y": (transformers.RegNetForImageClassification, regnet(
            layer_type="y", depths=[1, 2, 1, 1], hidden_sizes=[24, 48, 96, 192],
            groups_width=8, num_labels=10)),
        "regnet_x": (transformers.RegNetForImageClassification, regnet(
            layer_type="x", depths=[1, 1, 2, 1], hidden_sizes=[32, 64, 128, 256],
            groups_width=16, downsample_in_first_stage=False, num_labels=5)),
    }


class Logits(nn.Module):
    """A transformers classifier as a module from images to logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


@pytest.mark.parametrize("name", ["resnet_bottleneck_msra", "resnet_basic_first_stage",
                                  "regnet_y", "regnet_x"])
def test_hugging_face(name: str, tmp_path: Path) -> None:
    """save_pretrained's folder (model.safetensors and config.json) imports, the config
    settling the stride's conv and the first stage's stride."""
    cls, config = hf_models()[name]
    ref = randomised(Logits(cls(config)), INPUT)
    ref.model.save_pretrained(tmp_path / "hf")
    text, ours = imported(tmp_path / "hf", tmp_path)
    said = header(text)
    assert "Read Hugging Face transformers'" in said and "from config.json." in said
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), RTOL)


def test_hugging_face_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without config.json the defaults are assumed and said; a config of another model
    or an activation archdsl's ResNets lack is refused in one line."""
    cls, config = hf_models()["resnet_bottleneck_msra"]
    cls(config).save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "config.json").rename(tmp_path / "config.json.saved")
    capsys.readouterr()  # save_pretrained's progress
    assert main(["import", str(tmp_path / "hf")]) == 0
    assert "No config.json beside the weights" in header(capsys.readouterr().out)
    config.hidden_act = "gelu"
    config.save_pretrained(tmp_path / "hf")
    assert main(["import", str(tmp_path / "hf")]) == 2
    assert capsys.readouterr().err == (f"{tmp_path / 'hf'}: config.json: hidden_act: 'gelu'; "
                                       "allowed: 'relu' (the activation archdsl's resnet "
                                       "blocks have)\n")
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "regnet"}')
    assert main(["import", str(tmp_path / "hf")]) == 2
    assert capsys.readouterr().err.endswith("a config of model_type 'regnet' beside Hugging "
                                            "Face transformers' ResNet's weights; allowed: "
                                            "model_type 'resnet'\n")


def test_foreign_key_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "det.pth")
    assert main(["import", str(tmp_path / "det.pth")]) == 2
    assert capsys.readouterr().err == (
        f"{tmp_path / 'det.pth'}: extra.weight: not a key of torchvision.models.detection's "
        "naming; allowed: backbone.body.* (set aside: backbone.fpn.*, rpn.*, roi_heads.*, "
        "head.*)\n")


def test_ema_of_a_module_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "torchvision:resnet18", "--ema"]) == 2
    assert capsys.readouterr().err == ("torchvision:resnet18: --ema: a module has one set of "
                                       "weights; allowed: --ema for a checkpoint (timm's "
                                       "state_dict_ema)\n")


def test_a_prefix_is_kept_unless_a_resnet_is_left(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A first name every key shares is removed only where a network archdsl reads is
    left: else the keys are refused as they were saved."""
    state = {f"net.{k}": v for k, v in torchvision.models.mobilenet_v3_small().state_dict()
             .items()}
    torch.save({"state_dict": state}, tmp_path / "mb.ckpt")
    assert main(["import", str(tmp_path / "mb.ckpt")]) == 2
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'mb.ckpt'}: net.features.0.0."
                                              "weight: not a ResNet-family state_dict")
