"""The one randomise-and-compare helper every parity, export and fusion test uses.

Default initialisations hide bugs (timm zero-inits each block's last BN, so a
mis-wired branch still "matches"), and random BN statistics make deep nets blow
up. So: random weights, then BN running statistics calibrated on random
batches, then compare relatively (DESIGN, "Parity is the ground truth").
"""

from __future__ import annotations

import math
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


def all_specs() -> list[Path]:
    """Every YAML file under specs/, recursively."""
    return sorted(SPECS.rglob("*.yaml"))


def spec_id(path: Path) -> str:
    return str(path.relative_to(SPECS).with_suffix(""))


_NORMS = (nn.BatchNorm2d, nn.BatchNorm1d)


@torch.no_grad()
def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Conv/linear weights He-normal (fan_in), BN γ ~ U(0.5, 1.5), biases ~ U(-0.2, 0.2)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
        elif isinstance(m, _NORMS):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
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


# Without an identity path a random 110-layer net amplifies rounding enormously (the
# Identity Mappings paper's point): for shortcut_scaling the unfused model's batch-1 and
# batch-2 outputs for one image differ by ~10 % in float32, and any change of kernels
# (BN folding, ONNX Runtime's own fusions) grows to 0.1-24 % at the output.
ILL_CONDITIONED = {"ablations/shortcut_scaling", "ablations/shortcut_exclusive_gating",
                   "ablations/shortcut_only_gating", "ablations/placement_bn_after_add"}


def comparable_graph(path: Path):
    """The spec's graph; for an ill-conditioned ablation, the same blocks with one block per
    stage, where float32 rounding stays O(1e-6) and every op still occurs."""
    from archdsl import lower
    from archdsl.load import load_spec

    spec = load_spec(path)
    if spec_id(path) in ILL_CONDITIONED:
        spec = spec.model_copy(update={"stages": tuple(s.model_copy(update={"depth": 1})
                                                       for s in spec.stages)})
    return lower(spec)
