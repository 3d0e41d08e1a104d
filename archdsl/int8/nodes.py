"""Which IR node each node of an ONNX export computes, found by running both: an ONNX
node whose output equals an IR node's output computes it (the exporter names functional
calls only by op type, so names can't tell). The roles of the nodes follow, for keeping
roles in float and for naming the per-node error by the IR."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..ir.graph import Graph

TOLERANCE = 1e-3  # of an output's largest magnitude


@torch.no_grad()
def ir_values(model: torch.nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every IR node's output on ``x``, by IR node name (each node is the submodule at its
    qualified name: archdsl.emit.nest)."""
    graph: Graph = model.archdsl_graph
    out: dict[str, np.ndarray] = {graph.input.name: x}

    def keep(name: str) -> Any:
        def hook(_m: torch.nn.Module, _args: Any, value: Any) -> None:
            if isinstance(value, torch.Tensor):
                out[name] = value.numpy()
        return hook

    hooks = [model.get_submodule(n.name).register_forward_hook(keep(n.name))
             for n in graph.nodes[1:]]
    try:
        model.eval()(torch.from_numpy(x))
    finally:
        for h in hooks:
            h.remove()
    return out


def onnx_values(path: str | os.PathLike[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node output of the ONNX file on ``x``, unoptimised, by tensor name."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(path))
    names = [o for n in m.graph.node for o in n.output if o]
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=o) for o in names if o not in have)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = [o.name for o in sess.get_outputs()]
    return dict(zip(outs, sess.run(outs, {sess.get_inputs()[0].name: x}), strict=True))


def match(model: torch.nn.Module, path: str | os.PathLike[str], x: np.ndarray
          ) -> dict[str, str]:
    """ONNX node name → the IR node it computes or, for a node inside an op's
    decomposition, the IR node of the next matched node in the export's order (the
    exporter writes an op's decomposition just before the node that ends it)."""
    import onnx

    ir = ir_values(model, x)
    ox = onnx_values(path, x)
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, v in ir.items():
        by_shape.setdefault(v.shape, []).append(name)
    nodes = onnx.load(str(path), load_external_data=False).graph.node
    found: dict[str, str] = {}
    for n in nodes:
        v = ox.get(n.output[0]) if n.output else None
        if v is None or n.op_type in ("Identity", "Constant"):
            continue
        scale = float(np.abs(v).max()) or 1.0
        # the closest IR output within float error (which grows with depth: 1.5e-5 of the
        # largest value by a SE-ResNeXt-50's third stage); a BN at its initial statistics
        # nearly equals its conv, and the exporter's folded conv equals the BN best
        # (ties go to the earliest: a dropout's output is its input's)
        best = min(((d, c) for c in by_shape.get(v.shape, ())
                    if (d := float(np.abs(ir[c] - v).max())) <= TOLERANCE * scale),
                   key=lambda dc: dc[0], default=None)
        if best is not None:
            found[n.name] = best[1]
    # a node inside a decomposition takes the IR node of the first matched node after it
    pending: list[str] = []
    for n in nodes:
        if n.op_type in ("Identity", "Constant"):
            continue
        if n.name in found:
            for p in pending:
                found[p] = found[n.name]
            pending = []
        else:
            pending.append(n.name)
    return found


def onnx_nodes_of_roles(graph: Graph, matched: dict[str, str], roles: set[str]
                        ) -> list[str]:
    """The ONNX nodes computing IR nodes on any of ``roles`` (a role, or a part such as
    ``se``)."""
    return [o for o, i in matched.items()
            if graph[i].role in roles or (graph[i].part or "") in roles]
