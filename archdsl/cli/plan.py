"""``archdsl plan SPEC --device NAME``: which IR nodes become which kernels, and why not."""

from __future__ import annotations

import argparse
import sys

from ..fusion.isa import ISAS
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help="fusion plan for an inference device (no torch)",
        description="Plan how SPEC runs on a device: the fusion groups (rule, member IR "
                    "nodes, resulting kernel), every refused candidate with its reason, and "
                    "the totals (kernels before/after, activation bytes saved, MACs saved). "
                    "Devices are profiles (data files); shipped: eager, eager-cuda (PyTorch on "
                    "a GPU with cuDNN's fused conv kernels), cuda (Inductor on a GPU), "
                    "x86-onednn, openvino-cpu, onnxruntime-cpu, tensorrt, mobile, or give a "
                    "path to your own .yaml. Each plan says which engine (and version) it "
                    "was checked against, or what it is modelled from, and where it runs.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--device", default="eager", metavar="NAME",
                   help="device profile name or file (default: eager)")
    p.add_argument("--isa", choices=list(ISAS),
                   help="instruction set the plan is for, where the engine's layout kernels "
                        "depend on it (openvino-cpu, checked on avx2; on another the plan "
                        "keeps avx2's kernels and says it is modelled); default: this "
                        "machine's")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8: the engine's int8 model as archdsl quantize writes it: each "
                        "kernel's precision, where data is quantized and dequantized, the "
                        "int8 kernels the engine forms (onnxruntime-cpu, openvino-cpu); "
                        "default: fp32")
    p.add_argument("--vnni", choices=("yes", "no"),
                   help="int8: plan for a CPU with (or without) an int8 dot product (VNNI); "
                        "default: this machine's")
    options.add_input(p)
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                   help="output format (default: text)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fusion.planner import plan
    from ..fusion.profiles import load_profile
    from ..fusion.report import render_plan
    from ..load import load_spec_with_graph

    _, graph = load_spec_with_graph(args.spec, args.input)
    try:
        profile = load_profile(args.device)
    except ValueError as exc:
        print(f"archdsl: --device: {exc}", file=sys.stderr)
        return 2
    isa_checked = profile.engine.get("verified_isa") or (
        args.precision == "int8" and profile.int8 is not None and profile.int8.verified_isa)
    if args.isa and not isa_checked:
        print(f"archdsl: --isa: the {profile.name} plan does not depend on the instruction "
              "set; only openvino-cpu's does", file=sys.stderr)
        return 2
    if args.precision == "int8" and profile.int8 is None:
        print(f"archdsl: --precision: the {profile.name} profile has no int8 section; "
              "int8 plans: onnxruntime-cpu, openvino-cpu", file=sys.stderr)
        return 2
    try:
        p = plan(graph, profile, args.isa, args.precision,
                 None if args.vnni is None else args.vnni == "yes")
    except ValueError as exc:  # a profile file whose forms don't cover its kernels
        print(f"archdsl: --{'precision' if args.precision == 'int8' else 'device'}: {exc}",
              file=sys.stderr)
        return 2
    sys.stdout.write(render_plan(p, args.format))
    return 0
