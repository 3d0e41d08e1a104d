"""ONNX export of a built (or fused) module: the TorchScript-based exporter
(``dynamo=False``, needs no onnxscript) at a stated opset, with a dynamic batch axis.
Node names carry the module path (``/layer1/layer1.0/conv1/Conv``: every IR node is a
submodule, archdsl.emit.nest), and the file's metadata the spec's name, archdsl's
version, the input and, for a backbone, which feature map each output is."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..bundle import atomic_file
from ..ir.features import feature_info
from ..ir.graph import Graph

OPSET = 17


def export_onnx(model: nn.Module, path: str | os.PathLike[str], *, opset: int = OPSET,
                input_shape: tuple[int, ...] | None = None) -> Path:
    """Write ``model`` (in eval mode) as ONNX: input ``input`` (N, C, H, W), output
    ``logits`` (N, classes), or for a backbone ``feature_I`` a map, N dynamic; metadata
    ``archdsl.spec``, ``.version``, ``.input``, ``.outputs``. The file appears only once
    complete."""
    graph = getattr(model, "archdsl_graph", None)
    shape = input_shape or (graph.input.shape if graph is not None else None)
    if shape is None:
        raise ValueError("export_onnx needs input_shape for a module not built by archdsl")
    x = torch.zeros((1, *shape))
    features = graph.features if graph is not None else ()
    outputs = [f"feature_{f.index}" for f in feature_info(graph)] if features else ["logits"]
    was_training = model.training
    model.eval()
    try:
        with atomic_file(path) as tmp, warnings.catch_warnings():
            # torch 2.9+ warns that the TorchScript-based exporter is deprecated; it is the
            # one that needs no onnxscript and whose output the onnxruntime-cpu profile models.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=outputs,
                              dynamic_axes={k: {0: "batch"} for k in ["input", *outputs]})
            if graph is not None:
                _metadata(tmp, graph, outputs)
    finally:
        model.train(was_training)
    return Path(path)


def _metadata(path: Path, graph: Graph, outputs: list[str]) -> None:
    """The spec's name, archdsl's version, the input and each output's node, as
    ``metadata_props`` (``archdsl.*`` keys)."""
    import onnx

    from .. import __version__

    m = onnx.load(str(path))
    c, h, w = graph.input.shape
    props = {"archdsl.spec": graph.name, "archdsl.version": __version__,
             "archdsl.input": f"input: N x {c} x {h} x {w}, float32",
             "archdsl.outputs": ", ".join(
                 f"{o}: {n}" for o, n in zip(outputs, graph.features or (graph.output.name,),
                                             strict=True))}
    onnx.helper.set_model_props(m, props)
    onnx.save(m, str(path))
