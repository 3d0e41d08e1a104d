"""Sweep ResNeXt-50 over cardinality x bottleneck width and plot MACs against parameters
as an SVG (no plotting library needed): ``python benchmarks/plot_sweep.py OUT.svg``."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl.design import sweep  # noqa: E402
from archdsl.spec.loader import load_document  # noqa: E402

W, H, PAD = 640, 420, 60
COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]


def main() -> None:
    path = str(ROOT / "specs" / "resnext50_32x4d.yaml")
    data, pos = load_document(path, shown=path)
    cards, widths = [1, 2, 4, 8, 32], [2, 4, 8, 14, 24, 40, 64]
    # the region the paper explores: total bottleneck width C·d up to 4x ResNet-50's 64
    pts = [p for p in sweep(data, pos, path, {"cardinality": cards, "base_width": widths})
           if p.spec is not None and p.values["cardinality"] * p.values["base_width"] <= 256]
    xs = [p.params / 1e6 for p in pts]
    ys = [p.macs / 1e9 for p in pts]
    x0, x1, y0, y1 = 0, max(xs) * 1.05, 0, max(ys) * 1.05

    def sx(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (W - 2 * PAD)

    def sy(y: float) -> float:
        return H - PAD - (y - y0) / (y1 - y0) * (H - 2 * PAD)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="Helvetica,sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 20}" text-anchor="middle">parameters (M)</text>',
           f'<text x="18" y="{H / 2}" text-anchor="middle" transform="rotate(-90 18 {H / 2})">'
           'MACs (G, conv+linear)</text>',
           f'<text x="{W / 2}" y="28" text-anchor="middle" font-size="14">ResNeXt-50 '
           'variants: cardinality C x width d (archdsl sweep)</text>']
    def step(top: float) -> int:
        raw = top / 6
        return next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if s >= raw)

    for t in range(0, int(x1) + 1, step(x1)):
        out.append(f'<text x="{sx(t)}" y="{H - PAD + 16}" text-anchor="middle">{t}</text>')
    for t in range(0, int(y1) + 1, step(y1)):
        out.append(f'<text x="{PAD - 8}" y="{sy(t) + 4}" text-anchor="end">{t}</text>')
    for i, c in enumerate(cards):
        row = [(x, y, p) for x, y, p in zip(xs, ys, pts, strict=True)
               if p.values["cardinality"] == c]
        col = COLOURS[i % len(COLOURS)]
        out.append('<polyline fill="none" stroke="{}" points="{}"/>'.format(
            col, " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in row)))
        for x, y, _ in row:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{col}"/>')
        out.append(f'<text x="{W - PAD - 60}" y="{PAD + 16 * i}" fill="{col}">C = {c}</text>')
    ref = [(x, y) for x, y, p in zip(xs, ys, pts, strict=True)
           if (p.values["cardinality"], p.values["base_width"]) in ((1, 64), (32, 4))]
    for x, y in ref:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="7" fill="none" '
                   'stroke="black"/>')
    out.append("</svg>")
    Path(sys.argv[1] if len(sys.argv) > 1 else "design_space.svg").write_text("\n".join(out))


if __name__ == "__main__":
    main()
