"""The fuzz tests of tests/test_hostile.py with many more examples than CI runs.

Run: ``python benchmarks/fuzz.py [--valid N] [--mutated N]`` (defaults 300 and 3000).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valid", type=int, default=300)
    ap.add_argument("--mutated", type=int, default=3000)
    args = ap.parse_args()
    env = dict(os.environ, ARCHDSL_FUZZ_VALID=str(args.valid),
               ARCHDSL_FUZZ_MUTATED=str(args.mutated))
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_hostile.py", "-k", "fuzz",
                            "--hypothesis-show-statistics"], cwd=ROOT, env=env)
    print(f"fuzz: {args.valid} valid + {args.mutated} mutated examples, "
          f"{time.perf_counter() - start:.0f} s, pytest exit {code}")
    sys.exit(code)


if __name__ == "__main__":
    main()
