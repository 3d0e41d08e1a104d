"""Every CPU plan against its engine, on every spec and ablation: the x86-onednn plan
against what Inductor (freezing) generates for the built module, the openvino-cpu plan
against the nodes OpenVINO's CPU plugin executes for the ONNX export. Prints one row per
spec and the differences, if any, by kernel name; exits 1 on a difference.

    python benchmarks/engines.py                  # 2 blocks a stage at <= 64x64 (as CI)
    python benchmarks/engines.py --full           # full depth at the spec's resolution
    python benchmarks/engines.py --engines openvino --specs resnet50 resnetv2_50
    python benchmarks/engines.py --precision int8  # the int8 plans against each engine's
                                                   # quantizer's model

Inductor compiles take 10-25 s a spec at the CI size (minutes at full depth); OpenVINO
compiles in under a second.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import SPECS, all_specs, comparable_graph, randomised, spec_id  # noqa: E402

import archdsl  # noqa: E402
from archdsl.fusion.engines import (  # noqa: E402
    comparable,
    inductor_kernels,
    int8_comparable,
    openvino_kernels,
    planned_kernels,
)
from archdsl.fusion.isa import detect_isa  # noqa: E402
from archdsl.fusion.planner import plan  # noqa: E402
from archdsl.fusion.profiles import load_profile  # noqa: E402
from archdsl.int8.engines import int8_kernels  # noqa: E402
from archdsl.ir.graph import Graph  # noqa: E402
from archdsl.load import load_spec_with_graph  # noqa: E402

FP32_ENGINES = ("inductor", "openvino")  # and, with --precision int8, INT8_DEVICES
INT8_DEVICES = {"onnxruntime": "onnxruntime-cpu", "openvino": "openvino-cpu"}


def check_int8(engine: str, graph: Graph, shape: tuple[int, ...], tmp: Path
               ) -> tuple[Counter[str], Counter[str], str, float]:
    """The int8 plan against what ``engine`` runs for its quantizer's int8 model (random
    weights, BN statistics calibrated, 4 synthetic calibration inputs)."""
    profile = load_profile(INT8_DEVICES[engine])
    planned = plan(graph, profile, precision="int8")
    if planned.int8.unmodelled:
        return Counter(), Counter(), (f"{profile.name}'s int8 plans are modelled, not "
                                      f"compared, where: {'; '.join(planned.int8.unmodelled)}"
                                      ), 0.0
    model = randomised(archdsl.build_model(graph).eval(), shape)
    start = time.perf_counter()
    got = int8_kernels(archdsl.export_onnx(model, tmp / "m.onnx", input_shape=shape),
                       engine, shape, tmp)
    seconds = time.perf_counter() - start
    return (*int8_comparable(got, planned, profile, detect_isa()), seconds)


def check(engine: str, graph: Graph, full: bool, tmp: Path, precision: str = "fp32"
          ) -> tuple[Counter[str], Counter[str], str, float]:
    """(engine's kernels, the plan's, what is left out and why, seconds) for one spec."""
    c, h, w = graph.input.shape
    if precision == "int8":
        return check_int8(engine, graph, (c, h, w) if full else (c, min(h, 64), min(w, 64)),
                          tmp)
    x = torch.randn(1, c, h, w) if full else torch.randn(1, c, min(h, 64), min(w, 64))
    model = archdsl.build_model(graph).eval()
    start = time.perf_counter()
    if engine == "inductor":
        profile = load_profile("x86-onednn")
        got = inductor_kernels(model, x)
    else:
        profile = load_profile("openvino-cpu")
        got = openvino_kernels(archdsl.export_onnx(model, tmp / "m.onnx"))
    seconds = time.perf_counter() - start
    planned = planned_kernels(plan(graph, profile), profile)
    return (*comparable(got, planned, profile, detect_isa(), graph), seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", nargs="+", choices=["inductor", "openvino", "onnxruntime"],
                    help="default: inductor and openvino; with --precision int8, "
                         f"{', '.join(INT8_DEVICES)}")
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                    help="int8: each engine's int8 plan against the model its quantizer "
                         "makes (onnxruntime, openvino)")
    ap.add_argument("--specs", nargs="+", metavar="NAME",
                    help="spec names under specs/ (default: all, ablations included)")
    ap.add_argument("--full", action="store_true", help="full depth at the spec's input size")
    args = ap.parse_args()
    int8 = args.precision == "int8"
    engines = args.engines or (list(INT8_DEVICES) if int8 else ["inductor", "openvino"])
    if wrong := [e for e in engines if e not in (INT8_DEVICES if int8 else FP32_ENGINES)]:
        ap.error(f"--engines {' '.join(wrong)}: no {args.precision} plan is checked there")
    paths = [SPECS / f"{n}.yaml" for n in args.specs] if args.specs else all_specs()
    print(f"# {platform.machine()} ({detect_isa()}), torch {torch.__version__}, "
          f"{'full depth' if args.full else '2 blocks a stage, <= 64x64'}, {args.precision}\n")
    print("| spec | engine | kernels (engine) | kernels (plan) | agrees | s |")
    print("|---|---|---|---|---|---|")
    differences: list[str] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            graph = (load_spec_with_graph(path)[1] if args.full else comparable_graph(path))
            for engine in engines:
                got, planned, left_out, secs = check(engine, graph, args.full, Path(tmp),
                                                     args.precision)
                ok = got == planned
                if left_out and left_out not in notes:
                    notes.append(left_out)
                shown = "not compared" if not got and not planned else "yes" if ok else "NO"
                print(f"| {spec_id(path)} | {engine} | {sum(got.values())} | "
                      f"{sum(planned.values())} | {shown} | {secs:.1f} |", flush=True)
                if not ok:
                    diff = {k: (got[k], planned[k]) for k in sorted(got.keys() | planned.keys())
                            if got[k] != planned[k]}
                    differences.append(f"{spec_id(path)} on {engine}: (engine, plan) {diff}")
    print("\n" + "\n".join([*notes, *(differences or ["every plan agrees with its engine, "
                                                         "kernel for kernel"])]))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
