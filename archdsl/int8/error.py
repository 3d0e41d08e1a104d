"""The int8 model's error: its agreement with the float model on held-out inputs (the
deployed model, as the engine runs it), and each node's SQNR against float (ORT's
``qdq_loss_debug``; for OpenVINO the same tensors added as outputs). The per-node figures
come from a model with every tensor an output, which stops ORT forming its int8 kernels:
they show quantization noise, not the kernels' own effects such as U8S8 saturation."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .engines import _Reader


def agreement(int8: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Logits of the int8 model against the float one's, (N, classes) each: the lowest and
    mean per-sample cosine, max|int8 − float| / max|float|, and the share of samples whose
    top-1 class agrees."""
    a, b = int8.reshape(len(int8), -1).astype(np.float64), ref.reshape(len(ref), -1)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    return {"samples": len(a), "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "max_relative_error": float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30)),
            "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean())}


def sqnr(ref: np.ndarray, noisy: np.ndarray) -> float:
    """10·log10(Σ ref² / Σ (ref − noisy)²) in dB (inf where they are equal)."""
    noise = float(((ref.astype(np.float64) - noisy) ** 2).sum())
    signal = float((ref.astype(np.float64) ** 2).sum())
    return float("inf") if noise == 0 else float(10 * np.log10(max(signal, 1e-30) / noise))


def ort_node_errors(fp32: Path, int8: Path, xs: list[np.ndarray]) -> dict[str, float]:
    """Per float tensor name, the QDQ model's SQNR against float (``xmodel_err``)."""
    from onnxruntime.quantization import qdq_loss_debug as dbg

    with tempfile.TemporaryDirectory() as d:
        aug_f, aug_q = Path(d) / "f.onnx", Path(d) / "q.onnx"
        dbg.modify_model_output_intermediate_tensors(str(fp32), str(aug_f))
        dbg.modify_model_output_intermediate_tensors(str(int8), str(aug_q))
        float_acts = dbg.collect_activations(str(aug_f), _Reader(xs))
        qdq_acts = dbg.collect_activations(str(aug_q), _Reader(xs))
    matched = dbg.create_activation_matching(qdq_acts, float_acts)
    errs = dbg.compute_activation_error(matched)
    return {k: float(v["xmodel_err"]) for k, v in errs.items() if "xmodel_err" in v}


def ov_node_errors(fp32: Any, int8: Any, tensors: list[str], xs: list[np.ndarray]
                   ) -> dict[str, float]:
    """Per tensor name of ``tensors``, the int8 model's SQNR against the float model's,
    both run by OpenVINO with the tensor added as an output. The int8 model gets one added
    output a compile: with several, OpenVINO 2026.4's low-precision transformations return
    some of them unscaled (measured: −3 dB on a stem conv that alone gives 35 dB); even one
    can come back in the quantized units (measured: the final ReLU of resnetv2_50 trained on
    digits read 507× its float value), and such a read is no measurement (``in_scale``)."""
    ref = _ov_values(fp32, tensors, xs)
    out = {}
    for t in ref:
        got = _ov_values(int8, [t], xs)
        if t in got and in_scale(ref[t], got[t]):
            out[t] = sqnr(ref[t], got[t])
    return out


def in_scale(ref: np.ndarray, got: np.ndarray) -> bool:
    """Whether ``got`` is in ``ref``'s units: mean magnitudes within 2× of each other (an
    unscaled read is off by the quantization scale's inverse, far more)."""
    scale = float(np.abs(got).mean()) / max(float(np.abs(ref).mean()), 1e-30)
    return 0.5 <= scale <= 2


def _ov_values(model: Any, tensors: list[str], xs: list[np.ndarray]) -> dict[str, np.ndarray]:
    import openvino as ov

    m = model.clone()
    found = []
    for t in tensors:
        try:
            m.add_outputs([t])
            found.append(t)
        except RuntimeError:  # a tensor the model no longer has (folded away)
            continue
    c = ov.Core().compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out: dict[str, list[np.ndarray]] = {}
    for x in xs:
        res = c(x)
        for o in c.outputs:
            for n in o.get_names() & set(found):
                out.setdefault(n, []).append(np.array(res[o]))  # the buffer is reused
    return {k: np.concatenate(v) for k, v in out.items()}
