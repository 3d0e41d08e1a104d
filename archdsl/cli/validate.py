"""``archdsl validate SPEC...``: one line per spec, exit 2 if any is bad."""

from __future__ import annotations

import argparse
import sys

from ..load import load_solved
from ..spec.errors import SpecError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="check spec files",
        description="Check spec files without building anything (torch is not imported). "
                    "Prints 'ok' with the model name, or the error as "
                    "file:line:col: field: message. Exits 2 if any spec is bad.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (.yaml)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.specs:
        try:
            spec, graph, solved = load_solved(path)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            bad += 1
            continue
        print(f"{path}: ok: {spec.name} ({len(graph)} nodes)")
        for s in solved:
            print(f"  {s.text()}")
    return 2 if bad else 0
