"""``archdsl bench SPEC``: every deployment path of one architecture, side by side."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="CPU inference benchmark of every deployment path",
        description="Time, interleaved, on the same architecture: the torchvision/timm twin "
                    "(eager), archdsl eager, archdsl fused, fused + channels_last, "
                    "jit.freeze + optimize_for_inference, Inductor with freezing (compile "
                    "time reported as setup), and ONNX Runtime and OpenVINO (f32) on the "
                    "twin's export, archdsl's plain export and the fused export. Medians, "
                    "interquartile range, images/s and ratios to the eager twin and to each "
                    "engine on the twin's export. Paths this machine can't run (OpenVINO "
                    "not installed: pip install archdsl[openvino]) are skipped with the "
                    "reason.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--batch", type=int, nargs="+", default=[1], metavar="N")
    p.add_argument("--threads", type=int, metavar="N", help="torch and ORT threads")
    p.add_argument("--repeat", type=int, default=20, metavar="N", help="rounds (default 20)")
    p.add_argument("--device", default="eager", help="fusion profile for the fused paths")
    p.add_argument("--only", metavar="A,B", default="",
                   help="time only the variants whose names contain one of these")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..load import load_spec_with_graph

    _, graph = load_spec_with_graph(args.spec)
    from .. import bench

    out = []
    for batch in args.batch:
        results = bench.run(graph, batch=batch, threads=args.threads, repeat=args.repeat,
                            device=args.device,
                            only=tuple(o for o in args.only.split(",") if o),
                            log=lambda s: print(f"  {s}", file=sys.stderr, flush=True))
        if args.format == "json":
            out += bench.to_json(results, batch)
        else:
            print(f"{graph.name}, batch {batch}, {args.repeat} interleaved rounds")
            print(bench.table(results, batch))
    if args.format == "json":
        print(json.dumps(out, indent=1))
    return 0
