"""``archdsl`` entry point: parse arguments, dispatch, turn errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..spec.errors import SpecError
from . import (
    bench,
    build,
    count,
    design,
    diagram,
    diff,
    export,
    plan,
    report,
    schema,
    validate,
)

COMMANDS = (validate, build, count, diff, diagram, plan, report, export, bench, design,
            schema)
EXIT_SPEC_ERROR = 2


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archdsl",
        description="Residual networks from a short YAML spec: validate it, build its "
                    "PyTorch module and bundle, count it exactly, draw it, plan its fusion for a "
                    "device.")
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (2 for a bad spec or bad usage)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return EXIT_SPEC_ERROR
    except BrokenPipeError:  # `archdsl … | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (flushing at exit must not fail)
        return 0
    except OSError as exc:  # an output that can't be written: nothing partial is left
        print(f"archdsl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("archdsl: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())
