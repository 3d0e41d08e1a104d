"""``archdsl schema``: the JSON Schema of spec files, of resolved specs, or the reference."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schema", help="print the JSON Schema of the spec language",
        description="Print the JSON Schema (draft 2020-12) of spec files, for editors "
                    "(yaml-language-server) and tools: extends and defaults allowed, only "
                    "name required. --resolved describes complete specs, what build "
                    "normalizes to. --reference prints the Markdown spec reference generated "
                    "from the schema.")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--resolved", action="store_true", help="schema of complete specs")
    which.add_argument("--reference", action="store_true",
                       help="the Markdown reference (docs/spec-reference.md)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..jsonschema import dumps, file_schema, resolved_schema, spec_reference

    if args.reference:
        sys.stdout.write(spec_reference())
    else:
        sys.stdout.write(dumps(resolved_schema() if args.resolved else file_schema()))
    return 0
