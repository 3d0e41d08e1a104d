"""Time and peak memory of every bad spec in tests/bad_specs/ through `archdsl validate`,
each in its own process, against a valid spec's validate in the same run.

Run: ``python benchmarks/bad_specs.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "bad_specs"


def run(spec: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "archdsl", "validate", spec.name],
                            cwd=spec.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    valid = [run(ROOT / "specs" / "resnet50.yaml") for _ in range(3)]
    ref = statistics.median(t for t, _ in valid)
    rows = sorted(((spec.name, *run(spec)) for spec in sorted(BAD.glob("*.yaml"))),
                  key=lambda r: -r[1])
    print(f"{len(rows)} bad specs; a valid `archdsl validate specs/resnet50.yaml` takes "
          f"{ref:.3f} s (median of 3)\n")
    print(f"{'case':34} {'seconds':>8} {'x valid':>8} {'peak MiB':>9}")
    for name, t, mib in rows[:10]:
        print(f"{name:34} {t:8.3f} {t / ref:8.2f} {mib:9.1f}")
    print(f"... slowest {rows[0][0]} at {rows[0][1]:.3f} s; median "
          f"{statistics.median(r[1] for r in rows):.3f} s; max peak "
          f"{max(r[2] for r in rows):.1f} MiB (ru_maxrss, which Linux carries across exec)")


if __name__ == "__main__":
    main()
