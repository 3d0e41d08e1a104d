"""TorchScript export. TorchScript is deprecated in torch 2.14 and warns; it stays for
users whose deployment still needs it. Prefer ONNX or the generated Python source."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..bundle import atomic_file


def export_torchscript(model: nn.Module, path: str | os.PathLike[str],
                       input_shape: tuple[int, ...] | None = None) -> Path:
    """Trace ``model`` (eval mode) on one input and save it with ``torch.jit.save``."""
    graph = getattr(model, "archdsl_graph", None)
    shape = input_shape or graph.input.shape
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, torch.zeros((1, *shape)))
        with atomic_file(path) as tmp:
            torch.jit.save(traced, str(tmp))
    return Path(path)
