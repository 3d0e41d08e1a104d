"""docs/family.md's table of timm's ResNet family: every architecture timm registers in
resnet.py, resnetv2.py and senet.py, with the spec ``archdsl import timm:NAME`` reads
back from its module (tests/timm_family.py), its parameters, MACs, constructs and the
shipped spec that writes it (or the nearest one and what to change).

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
    table = timm_family.family_table(timm_family.shipped_specs())
    print(table)
    if args.write:
        page = DOC.read_text()
        start = page.index(timm_family.BEGIN)
        end = page.index(timm_family.END) + len(timm_family.END)
        DOC.write_text(page[:start] + table + page[end:])
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
