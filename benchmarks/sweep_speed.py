"""Time a 1,000-point sweep of ResNeXt-50 variants (cardinality x base width x SE ratio)
with the torch-free counter, as one process.

Run: ``python benchmarks/sweep_speed.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--grid", "cardinality=1,2,4,8,16,32,48,64,96,128",
        "--grid", "base_width=2,4,6,8,12,16,24,32,48,64",
        "--grid", "se.ratio=4,8,12,16,20,24,28,32,48,64"]


def main() -> None:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "archdsl", "sweep",
                          str(ROOT / "specs" / "resnext50_32x4d.yaml"), *GRID,
                          "--format", "csv", "--quiet"], capture_output=True, text=True,
                         check=True)
    wall = time.perf_counter() - start
    rows = out.stdout.strip().splitlines()[1:]
    bad = sum(1 for r in rows if not r.endswith(","))
    print(f"{len(rows)} points ({bad} invalid) in {wall:.2f} s = "
          f"{1000 * wall / len(rows):.1f} ms per point, whole process")


if __name__ == "__main__":
    main()
