"""SE-ResNet, SE-ResNeXt and ResNet-D against the real timm modules; the papers' own
variants (SE floor rounding, shortcut options A and C) against hand counts."""

from __future__ import annotations

import pytest
import timm
import torch
from helpers import SPECS, TIMM_TWINS, assert_twin, randomise, randomised, timm_twin

import archdsl
from archdsl.analysis.counts import count
from archdsl.emit.layers import pad_channels
from archdsl.load import load_spec_with_graph

# resnetv2_50 and resnetv2_101 are held to timm in test_resnetv2.py
TWINS = [n for n in TIMM_TWINS if not n.startswith("resnetv2")]
# timm's parameter counts as published for these models
PUBLISHED = {"seresnet18": 11_779_624, "seresnext50_32x4d": 27_559_896,
             "resnet50d": 25_576_264, "senet154": 115_088_984,
             "legacy_seresnet50": 28_088_024, "legacy_seresnet18": 11_778_592}
INPUT = (3, 64, 64)


@pytest.mark.parametrize("name", TWINS)
def test_timm_parity(name):
    n_ref = assert_twin(SPECS / f"{name}.yaml", timm_twin(name), INPUT)
    if name in PUBLISHED:
        assert n_ref == PUBLISHED[name]


def test_legacy_seresnet50_strides_its_first_1x1():
    """The legacy SE-ResNet-50 has seresnet50's parameters but its stride on the first
    1x1 (3.860 G MACs, the issue's figure, vs 4.092 G) and the Caffe pool: unpadded,
    rounding up (an odd map of 113 pools to 56, where padding 1 gives 57), as timm's."""
    spec, graph = load_spec_with_graph(SPECS / "legacy_seresnet50.yaml")
    assert count(graph).total.macs == 3_860_488_192
    assert graph["layer2.0.conv1"].attrs["stride"] == 2
    assert graph["pool0"].attrs == {"kernel": 3, "stride": 2, "padding": 0, "ceil_mode": True}
    _, odd = load_spec_with_graph(SPECS / "legacy_seresnet50.yaml", (3, 226, 226))
    _, padded = load_spec_with_graph(SPECS / "seresnet50.yaml", (3, 226, 226))
    assert odd["pool0"].shape[1:] == (56, 56) != padded["maxpool"].shape[1:]
    with torch.device("meta"):
        stem = timm.create_model("legacy_seresnet50").forward_features
        assert stem(torch.empty(1, 3, 226, 226)).shape[2:] == odd["layer4.2.add"].shape[1:]


def test_senet154_projects_with_a_3x3_where_strided():
    _, graph = load_spec_with_graph(SPECS / "senet154.yaml")
    kernels = {n.name: n.attrs["kernel"] for n in graph if n.name.endswith("downsample.0")}
    assert kernels == {"layer1.0.downsample.0": 1, "layer2.0.downsample.0": 3,
                       "layer3.0.downsample.0": 3, "layer4.0.downsample.0": 3}
    assert graph["layer1.0.conv1"].shape[0] == 128  # half the grouped 3x3's 256


def test_se_branch_matters():
    """With randomised weights, disabling one SE gate changes the output: the parity
    above could not pass with SE mis-placed (timm's zero-init would hide it)."""
    ours = randomised(archdsl.build_model(SPECS / "seresnet18.yaml"), INPUT)
    x = torch.randn(2, *INPUT)
    with torch.no_grad():
        before = ours(x)
        getattr(ours.layer3, "1").se.fc2.bias.fill_(30.0)  # gate ≈ 1: SE becomes identity
        after = ours(x)
    assert (before - after).abs().max() > 1e-3 * before.abs().max()


def se_params(widths, blocks_per_stage, squeeze):
    return sum(blocks_per_stage * (2 * c * squeeze(c) + squeeze(c) + c) for c in widths)


def test_seresnet18_floor_rounding():
    _, graph = load_spec_with_graph(SPECS / "seresnet18_floor.yaml")
    assert graph["layer1.0.se.fc1"].shape[0] == 4  # floor(64 / 16); timm's divisor8 gives 8
    _, timm_like = load_spec_with_graph(SPECS / "seresnet18.yaml")
    assert timm_like["layer1.0.se.fc1"].shape[0] == 8
    # resnet18 plus, per block, fc1 (C·C/r weights + C/r biases) and fc2 (C/r·C + C)
    expected = 11_689_512 + se_params((64, 128, 256, 512), 2, lambda c: c // 16)
    assert count(graph).total.params == expected == 11_778_592  # = seresnet18 − 2 × (2·64·4 + 4)
    model = archdsl.build_model(graph)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_resnet34_option_a_has_parameter_free_shortcuts():
    _, graph = load_spec_with_graph(SPECS / "resnet34_option_a.yaml")
    # resnet34 less its three projections (1x1 conv + BN): 64→128, 128→256, 256→512
    projections = sum(cin * cout + 2 * cout for cin, cout in ((64, 128), (128, 256),
                                                              (256, 512)))
    assert count(graph).total.params == 21_797_672 - projections == 21_623_848
    model = archdsl.build_model(graph)
    assert sum(p.numel() for p in model.parameters()) == 21_623_848
    assert not [k for k in model.state_dict() if "downsample" in k]
    assert [n.name for n in graph if n.op == "pad_channels"] == [
        "layer2.0.shortcut", "layer3.0.shortcut", "layer4.0.shortcut"]
    x = torch.randn(2, 64, 56, 56)
    y = pad_channels(x, 64, 2)
    assert y.shape == (2, 128, 28, 28)
    assert torch.equal(y[:, :64], x[:, :, ::2, ::2]) and not y[:, 64:].any()
    assert archdsl.build_model(graph).eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_resnet34_option_c_projects_everywhere():
    _, graph = load_spec_with_graph(SPECS / "resnet34_option_c.yaml")
    blocks = {n.block for n in graph if n.block}
    projected = {n.block for n in graph if n.name.endswith("downsample.0")}
    assert projected == blocks and len(blocks) == 16
    # resnet34 plus a C→C projection + BN on each of the 13 identity blocks
    identity = [(64, 3), (128, 3), (256, 5), (512, 2)]
    extra = sum(n * (c * c + 2 * c) for c, n in identity)
    assert count(graph).total.params == 21_797_672 + extra


def test_resnet50d_layout():
    _, graph = load_spec_with_graph(SPECS / "resnet50d.yaml")
    assert graph["layer1.0.downsample.1"].attrs["stride"] == 1
    assert "layer1.0.downsample.0" not in {n.name for n in graph}  # an Identity in timm
    pool = graph["layer2.0.downsample.0"]
    assert (pool.op, pool.attrs["ceil_mode"], pool.attrs["count_include_pad"]) == (
        "avg_pool", True, False)


@pytest.mark.parametrize("name", ["resnet50_gn", "resnetv2_50d_evos", "resnetv2_50d_frn",
                                  "ecaresnet26t", "resnetv2_50x1_bit", "resnetblur18",
                                  "legacy_seresnet18", "resnetrs50"])
def test_randomise_moves_every_parameter(name):
    """The comparison helper leaves no parameter at its initial value, whatever the layer
    (GroupNorm, EvoNorm, FRN's τ, ECA's Conv1d, weight-standardised convs, ...): a branch
    whose last norm timm zero-inits would otherwise output nothing in a parity test."""
    model = timm.create_model(name, pretrained=False)
    before = {k: v.clone() for k, v in model.named_parameters()}
    randomise(model)
    same = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
    assert same == []
