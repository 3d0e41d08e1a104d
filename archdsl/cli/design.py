"""``archdsl match`` (ResNeXt Table 2) and ``archdsl sweep`` (grids of variants)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser(
        "match", help="complexity-matched cardinality x width (ResNeXt Table 2)",
        description="For each cardinality C, find the bottleneck width d whose block has the "
                    "parameters closest to the same block of BASE (by default the conv2-stage "
                    "block layer1.1 of ResNet-50), as the ResNeXt paper's Table 2 does. "
                    "No torch.")
    m.add_argument("base", metavar="BASE", help="spec file (.yaml)")
    m.add_argument("--cardinality", default="1,2,4,8,32", metavar="C1,C2,…",
                   help="cardinalities to match (default: 1,2,4,8,32)")
    m.add_argument("--block", default="layer1.1", help="block to match (default: layer1.1)")
    m.add_argument("--with-bn", action="store_true",
                   help="count BN parameters too (default: convolutions only, as the paper)")
    m.add_argument("--format", choices=("table", "json"), default="table")
    m.set_defaults(run=run_match)
    s = sub.add_parser(
        "sweep", help="count every point of a grid of spec variants (no torch)",
        description="Apply every combination of --grid values to BASE and count each point: "
                    "parameters, MACs, activations. Keys: a stage field (cardinality, "
                    "base_width, se.ratio…) applies to every stage; stages[i].field to one; "
                    "input.size, head.classes… to the top level. Invalid points are listed "
                    "with the reason.")
    s.add_argument("base", metavar="BASE", help="spec file (.yaml)")
    s.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,…",
                   help="a key and its values; repeat for more keys")
    s.add_argument("--max-macs", type=float, metavar="N", help="keep points with at most N MACs")
    s.add_argument("--max-params", type=float, metavar="N",
                   help="keep points with at most N parameters")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.add_argument("--write", metavar="DIR", help="write each kept point's normalized spec")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(run=run_sweep)


def run_match(args: argparse.Namespace) -> int:
    from ..design import match_block
    from ..load import load_spec

    cards = [int(c) for c in args.cardinality.split(",")]
    rows = match_block(load_spec(args.base), args.block, cards, with_bn=args.with_bn)
    if args.format == "json":
        print(json.dumps([r.__dict__ for r in rows], indent=1))
        return 0
    what = "conv and BN" if args.with_bn else "conv"
    print(f"{args.block} of {args.base}: {rows[0].target:,} {what} parameters\n")
    print(f"{'C':>4} {'d':>4} {'C x d':>6} {'params':>9} {'ratio':>7}")
    for r in rows:
        print(f"{r.cardinality:4} {r.width:4} {r.cardinality * r.width:6} {r.params:9,} "
              f"{r.params / r.target:7.3f}")
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from ..build import normalized_yaml
    from ..design import parse_grid, point_label, sweep
    from ..spec.loader import load_document

    try:
        grid = parse_grid(args.grid)
    except ValueError as exc:
        print(f"archdsl: {exc}", file=sys.stderr)
        return 2
    total = 1
    for v in grid.values():
        total *= len(v)
    data, pos = load_document(args.base, shown=args.base)
    rows = []
    for k, p in enumerate(sweep(data, pos, args.base, grid), start=1):
        if not args.quiet and (k % 50 == 0 or k == total):
            print(f"\r{k}/{total} points", end="", file=sys.stderr, flush=True)
        if p.spec is not None and ((args.max_macs and p.macs > args.max_macs)
                                   or (args.max_params and p.params > args.max_params)):
            continue
        rows.append(p)
    if not args.quiet:
        print(file=sys.stderr)
    if args.write:
        out = Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for p in rows:
            if p.spec is not None:
                name = point_label(p.values).replace("=", "-").replace(",", "_")
                (out / f"{name}.yaml").write_text(normalized_yaml(p.spec, args.base))
    keys = list(grid)
    if args.format == "json":
        print(json.dumps([{**p.values, "params": p.params, "macs": p.macs,
                           "activations": p.activations, "error": p.error or None}
                          for p in rows], indent=1))
    elif args.format == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow([*keys, "params", "macs", "activations", "error"])
        for p in rows:
            w.writerow([*p.values.values(), p.params, p.macs, p.activations, p.error])
    else:
        head = "  ".join(f"{k:>12}" for k in keys)
        print(f"{head}  {'params':>14}  {'MACs':>16}  {'activations':>13}")
        for p in rows:
            vals = "  ".join(f"{v!s:>12}" for v in p.values.values())
            print(f"{vals}  " + (f"{p.params:14,}  {p.macs:16,}  {p.activations:13,}"
                                 if not p.error else f"invalid: {p.error}"))
    return 0
