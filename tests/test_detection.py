"""archdsl's resnet50 as the body of torchvision's Faster R-CNN, held to the detector the
pretrained one is built as (``resnet_fpn_backbone``: FrozenBatchNorm2d, three stages
trainable), with randomised weights and statistics: the same FPN maps and detections."""

from __future__ import annotations

import pytest
import torch
from helpers import SPECS, assert_close, randomised
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

from archdsl.detection import fpn_backbone


def randomised_detector() -> torch.nn.Module:
    """The detector the pretrained one is built as, its backbone (body and FPN) away from
    its initial values: randomised and its BN statistics calibrated on random batches
    (through a plain-BN twin: FrozenBatchNorm2d keeps no statistics of its own), the RPN
    and box heads as torchvision initialises them (randomised, their box deltas leave no
    box on the image)."""
    torch.manual_seed(0)
    plain = randomised(resnet_fpn_backbone(backbone_name="resnet50", weights=None,
                                           norm_layer=nn.BatchNorm2d), (3, 128, 128))
    model = FasterRCNN(resnet_fpn_backbone(backbone_name="resnet50", weights=None),
                       num_classes=91, box_score_thresh=0.0)
    model.backbone.load_state_dict({k: v for k, v in plain.state_dict().items()
                                    if not k.endswith("num_batches_tracked")}, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def detectors() -> tuple[torch.nn.Module, torch.nn.Module]:
    # random weights score every class near 1/91: below the default 0.05 threshold, no
    # detection would be left to compare
    ref = randomised_detector()
    ours = FasterRCNN(fpn_backbone(SPECS / "resnet50.yaml"), num_classes=91,
                      box_score_thresh=0.0).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def test_frozen_as_torchvision_freezes(detectors) -> None:
    ours, ref = detectors
    assert {k: p.requires_grad for k, p in ours.named_parameters()} == \
        {k: p.requires_grad for k, p in ref.named_parameters()}
    assert not any("num_batches_tracked" in k for k in ours.state_dict())


def test_same_fpn_maps_and_detections(detectors) -> None:
    ours, ref = detectors
    image = torch.rand((3, 320, 416), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = torch.rand((1, 3, 256, 256), generator=torch.Generator().manual_seed(2))
        a, b = ours.backbone(x), ref.backbone(x)
        assert list(a) == list(b) == ["0", "1", "2", "3", "pool"]
        for k in b:
            assert_close(a[k], b[k], 1e-5)
        (got,), (want,) = ours([image]), ref([image])
    assert len(want["labels"]) > 0  # something detected: the comparison means something
    assert torch.equal(got["labels"], want["labels"])
    torch.testing.assert_close(got["boxes"], want["boxes"], rtol=0, atol=1e-4)
    torch.testing.assert_close(got["scores"], want["scores"], rtol=0, atol=1e-4)


def test_nested_stages_refused() -> None:
    with pytest.raises(ValueError, match="stage stages.0 is not a child"):
        fpn_backbone(SPECS / "resnetv2_50.yaml")
