"""Time and peak memory of every bad spec in tests/bad_specs/ (the committed files and
the generated ones up to the 1 MiB cap) through `archdsl validate`, each in its own
process, against a valid spec's validate in the same run. Goal (#22): the slowest case
within 3x a valid validate, and every case under 100 MiB.

Run: ``python benchmarks/bad_specs.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "bad_specs"
sys.path.insert(0, str(BAD))
from generated import write_cases  # noqa: E402

# The child reports its own high-water mark: ru_maxrss from wait4 would carry this
# process's peak across the fork and exec.
CHILD = ("import atexit, sys\n"
         "atexit.register(lambda: sys.stderr.write('\\n' + next(l for l in "
         "open('/proc/self/status') if l.startswith('VmHWM'))))\n"
         "from archdsl.cli.main import main\n"
         "sys.exit(main(['validate', sys.argv[1]]))\n")


def run(spec: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, spec.name], cwd=spec.parent,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    return seconds, int(proc.stderr.split()[-2]) / 1024


def main() -> None:
    valid = [run(ROOT / "specs" / "resnet50.yaml") for _ in range(3)]
    ref = statistics.median(t for t, _ in valid)
    with tempfile.TemporaryDirectory() as tmp:
        write_cases(Path(tmp))
        specs = sorted(BAD.glob("*.yaml")) + sorted(Path(tmp).glob("*.yaml"))
        rows = sorted(((spec.name, *run(spec)) for spec in specs), key=lambda r: -r[1])
    print(f"{len(rows)} bad specs; a valid `archdsl validate specs/resnet50.yaml` takes "
          f"{ref:.3f} s (median of 3)\n")
    print(f"{'case':34} {'seconds':>8} {'x valid':>8} {'peak MiB':>9}")
    for name, t, mib in rows[:10]:
        print(f"{name:34} {t:8.3f} {t / ref:8.2f} {mib:9.1f}")
    print(f"... slowest {rows[0][0]} at {rows[0][1]:.3f} s; median "
          f"{statistics.median(r[1] for r in rows):.3f} s; max peak "
          f"{max(r[2] for r in rows):.1f} MiB (VmHWM)")


if __name__ == "__main__":
    main()
