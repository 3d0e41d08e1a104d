"""Time ``archdsl sample``: 10,000 draws of the RegNetX and AnyNetX spaces (spaces/),
counted with the torch-free counter on every core, beside the 1,000-point ResNeXt-50
sweep of benchmarks/sweep_speed.py run in the same session (the machine is shared: the
ratio of the rates is the figure that travels).

Run: ``python benchmarks/sample_speed.py [N]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep_speed import GRID  # noqa: E402


def _timed(args: list[str]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "archdsl", *args, "--format", "csv",
                          "--quiet"], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.strip().splitlines()[1:]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    wall, rows = _timed(["sweep", str(ROOT / "specs" / "resnext50_32x4d.yaml"), *GRID])
    sweep_ms = 1000 * wall / len(rows)
    print(f"sweep: {len(rows)} ResNeXt-50 points in {wall:.2f} s = {sweep_ms:.2f} ms a "
          "point (one process)")
    for space in ("regnetx", "anynetx"):
        wall, rows = _timed(["sample", str(ROOT / "spaces" / f"{space}.yaml"), "-n", str(n)])
        ms = 1000 * wall / len(rows)
        print(f"sample {space}: {len(rows):,} samples in {wall:.2f} s on {os.cpu_count()} "
              f"cores = {ms:.2f} ms a sample, {sweep_ms / ms:.2f}x the sweep's rate")


if __name__ == "__main__":
    main()
