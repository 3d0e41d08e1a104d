"""Parity with the real torchvision modules: keys, shapes, strict load, outputs, params."""

from __future__ import annotations

import pytest
import torch
import torchvision
from helpers import (
    PARITY_RTOL,
    SPECS,
    TORCHVISION_TWINS,
    assert_close,
    assert_twin,
    make_twin,
    outputs,
    randomised,
)
from torchvision.models.resnet import ResNet

import archdsl

# torchvision's published num_params (weights meta), independent of our counter
NUM_PARAMS = {"resnet18": 11_689_512, "resnet50": 25_557_032, "resnet152": 60_192_808,
              "resnext50_32x4d": 25_028_904, "wide_resnet50_2": 68_883_240}
INPUT = (3, 64, 64)  # parity does not depend on resolution; small keeps CI fast


def torchvision_twin(name):
    """torchvision's constructor; at another depth, its ResNet class with the block kind,
    groups and width read off the real model."""
    def make(layers):
        if layers is None:
            return make_twin(name)
        with torch.device("meta"):
            model = getattr(torchvision.models, name)()
        return ResNet(type(model.layer1[0]), layers, groups=model.groups,
                      width_per_group=model.base_width)
    return make


@pytest.mark.parametrize("name", TORCHVISION_TWINS)
def test_torchvision_parity(name):
    n_ref = assert_twin(SPECS / f"{name}.yaml", torchvision_twin(name), INPUT)
    if name in NUM_PARAMS:
        assert n_ref == NUM_PARAMS[name]


def test_comparison_catches_a_wrong_function():
    """Same keys and shapes, two 3x3 weights of one block swapped: the helper must fail."""
    ours = archdsl.build_model(SPECS / "resnet18.yaml")
    ref = randomised(torchvision.models.resnet18(), INPUT)
    sd = ref.state_dict()
    sd["layer2.1.conv1.weight"], sd["layer2.1.conv2.weight"] = (
        sd["layer2.1.conv2.weight"], sd["layer2.1.conv1.weight"])
    ours.load_state_dict(sd, strict=True)
    with pytest.raises(AssertionError, match="max"):
        assert_close(outputs(ours, INPUT), outputs(ref, INPUT), PARITY_RTOL)


def test_train_mode_matches_torchvision():
    """Forward, backward and BN running statistics in train mode, as torchvision."""
    ours = archdsl.build_model(SPECS / "resnext50_32x4d.yaml")
    ref = randomised(torchvision.models.resnext50_32x4d(), INPUT)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.train()
    ref.train()
    x = torch.randn(4, *INPUT, generator=torch.Generator().manual_seed(3))
    ya, yb = ours(x), ref(x)
    assert (ya - yb).abs().max() <= 1e-4 * yb.abs().max()
    ya.square().mean().backward()
    yb.square().mean().backward()
    pa, pb = dict(ours.named_parameters()), dict(ref.named_parameters())
    for key in ("conv1.weight", "layer2.0.conv2.weight", "layer4.2.bn3.weight", "fc.weight"):
        ga, gb = pa[key].grad, pb[key].grad
        assert (ga - gb).abs().max() <= 1e-3 * gb.abs().max(), key
    ba, bb = ours.state_dict(), ref.state_dict()
    for key in ("bn1.running_mean", "layer3.5.bn2.running_var",
                "layer4.0.downsample.1.num_batches_tracked"):
        assert torch.allclose(ba[key].float(), bb[key].float(), rtol=1e-4, atol=1e-5), key
