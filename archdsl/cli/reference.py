"""The CLI reference (docs/cli.md), generated from the parsers' own --help texts."""

from __future__ import annotations

import argparse
import os
from unittest import mock

from .main import make_parser


def cli_reference() -> str:
    """docs/cli.md's text: every --help, wrapped at 100 columns whatever the terminal."""
    with mock.patch.dict(os.environ, {"COLUMNS": "100"}):  # argparse reads it per help
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
