"""``archdsl count SPEC``: exact parameters, MACs and activations from the IR."""

from __future__ import annotations

import argparse
import sys

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "count", help="count parameters, MACs and activations (no torch)",
        description="Count parameters, multiply-accumulates, FLOPs and output activations "
                    "analytically from the IR, per node, block or stage, without building "
                    "or tracing the model (torch is not imported). MACs and FLOPs are per "
                    "image; every output names its unit and convention.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--by", choices=("node", "block", "stage"), default="stage",
                   help="rows of the table/csv/markdown (default: stage); json has all three")
    options.add_input(p)
    options.add_convention(p)
    p.add_argument("--format", choices=("table", "json", "csv", "markdown"), default="table",
                   help="output format (default: table)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.counts import count
    from ..analysis.tables import render
    from ..load import load_spec_with_graph

    _, graph = load_spec_with_graph(args.spec, args.input)
    sys.stdout.write(render(count(graph, args.convention), args.by, args.format))
    return 0
