"""``archdsl serve [SPEC|DIR]``: the live page (needs the ``serve`` extra)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="live page: edit a spec, watch diagram, counts and plan follow",
        description="Start a local web app: the spec in a code editor (YAML, completion and "
                    "hover from archdsl's JSON Schema) beside the report's diagram, layer "
                    "table, per-stage bars and fusion plan, re-rendered as you type, with "
                    "errors inline at their line and column. Edits saved in your own editor "
                    "reach the page within a second; saving from the page writes the file "
                    "atomically and never overwrites a change made on disk without asking. "
                    "Only spec files inside the served folder are read or written. Needs "
                    "pip install 'archdsl[serve]'.")
    p.add_argument("target", metavar="SPEC|DIR", nargs="?", default=".",
                   help="a spec file (its folder is served, it opens first) or a folder of "
                        "specs (default: the current folder)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--device", default="eager", metavar="NAME",
                   help="device profile of the fusion plan shown first (default: eager); "
                        "NAME:int8 (onnxruntime-cpu:int8, openvino-cpu:int8) shows its int8 "
                        "plan, the diagram's nodes outlined by precision")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fusion.profiles import plan_choices

    target = Path(args.target)
    if not target.exists() or (target.is_file() and target.suffix not in (".yaml", ".yml")):
        print(f"archdsl: {args.target}: not a spec file or folder", file=sys.stderr)
        return 2
    if args.device not in plan_choices():
        print(f"archdsl: --device: unknown profile {args.device!r}; allowed: "
              f"{', '.join(plan_choices())}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"archdsl: --port: {args.port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    try:
        from ..serve.app import create_app
        from ..serve.server import make_server
    except ImportError as exc:
        print(f"archdsl serve needs the serve extra: pip install 'archdsl[serve]' ({exc})",
              file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"archdsl: warning: serving on {args.host}: anyone who can reach this machine "
              "can read and write the spec files of the folder", file=sys.stderr)
    app = create_app(target, args.device, args.host)
    host = f"[{args.host}]" if ":" in args.host else args.host
    served = target if target.is_dir() else Path(os.path.abspath(target)).parent
    print(f"archdsl serve: http://{host}:{args.port}/  (serving {served.resolve()}; "
          "Ctrl+C stops)", flush=True)
    server = make_server(app, args.host, args.port)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl+C it handled
        server.run()
    print("archdsl serve: stopped", flush=True)
    return 0
