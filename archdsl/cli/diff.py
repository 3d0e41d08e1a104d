"""``archdsl diff A B``: parameters and MACs per stage, side by side."""

from __future__ import annotations

import argparse
import sys

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff", help="compare two specs' parameters and MACs per stage",
        description="Parameters and MACs of two specs per stage and in total, side by "
                    "side, with absolute and relative deltas (B - A). No torch.")
    p.add_argument("a", metavar="A", help="first spec (.yaml)")
    p.add_argument("b", metavar="B", help="second spec (.yaml)")
    options.add_input(p)
    options.add_convention(p)
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table",
                   help="output format (default: table)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.counts import count
    from ..analysis.tables import render_diff
    from ..load import load_spec_with_graph

    a = count(load_spec_with_graph(args.a, args.input)[1], args.convention)
    b = count(load_spec_with_graph(args.b, args.input)[1], args.convention)
    sys.stdout.write(render_diff(a, b, args.format))
    return 0
