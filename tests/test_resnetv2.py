"""ResNet-v2: pre-activation blocks against timm's ResNetV2, the Identity Mappings
paper's ablations, and its argument that constant scaling decays as λ^L."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F  # noqa: N812
from helpers import (
    PARITY_RTOL,
    SPECS,
    assert_close,
    assert_twin,
    randomised,
    timm_twin,
)
from torch import nn

import archdsl
from archdsl.load import load_spec, load_spec_with_graph

INPUT = (3, 64, 64)
ABL = SPECS / "ablations"


@pytest.mark.parametrize("name,params", [("resnetv2_50", 25_549_352),
                                         ("resnetv2_101", None),
                                         ("resnetv2_18", 11_687_720),
                                         ("resnetv2_50d", 25_568_584),
                                         ("resnetv2_50t", 25_566_048),
                                         ("resnetv2_50d_gn", 25_568_584),
                                         ("resnetv2_50x1_bit", 25_549_352),
                                         ("resnetv2_50d_evos", 25_591_368),
                                         ("resnetv2_50d_frn", 25_591_368)])
def test_timm_resnetv2_parity(name, params):
    n_ref = assert_twin(SPECS / f"{name}.yaml", timm_twin(name), INPUT)
    if params:
        assert n_ref == params


def test_bit_standardises_weights_and_pads_with_zeros():
    """BiT's two constructs each matter: a plain conv, or a max-pool padded with −∞,
    changes the output (the parity above could not pass without them)."""
    spec, graph = load_spec_with_graph(SPECS / "resnetv2_50x1_bit.yaml")
    assert graph["stem.conv"].attrs["standardize"] == 1e-8
    assert "standardize" not in graph["head.fc"].attrs  # the classifier keeps its weights
    assert [graph["stem.pad"].op, graph["stem.pool"].attrs["padding"]] == ["pad", 0]
    small = spec.model_copy(update={"stages": tuple(
        s.model_copy(update={"depth": 1}) for s in spec.stages)})
    model = randomised(archdsl.build_model(archdsl.lower(small)), INPUT)
    x = torch.randn(2, *INPUT)
    with torch.no_grad():
        y = model(x)
        ref = timm.layers.StdConv2d(3, 64, 7, stride=2, eps=1e-8)
        ref.weight.copy_(model.stem.conv.weight)
        assert_close(model.stem.conv(x), ref(x), PARITY_RTOL)
        assert not torch.allclose(model.stem.conv(x), F.conv2d(x, ref.weight, None, 2, 3))
    for other in ({"conv": small.conv.model_copy(update={"kind": "plain"})},
                  {"stem": small.stem.model_copy(update={"pool": "max"})}):
        plain = archdsl.build_model(archdsl.lower(small.model_copy(update=other)))
        plain.load_state_dict(model.state_dict())
        with torch.no_grad():
            assert (plain.eval()(x) - y).abs().max() > 1e-3 * y.abs().max(), other


def test_resnetv2_layout_names():
    _, g = load_spec_with_graph(SPECS / "resnetv2_50.yaml")
    names = [n.name for n in g]
    assert names[:3] == ["x", "stem.conv", "stem.pool"]
    assert "stages.0.blocks.0.downsample.conv" in names
    assert g["stages.0.blocks.0.downsample.conv"].inputs == ("stages.0.blocks.0.relu1",)
    assert g["head.fc"].op == "conv2d" and g["head.fc"].attrs["bias"]
    assert names[-5:] == ["norm", "norm_act", "head.global_pool", "head.fc", "head.flatten"]


def test_resnetv2_deep_stem_and_avg_down_names():
    """A deep stem and ResNet-D's average-pool projection under timm's ResNetV2 names."""
    _, g = load_spec_with_graph(SPECS / "resnetv2_50d.yaml")
    names = [n.name for n in g]
    assert names[1:9] == ["stem.conv1", "stem.norm1", "stem.act1", "stem.conv2",
                          "stem.norm2", "stem.act2", "stem.conv3", "stem.pool"]
    assert g["stages.1.blocks.0.downsample.pool"].op == "avg_pool"
    assert g["stages.1.blocks.0.downsample.conv"].inputs == (
        "stages.1.blocks.0.downsample.pool",)


def block_ops(path, block):
    _, g = load_spec_with_graph(path)
    return [n.op for n in g if n.block == block]


# The Identity Mappings paper, Fig. 4, read on an identity block (layer2.1).
PLACEMENTS = {
    "resnet110_cifar": "conv2d batch_norm relu conv2d batch_norm add relu",
    "placement_bn_after_add": "conv2d batch_norm relu conv2d add batch_norm relu",
    "placement_relu_before_add": "conv2d batch_norm relu conv2d batch_norm relu add",
    "placement_relu_preact": "relu conv2d batch_norm relu conv2d batch_norm add",
    "placement_full_preact": "batch_norm relu conv2d batch_norm relu conv2d add",
}


@pytest.mark.parametrize("name,ops", PLACEMENTS.items())
def test_activation_placements(name, ops):
    assert " ".join(block_ops(ABL / f"{name}.yaml", "layer2.1")) == ops



# The same figure as plain torch on an identity block: (norm layers, x -> x_{l+1}).
REFERENCE_BLOCKS = {
    "resnet110_cifar": (("bn1", "bn2"), lambda m, x: F.relu(
        m.bn2(m.conv2(F.relu(m.bn1(m.conv1(x))))) + x)),
    "placement_bn_after_add": (("bn1", "bn_out"), lambda m, x: F.relu(
        m.bn_out(m.conv2(F.relu(m.bn1(m.conv1(x)))) + x))),
    "placement_relu_before_add": (("bn1", "bn2"), lambda m, x: F.relu(
        m.bn2(m.conv2(F.relu(m.bn1(m.conv1(x)))))) + x),
    "placement_relu_preact": (("bn1", "bn2"), lambda m, x: m.bn2(
        m.conv2(F.relu(m.bn1(m.conv1(F.relu(x)))))) + x),
    "placement_full_preact": (("bn1", "bn2"), lambda m, x: m.conv2(
        F.relu(m.bn2(m.conv1(F.relu(m.bn1(x)))))) + x),
}


@pytest.mark.parametrize("name", REFERENCE_BLOCKS)
def test_placement_block_computes_the_figure(name):
    spec = load_spec(ABL / f"{name}.yaml")  # cut to its first block, on 8x8 images
    spec = spec.model_copy(update={"stages": (spec.stages[0].model_copy(update={"depth": 1}),),
                                   "input": spec.input.model_copy(update={"size": 8})})
    model = randomised(archdsl.build_model(spec), (3, 8, 8))
    graph = model.archdsl_graph
    block = [n for n in graph if n.block == "layer1.0"]
    (source,) = {i for n in block for i in n.inputs if graph[i].block != "layer1.0"}
    # the block is the submodule at its name, reading the one value it reads (source's):
    # driven with a signed input (the stem's ReLU would hide a missing one)
    assert source == graph.nodes[graph.nodes.index(block[0]) - 1].name
    x = torch.randn(2, 16, 8, 8)
    norms, forward = REFERENCE_BLOCKS[name]
    ref = nn.ModuleDict({"conv1": nn.Conv2d(16, 16, 3, padding=1, bias=False),
                         "conv2": nn.Conv2d(16, 16, 3, padding=1, bias=False)}
                        | {bn: nn.BatchNorm2d(16) for bn in norms}).eval()
    prefix = "layer1.0."
    ref.load_state_dict({k[len(prefix):]: v for k, v in model.state_dict().items()
                         if k.startswith(prefix)}, strict=True)
    with torch.no_grad():
        assert_close(model.get_submodule("layer1.0")(x), forward(ref, x), PARITY_RTOL)


# Fig. 2, on the same identity block: what the shortcut path and the merge hold.
SHORTCUTS = {
    "shortcut_scaling": "conv2d batch_norm relu conv2d batch_norm scale add relu",
    "shortcut_exclusive_gating": "conv2d batch_norm relu conv2d batch_norm conv2d sigmoid "
                                 "one_minus mul mul add relu",
    "shortcut_only_gating": "conv2d batch_norm relu conv2d batch_norm conv2d sigmoid "
                            "one_minus mul add relu",
    "shortcut_conv1x1": "conv2d batch_norm relu conv2d batch_norm conv2d add relu",
    "shortcut_dropout": "conv2d batch_norm relu conv2d batch_norm dropout add relu",
}


@pytest.mark.parametrize("name,ops", SHORTCUTS.items())
def test_shortcut_forms(name, ops):
    assert " ".join(block_ops(ABL / f"{name}.yaml", "layer2.1")) == ops


def test_gating_is_computed_from_the_block_input():
    _, g = load_spec_with_graph(ABL / "shortcut_exclusive_gating.yaml")
    gate = g["layer2.1.gate.conv"]
    assert gate.inputs == ("layer2.0.relu2",) and gate.attrs["bias"]
    assert g["layer2.1.gate.branch"].inputs == ("layer2.1.gate.sigmoid", "layer2.1.bn2")


def test_ablation_functions_run():
    """Every ablation builds and its train/eval behaviour differs only where it should."""
    drop = randomised(archdsl.build_model(ABL / "shortcut_dropout.yaml"), (3, 32, 32))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(drop.eval()(x), drop.eval()(x))  # dropout is off in eval
        drop.train()
        assert not torch.equal(drop(x), drop(x))


def chain(tmp_path, form):
    spec = tmp_path / f"{form}.yaml"
    spec.write_text(
        f"name: chain_{form}\ninput: {{size: 16}}\nstem: {{kind: cifar, width: 16}}\n"
        "stages:\n  - {depth: 6, width: 16, block: basic}\n"
        f"shortcut: {{kind: B, form: {form}, scale: 0.5}}\nhead: {{classes: 10}}\n")
    return archdsl.build_model(spec)


def test_constant_scaling_decays_as_lambda_to_the_L(tmp_path):
    """The article's argument: with the residual branches zeroed, L identity blocks pass
    the input through unchanged, L blocks scaled by λ return λ^L × the input."""
    ident, scaled = chain(tmp_path, "identity"), chain(tmp_path, "scaling")
    randomised(ident, (3, 16, 16))
    with torch.no_grad():
        for i in range(6):
            bn2 = getattr(ident.layer1, str(i)).bn2
            bn2.weight.zero_()
            bn2.bias.zero_()  # F(x) = 0 in every block
        ident.fc.bias.zero_()  # logits are then linear in the pooled features
    scaled.load_state_dict(ident.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y_ident, y_scaled = ident.eval()(x), scaled.eval()(x)
        # identity: each block is relu(0 + x) = x on the stem's non-negative output, so
        # the net is the stem, the pool and the classifier
        stem = torch.relu(ident.bn1(ident.conv1(x)))
        direct = ident.fc(stem.mean((2, 3)))
    assert torch.allclose(y_ident, direct, rtol=1e-5, atol=1e-6)
    assert torch.allclose(y_scaled, 0.5 ** 6 * y_ident, rtol=1e-5, atol=1e-7)
    assert y_ident.abs().max() > 0.1  # the comparison is not vacuous
