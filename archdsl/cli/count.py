"""``archdsl count SPEC``: exact parameters, MACs and activations from the IR."""

from __future__ import annotations

import argparse
import sys

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.counts import CONVENTIONS

    p = sub.add_parser(
        "count", help="count parameters, MACs and activations (no torch)",
        description="Count parameters, multiply-accumulates, FLOPs and output activations "
                    "analytically from the IR, per node, block or stage, without building "
                    "or tracing the model (torch is not imported). MACs and FLOPs are per "
                    "image; every output names its unit and convention. --convention fvcore, "
                    "ptflops, ptflops-aten, thop or torchinfo gives exactly what that tool "
                    "reports for the torchvision/timm model; --vs itemises where two conventions "
                    "differ.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--by", choices=("node", "block", "stage"), default="stage",
                   help="rows of the table/csv/markdown (default: stage); json has all three, "
                        "and with --vs the difference at this level")
    options.add_input(p)
    options.add_convention(p)
    p.add_argument("--vs", metavar="NAME", choices=CONVENTIONS,
                   help="compare with another convention (same names as --convention): both "
                        "totals and their difference itemised by op kind, with each side's "
                        "formula, and by --by level; every table's Δ sums to the difference")
    p.add_argument("--format", choices=("table", "json", "csv", "markdown"), default="table",
                   help="output format (default: table)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.counts import count, versus
    from ..analysis.tables import render, render_versus
    from ..load import load_spec_with_graph

    _, graph = load_spec_with_graph(args.spec, args.input)
    if args.vs:
        out = render_versus(versus(graph, args.convention, args.vs, args.by), args.format)
    else:
        out = render(count(graph, args.convention), args.by, args.format)
    sys.stdout.write(out)
    return 0
