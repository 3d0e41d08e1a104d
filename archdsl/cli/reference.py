"""The CLI reference (docs/cli.md), generated from the parsers' own --help texts."""

from __future__ import annotations

import argparse
import os

from .main import make_parser


def cli_reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal width: fix it
    parser = make_parser()
    out = ["# CLI reference", "",
           "Generated from `archdsl --help` and each command's `--help` by "
           "`python -m archdsl.cli.reference`; a test fails when it is stale.", "",
           "```", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        out += [f"## archdsl {name}", "", "```", p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(cli_reference(), end="")
