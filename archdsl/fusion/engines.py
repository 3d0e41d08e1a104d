"""What the engines behind the profiles really run, counted in each profile's kernel
names, so that a plan can be held to its engine kernel for kernel: Inductor for
``x86-onednn`` (CPU) and ``cuda`` (GPU), OpenVINO for ``openvino-cpu``. (ONNX Runtime's check for
``onnxruntime-cpu`` reads the optimised ONNX graph; see tests/test_fusion_exec.py.)

The engines are optional dependencies, imported only when a count is asked for."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from .planner import FusionPlan
from .profiles import Profile

if TYPE_CHECKING:
    import torch

    from ..ir.graph import Graph

# one statement of Inductor's generated call(): an extern call or a generated kernel (C++
# on the CPU, a Triton kernel's .run(...) launch on a GPU)
_CALL = re.compile(r"^\s*(?:\w+ = )?(extern_kernels\.\w+|torch\.ops\.[\w.]+|cpp_fused_\w+|"
                   r"triton_\w+)(?:\.run)?\((.*)\)\s*$")
# extern calls on a GPU, by the plan's name
_EXTERN = {"extern_kernels.convolution": "conv", "extern_kernels.addmm": "addmm"}


def inductor_label(call: str, args: str) -> str:
    """The plan's kernel name for one statement of Inductor's code (docs/fusion.md):
    ``_convolution_pointwise`` with attr ``relu`` is ``onednn_conv+relu`` (``none``:
    ``onednn_conv``), ``_convolution_pointwise_.binary`` with ``add``/``relu`` is
    ``onednn_conv+sum+relu``, ``_mkl_linear`` is ``mkl_linear``, any ``cpp_fused_*`` (or,
    on a GPU, ``triton_*``) is ``generated``; on a GPU, ``extern_kernels.convolution`` is
    ``conv`` and ``extern_kernels.addmm`` ``addmm``; another extern call keeps its own name
    (and shows as a difference)."""
    words = [w for w in re.findall(r"'(\w*)'", args) if w and w != "none"]
    if call.startswith(("cpp_fused_", "triton_")):
        return "generated"
    if call in _EXTERN:
        return _EXTERN[call]
    if call.startswith("torch.ops.mkldnn._convolution_pointwise_.binary"):
        return "onednn_conv+sum" + "".join(f"+{w}" for w in words[1:])
    if call.startswith("torch.ops.mkldnn._convolution_pointwise"):
        return "onednn_conv" + "".join(f"+{w}" for w in words)
    if call.startswith("torch.ops.mkl._mkl_linear"):
        return "mkl_linear"
    return call


def inductor_code(model: torch.nn.Module, x: torch.Tensor, freezing: bool = True) -> str:
    """The code Inductor generates for ``model`` on ``x``'s device, with freezing (it
    folds BN itself) or without (``torch.compile``'s default mode)."""
    import torch
    import torch._inductor.config as cfg
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    with cfg.patch(freezing=freezing), torch.no_grad():
        _, codes = run_and_get_code(torch.compile(model.eval()), x)
    return "\n".join(codes)


def inductor_kernels(model: torch.nn.Module, x: torch.Tensor,
                     freezing: bool = True) -> Counter[str]:
    """The kernels Inductor runs for one forward of ``model`` on ``x``, by plan label."""
    return code_kernels(inductor_code(model, x, freezing))


def code_kernels(code: str) -> Counter[str]:
    """The kernels that Inductor's generated ``call()`` in ``code`` launches, by label."""
    body = code.split("def call(")[-1]
    return Counter(inductor_label(*m.groups()) for line in body.splitlines()
                   if (m := _CALL.match(line)))


def openvino_kernels(onnx_path: str | os.PathLike[str]) -> Counter[str]:
    """The nodes OpenVINO's CPU plugin executes for an ONNX file, by ``layerType``, compiled
    with ``INFERENCE_PRECISION_HINT=f32`` (Input, Output and Const are not kernels)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(onnx_path), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    kinds = (n.get_rt_info()["layerType"].astype(str)
             for n in compiled.get_runtime_model().get_ordered_ops())
    return Counter(k for k in kinds if k not in ("Input", "Output", "Const"))


def planned_kernels(plan: FusionPlan, profile: Profile) -> Counter[str]:
    """The plan's kernel counts under the names its engine reports (the profile's
    ``engine.labels``: Inductor reports every generated kernel alike)."""
    labels = profile.engine.get("labels", {})
    out: Counter[str] = Counter()
    for kernel, n in plan.kernel_counts.items():
        out[labels.get(kernel, kernel)] += n
    return out


def comparable(engine: Counter[str], planned: Counter[str], profile: Profile,
               isa: str, graph: Graph | None = None) -> tuple[Counter[str], Counter[str], str]:
    """The two counts a check compares on a machine of instruction set ``isa``, and what it
    leaves out and why: on an instruction set the profile was not checked on, or for a
    ``graph`` with an op whose layout kernels the profile does not model
    (``engine.layouts_unmodelled``: OpenVINO's Reorders around EvoNorm and FRN), the
    kernels that follow the layout (``engine.isa_dependent``) are outside the model; every
    other kernel must still agree."""
    checked = profile.engine.get("verified_isa")
    left_out = profile.engine.get("isa_dependent", [])
    ops = profile.layouts_unmodelled({n.op for n in graph}) if graph is not None else []
    if not left_out or (not ops and (not checked or isa in checked)):
        return engine, planned, ""

    why = (f"{profile.name} does not model the layout kernels around {', '.join(ops)}"
           if ops else f"{profile.name} was checked on {', '.join(checked)}, this machine "
                       f"is {isa}")
    def kept(k: str) -> bool:
        return k not in left_out

    return (_keep(engine, kept), _keep(planned, kept),
            f"{', '.join(left_out)} not compared: {why}")


def _keep(c: Counter[str], kept: Callable[[str], bool]) -> Counter[str]:
    """The counts of the kernels a check compares."""
    return Counter({k: v for k, v in c.items() if kept(k)})


def int8_comparable(engine: Counter[str], plan: FusionPlan, profile: Profile, isa: str
                    ) -> tuple[Counter[str], Counter[str], str] | None:
    """The two int8 counts a check compares (the engine's, the int8 ``plan``'s), and what it
    leaves out and why; None where the plan is not held to its engine at all (it takes
    forms the profile does not model: ``int8.unmodelled`` and forms marked so). On an
    instruction set the int8 kernels were not checked on, the layout Reorders are left
    out. A kernel the plan runs as ``i8`` (on data that may be negative) agrees with one
    the engine runs as ``u8``: NNCF takes the sign from the calibration statistics, and
    where no calibration value was negative the data is unsigned. Every other kernel must
    agree."""
    int8 = profile.int8
    assert int8 is not None and plan.int8 is not None
    if plan.int8.unmodelled:
        return None
    planned = Counter(plan.kernel_counts)
    engine, notes = Counter(engine), []
    for kind in {k.rsplit(":", 1)[0] for k in planned if k.endswith(":i8")}:
        moved = min(planned[f"{kind}:i8"] - engine[f"{kind}:i8"],
                    engine[f"{kind}:u8"] - planned[f"{kind}:u8"])
        if moved > 0:
            engine[f"{kind}:u8"] -= moved
            engine[f"{kind}:i8"] += moved
            notes.append(f"{moved} {kind}")
    engine = +engine
    why = (f"{', '.join(sorted(notes))} ran u8 where the plan says i8 (no negative "
           "calibration value)" if notes else "")
    if not int8.verified_isa or isa in int8.verified_isa:
        return engine, planned, why

    def kept(k: str) -> bool:
        return not k.startswith("Reorder")

    return _keep(engine, kept), _keep(planned, kept), "; ".join(filter(None, [why, (
        f"Reorder not compared: {profile.name}'s int8 plans were checked on "
        f"{', '.join(int8.verified_isa)}, this machine is {isa}")]))
