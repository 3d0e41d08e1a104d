"""``archdsl build SPEC [-o DIR]``: validate, build the module, write the bundle."""

from __future__ import annotations

import argparse
import sys
import time

from ..load import load_spec_with_graph


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build", help="build the PyTorch module and write the bundle",
        description="Validate SPEC (before torch is imported, so a bad spec fails fast), "
                    "build its PyTorch module, check its output shape, and write the bundle "
                    "folder atomically: a failure leaves no partial folder and an earlier "
                    "bundle untouched.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="the bundle folder itself (default: archdsl-out/<spec file stem>/)")
    p.add_argument("--device", default="eager", metavar="NAME",
                   help="device profile for plan.json / plan.md (default: eager)")
    p.add_argument("--save-weights", action="store_true",
                   help="also write weights.pt, the built module's state_dict")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..build import BuildInputs, default_bundle_dir, summary_text, write_bundle
    from ..fusion.profiles import load_profile

    spec, graph = load_spec_with_graph(args.spec)  # torch-free: bad specs fail here
    try:
        load_profile(args.device)
    except ValueError as exc:
        print(f"archdsl: --device: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    from ..emit.torch import build_model, check_output

    model = build_model(graph)
    check_output(model, graph)
    inputs = BuildInputs(args.spec, spec, graph, model,
                         options={"save_weights": args.save_weights, "device": args.device})
    dest = args.output or default_bundle_dir(args.spec)
    paths = write_bundle(dest, inputs)
    print(summary_text(inputs), end="")
    print(f"bundle       {dest}/  ({', '.join(p.name for p in paths)}; "
          f"{time.perf_counter() - start:.1f} s)")
    return 0
