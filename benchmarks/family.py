"""docs/family.md's tables of timm's ResNet family and RegNets and torchvision's RegNets:
every architecture timm registers in resnet.py, resnetv2.py, senet.py, regnet.py,
resnest.py, sknet.py and res2net.py, and
every torchvision RegNet, with the spec ``archdsl import`` reads back from its module
(tests/timm_family.py), its parameters, MACs, constructs and the shipped spec that writes
it (or the nearest one and what to change: a RegNet's stages as its rule).

    python benchmarks/family.py           # print the table
    python benchmarks/family.py --write   # and rewrite docs/family.md's generated part
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import timm_family  # noqa: E402

DOC = ROOT / "docs" / "family.md"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite docs/family.md's table")
    args = ap.parse_args()
    shipped = timm_family.shipped_specs()
    page = DOC.read_text()
    for table, begin, end in (
            (timm_family.family_table(shipped), timm_family.BEGIN, timm_family.END),
            (timm_family.torchvision_table(shipped), timm_family.TV_BEGIN,
             timm_family.TV_END)):
        print(table)
        start, stop = page.index(begin), page.index(end) + len(end)
        page = page[:start] + table + page[stop:]
    if args.write:
        DOC.write_text(page)
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
