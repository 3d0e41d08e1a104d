"""The quantizers' settings, chosen for the instruction set and recorded as they were used.

ONNX Runtime ("Quantize ONNX Models", onnxruntime.ai/docs/performance/model-optimizations/
quantization.html): S8S8 in the QDQ format is its default, but ORT 1.32's CPU provider forms
no int8 kernel for many of its convolutions (measured), so archdsl asks for U8S8; on x86
CPUs without VNNI U8S8 kernels (VPMADDUBSW) can saturate, which 7-bit weights
(``reduce_range``) mitigate and which per-channel weights generally need there. NNCF 3.4:
weights int8, symmetric, per output channel; activations per tensor, symmetric in its
default ``PERFORMANCE`` preset; min-max statistics over ``subset_size`` samples, then fast
bias correction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..fusion.isa import has_vnni

ORT_GUIDE = "onnxruntime.ai/docs/performance/model-optimizations/quantization.html"
FLOAT_LOGITS = ("; the classifier's QGemm writes float logits "
                "(OpTypesToExcludeOutputQuantization): quantized to a range calibrated on "
                "a few samples, the logits of other inputs clip (measured: logits cosine "
                "to fp32 0.985 -> 0.9999 on resnet18 trained on digits, docs/int8.md)")


@dataclass(frozen=True)
class QuantSettings:
    """What the quantizer was told, in words a reader can compare across engines."""

    engine: str
    activations: str  # uint8 / int8
    weights: str
    activations_symmetric: bool
    weights_symmetric: bool
    weights_granularity: str  # "per output channel" / "per tensor"
    activations_granularity: str
    reduce_range: bool
    calibration: str  # the calibration method
    samples: int
    vnni: bool
    why: str  # the source of the choice
    # the op types whose output stays float (ORT: the classifier's Gemm writes the logits)
    float_outputs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        sym = {True: "symmetric", False: "asymmetric"}
        return (f"{self.engine}: activations {self.activations} "
                f"{sym[self.activations_symmetric]} {self.activations_granularity}, weights "
                f"{self.weights} {sym[self.weights_symmetric]} {self.weights_granularity}"
                f"{', reduce_range (7-bit weights)' if self.reduce_range else ''}; "
                f"{self.calibration} calibration on {self.samples} samples"
                + (f"; {', '.join(self.float_outputs)} output in float" if self.float_outputs
                   else ""))


def choose(engine: str, samples: int, vnni: bool | None = None) -> QuantSettings:
    """The settings for ``engine`` on a CPU with (or without) VNNI (default: this one's)."""
    vnni = has_vnni() if vnni is None else vnni
    if engine == "onnxruntime":
        why = ("U8S8 QDQ, per-channel weights: ORT's S8S8 default left 19 of seresnet18's 36 "
               "convolutions as float Conv on ORT 1.32's CPU provider (measured here, "
               "docs/int8.md)")
        return QuantSettings(engine, "uint8", "int8", False, True, "per output channel",
                             "per tensor", not vnni, "MinMax", samples, vnni,
                             why + ("" if vnni else "; no VNNI: 7-bit weights avoid "
                                    f"VPMADDUBSW's saturation ({ORT_GUIDE})") + FLOAT_LOGITS,
                             ("Gemm",))
    return QuantSettings(engine, "uint8/int8 (by sign)", "int8", True, True,
                         "per output channel", "per tensor", False,
                         "MinMax, then fast bias correction", samples, vnni,
                         "NNCF 3.4's defaults (preset PERFORMANCE); OpenVINO's kernels do "
                         "not saturate without VNNI")
