"""The inference benchmark of docs/benchmarks.md: `archdsl bench` on resnet50,
resnet50_msra, seresnext50_32x4d and resnetv2_50 at batch 1 and 8, then a plot of the
ratios. Run on an otherwise idle machine: ``python benchmarks/inference.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl import bench  # noqa: E402
from archdsl.load import load_spec_with_graph  # noqa: E402

SPECS = ["resnet50", "resnet50_msra", "seresnext50_32x4d", "resnetv2_50"]


def plot(rows: list[dict], path: Path) -> None:
    """Bars of speed-up over eager per variant, one group per (spec, batch), as SVG."""
    groups = sorted({(r["spec"], r["batch"]) for r in rows}, key=lambda g: (SPECS.index(g[0]),
                                                                            g[1]))
    names = list(dict.fromkeys(r["variant"] for r in rows))
    colours = ["#999999", "#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd",
               "#dd8452", "#222222", "#937860", "#2ca02c", "#17becf", "#e377c2"]
    bw, gap, h = 9, 24, 300
    top = max(r["speedup"] for r in rows) * 1.1
    width = 80 + len(groups) * (len(names) * bw + gap) + 260
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h + 90}" '
           'font-family="Helvetica,sans-serif" font-size="11">',
           f'<rect width="{width}" height="{h + 90}" fill="white"/>',
           '<text x="10" y="16" font-size="13">speed-up over the eager twin (over archdsl '
           'eager for resnet50_msra, which has no twin), medians, '
           f'{platform.processor() or platform.machine()}, torch {torch.__version__}</text>']
    y0 = h + 30
    for t in [k / 2 for k in range(0, int(2 * top) + 1)]:
        y = y0 - t / top * h
        out.append(f'<line x1="60" x2="{width - 250}" y1="{y:.0f}" y2="{y:.0f}" '
                   'stroke="#eee"/><text x="52" y="{:.0f}" text-anchor="end">{}x</text>'
                   .format(y + 4, t))
    for gi, (spec, batch) in enumerate(groups):
        x0 = 70 + gi * (len(names) * bw + gap)
        for ni, name in enumerate(names):
            r = next((r for r in rows if (r["spec"], r["batch"], r["variant"]) ==
                      (spec, batch, name)), None)
            if r:
                hh = r["speedup"] / top * h
                out.append(f'<rect x="{x0 + ni * bw}" y="{y0 - hh:.1f}" width="{bw - 1}" '
                           f'height="{hh:.1f}" fill="{colours[ni % len(colours)]}"/>')
        out.append(f'<text x="{x0}" y="{y0 + 14}">{spec}</text>'
                   f'<text x="{x0}" y="{y0 + 27}">batch {batch}</text>')
    for ni, name in enumerate(names):
        out.append(f'<rect x="{width - 240}" y="{30 + 16 * ni}" width="10" height="10" '
                   f'fill="{colours[ni % len(colours)]}"/><text x="{width - 225}" '
                   f'y="{39 + 16 * ni}">{name}</text>')
    path.write_text("\n".join([*out, "</svg>"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--specs", nargs="+", default=SPECS)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/inference.json"))
    ap.add_argument("--plot", type=Path, default=Path("docs/img/inference.svg"))
    ap.add_argument("--plot-only", action="store_true", help="re-plot --json, measure nothing")
    args = ap.parse_args()
    if args.plot_only:
        plot(json.loads(args.json.read_text()), args.plot)
        return
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"python {platform.python_version()}, torch {torch.__version__}")
    rows = []
    for name in args.specs:
        _, graph = load_spec_with_graph(ROOT / "specs" / f"{name}.yaml")
        for batch in args.batch:
            results = bench.run(graph, batch=batch, repeat=args.repeat,
                                log=lambda s: print(f"  {s}", file=sys.stderr, flush=True))
            print(f"\n## {name}, batch {batch}\n\n```\n{bench.table(results, batch)}```")
            base = next(r for r in results if r.times)
            rows += [{"spec": name, "batch": batch, "variant": r.name,
                      "median_ms": 1e3 * r.median, "speedup": base.median / r.median}
                     for r in results if r.times]
    args.json.write_text(json.dumps(rows, indent=1))
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
