"""``archdsl export SPEC --format python|onnx|torchscript``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXT = {"python": "model.py", "onnx": "model.onnx", "torchscript": "model.torchscript.pt"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="standalone PyTorch source, ONNX or TorchScript",
        description="Export SPEC's model. python: a standalone PyTorch file (imports only "
                    "torch; build() returns the model; same state_dict keys). onnx: "
                    "torch.onnx.export(dynamo=False, opset_version=17), dynamic batch axis. "
                    "torchscript: torch.jit.trace (TorchScript is deprecated in torch 2.14 and "
                    "warns; prefer onnx or python).")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--format", choices=tuple(EXT), required=True)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: archdsl-out/<spec stem>/model.py, model.onnx "
                        "or model.torchscript.pt)")
    p.add_argument("--fused", action="store_true",
                   help="export the fused module (onnx, torchscript) for --device")
    p.add_argument("--device", default="eager", metavar="NAME",
                   help="fusion profile for --fused (default: eager)")
    p.add_argument("--weights", metavar="FILE",
                   help="load this checkpoint first (torch.load weights_only, or safetensors)")
    p.add_argument("--source", choices=("torchvision", "timm", "archdsl"),
                   default="torchvision", help="where --weights come from")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bundle import default_bundle_dir
    from ..load import load_spec_with_graph

    spec, graph = load_spec_with_graph(args.spec)
    if args.fused:  # before torch is imported: a bad --device fails fast, in one line
        from ..fusion.profiles import load_profile

        try:
            load_profile(args.device)
        except ValueError as exc:
            print(f"archdsl: --device: {exc}", file=sys.stderr)
            return 2
    out = Path(args.output or default_bundle_dir(args.spec) / EXT[args.format])
    if args.format == "python":
        if args.fused or args.weights:
            print("archdsl: --fused and --weights apply to onnx and torchscript; the Python "
                  "source loads any state_dict itself", file=sys.stderr)
            return 2
        from ..bundle import atomic_file
        from ..emit.python import to_python

        with atomic_file(out) as tmp:
            tmp.write_text(to_python(graph, args.spec), encoding="utf-8")
        print(f"{out}  (python source, {spec.name})")
        return 0
    from ..emit.torch import build_model

    model = build_model(graph).eval()
    if args.weights:
        from ..weights import load_weights

        print(load_weights(model, args.weights, source=args.source).text(), end="")
    if args.fused:
        from ..fusion.executor import fuse

        model = fuse(model, args.device)
    if args.format == "onnx":
        from ..emit.onnx import OPSET, export_onnx

        export_onnx(model, out)
        print(f"{out}  (ONNX opset {OPSET}, dynamic batch{', fused' if args.fused else ''})")
    else:
        from ..emit.torchscript import export_torchscript

        export_torchscript(model, out)
        print(f"{out}  (TorchScript, traced; deprecated in torch 2.14)")
    return 0
