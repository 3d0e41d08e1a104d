"""The one randomise-and-compare helper every parity, export and fusion test uses.

Default initialisations hide bugs (timm zero-inits each block's last BN, so a
mis-wired branch still "matches"), and random BN statistics make deep nets blow
up. So: random weights, then BN running statistics calibrated on random
batches, then compare relatively (DESIGN, "Parity is the ground truth").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
PARITY_RTOL = 1e-4
FUSED_RTOL = 1e-3


def ruff_bin() -> str | None:
    """ruff next to this interpreter (pip puts it there), else on PATH."""
    import shutil
    import sys

    here = Path(sys.executable).with_name("ruff")
    return str(here) if here.exists() else shutil.which("ruff")


# every shipped device profile (test_fusion_plan holds archdsl's list to this one)
DEVICES = ["eager", "eager-cuda", "x86-onednn", "openvino-cpu", "onnxruntime-cpu", "tensorrt",
           "cuda", "mobile"]


def all_specs() -> list[Path]:
    """Every YAML file under specs/, recursively."""
    return sorted(SPECS.rglob("*.yaml"))


def spec_id(path: Path) -> str:
    return str(path.relative_to(SPECS).with_suffix(""))


_NORMS = (nn.BatchNorm2d, nn.BatchNorm1d)
_WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)
# scale-like parameters of a norm (BN/GN γ, EvoNorm's v): drawn around 1, not 0
_SCALES = ("weight", "v")


@torch.no_grad()
def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter away from its initial value: conv (1-D too) and linear weights
    He-normal (fan_in); every other scale-like parameter (BN, GroupNorm, EvoNorm, FRN γ,
    EvoNorm's v) ~ U(0.5, 1.5); biases, shifts and FRN's τ ~ U(-0.2, 0.2). (Default inits
    hide bugs: timm zero-inits each block's last norm, FRN's τ starts at 0.)"""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if isinstance(m, _WEIGHTED) and name == "weight":
                p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2.0 / p[0].numel()))
            elif name in _SCALES:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.rand(p.shape, generator=g) * 0.4 - 0.2)
    return model


@torch.no_grad()
def calibrate(model: nn.Module, input_shape: tuple[int, ...], *, batches: int = 2,
              batch_size: int = 4, seed: int = 1) -> nn.Module:
    """Set BN running statistics to the cumulative average over random batches, then eval."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, _NORMS)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for _ in range(batches):
        model(torch.randn((batch_size, *input_shape), generator=g))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    return model.eval()


def randomised(model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """``randomise`` then ``calibrate``: a model whose outputs stay O(1)."""
    return calibrate(randomise(model, seed), input_shape, seed=seed + 1)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    """max|a − b| ≤ rtol · max|b|."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert scale > 0, "the reference output is all zeros: the comparison would prove nothing"
    assert err <= rtol * scale, f"max|a-b| = {err:.3g} > {rtol} x max|b| = {rtol * scale:.3g}"


@torch.no_grad()
def outputs(model: nn.Module, input_shape: tuple[int, ...], batch: int = 2,
            seed: int = 7) -> torch.Tensor:
    x = torch.randn((batch, *input_shape), generator=torch.Generator().manual_seed(seed))
    return model.eval()(x)


def assert_same_function(ours: nn.Module, reference: nn.Module, input_shape: tuple[int, ...],
                         rtol: float = PARITY_RTOL) -> None:
    """Randomise ``reference``, load its state_dict into ``ours`` strictly, compare outputs."""
    randomised(reference, input_shape)
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert_close(outputs(ours, input_shape), outputs(reference, input_shape), rtol)


def state_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# the shipped specs that are a torchvision or a timm model under the same name
TORCHVISION_TWINS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                     "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
                     "wide_resnet50_2", "wide_resnet101_2", "regnet_x_400mf", "regnet_y_400mf",
                     "regnet_y_3_2gf"]
TIMM_TWINS = ["seresnet18", "seresnet34", "seresnet50", "seresnet101", "seresnet152",
              "seresnext50_32x4d", "seresnext101_32x4d", "resnet50d", "resnetv2_50",
              "resnetv2_101", "resnet10t", "resnet50t", "ecaresnet26t", "ecaresnet50d",
              "resnetrs50", "resnetrs101", "resnet50_gn", "resnetblur50", "resnetaa50d",
              "seresnextaa101d_32x8d", "resnetv2_18", "resnetv2_50d", "resnetv2_50t",
              "resnetv2_50d_gn", "senet154", "legacy_seresnet50", "legacy_seresnext50_32x4d",
              "resnetv2_50x1_bit", "legacy_seresnet18", "resnetv2_50d_evos",
              "resnetv2_50d_frn", "ecaresnet50d_pruned", "regnetx_002", "regnetx_004",
              "regnetx_004_tv", "regnetx_040", "regnety_004", "regnety_040", "regnety_160",
              "regnetz_005", "regnetv_040", "resnest14d", "resnest50d", "resnest50d_4s2x40d",
              "skresnet18", "skresnet50d", "skresnext50_32x4d", "res2net50_26w_4s",
              "res2net50d", "res2next50"]
# the twins whose depth is their rule's: compared whole (their constructors take no
# per-stage depths)
RULED = {n for n in TORCHVISION_TWINS + TIMM_TWINS if n.startswith("regnet")}


# the twins the counters are held to: all but those whose twin object the tools see
# differently from its architecture
UNCOUNTED = {"ecaresnet50d_pruned": "timm adapts a pruned model's classifier to "
             "timm.layers.Linear, a subclass of nn.Linear that thop and ptflops look hooks "
             "up for by exact type and skip: a property of timm's object, not of the net"}
