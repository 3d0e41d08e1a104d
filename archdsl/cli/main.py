"""``archdsl`` entry point: parse arguments, dispatch, turn errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..emit.render import RenderError
from ..spec.errors import SpecError
from . import (
    bench,
    build,
    count,
    design,
    diagram,
    diff,
    export,
    import_,
    plan,
    quantize,
    report,
    sample,
    schema,
    serve,
    validate,
)

COMMANDS = (validate, build, count, diff, diagram, plan, report, serve, export, bench,
            quantize, design, sample, schema, import_)
EXIT_SPEC_ERROR = 2


def make_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, or, when ``argv`` names a command, one that knows only that
    command (its options, help and errors are the same; building all twelve costs a
    measurable part of a 0.2 s command)."""
    parser = argparse.ArgumentParser(
        prog="archdsl",
        description="Residual networks from a short YAML spec: validate it, build its "
                    "PyTorch module and bundle, count it exactly, draw it, plan its fusion for a "
                    "device.")
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = {c.__name__.rsplit(".", 1)[-1].rstrip("_"): c for c in COMMANDS if c is not design}
    names.update(match=design, sweep=design)  # the one module with two commands
    first = next((a for a in argv or () if not a.startswith("-")), None)
    for command in [names[first]] if first in names else COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (2 for a bad spec or bad usage)."""
    # pydantic looks for plugins in every installed distribution's entry points before its
    # first validation; a command-line run has no use for them
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = make_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return EXIT_SPEC_ERROR
    except BrokenPipeError:  # `archdsl … | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (flushing at exit must not fail)
        return 0
    except RenderError as exc:  # no renderer for a diagram; nothing partial is left
        print(f"archdsl: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an output that can't be written: nothing partial is left
        print(f"archdsl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("archdsl: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())
