"""Whole-process time and peak memory of counting ResNet-152: archdsl vs fvcore vs ptflops.

Each tool runs as its own process, the tools interleaved round by round, and each
process's own peak RSS is read from ``os.wait4``. Ratios are against fvcore in the same
run (this machine is shared and noisy). Run: ``python benchmarks/count_speed.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from proc import run_once

ROOT = Path(__file__).resolve().parents[1]
FVCORE = """
import torch, torchvision
from fvcore.nn import FlopCountAnalysis
m = torchvision.models.resnet152().eval()
fca = FlopCountAnalysis(m, torch.zeros(1, 3, 224, 224))
fca.unsupported_ops_warnings(False); fca.uncalled_modules_warnings(False)
print(fca.total())
"""
PTFLOPS = """
import torchvision
from ptflops import get_model_complexity_info
m = torchvision.models.resnet152().eval()
print(get_model_complexity_info(m, (3, 224, 224), as_strings=False,
                                print_per_layer_stat=False, verbose=False))
"""
TOOLS = {
    "archdsl count": [sys.executable, "-m", "archdsl", "count",
                      str(ROOT / "specs" / "resnet152.yaml"), "--format", "json"],
    "fvcore FlopCountAnalysis": [sys.executable, "-c", FVCORE],
    "ptflops": [sys.executable, "-c", PTFLOPS],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in TOOLS}
    for r in range(args.rounds):
        for name, cmd in TOOLS.items():
            results[name].append(run_once(cmd, ROOT))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v))
           for k, v in results.items()}
    ref_t, ref_m = med["fvcore FlopCountAnalysis"]
    print(f"ResNet-152 at 224x224, {args.rounds} interleaved rounds, medians "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    print(f"{'tool':26} {'wall s':>8} {'min..max':>13} {'peak MiB':>9} "
          f"{'fvcore/x time':>14} {'fvcore/x mem':>13}")
    for name, (t, m) in med.items():
        walls = [w for w, _ in results[name]]
        print(f"{name:26} {t:8.3f} {min(walls):6.2f}..{max(walls):5.2f} {m:9.1f} "
              f"{ref_t / t:13.1f}x {ref_m / m:12.1f}x")


if __name__ == "__main__":
    main()