COUNTED_TWINS = [n for n in TORCHVISION_TWINS + TIMM_TWINS if n not in UNCOUNTED]


def torchvision_block_args(name: str) -> dict:
    """The arguments torchvision's builder ``name`` gives BlockParams.from_init_params
    (w_0, w_a, w_m, depth, group_width, se_ratio)."""
    from unittest import mock

    from torchvision.models import regnet

    seen: list[dict] = []
    original = regnet.BlockParams.from_init_params

    def record(**kwargs):
        seen.append(kwargs)
        return original(**kwargs)

    with torch.device("cpu"), mock.patch.object(regnet.BlockParams, "from_init_params", record), \
            mock.patch.object(regnet, "_regnet", lambda params, *a, **k: params):
        getattr(regnet, name)()
    return seen[0]


def torchvision_regnet(name: str) -> nn.Module:
    """torchvision's RegNet ``name`` on the current device (meta too): the builder's own
    BlockParams, computed on the CPU (its widths are tensors it calls ``.tolist()`` on),
    then ``RegNet(block_params, ...)`` with the builder's norm layer."""
    from functools import partial

    from torchvision.models import regnet

    with torch.device("cpu"):
        params = regnet.BlockParams.from_init_params(**torchvision_block_args(name))
    return regnet.RegNet(params, norm_layer=partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1))


def make_twin(name: str) -> nn.Module:
    """The torchvision or timm model a shipped spec reproduces, at full depth."""
    if name in TORCHVISION_TWINS:
        import torchvision

        if name.startswith("regnet"):
            return torchvision_regnet(name)
        return getattr(torchvision.models, name)()
    import timm

    assert name in TIMM_TWINS, name
    return timm.create_model(name, pretrained=False)


DEEP = 16  # residual blocks of a 50-layer net; deeper twins compare outputs two a stage


def assert_twin(path: Path, make_twin: Callable[[list[int] | None], nn.Module],
                input_shape: tuple[int, ...], rtol: float = PARITY_RTOL) -> int:
    """Parity with a torchvision or timm twin; returns the twin's parameter count.

    ``make_twin(layers)`` builds the twin, at its own depth for ``None``. At full depth,
    on the meta device: the same state_dict keys and shapes, and the same number of
    parameters as the twin and as archdsl's analytic count. Outputs, with randomised
    weights loaded strictly: at full depth up to 50 layers; deeper nets with every stage
    cut to two blocks on both sides (the same block forms, at a fraction of the cost)."""
    from archdsl import build_model, lower
    from archdsl.analysis.counts import count
    from archdsl.load import load_spec

    spec = load_spec(path)
    graph = lower(spec)
    with torch.device("meta"):
        ours, ref = build_model(graph), make_twin(None)
    assert state_shapes(ours) == state_shapes(ref)
    n_ref = sum(p.numel() for p in ref.parameters())
    assert sum(p.numel() for p in ours.parameters()) == n_ref == count(graph).total.params
    depths = [s.depth for s in spec.stages]
    layers = None if sum(depths) <= DEEP or spec.name in RULED else [min(d, 2) for d in depths]
    if layers is not None:
        graph = lower(spec.model_copy(update={"stages": tuple(
            s.model_copy(update={"depth": d}) for s, d in zip(spec.stages, layers,
                                                             strict=True))}))
    assert_same_function(build_model(graph), make_twin(layers), input_shape, rtol)
    return n_ref


# Without an identity path a random 110-layer net amplifies rounding enormously (the
# Identity Mappings paper's point): for shortcut_scaling the unfused model's batch-1 and
# batch-2 outputs for one image differ by ~10 % in float32, and any change of kernels
# (BN folding, ONNX Runtime's own fusions) grows to 0.1-24 % at the output.
ILL_CONDITIONED = {"ablations/shortcut_scaling", "ablations/shortcut_exclusive_gating",
                   "ablations/shortcut_only_gating", "ablations/placement_bn_after_add"}
SHALLOW_DEPTH = 2


def comparable_graph(path: Path):
    """The spec's graph with at most two blocks per stage (one for an ill-conditioned
    ablation, where float32 rounding then stays O(1e-6)): every block form of the spec
    still occurs, the first block of a stage with its projection and the repeated block
    after it, at a fraction of the cost of a 101- or 152-layer net.

    The tests that compare outputs of exports and fused modules use it; the full-depth
    graph is held to torch by keys, shapes and counts on the meta device, and to its
    torchvision/timm twin by outputs."""
    from archdsl import lower
    from archdsl.load import load_spec

    spec = load_spec(path)
    depth = 1 if spec_id(path) in ILL_CONDITIONED else SHALLOW_DEPTH
    return lower(spec.model_copy(update={"stages": tuple(
        s.model_copy(update={"depth": min(s.depth, depth)}) for s in spec.stages)}))


def timm_twin(name: str) -> Callable[[list[int] | None], nn.Module]:
    """timm's own constructor, at another depth through its ``layers`` argument."""
    import timm

    return lambda layers: timm.create_model(
        name, pretrained=False, **({} if layers is None else {"layers": layers}))


def dilated_graph(name: str, output_stride: int = 8):
    """A shipped spec's graph at ``output_stride`` (its later stages dilated), at most two
    blocks a stage as ``comparable_graph``'s."""
    from archdsl import lower
    from archdsl.load import load_spec, respec

    spec = load_spec(SPECS / f"{name}.yaml")
    return lower(respec(spec.model_copy(update={"stages": tuple(
        s.model_copy(update={"depth": min(s.depth, SHALLOW_DEPTH)}) for s in spec.stages)}),
        output_stride=output_stride))
