"""Time and peak memory of every hostile checkpoint in tests/bad_checkpoints.py through
`archdsl import` (and `archdsl build tiny.yaml --weights` for those it lists), each in its
own process under a memory cap, against a valid `archdsl import` of a ResNet-50
checkpoint in the same run. Goal (#32): every case within 3x the valid import's time and
under 1 GiB (VmHWM, the child's own peak).

Run: ``python benchmarks/bad_checkpoints.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from bad_checkpoints import BUILD, BUILD_ONLY, CASES, IMPORT_ONLY, TINY, run, write  # noqa: E402

GOAL_X, GOAL_MIB = 3.0, 1024
EVERY = 6


def measured(folder: Path, args: list[str], expect: int) -> tuple[float, float]:
    out = run(folder, args, folder.parent / "report.json", timeout=300)
    if out["rc"] != expect:
        raise SystemExit(f"archdsl {' '.join(args)}: exit {out['rc']}, expected {expect}: "
                         f"{out['stderr'][-2000:]}")
    return out["wall"], out["peak_mib"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        torch.save(torchvision.models.resnet50().state_dict(), folder / "resnet50.pth")
        write(folder, {**CASES, **IMPORT_ONLY, **BUILD_ONLY})
        (folder / "tiny.yaml").write_text(TINY)
        runs = [(f"import {name}", ["import", name]) for name in [*CASES, *IMPORT_ONLY]]
        runs += [(f"build --weights {name}", ["build", "tiny.yaml", "--weights", name, "-o", "b"])
                 for name in [*BUILD, *BUILD_ONLY]]
        # the valid import is run between every EVERY cases, so that it meets the same load
        valid, rows = [measured(folder, ["import", "resnet50.pth"], 0)], []
        for i, (label, args) in enumerate(runs, 1):
            rows.append((label, *measured(folder, args, 2)))
            if i % EVERY == 0 or i == len(runs):
                valid.append(measured(folder, ["import", "resnet50.pth"], 0))
        ref = statistics.median(t for t, _ in valid)
        ref_mib = max(m for _, m in valid)
        size = (folder / "resnet50.pth").stat().st_size / 2**20
    rows.sort(key=lambda r: -r[1])
    print(f"{len(rows)} hostile checkpoint runs; a valid `archdsl import resnet50.pth` "
          f"({size:.1f} MiB) takes {ref:.2f} s (median of {len(valid)}, run between every "
          f"{EVERY} cases), peak {ref_mib:.0f} MiB\n")
    print(f"{'case':40} {'seconds':>8} {'x valid':>8} {'peak MiB':>9}")
    for name, t, mib in rows:
        print(f"{name:40} {t:8.2f} {t / ref:8.2f} {mib:9.0f}")
    slow = max(t for _, t, _ in rows) / ref
    peak = max(m for _, _, m in rows)
    met = slow <= GOAL_X and peak <= GOAL_MIB
    print(f"\nslowest {rows[0][0]} at {slow:.2f}x the valid import; max peak {peak:.0f} MiB; "
          f"goal (<= {GOAL_X:g}x, <= {GOAL_MIB} MiB) {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
