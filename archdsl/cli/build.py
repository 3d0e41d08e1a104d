"""``archdsl build SPEC [-o DIR]``: validate, build the module, write the bundle."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from ..load import load_solved

if TYPE_CHECKING:
    from ..analysis.counts import Row


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
                   help="also write weights.pt, the built (or fused) module's state_dict")
    p.add_argument("--fused", action="store_true",
                   help="fuse the module for --device (archdsl.fuse) before saving weights or "
                        "exporting; implies --save-weights")
    p.add_argument("--weights", metavar="FILE",
                   help="load this checkpoint (torch.load weights_only, or safetensors) and "
                        "print what did not fit")
    p.add_argument("--source", choices=("torchvision", "timm", "archdsl"),
                   default="torchvision", help="where --weights come from")
    p.add_argument("--max-params", type=float, default=2e9, metavar="N",
                   help="refuse, before allocating anything, a model with more parameters "
                        "(default: 2e9)")
    p.add_argument("--max-activations", type=float, default=1e9, metavar="N",
                   help="refuse a model whose forward writes more elements per image, summed "
                        "over every op (default: 1e9, 4 GB at fp32)")
    p.add_argument("--export", choices=("onnx",), action="append", default=[],
                   help="also write model.onnx (opset 17, dynamic batch; the fused module "
                        "with --fused)")
    p.set_defaults(run=run)


def over_budget(t: Row, max_params: float, max_activations: float) -> str | None:
    """Why the model is too large to build, from its analytic totals; None if it fits."""
    if t.params > max_params:
        return (f"model: {t.params:,} parameters; allowed: at most {max_params:,.0f} "
                "(--max-params)")
    if t.activations > max_activations:
        return (f"model: its forward writes {t.activations:,} elements per image; allowed: "
                f"at most {max_activations:,.0f} (--max-activations)")
    return None


def run(args: argparse.Namespace) -> int:
    from ..analysis.counts import count
    from ..build import BuildInputs, summary_text, write_bundle
    from ..bundle import default_bundle_dir
    from ..fusion.profiles import load_profile

    spec, graph, solved = load_solved(args.spec)  # torch-free: bad specs fail here
    for s in solved:
        print(s.text())
    try:
        load_profile(args.device)
    except ValueError as exc:
        print(f"archdsl: --device: {exc}", file=sys.stderr)
        return 2
    total = count(graph).total
    problem = over_budget(total, args.max_params, args.max_activations)
    if problem:
        print(f"{args.spec}: {problem}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    import torch

    from ..emit.torch import build_model, check_output

    # The bundle needs the module's weights only to save, load, fuse or export them.
    # Without those, a network over 1 GiB of float32 weights is built and checked on the
    # meta device: nothing allocated. (Smaller ones stay on the CPU, where the check is
    # faster: the meta device's batch norm imports torch._dynamo, about 2 s.)
    weighted = bool(args.weights or args.fused or args.save_weights or args.export)
    big = total.params * 4 > 1 << 30
    with torch.device("meta" if big and not weighted else "cpu"):
        model = build_model(graph)
    check_output(model, graph)
    if args.weights:
        from ..weights import load_weights

        print(load_weights(model, args.weights, source=args.source).text(), end="")
    if args.fused:
        from ..fusion.executor import fuse

        model = fuse(model.eval(), args.device)
        check_output(model, graph)
    inputs = BuildInputs(args.spec, spec, graph, model,
                         options={"save_weights": args.save_weights or args.fused,
                                  "device": args.device,
                                  "export_onnx": "onnx" in args.export})
    dest = args.output or default_bundle_dir(args.spec)
    paths = write_bundle(dest, inputs)
    print(summary_text(inputs), end="")
    print(f"bundle       {dest}/  ({', '.join(p.name for p in paths)}; "
          f"{time.perf_counter() - start:.1f} s)")
    return 0
