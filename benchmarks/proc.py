"""One measured process: wall seconds and peak RSS, shared by the whole-process benchmarks.

The peak comes from ``os.wait4``; Linux carries ``ru_maxrss`` across exec, so it is the
larger of the child's own peak and this (small) benchmark process's at the fork.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def run_once(cmd: list[str], cwd: Path, env: dict[str, str] | None = None
             ) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process; exits if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=cwd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd[:4])}…")
    return wall, usage.ru_maxrss / 1024
