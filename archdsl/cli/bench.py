"""``archdsl bench SPEC``: every deployment path of one architecture, side by side."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="inference benchmark of every deployment path, on the CPU or a GPU",
        description="Time, interleaved, on the same architecture. On the CPU (--on cpu, the "
                    "default): the torchvision/timm twin "
                    "(eager), archdsl eager, archdsl fused, fused + channels_last, "
                    "jit.freeze + optimize_for_inference, Inductor with freezing (compile "
                    "time reported as setup), and ONNX Runtime and OpenVINO (f32) on the "
                    "twin's export, archdsl's plain export and the fused export. Medians, "
                    "interquartile range, images/s and ratios to the eager twin and to each "
                    "engine on the twin's export. Paths this machine can't run (OpenVINO "
                    "not installed: pip install archdsl[openvino]) are skipped with the "
                    "reason. On a GPU (--on cuda): the twin and archdsl eager, the fused "
                    "module (profile eager-cuda by default: cuDNN's fused conv kernels), and "
                    "torch.compile of the twin and of the fused module, timed by CUDA "
                    "events; --autocast runs the twin under torch.autocast with float32 "
                    "weights and the fused module with weights folded in float32 and cast "
                    "once. A profile that can't run on the chosen hardware, or --on cuda "
                    "without a CUDA device, is refused (exit status 2).")
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    p.add_argument("--batch", type=int, nargs="+", default=[1], metavar="N")
    p.add_argument("--threads", type=int, metavar="N", help="torch and ORT threads")
    p.add_argument("--repeat", type=int, default=20, metavar="N", help="rounds (default 20)")
    p.add_argument("--device", metavar="PROFILE",
                   help="fusion profile for the fused paths (default: eager on the CPU, "
                        "eager-cuda on a GPU); it must run on the --on hardware")
    p.add_argument("--on", choices=("cpu", "cuda"), default="cpu",
                   help="the hardware to time on (default: cpu)")
    p.add_argument("--autocast", choices=("bf16", "fp16"),
                   help="with --on cuda: run in this dtype (torch.autocast for the "
                        "unfused modules)")
    p.add_argument("--channels-last", action="store_true",
                   help="with --on cuda: every module and the input in channels_last")
    p.add_argument("--only", metavar="A,B", default="",
                   help="time only the variants whose names contain one of these")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8: also each engine's int8 model of the plain export (ONNX "
                        "Runtime's QDQ quantize_static at ORT's default level, "
                        "ORT_ENABLE_ALL; NNCF for OpenVINO), quantized as archdsl quantize "
                        "does on 16 synthetic inputs, next to its fp32 runs (CPU only)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=run)


def refusal(args: argparse.Namespace) -> str | None:
    """Why this bench can't run here, in one line, or None."""
    from ..fusion.profiles import builtin_names, load_profile

    try:
        profile = load_profile(args.device)
    except ValueError as exc:
        return f"--device: {exc}"
    if args.on not in profile.hardware:
        where = (f"runs on {', '.join(profile.hardware)} only" if profile.hardware else
                 "is a plan only: nothing here runs it")
        there = [n for n in builtin_names() if args.on in load_profile(n).hardware]
        return f"--on {args.on}: the {profile.name} profile {where}; on {args.on}: " \
            + ", ".join(there)
    if args.on == "cpu" and (args.autocast or args.channels_last):
        flag = "--autocast" if args.autocast else "--channels-last"
        return (f"{flag}: only with --on cuda (on the CPU, channels_last is a variant of its "
                "own and the engines run float32)")
    if args.precision == "int8":
        if args.on != "cpu":
            return "--precision int8: only with --on cpu (ONNX Runtime's and OpenVINO's CPU int8)"
        from ..int8.engines import installed

        if missing := installed("onnxruntime") or installed("openvino"):
            return f"--precision int8: {missing}"
    if args.on == "cuda":
        import torch

        if not torch.cuda.is_available():
            return (f"--on cuda: no CUDA device here (torch {torch.__version__} sees none); "
                    "time on the CPU with --on cpu")
    return None


def run(args: argparse.Namespace) -> int:
    from ..load import load_spec_with_graph

    _, graph = load_spec_with_graph(args.spec)
    args.device = args.device or ("eager-cuda" if args.on == "cuda" else "eager")
    if why := refusal(args):
        print(f"archdsl: {why}", file=sys.stderr)
        return 2
    from .. import bench

    out = []
    for batch in args.batch:
        results = bench.run(graph, batch=batch, threads=args.threads, repeat=args.repeat,
                            device=args.device, on=args.on, autocast=args.autocast,
                            channels_last=args.channels_last,
                            int8=args.precision == "int8",
                            only=tuple(o for o in args.only.split(",") if o),
                            log=lambda s: print(f"  {s}", file=sys.stderr, flush=True))
        if args.format == "json":
            out += bench.to_json(results, batch)
        else:
            where = "" if args.on == "cpu" else (
                f", on {torch_device()}" + (f", {args.autocast}" if args.autocast else "")
                + (", channels_last" if args.channels_last else ""))
            int8 = (", int8 with ORT at ORT_ENABLE_ALL and OpenVINO at f32 inference "
                    "precision" if args.precision == "int8" else "")
            ort = (", ONNX Runtime's threads not spinning between runs" if args.on == "cpu"
                   else "")
            print(f"{graph.name}, batch {batch}, {args.repeat} interleaved rounds{where}{int8}"
                  f"{ort}")
            print(bench.table(results, batch))
    if args.format == "json":
        print(json.dumps(out, indent=1))
    return 0


def torch_device() -> str:
    import torch

    return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
