"""Each engine's quantizer, run as the engine ships it, and what the engine then runs: ONNX
Runtime's ``quantize_static`` (QDQ) read back from its optimised graph at
``ORT_ENABLE_EXTENDED``, NNCF's ``quantize`` read back from OpenVINO's runtime model
(``layerType:runtimePrecision``, compiled with ``INFERENCE_PRECISION_HINT=f32``)."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .settings import QuantSettings

# the engine's int8 kernels, named as it reports them: anything else with int8 input data
# is a float kernel reading dequantized data (ORT) or has the runtime precision OpenVINO says
ORT_INT8 = ("QLinear", "QGemm")
ORT_CONVERSIONS = ("QuantizeLinear", "DequantizeLinear")
OV_SKIP = ("Input", "Output", "Const")


class Refused(Exception):
    """The engine's quantizer refused the model; the message is the engine's first line."""


def _refused(engine: str, exc: Exception) -> Refused:
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return Refused(f"{engine}'s quantizer refused the model: {type(exc).__name__}: {first}")


class _Reader:
    """ORT's CalibrationDataReader protocol over a list of inputs."""

    def __init__(self, xs: list[np.ndarray], name: str = "input") -> None:
        self._it: Iterator[np.ndarray] = iter(xs)
        self._name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self._name: x}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:  # qdq_loss_debug iterates
        while (x := self.get_next()) is not None:
            yield x


def ort_prepare(src: Path, dest: Path) -> str:
    """ORT's ``quant_pre_process`` (shape inference, graph clean-up) of ``src`` into
    ``dest``; where its symbolic shape inference can't follow the graph (EvoNorm's
    run-time reshapes), again with ``skip_symbolic_shape=True``. Returns what it did."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dest))
        return "quant_pre_process"
    except Exception:  # noqa: BLE001 (ORT's symbolic shape inference asserts)
        try:
            quant_pre_process(str(src), str(dest), skip_symbolic_shape=True)
        except Exception as exc:  # noqa: BLE001 (whatever ORT raises: said in one line)
            raise _refused("onnxruntime", exc) from exc
        return "quant_pre_process(skip_symbolic_shape=True): symbolic shape inference failed"


def ort_quantize(src: Path, dest: Path, data: list[np.ndarray], s: QuantSettings,
                 exclude: list[str]) -> None:
    """``quantize_static`` in the QDQ format with settings ``s``, ``exclude`` left in float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    try:
            quantize_static(str(src), str(dest), _Reader(data), quant_format=QuantFormat.QDQ,
                        activation_type=qtype[s.activations], weight_type=qtype[s.weights],
                        per_channel=s.weights_granularity != "per tensor",
                        reduce_range=s.reduce_range, nodes_to_exclude=exclude,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": s.activations_symmetric,
                                       "WeightSymmetric": s.weights_symmetric,
                                       "OpTypesToExcludeOutputQuantization":
                                           list(s.float_outputs)})
    except Exception as exc:  # noqa: BLE001 (whatever ORT raises: said in one line)
        raise _refused("onnxruntime", exc) from exc


def ort_session(path: Path, optimized: Path | None = None, level: str = "ORT_ENABLE_EXTENDED"
                ) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_kernels(path: Path, work: Path) -> tuple[Counter[str], dict[str, tuple[str, str]]]:
    """What ORT runs for the QDQ model at ``path``: kernel counts by op type, and per
    original ONNX node name the kernel computing it and its precision (``int8``: an int8
    kernel; ``int8 data``: a kernel moving quantized data, such as MaxPool or Flatten;
    ``float``)."""
    import onnx

    opt = work / "optimised.onnx"
    ort_session(path, opt)
    nodes = onnx.load(str(opt), load_external_data=False).graph.node
    counts = Counter(n.op_type for n in nodes)
    quantized: set[str] = set()  # tensors holding int8 data
    per: dict[str, tuple[str, str]] = {}
    for n in nodes:
        if n.op_type == "QuantizeLinear" or n.op_type.startswith(ORT_INT8):
            quantized.update(n.output)
            prec = "int8"
        elif n.op_type == "DequantizeLinear":
            prec = "float"
        elif n.input and n.input[0] in quantized:
            quantized.update(n.output)
            prec = "int8 data"
        else:
            prec = "float"
        if n.op_type not in ORT_CONVERSIONS:
            per[n.name] = (n.op_type, prec)
    return counts, per


