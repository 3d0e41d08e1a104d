"""``quantize``: a built model to an engine's int8 model, with its plan (which node runs in
which precision, and why the float ones are float), its settings and its measured error."""

from __future__ import annotations

import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..ir.graph import Graph
from . import calibration, engines, error, nodes
from .settings import QuantSettings, choose

QDQ_RULES = "onnxruntime/core/optimizer/qdq_transformer/selectors_actions/" \
            "qdq_selector_action_transformer.cc"
SE_BLOCK = "NNCF's SE_BLOCK ignored pattern (nncf/openvino/quantization/ignored_patterns.py)"
LPT = ("OpenVINO's low-precision transformations leave it in float: no FakeQuantize on "
       "its input takes it (docs.openvino.ai, 'Low Precision Transformations')")
NODE_ERROR = ("per-node SQNR: every tensor an output, which stops ORT forming int8 kernels; "
              "it shows quantization noise, not the int8 kernels' own effects (such as U8S8 "
              "saturation); the agreement figures come from the deployed model")
HELD_OUT = 8


def _why_float(engine: str, kernel: str, node: Any, kept: set[str]) -> str:
    if node.role in kept or (node.part or "") in kept:
        return f"--keep-fp32 {node.part if (node.part or '') in kept else node.role}"
    if engine == "onnxruntime":
        return (f"ORT's QDQ transformer forms no int8 {kernel} ({QDQ_RULES}); it runs in "
                "float between DequantizeLinear and QuantizeLinear")
    if node.role == "attention" and node.part == "se":
        return SE_BLOCK
    return LPT


def node_table(graph: Graph, matched: dict[str, str], per: dict[str, tuple[str, str]],
               engine: str, kept: set[str], errors: dict[str, float]) -> list[dict[str, Any]]:
    """Per IR node: the engine kernel computing it, its precision, why it is float where it
    is, and its SQNR. A node the export folds into another (BN into its conv) is shown as
    folded into the node that computes it."""
    by_ir: dict[str, list[str]] = {}
    for o, i in matched.items():
        by_ir.setdefault(i, []).append(o)
    rows: list[dict[str, Any]] = []
    pending: list[str] = []
    for n in graph:
        if n.op == "input":
            continue
        hits = [per[o] for o in by_ir.get(n.name, ()) if o in per]
        onnx_names = by_ir.get(n.name, [])
        if not onnx_names:
            pending.append(n.name)
            continue
        kernel, prec = hits[-1] if hits else (rows[-1].get("kernel", "?"),
                                              rows[-1]["precision"]) if rows else ("?", "?")
        row: dict[str, Any] = {"node": n.name, "op": n.op, "role": n.role,
                               **({"part": n.part} if n.part else {}),
                               "onnx": onnx_names[-1], "kernel": kernel, "precision": prec}
        if not hits:
            row["note"] = "fused into the kernel before it" + (
                ": its quantized output's range already clips at zero"
                if engine == "onnxruntime" and prec == "int8" else "")
        elif prec in ("float", "f32", "bf16", "f16"):
            row["why_float"] = _why_float(engine, kernel, n, kept)
        if n.name in errors:
            row["sqnr_db"] = errors[n.name]
        for p in pending:
            rows.append({"node": p, "op": graph[p].op, "role": graph[p].role,
                         "folded_into": n.name, "precision": prec})
        pending = []
        rows.append(row)
    return rows


def _ir_errors(raw: dict[str, float], onnx_path: Path, matched: dict[str, str]
               ) -> dict[str, float]:
    import onnx

    by_tensor = {o: n.name for n in onnx.load(str(onnx_path), load_external_data=False)
                 .graph.node for o in n.output}
    out: dict[str, float] = {}
    for tensor, db in raw.items():
        ir = matched.get(by_tensor.get(tensor, ""))
        if ir is not None and math.isfinite(db):
            out[ir] = round(db, 2)  # the last ONNX node of an IR node's decomposition wins
    return out


