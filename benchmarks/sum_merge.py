"""Where the sum merge pays: each projection block's tail of a spec, run as it is (the
branch's last conv and the projection conv, BN folded, their sum, the ReLU) and merged
(one conv over the concatenated inputs, the projection's input subsampled where it
strides), on each CPU engine side by side, interleaved. Prints one row per block shape
with each engine's ratio (unmerged time / merged time: above 1, the merge pays).

    python benchmarks/sum_merge.py                        # resnet50, batch 1, 2 threads
    python benchmarks/sum_merge.py --specs resnet50 resnet50d resnet18 --batch 8

The tails read random inputs of the shapes the spec's graph gives them; weights are
random (speed does not depend on their values).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from archdsl.bench import time_variants  # noqa: E402
from archdsl.fusion.isa import detect_isa  # noqa: E402
from archdsl.load import load_spec_with_graph  # noqa: E402

ENGINES = ("eager", "inductor", "onnxruntime", "openvino")


class Unmerged(nn.Module):
    def __init__(self, ca: int, cb: int, co: int, stride: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(ca, co, 1)
        self.b = nn.Conv2d(cb, co, 1, stride=stride)

    def forward(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.a(a) + self.b(x))


class Merged(nn.Module):
    def __init__(self, ca: int, cb: int, co: int, stride: int) -> None:
        super().__init__()
        self.conv, self.stride = nn.Conv2d(ca + cb, co, 1), stride

    def forward(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return torch.relu(self.conv(torch.cat([a, x[:, :, ::s, ::s] if s > 1 else x], 1)))


def _conv(graph, name: str):
    """The conv whose result ``name`` is (through a BN), or None."""
    n = graph[name]
    if n.op == "batch_norm":
        n = graph[n.inputs[0]]
    return n if n.op == "conv2d" else None


def tails(spec: str) -> list[tuple[str, int, int, int, int, tuple[int, ...], tuple[int, ...]]]:
    """(block, Ca, Cb, Co, stride, a's shape, x's shape) of each add of two 1x1 convs (the
    branch's last, then the projection) in the spec's graph."""
    _, graph = load_spec_with_graph(ROOT / "specs" / f"{spec}.yaml")
    out = []
    for d in graph:
        convs = [_conv(graph, i) for i in d.inputs] if d.op == "add" else [None]
        if None in convs or any(c.attrs["kernel"] != 1 for c in convs):
            continue
        a, b = convs
        xa, xb = graph[a.inputs[0]].shape, graph[b.inputs[0]].shape
        out.append((d.block or "", xa[0], xb[0], a.attrs["out_channels"],
                    xb[1] // xa[1], xa, xb))
    return out


def runners(model: nn.Module, inputs: tuple[torch.Tensor, ...], engine: str, path: Path,
            threads: int):
    if engine == "eager":
        def eager(xs):
            with torch.inference_mode():
                return model(*xs)
        return eager
    if engine == "inductor":
        import torch._dynamo.config as dynamo
        import torch._inductor.config as cfg

        # each tail is a new module of the same class: a compile of its own, not a
        # recompile past dynamo's limit (beyond which it would silently run eagerly)
        dynamo.recompile_limit = dynamo.accumulated_recompile_limit = 10_000

        with cfg.patch(freezing=True):
            compiled = torch.compile(model)
            with torch.inference_mode():
                compiled(*inputs)  # compiles under the setting
        def run(xs):
            with torch.inference_mode():
                return compiled(*xs)
        return run
    torch.onnx.export(model, inputs, str(path), input_names=["a", "x"], dynamo=False)
    if engine == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return lambda xs: sess.run(None, {"a": xs[0].numpy(), "x": xs[1].numpy()})
    import openvino as ov

    req = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    ).create_infer_request()
    return lambda xs: req.infer({0: xs[0].numpy(), 1: xs[1].numpy()})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", nargs="+", default=["resnet50"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {detect_isa()}, torch "
          f"{torch.__version__}, batch {args.batch}, {args.threads} threads; ratio = "
          "unmerged / merged median time (> 1: the merge pays)\n")
    print("| spec | block | Ca + Cb → Co | map | " + " | ".join(args.engines) + " |")
    print("|---|---|---|---|" + "---|" * len(args.engines))
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            for k, (block, ca, cb, co, s, xa, xb) in enumerate(tails(spec)):
                inputs = (torch.randn(args.batch, *xa), torch.randn(args.batch, *xb))
                made = []
                for e in args.engines:
                    for name, cls in (("unmerged", Unmerged), ("merged", Merged)):
                        m = cls(ca, cb, co, s).eval()
                        path = Path(tmp) / f"{spec}_{k}_{name}.onnx"
                        made.append((f"{e} {name}", lambda m=m, e=e, p=path, xs=inputs:
                                     runners(m, xs, e, p, args.threads)))
                results = {r.name: r for r in time_variants(made, inputs, repeat=args.repeat)}
                ratios = []
                for e in args.engines:
                    u, m = results[f"{e} unmerged"], results[f"{e} merged"]
                    ratios.append(f"{u.median / m.median:.2f}×" if u.times and m.times
                                  else f"skipped ({u.skipped or m.skipped})")
                stride = f" /{s}" if s > 1 else ""
                print(f"| {spec} | {block} | {ca} + {cb}{stride} → {co} | {xa[1]}² | "
                      + " | ".join(ratios) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
