"""ONNX export of a built (or fused) module: the TorchScript-based exporter
(``dynamo=False``, needs no onnxscript) at a stated opset, with a dynamic batch axis."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..bundle import atomic_file

OPSET = 17


def export_onnx(model: nn.Module, path: str | os.PathLike[str], *, opset: int = OPSET,
                input_shape: tuple[int, ...] | None = None) -> Path:
    """Write ``model`` (in eval mode) as ONNX: input ``input`` (N, C, H, W), output
    ``logits`` (N, classes), N dynamic. The file appears only once complete."""
    graph = getattr(model, "archdsl_graph", None)
    shape = input_shape or (graph.input.shape if graph is not None else None)
    if shape is None:
        raise ValueError("export_onnx needs input_shape for a module not built by archdsl")
    x = torch.zeros((1, *shape))
    was_training = model.training
    model.eval()
    try:
        with atomic_file(path) as tmp, warnings.catch_warnings():
            # torch 2.9+ warns that the TorchScript-based exporter is deprecated; it is the
            # one that needs no onnxscript and whose output the onnxruntime-cpu profile models.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    finally:
        model.train(was_training)
    return Path(path)
