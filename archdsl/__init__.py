"""archdsl: residual networks from a short YAML spec.

The core (spec, IR, lowering, counting, diagrams, planning) imports no torch;
``build_model`` imports it on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .load import load_spec
from .lower import lower
from .spec.errors import SpecError
from .spec.schema import Spec

if TYPE_CHECKING:
    import torch

    from .fusion.planner import FusionPlan
    from .ir.graph import Graph

__all__ = ["Spec", "SpecError", "build_model", "export_onnx", "fuse", "import_spec",
           "load_spec", "load_weights", "lower"]
__version__ = "0.1.0"


def _front(source: Any) -> Any:
    """A spec file (a str or path) loaded, solved and lowered: the one place a path
    enters the back ends; anything else (a Spec, a Graph, a module) as given."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    from .load import load_spec_with_graph

    return load_spec_with_graph(source)[1]


def build_model(spec_or_path: Spec | Graph | str | os.PathLike[str], *,
                num_classes: int | None = None, features_only: bool = False,
                out_indices: tuple[int, ...] | None = None,
                output_stride: int | None = None) -> torch.nn.Module:
    """Build the PyTorch module of a spec, a lowered graph or a spec file. As timm's
    ``create_model`` takes them: ``num_classes`` (0: no classifier, pooled features),
    ``features_only`` (a backbone returning the maps at ``out_indices``, numbered as
    timm's: 0 the stem, then each stage; all by default), with ``feature_info``;
    ``output_stride`` (16 or 8: the later stages dilated instead of strided, the spec's
    field of that name)."""
    from .emit.torch import build_model as _build

    options = num_classes is not None or features_only or output_stride is not None
    if options and isinstance(spec_or_path, (str, os.PathLike)):
        spec_or_path = load_spec(spec_or_path)  # the options change the spec: not lowered
    return _build(spec_or_path if options else _front(spec_or_path), num_classes=num_classes,
                  features_only=features_only, out_indices=out_indices,
                  output_stride=output_stride)


def fuse(model_or_spec: torch.nn.Module | Spec | Graph | str | os.PathLike[str],
         plan_or_device: FusionPlan | str | os.PathLike[str] | None = None, *,
         dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A fused copy of a built module for a device's plan, on the module's device, in
    ``dtype`` (default: the module's own). ``plan_or_device``: a plan, or a profile by
    name or file; by default ``eager-cuda`` for a module on CUDA (cuDNN's fused conv
    kernels), ``eager`` otherwise, as archdsl.fusion.executor.fuse picks it."""
    from .fusion.executor import fuse as _fuse

    return _fuse(_front(model_or_spec), plan_or_device, dtype=dtype)


def export_onnx(model: torch.nn.Module, path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Export a built or fused module to ONNX (see archdsl.emit.onnx)."""
    from .emit.onnx import export_onnx as _export

    return _export(model, path, **kwargs)


def load_weights(model: torch.nn.Module, path_or_state_dict: Any, *,
                 source: str = "torchvision") -> Any:
    """Load a checkpoint into a built module; returns a WeightsReport (archdsl.weights)."""
    from .weights import load_weights as _load

    return _load(model, path_or_state_dict, source=source)


def import_spec(source: Any, overrides: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """The YAML text of the spec of ``timm:NAME``, ``torchvision:NAME``, a checkpoint
    path, an ``nn.Module`` or a state_dict (see archdsl.importer.read.import_spec)."""
    from .importer.read import import_spec as _import

    return _import(source, overrides, **kwargs)
