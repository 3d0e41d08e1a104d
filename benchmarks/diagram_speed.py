"""Whole-process time and peak memory of `archdsl diagram specs/resnet50.yaml -o d.svg`:
with the compiled Graphviz module in the cache (every run after the first on a machine),
with an empty cache (the first run), and `archdsl validate` on the same spec as the floor.

Interleaved rounds, medians; goal (#22): the cached diagram within 0.7 s.
Run: ``python benchmarks/diagram_speed.py [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from proc import run_once

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "specs" / "resnet50.yaml")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "d.svg")
        warm = {**os.environ, "ARCHDSL_CACHE_DIR": str(Path(tmp) / "warm")}
        cold = {**os.environ, "ARCHDSL_CACHE_DIR": str(Path(tmp) / "cold")}
        diagram = [sys.executable, "-m", "archdsl", "diagram", SPEC, "-o", out]
        runs = {
            "archdsl validate": ([sys.executable, "-m", "archdsl", "validate", SPEC], warm),
            "diagram, cached module": (diagram, warm),
            "diagram, empty cache": (diagram, cold),
        }
        run_once(diagram, ROOT, warm)  # fills the warm cache
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
        for r in range(args.rounds):
            for name, (cmd, env) in runs.items():
                shutil.rmtree(Path(tmp) / "cold", ignore_errors=True)
                results[name].append(run_once(cmd, ROOT, env))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"ResNet-50, block level, SVG; {args.rounds} interleaved rounds, medians "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    floor = statistics.median(w for w, _ in results["archdsl validate"])
    print(f"{'process':24} {'wall s':>7} {'min..max':>12} {'peak MiB':>9} {'x validate':>11}")
    for name, rows in results.items():
        walls = [w for w, _ in rows]
        t = statistics.median(walls)
        print(f"{name:24} {t:7.3f} {min(walls):5.2f}..{max(walls):5.2f} "
              f"{statistics.median(m for _, m in rows):9.1f} {t / floor:10.2f}x")


if __name__ == "__main__":
    main()
