"""The GPU benchmark of docs/benchmarks.md (issue #18): archdsl on one CUDA device, in at
most 4 minutes on an H100/H200, in four stages run in this order, each skipped (and said
so) when what it needs no longer fits the budget:

1. parity and fused equivalence (resnet50, resnext50_32x4d, seresnext50_32x4d,
   resnetv2_50): the built module against the torchvision/timm twin, randomised and
   calibrated, in float32 without TF32; the eager-cuda fused module against it in float32
   (relative ≤ 1e-3) and in bf16 (its weights folded in float32 and cast once, against the
   twin under autocast, both measured from the float32 result);
2. the eager table: twin eager, archdsl eager, archdsl fused (eager-cuda) at batch 1, 64
   and 256, in fp32 and in bf16 + channels_last, CUDA-event medians over interleaved
   rounds (~70 s);
3. the ``cuda`` profile against Inductor: each spec's comparable graph (two blocks a
   stage, 64x64) compiled in the default mode, its launched kernels counted as
   tests/test_engines.py does (~15 s a spec);
4. ``torch.compile`` of the twin and of the fused module at batch 256, bf16 +
   channels_last, as many specs as the rest of the budget allows (~60 s a spec).

Writes gpu.json and gpu.md to --out. Command on the device machine::

    python benchmarks/gpu.py --out "$OUT"

``--on cpu`` runs stages 1 and 2 on the CPU at small batches: a smoke test of this script
before spending device time on it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import SPECS, comparable_graph, randomised  # noqa: E402

import archdsl  # noqa: E402
from archdsl import bench  # noqa: E402
from archdsl.fusion.engines import inductor_kernels, planned_kernels  # noqa: E402
from archdsl.fusion.planner import plan  # noqa: E402
from archdsl.fusion.profiles import load_profile  # noqa: E402
from archdsl.load import load_spec_with_graph  # noqa: E402

NAMES = ["resnet50", "resnext50_32x4d", "seresnext50_32x4d", "resnetv2_50"]
PRECISIONS = {"fp32": (None, False), "bf16+channels_last": ("bf16", True)}
EAGER = ("twin eager", "archdsl eager", "archdsl fused")
COMPILED = ("twin eager", "archdsl fused", "torch.compile")
STAGE_S = {"profile": 15, "compile": 60}  # the estimate a stage needs, per spec


def rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.float() - ref).abs().max() / ref.abs().max()).item()


def equivalence(name: str, on: str) -> dict:
    graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
    shape = (3, 64, 64)
    model = archdsl.build_model(graph)
    twin = bench.twin(graph)
    randomised(twin, shape)
    model.load_state_dict(twin.state_dict())
    model, twin = model.eval().to(on), twin.eval().to(on)
    side = 224 if on == "cuda" else 96
    x = torch.randn(8, 3, side, side, device=on, generator=torch.Generator(on).manual_seed(0))
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            ref = twin(x)
            out = {"parity": rel(model(x), ref),
                   "fused_fp32": rel(archdsl.fuse(model, "eager-cuda")(x), ref)}
            low = archdsl.fuse(model, "eager-cuda", dtype=torch.bfloat16)(x.bfloat16())
            with torch.autocast(on, dtype=torch.bfloat16):
                twin_low = twin(x)
            out |= {"fused_bf16": rel(low, ref), "twin_bf16_autocast": rel(twin_low, ref)}
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    out["ok"] = (out["parity"] <= 1e-4 and out["fused_fp32"] <= 1e-3
                 and out["fused_bf16"] <= 1.25 * out["twin_bf16_autocast"])
    return out


def timed(name: str, precision: str, batches: list[int], only: tuple[str, ...], repeat: int,
          on: str) -> list[dict]:
    graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
    autocast, channels_last = PRECISIONS[precision]
    made = [(n, s) for n, s in bench.cuda_variants(graph, "eager-cuda", autocast,
                                                     channels_last, lambda s: None, on=on)
            if any(n.startswith(o) for o in only)]
    rows = []
    for batch in batches:
        x = torch.randn(batch, *graph.input.shape, device=on)
        results = bench.time_variants(made, x, repeat=repeat, warmup=5)
        base = next((r for r in results if r.name == "twin eager" and r.times), None)
        for r in results:
            rows.append({"spec": name, "precision": precision, "batch": batch,
                         "variant": r.name, "skipped": r.skipped or None,
                         "median_ms": 1e3 * r.median if r.times else None,
                         "img_s": batch / r.median if r.times else None,
                         "vs_twin": base.median / r.median if r.times and base else None,
                         "setup_s": round(r.setup_s, 1)})
        print(f"  {name} {precision} batch {batch}: " + ", ".join(
            f"{r.name} {1e3 * r.median:.2f} ms" for r in results if r.times), flush=True)
    return rows


def profile_check(name: str) -> dict:
    graph = comparable_graph(SPECS / f"{name}.yaml")
    profile = load_profile("cuda")
    engine = inductor_kernels(archdsl.build_model(graph).cuda(),
                              torch.randn(1, 3, 64, 64, device="cuda"), freezing=False)
    planned = planned_kernels(plan(graph, profile), profile)
    return {"engine": dict(engine), "planned": dict(planned), "equal": engine == planned}


def markdown(result: dict) -> str:
    env = result["env"]
    lines = [f"GPU: {env['gpu']}; torch {env['torch']}, torchvision {env['torchvision']}, "
             f"timm {env['timm']}; {env['wall_s']:.0f} s.", "",
             "| spec | parity | fused fp32 | fused bf16 | twin bf16 autocast |",
             "|---|---|---|---|---|"]
    lines += [f"| {n} | {e['parity']:.1e} | {e['fused_fp32']:.1e} | {e['fused_bf16']:.1e} | "
              f"{e['twin_bf16_autocast']:.1e} |" for n, e in result["equivalence"].items()]
    lines += ["", "| spec | precision | batch | variant | median ms | img/s | vs twin |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['spec']} | {r['precision']} | {r['batch']} | {r['variant']} | "
              + (f"{r['median_ms']:.2f} | {r['img_s']:,.0f} | {r['vs_twin'] or 0:.2f}x |"
                 if r["median_ms"] else f"skipped: {r['skipped']} | | |")
              for r in result["eager"] + result["compiled"]]
    lines += ["", "| spec | cuda profile = Inductor | engine | planned |", "|---|---|---|---|"]
    lines += [f"| {n} | {'yes' if c['equal'] else 'NO'} | {c['engine']} | {c['planned']} |"
              for n, c in result["profile"].items()]
    lines += ["", f"Skipped for the budget: {', '.join(result['skipped']) or 'nothing'}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--budget", type=float, default=240, help="seconds (default 240)")
    ap.add_argument("--repeat", type=int, default=15, help="interleaved rounds")
    ap.add_argument("--on", choices=("cuda", "cpu"), default="cuda")
    args = ap.parse_args()
    start = time.perf_counter()
    if args.on == "cuda" and not torch.cuda.is_available():
        print("gpu.py: no CUDA device here (--on cpu runs a smoke test)", file=sys.stderr)
        return 2
    import timm
    import torchvision

    gpu = torch.cuda.get_device_name() if args.on == "cuda" else \
        f"CPU smoke test ({platform.machine()})"
    print(f"# {gpu}, torch {torch.__version__}", flush=True)
    batches = [1, 64, 256] if args.on == "cuda" else [1, 2]

    def left() -> float:
        return args.budget - (time.perf_counter() - start)

    result: dict = {"equivalence": {}, "eager": [], "profile": {}, "compiled": [],
                    "skipped": []}
    for name in NAMES:
        result["equivalence"][name] = e = equivalence(name, args.on)
        print(f"  {name}: {e}", flush=True)
    for name in NAMES:
        for precision in PRECISIONS:
            result["eager"] += timed(name, precision, batches, EAGER, args.repeat, args.on)
    for stage in ("profile", "compile"):
        for name in NAMES:
            if args.on != "cuda" or left() < STAGE_S[stage]:
                result["skipped"].append(f"{stage} {name}")
                continue
            if stage == "profile":
                result["profile"][name] = c = profile_check(name)
                print(f"  cuda profile {name}: {'equal' if c['equal'] else c}", flush=True)
            else:
                result["compiled"] += timed(name, "bf16+channels_last", [256], COMPILED,
                                            args.repeat, args.on)
    result["env"] = {"gpu": gpu, "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "timm": timm.__version__,
                     "wall_s": time.perf_counter() - start}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1))
    (args.out / "gpu.md").write_text(markdown(result))
    print(markdown(result))
    ok = all(e["ok"] for e in result["equivalence"].values()) and \
        all(c["equal"] for c in result["profile"].values())
    fused = [r["vs_twin"] for r in result["eager"]
             if r["variant"].startswith("archdsl fused") and r["vs_twin"]]
    if fused:
        print(f"fused vs twin, eager: min {min(fused):.2f}x, median "
              f"{statistics.median(fused):.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
