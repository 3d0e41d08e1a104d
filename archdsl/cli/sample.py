"""``archdsl sample SPACE``: N models drawn from a design space, each counted (no torch)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from statistics import quantiles
from typing import Any


def _band(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    try:
        band = float(lo), float(hi)
    except ValueError:
        band = (0.0, -1.0)
    if not sep or not 0 <= band[0] <= band[1]:
        raise argparse.ArgumentTypeError(f"expected LO:HI MACs such as 360e6:400e6, got "
                                         f"{text!r}")
    return band


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample", help="draw N models from a design space and count each (no torch)",
        description="Design-space sampling (Radosavovic et al., 2020): draw N points of "
                    "SPACE (a YAML file: a base spec and a distribution for each free field, "
                    "docs/design-space.md) from a seed, redrawing points that are no "
                    "network or fall outside --macs, and report each sample's parameters, "
                    "MACs and activations (archdsl's: every op's output elements; the "
                    "paper's: convs', pools' and linears', as pycls counts), then the "
                    "quartiles of each. The same SPACE, N, seed and band give the same "
                    "samples on any number of processes.")
    p.add_argument("space", metavar="SPACE", help="design-space file (.yaml)")
    p.add_argument("-n", "--samples", type=int, default=100, metavar="N",
                   help="samples to draw (default 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--macs", type=_band, metavar="LO:HI",
                   help="keep samples with LO ≤ MACs ≤ HI (the paper's 360e6:400e6)")
    p.add_argument("--tries", type=int, default=1000, metavar="T",
                   help="draws at most T times N in all, then stop (default 1000: a narrow "
                        "band keeps few draws)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                   help="counting processes (default: one a core)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(run=run)


def _summary(rows: list[Any]) -> list[str]:
    out = [f"{'':>18} {'min':>14} {'25%':>14} {'median':>14} {'75%':>14} {'max':>14}"]
    for key in ("params", "macs", "activations", "pycls_activations"):
        v = sorted(getattr(r, key) for r in rows)
        q = quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
        out.append(f"{key:>18} " + " ".join(f"{x:14,.0f}" for x in (v[0], *q, v[-1])))
    return out


def run(args: argparse.Namespace) -> int:
    from ..sampling import Tally, load_space, sample

    space = load_space(args.space)
    tally = Tally()
    rows = []
    try:
        for s in sample(space, args.samples, args.seed, args.macs, jobs=max(1, args.jobs),
                        tries=max(1, args.tries), tally=tally):
            rows.append(s)
            if not args.quiet and (s.index % 500 == 0 or s.index == args.samples):
                print(f"\r{s.index}/{args.samples} samples", end="", file=sys.stderr,
                      flush=True)
    except ValueError as exc:
        print(("\n" if rows and not args.quiet else "") + f"archdsl: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(file=sys.stderr)  # end the progress line
    keys = list(rows[0].values)
    metrics = ("params", "macs", "activations", "pycls_activations")
    if args.format == "json":
        print(json.dumps([{"sample": r.index, **r.values,
                           **{m: getattr(r, m) for m in metrics}} for r in rows], indent=1))
    elif args.format == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["sample", *keys, *metrics])
        for r in rows:
            w.writerow([r.index, *r.values.values(), *(getattr(r, m) for m in metrics)])
    else:
        print("  ".join(["sample", *keys, *metrics]))
        for r in rows:
            print("  ".join(map(str, [r.index, *r.values.values(),
                                      *(f"{getattr(r, m):,}" for m in metrics)])))
    if not args.quiet:
        print(f"{space.name}: {len(rows):,} samples (seed {args.seed}); redrawn: "
              f"{tally.invalid:,} no network, {tally.outside:,} outside the MACs band",
              file=sys.stderr)
        print("\n".join(_summary(rows)), file=sys.stderr)
    return 0
