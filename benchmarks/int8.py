"""Int8 against float, per engine: speed (fp32 time ÷ int8 time, interleaved medians) and
accuracy on a trained network (scikit-learn's digits: the only labelled images a package
ships here; no ImageNet weights can be fetched).

    python benchmarks/int8.py speed [--specs resnet50 …] [--rounds 10]
    python benchmarks/int8.py accuracy [--specs resnet18 …] [--epochs 6]

Speed: random weights with BN statistics calibrated on random inputs, 16 synthetic
calibration samples, each engine's quantizer as ``archdsl quantize`` runs it; ORT at its
default level (ORT_ENABLE_ALL, as ``archdsl bench``), OpenVINO's CPU plugin at
INFERENCE_PRECISION_HINT=f32; 2 threads. The CPU's ISA and VNNI are printed: int8 speed
depends on them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import SPECS, randomised  # noqa: E402

import archdsl  # noqa: E402
from archdsl.emit.torch import build_model  # noqa: E402
from archdsl.fusion.isa import detect_isa, has_vnni  # noqa: E402
from archdsl.int8 import calibration, engines  # noqa: E402
from archdsl.int8.error import agreement  # noqa: E402
from archdsl.int8.settings import choose  # noqa: E402
from archdsl.load import load_spec_with_graph  # noqa: E402

SPEEDS = ("resnet50", "seresnext50_32x4d", "resnetv2_50", "resnet50_msra")


def runners(model: torch.nn.Module, work: Path, data: list[np.ndarray]) -> dict[str, object]:
    """Callables x -> logits: each engine's fp32 and int8 model."""
    import onnxruntime as ort
    import openvino as ov

    fp32 = archdsl.export_onnx(model, work / "m.onnx")
    engines.ort_prepare(fp32, work / "pre.onnx")
    engines.ort_quantize(work / "pre.onnx", work / "q.onnx", data,
                         choose("onnxruntime", len(data)), [])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    # interleaved with OpenVINO: ORT's threads must not spin on after a run, burning the
    # cores the next engine's run needs
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")

    def ort_run(path: Path):
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return lambda x: s.run(None, {"input": x})[0]

    cfg = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2}
    core = ov.Core()
    ov_fp32 = core.compile_model(str(fp32), "CPU", cfg)
    ov_int8 = core.compile_model(engines.ov_quantize(fp32, data, choose("openvino", len(data)),
                                                     []), "CPU", cfg)
    return {"ort fp32": ort_run(fp32), "ort int8": ort_run(work / "q.onnx"),
            "ov fp32": lambda x: np.array(ov_fp32(x)[0]),
            "ov int8": lambda x: np.array(ov_int8(x)[0])}


def speed(args: argparse.Namespace) -> None:
    torch.set_num_threads(2)
    print(f"CPU: {detect_isa()}, VNNI {'yes' if has_vnni() else 'no'}; {args.rounds} "
          "interleaved rounds, medians; fp32 ms ÷ int8 ms")
    print("| spec | batch | ORT fp32 → int8 (ms) | ORT speed-up | OpenVINO fp32 → int8 (ms) | "
          "OpenVINO speed-up | logits cosine (ORT, OpenVINO) |")
    print("|---|---:|---|---:|---|---:|---|")
    for name in args.specs:
        _, graph = load_spec_with_graph(SPECS / f"{name}.yaml")
        shape = graph.input.shape
        model = randomised(build_model(graph), shape)
        with tempfile.TemporaryDirectory() as d:
            run = runners(model, Path(d), calibration.synthetic(shape, 16))
            for batch in (1, 8):
                x = np.random.default_rng(3).standard_normal((batch, *shape), np.float32)
                outs = {k: f(x) for k, f in run.items()}  # warm-up, and the outputs
                times: dict[str, list[float]] = {k: [] for k in run}
                for _ in range(args.rounds):
                    for k, f in run.items():
                        t = time.perf_counter()
                        f(x)
                        times[k].append((time.perf_counter() - t) * 1e3)
                med = {k: statistics.median(v) for k, v in times.items()}
                cos = [agreement(outs[f"{e} int8"], outs[f"{e} fp32"])["cosine_min"]
                       for e in ("ort", "ov")]
                print(f"| {name} | {batch} | {med['ort fp32']:.1f} → {med['ort int8']:.1f} | "
                      f"{med['ort fp32'] / med['ort int8']:.2f}× | {med['ov fp32']:.1f} → "
                      f"{med['ov int8']:.1f} | {med['ov fp32'] / med['ov int8']:.2f}× | "
                      f"{cos[0]:.4f}, {cos[1]:.4f} |", flush=True)


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, upsampled to 3x32x32, standardised; a fixed split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16)[:, None]
    x = torch.nn.functional.interpolate(x, size=32, mode="bilinear").repeat(1, 3, 1, 1)
    x = ((x - x.mean()) / x.std()).numpy()
    idx = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    return x[idx[:cut]], d.target[idx[:cut]], x[idx[cut:]], d.target[idx[cut:]]


def fit(name: str, epochs: int, xtr: np.ndarray, ytr: np.ndarray) -> torch.nn.Module:
    """The spec at 3x32x32 trained on the digits (AdamW, one-cycle), in eval mode."""
    torch.manual_seed(0)
    _, graph = load_spec_with_graph(SPECS / f"{name}.yaml", (3, 32, 32))
    model = build_model(graph)
    steps = epochs * (len(xtr) // 32)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        perm = np.random.default_rng(epoch).permutation(len(xtr))
        for start in range(0, len(perm) - 31, 32):
            i = perm[start:start + 32]
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(xtr[i])),
                                                     torch.from_numpy(ytr[i]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def accuracy(args: argparse.Namespace) -> None:
    xtr, ytr, xte, yte = digits()
    print(f"trained {args.epochs} epochs at 3x32x32 on scikit-learn's digits ({len(xtr)} "
          f"images), tested on {len(xte)}; int8 calibrated on 64 training images; logits "
          "cosine of each int8 model to its engine's fp32 model, per test image")
    print("| spec | model | top-1 | logits cosine to fp32 (min, mean) |\n|---|---|---:|---|")
    for name in args.specs:
        trained(name, args.epochs, xtr, ytr, xte, yte)


def trained(name: str, epochs: int, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray,
            yte: np.ndarray) -> None:
    model = fit(name, epochs, xtr, ytr)
    with torch.no_grad():
        ref = model(torch.from_numpy(xte)).numpy()
    outs = {"fp32 (torch)": ref}
    cal = [xtr[i:i + 1] for i in range(64)]
    with tempfile.TemporaryDirectory() as d:
        run = runners(model, Path(d), cal)
        for k in ("ort fp32", "ort int8", "ov fp32", "ov int8"):
            outs[k] = np.concatenate([run[k](xte[i:i + 1]) for i in range(len(xte))])
    for k, out in outs.items():
        cos = ""
        if "int8" in k:
            a = agreement(out, outs[k.replace("int8", "fp32")])
            cos = f"{a['cosine_min']:.4f}, {a['cosine_mean']:.4f}"
        print(f"| {name} | {k} | {float((out.argmax(1) == yte).mean()):.2%} | {cos} |",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(required=True)
    s = sub.add_parser("speed")
    s.add_argument("--specs", nargs="+", default=list(SPEEDS))
    s.add_argument("--rounds", type=int, default=10)
    s.set_defaults(run=speed)
    a = sub.add_parser("accuracy")
    a.add_argument("--specs", nargs="+", default=["resnet18"])
    a.add_argument("--epochs", type=int, default=6)
    a.set_defaults(run=accuracy)
    args = ap.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
