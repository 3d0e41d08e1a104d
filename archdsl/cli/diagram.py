"""``archdsl diagram SPEC``: the network drawn from its IR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..emit.render import FORMATS, RENDERERS
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagram", help="draw the network (DOT, SVG, PNG, PDF)",
        description="Draw the network from its IR, without building it. Levels: stage "
                    "(one node per stage, as the papers' tables), block (each residual block "
                    "as branch, shortcut and addition), layer (every IR node and edge). SVG "
                    "renders in-process (no Graphviz install needed); PNG and PDF use the "
                    "system dot.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--level", choices=("stage", "block", "layer"), default="block",
                   help="detail (default: block)")
    p.add_argument("--format", choices=FORMATS, default="svg",
                   help="output format (default: svg)")
    p.add_argument("--renderer", choices=RENDERERS, default="auto",
                   help="auto: bundled WebAssembly Graphviz for SVG, system dot for PNG/PDF")
    p.add_argument("--device", metavar="PROFILE",
                   help="overlay the fusion plan for this device profile (layer level)")
    options.add_input(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file, '-' for stdout (default: "
                        "archdsl-out/<spec stem>/diagram.<format>)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.counts import count
    from ..bundle import atomic_file, default_bundle_dir
    from ..emit.dot import check_drawable, to_dot
    from ..emit.render import NoRenderer, TooLarge, render
    from ..load import load_spec_with_graph

    _, graph = load_spec_with_graph(args.spec, args.input)
    try:
        check_drawable(graph, args.level)  # before planning: a plan of 20,000 nodes is slow
    except TooLarge as exc:
        print(f"archdsl: {args.spec}: {exc}", file=sys.stderr)
        return 2
    groups = []
    if args.device:
        from ..fusion.planner import plan_for

        try:
            plan = plan_for(graph, args.device)
        except ValueError as exc:
            print(f"archdsl: --device: {exc}", file=sys.stderr)
            return 2
        groups = plan.overlay()
    source = to_dot(graph, args.level, count(graph), groups)
    try:
        data = render(source, args.format, args.renderer)  # another RenderError: main says it
    except NoRenderer as exc:
        raise NoRenderer(f"{exc}; or render with the system dot (--renderer system)") from None
    if args.output == "-":
        sys.stdout.buffer.write(data)
        return 0
    out = Path(args.output or default_bundle_dir(args.spec) / f"diagram.{args.format}")
    with atomic_file(out) as tmp:
        tmp.write_bytes(data)
    print(f"{out}  ({args.level} level, {len(data):,} bytes)")
    return 0
