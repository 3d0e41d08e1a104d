"""``archdsl report SPEC``: the Netscope-style HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="one self-contained HTML page: diagram, layer table, fusion plan",
        description="Write a Netscope-style report: the diagram at stage, block and layer "
                    "level, the per-layer table (sortable, filterable, linked to the diagram), "
                    "the fusion plan for --device, per-stage bars and the normalized spec. "
                    "One file, no network fetches; open it in any browser. No torch.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: archdsl-out/<spec stem>/report.html)")
    p.add_argument("--device", default="eager", metavar="NAME",
                   help="device profile of the fusion section (default: eager)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8: the device's int8 plan (onnxruntime-cpu, openvino-cpu), each "
                        "node of the layer diagram outlined by its precision")
    p.add_argument("--int8", metavar="PLAN_JSON",
                   help="an archdsl quantize plan.json of this spec: the layer diagram shows "
                        "what the engine measured, each node's precision and SQNR")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.counts import count
    from ..build import normalized_yaml
    from ..bundle import atomic_file, default_bundle_dir
    from ..emit.report import to_html
    from ..fusion.planner import plan as plan_of
    from ..fusion.profiles import load_profile
    from ..load import load_spec_with_graph

    spec, graph = load_spec_with_graph(args.spec)
    try:
        profile = load_profile(args.device)
    except ValueError as exc:
        print(f"archdsl: --device: {exc}", file=sys.stderr)
        return 2
    try:
        plan = plan_of(graph, profile, precision=args.precision)
    except ValueError as exc:
        print(f"archdsl: --precision: {exc}", file=sys.stderr)
        return 2
    measured = None
    if args.int8:
        from ..int8.report import read_plan

        try:
            measured = read_plan(args.int8, {n.name for n in graph}, graph.name)
        except ValueError as exc:
            print(f"archdsl: --int8: {exc}", file=sys.stderr)
            return 2
    html = to_html(graph, count(graph), plan, normalized_yaml(spec, args.spec), args.spec,
                   measured)
    out = Path(args.output or default_bundle_dir(args.spec) / "report.html")
    with atomic_file(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    print(f"{out}  ({len(html):,} bytes)")
    return 0
