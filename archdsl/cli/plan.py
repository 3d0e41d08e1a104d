"""``archdsl plan SPEC --device NAME``: which IR nodes become which kernels, and why not."""

from __future__ import annotations

import argparse
import sys

from ..fusion.profiles import ISAS
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help="fusion plan for an inference device (no torch)",
        description="Plan how SPEC runs on a device: the fusion groups (rule, member IR "
                    "nodes, resulting kernel), every refused candidate with its reason, and "
                    "the totals (kernels before/after, activation bytes saved, MACs saved). "
                    "Devices are profiles (data files); shipped: eager, x86-onednn, "
                    "openvino-cpu, onnxruntime-cpu, tensorrt, mobile, or give a path to your "
                    "own .yaml. Each plan says which engine (and version) it was checked "
                    "against, or what it is modelled from.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--device", default="eager", metavar="NAME",
                   help="device profile name or file (default: eager)")
    p.add_argument("--isa", choices=list(ISAS),
                   help="instruction set to plan for, where the engine picks kernels by it "
                        "(openvino-cpu; default: this machine's)")
    options.add_input(p)
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                   help="output format (default: text)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fusion.planner import plan_for
    from ..fusion.report import render_plan
    from ..load import load_spec_with_graph

    _, graph = load_spec_with_graph(args.spec, args.input)
    try:
        p = plan_for(graph, args.device, args.isa)
    except ValueError as exc:
        print(f"archdsl: --device: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_plan(p, args.format))
    return 0