def ov_quantize(src: Path, data: list[np.ndarray], s: QuantSettings, ignored: list[str]
                ) -> Any:
    """``nncf.quantize`` of the ONNX file read by OpenVINO, ``ignored`` left in float. NNCF's
    progress bars and notes go to stderr: stdout is the command's output (JSON, a table)."""
    import logging
    import sys
    from contextlib import redirect_stdout

    import nncf
    import openvino as ov

    nncf.set_log_level(logging.WARNING)
    model = ov.Core().read_model(str(src))
    # an ONNX Conv with a bias is OpenVINO's Convolution ``NAME/WithoutBiases`` + Add ``NAME``
    patterns = [re.escape(n) + "(/WithoutBiases)?$" for n in ignored]  # NNCF: re.match
    try:
        with redirect_stdout(sys.stderr):
            return nncf.quantize(model, nncf.Dataset(data), subset_size=s.samples,
                                 ignored_scope=nncf.IgnoredScope(patterns=patterns,
                                                                 validate=False))
    except Exception as exc:  # noqa: BLE001 (whatever NNCF raises: said in one line)
        raise _refused("nncf", exc) from exc


def ov_kernels(model: Any) -> tuple[Counter[str], dict[str, tuple[str, str]]]:
    """What OpenVINO's CPU plugin runs for ``model`` compiled with f32 inference precision:
    kernel counts as ``layerType:runtimePrecision`` (not Input, Output, Const, nor nodes
    computed from constants alone, which the plugin runs once when it compiles), and per
    original ONNX node name the kernel that computes it and its precision."""
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    counts: Counter[str] = Counter()
    per: dict[str, tuple[str, str]] = {}
    constant: set[str] = set()
    for n in compiled.get_runtime_model().get_ordered_ops():
        info = n.get_rt_info()
        kind, prec = info["layerType"].astype(str), info["runtimePrecision"].astype(str)
        srcs = [v.get_node().get_friendly_name() for v in n.input_values()]
        if kind == "Const" or (srcs and all(s in constant for s in srcs)):
            constant.add(n.get_friendly_name())
            continue
        if kind in OV_SKIP:
            continue
        counts[f"{kind}:{prec}"] += 1
        for orig in info["originalLayersNames"].astype(str).split(","):
            per.setdefault(orig.removesuffix("/WithoutBiases"), (kind, prec))
    return counts, per


def ov_save(model: Any, dest: Path) -> None:
    """``model.xml`` + ``model.bin``, float weights kept in f32 (not FP16)."""
    import openvino as ov

    ov.save_model(model, str(dest / "model.xml"), compress_to_fp16=False)


def ov_run(model: Any, xs: list[np.ndarray]) -> np.ndarray:
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    # copies: a compiled model's call reuses its output buffers
    return np.concatenate([np.array(compiled(x)[0]) for x in xs])


def ort_run(path: Path, xs: list[np.ndarray], level: str = "ORT_ENABLE_EXTENDED"
            ) -> np.ndarray:
    sess = ort_session(path, level=level)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x})[0] for x in xs])


def installed(engine: str) -> str | None:
    """Why ``engine``'s quantizer can't run here, or None."""
    import importlib.util

    # both read the export with ONNX Runtime to match its nodes to the IR's
    need = ("onnx", "onnxruntime") + (("openvino", "nncf") if engine == "openvino" else ())
    missing = [m for m in need if importlib.util.find_spec(m) is None]
    return (f"{', '.join(missing)} not installed (pip install 'archdsl[quantize]')"
            if missing else None)


def paths(folder: str | os.PathLike[str], engine: str) -> list[Path]:
    """The model files ``quantize`` writes for ``engine``."""
    d = Path(folder)
    return ([d / "model.int8.onnx"] if engine == "onnxruntime"
            else [d / "model.xml", d / "model.bin"])


def int8_kernels(onnx_path: Path, engine: str, shape: tuple[int, ...], work: Path,
                 samples: int = 4, seed: int = 0) -> Counter[str]:
    """What ``engine`` runs for the int8 model its quantizer makes of the fp32 export at
    ``onnx_path`` (input ``shape`` C×H×W, ``samples`` standard normal calibration inputs,
    this machine's settings), counted as the int8 plans name kernels: the plan's check."""
    from .settings import choose

    rng = np.random.default_rng(seed)
    data = [rng.standard_normal((1, *shape)).astype(np.float32) for _ in range(samples)]
    if engine == "onnxruntime":
        ort_prepare(onnx_path, work / "pre.onnx")
        ort_quantize(work / "pre.onnx", work / "q.onnx", data, choose(engine, samples), [])
        return ort_kernels(work / "q.onnx", work)[0]
    return ov_kernels(ov_quantize(onnx_path, data, choose(engine, samples), []))[0]
