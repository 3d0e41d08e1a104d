"""``archdsl quantize SPEC --engine onnxruntime|openvino -o DIR``: the engine's int8 model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ir.graph import ROLES, Graph
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize", help="the engine's int8 model, its plan and its measured error",
        description="Quantize SPEC's model to int8 with the engine's own quantizer, from "
                    "archdsl's ONNX export: onnxruntime (quantize_static, QDQ: DIR/"
                    "model.int8.onnx) or openvino (nncf.quantize: DIR/model.xml + model.bin, "
                    "float weights kept in f32). DIR/plan.json records the settings (chosen "
                    "for this CPU's instruction set), which kernel runs each node in which "
                    "precision as the engine reports it (ORT's optimised graph at "
                    "ORT_ENABLE_EXTENDED; OpenVINO's runtime model at "
                    "INFERENCE_PRECISION_HINT=f32), why each float node is float, the "
                    "agreement with the float model on held-out inputs, and every node's "
                    "SQNR; DIR/report.md shows them. Nothing is written unless all of it "
                    "succeeds.")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--engine", choices=("onnxruntime", "openvino"), required=True)
    p.add_argument("-o", "--output", metavar="DIR", required=True,
                   help="output folder (replaced as a whole once everything is written)")
    p.add_argument("--weights", metavar="FILE",
                   help="load this checkpoint first (torch.load weights_only, or safetensors)")
    p.add_argument("--source", choices=("torchvision", "timm", "archdsl"),
                   default="torchvision", help="where --weights come from")
    p.add_argument("--calibration", metavar="DIR",
                     help="calibrate on the images in DIR (jpg, png, bmp, ppm, webp; resized "
                          "to input/0.875, centre-cropped, ImageNet mean and std); images "
                          "beyond --samples are the held-out inputs")
    p.add_argument("--samples", type=int, default=16, metavar="N",
                   help="calibration samples (default: 16; synthetic without --calibration)")
    p.add_argument("--input", type=options.input_shape, metavar="CxHxW",
                   help="quantize at this input shape instead of the spec's (e.g. 3x160x160)")
    p.add_argument("--keep-fp32", default="", metavar="ROLES",
                   help="comma-separated roles or parts kept in float: "
                        f"{', '.join(ROLES)}, or a part the spec has (se, eca, "
                        "classifier, …)")
    p.set_defaults(run=run)


def _roles(text: str, graph: Graph) -> set[str] | str:
    """The roles and parts to keep in float, or the line that says why one can't be."""
    keep = {r.strip() for r in text.split(",") if r.strip()}
    here = [r for r in ROLES if any(n.role == r for n in graph)]
    here += sorted({n.part for n in graph if n.part})
    bad = sorted(keep - set(here))
    if bad:
        return (f"archdsl: --keep-fp32: {bad[0]!r} is no role or part of {graph.name}; "
                f"allowed: {', '.join(here)}")
    return keep


def run(args: argparse.Namespace) -> int:
    from ..load import load_spec_with_graph

    if args.samples < 1:
        print("archdsl: --samples: must be at least 1", file=sys.stderr)
        return 2
    from ..int8 import engines

    if missing := engines.installed(args.engine):
        print(f"archdsl: --engine {args.engine}: {missing}", file=sys.stderr)
        return 2
    _, graph = load_spec_with_graph(args.spec, args.input)
    keep = _roles(args.keep_fp32, graph)
    if isinstance(keep, str):
        print(keep, file=sys.stderr)
        return 2
    from ..int8 import calibration, quantize, report

    shape = graph.input.shape
    if args.calibration:
        images = calibration.load_images(args.calibration, shape,
                                         args.samples + quantize.HELD_OUT)
        data, held = images[:args.samples], images[args.samples:]
        source = f"images in {args.calibration}"
        if len(data) < args.samples:
            print(f"archdsl: --calibration: {len(data)} images, fewer than --samples "
                  f"{args.samples}: calibrating on {len(data)}", file=sys.stderr)
    else:
        print(f"archdsl: {calibration.SYNTHETIC}", file=sys.stderr)
        data, held, source = calibration.synthetic(shape, args.samples), [], "synthetic"
    held_source = f"{len(held)} images after the calibration ones" if held else (
        f"{quantize.HELD_OUT} synthetic inputs")
    if args.calibration and not held:
        print("archdsl: --calibration: no images beyond the calibration ones: the agreement "
              "is measured on synthetic inputs", file=sys.stderr)
    held = held or calibration.synthetic(shape, quantize.HELD_OUT, seed=1)
    from ..bundle import atomic_dir
    from ..emit.torch import build_model

    model = build_model(graph).eval()
    if args.weights:
        from ..weights import load_weights

        print(load_weights(model, args.weights, source=args.source).text(), end="")
    try:
        with atomic_dir(args.output) as tmp:
            plan = quantize.quantize(model, args.engine, tmp, data=data, held_out=held,
                                     keep_fp32=keep, source=source,
                                     held_out_source=held_source)
            quantize.write(tmp / "plan.json", plan)
            (tmp / "report.md").write_text(report.render(plan), encoding="utf-8")
    except engines.Refused as exc:
        print(f"archdsl: --engine {args.engine}: {graph.name}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(report.summary(plan))
    print(f"{Path(args.output)}/  ({', '.join(p.name for p in engines.paths('', args.engine))}"
          ", plan.json, report.md)")
    return 0