def quantize(model: torch.nn.Module, engine: str, dest: Path, *, data: list[np.ndarray],
             held_out: list[np.ndarray], keep_fp32: set[str], source: str,
             held_out_source: str = "synthetic", settings: QuantSettings | None = None
             ) -> dict[str, Any]:
    """Write ``engine``'s int8 model of ``model`` into ``dest`` (an empty folder) and return
    its plan (also written as ``dest/plan.json`` by the caller)."""
    from ..emit.onnx import export_onnx

    graph: Graph = model.archdsl_graph
    s = settings or choose(engine, len(data))
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        fp32 = export_onnx(model, work / "model.onnx")
        prepared = ""
        if engine == "onnxruntime":
            prepared = engines.ort_prepare(fp32, work / "pre.onnx")
            fp32 = work / "pre.onnx"
        matched = nodes.match(model, fp32, held_out[0])
        exclude = nodes.onnx_nodes_of_roles(graph, matched, keep_fp32)
        if engine == "onnxruntime":
            out = dest / "model.int8.onnx"
            engines.ort_quantize(fp32, out, data, s, exclude)
            counts, per = engines.ort_kernels(out, work)
            agree = error.agreement(engines.ort_run(out, held_out),
                                    engines.ort_run(fp32, held_out))
            raw = error.ort_node_errors(fp32, out, held_out[:4])
        else:
            import openvino as ov

            q = engines.ov_quantize(fp32, data, s, exclude)
            engines.ov_save(q, dest)
            counts, per = engines.ov_kernels(q)
            ref = ov.Core().read_model(str(fp32))
            agree = error.agreement(engines.ov_run(q, held_out), engines.ov_run(ref, held_out))
            tensors = _output_tensors(fp32, matched)
            raw = error.ov_node_errors(ref, q, tensors, held_out[:4])
        errs = _ir_errors(raw, fp32, matched)
    rows = node_table(graph, matched, per, engine, keep_fp32, errs)
    modelled = _modelled(graph, engine, counts, keep_fp32)
    return {"model": graph.name, "engine": engine, "engine_version": _version(engine),
            "precision": "int8", "settings": s.to_json(),
            "calibration": {"source": source, "samples": len(data),
                            "preprocessing": calibration.PREPROCESSING
                            if source != "synthetic" else "standard normal inputs",
                            "held_out": held_out_source},
            "checked_with": ("ORT_ENABLE_EXTENDED, CPUExecutionProvider"
                             if engine == "onnxruntime" else
                             "CPU plugin, INFERENCE_PRECISION_HINT=f32"),
            **({"preprocessing": prepared} if prepared else {}),
            "keep_fp32": sorted(keep_fp32), "excluded_onnx_nodes": exclude,
            "kernel_counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "modelled": modelled, "agreement": agree, "node_error": NODE_ERROR, "nodes": rows}


def _modelled(graph: Graph, engine: str, counts: Counter[str], kept: set[str]
              ) -> dict[str, Any]:
    """``archdsl plan --precision int8``'s kernels for this model next to the engine's, or
    why there is none to compare."""
    from ..fusion.engines import int8_comparable
    from ..fusion.isa import detect_isa
    from ..fusion.planner import plan
    from ..fusion.profiles import load_profile

    if kept:
        return {"compared": False, "why": "the int8 plan does not model --keep-fp32"}
    profile = load_profile("onnxruntime-cpu" if engine == "onnxruntime" else "openvino-cpu")
    modelled = plan(graph, profile, precision="int8")
    held = int8_comparable(counts, modelled, profile, detect_isa())
    if held is None:
        return {"compared": False, "why": f"{profile.name}'s int8 plan is modelled here: "
                f"{modelled.modelled_from}"}
    got, want, left_out = held
    return {"compared": True, "agrees": got == want, **({"left_out": left_out} if left_out
                                                        else {}),
            "differences": {k: {"engine": got[k], "plan": want[k]}
                            for k in sorted(got.keys() | want.keys()) if got[k] != want[k]}}


def _output_tensors(path: Path, matched: dict[str, str]) -> list[str]:
    """The output tensor of the last ONNX node of each IR node (the IR node's output)."""
    import onnx

    last: dict[str, str] = {}
    for n in onnx.load(str(path), load_external_data=False).graph.node:
        if n.name in matched and n.output:
            last[matched[n.name]] = n.output[0]
    return list(last.values())


def _version(engine: str) -> str:
    if engine == "onnxruntime":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    import nncf
    import openvino

    return f"openvino {openvino.__version__.split('-')[0]}, nncf {nncf.__version__}"


def write(path: str | os.PathLike[str], plan: dict[str, Any]) -> None:
    import json

    Path(path).write_text(json.dumps(plan, indent=1, default=float) + "\n", encoding="utf-8")
