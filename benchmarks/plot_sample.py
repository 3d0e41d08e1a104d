"""The paper's complexity histograms (Radosavovic et al., 2020, Fig. 3): 1,000 samples of
the RegNetX and AnyNetX spaces (spaces/, seed 0), the distribution of their parameters,
MACs and activations (pycls's), drawn as an SVG (no plotting library needed):
``python benchmarks/plot_sample.py OUT.svg [N]``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl.sampling import load_space, sample  # noqa: E402

W, H, PAD, BINS = 900, 300, 50, 24
COLOURS = {"RegNetX": "#d95f02", "AnyNetX": "#1b9e77"}
PANELS = (("params", "parameters"), ("macs", "MACs"), ("pycls_activations", "activations"))


def main() -> None:
    out_path = Path(sys.argv[1] if len(sys.argv) > 1 else "design_space_sample.svg")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    drawn = {}
    for space in ("regnetx", "anynetx"):
        sp = load_space(ROOT / "spaces" / f"{space}.yaml")
        drawn[sp.name] = list(sample(sp, n, seed=0, jobs=2))
    pw = (W - PAD) / len(PANELS)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="Helvetica,sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">{n:,} samples '
           'a space (archdsl sample, seed 0): share of samples by complexity</text>']
    for k, (key, title) in enumerate(PANELS):
        x0 = PAD / 2 + k * pw + 20
        logs = {s: [math.log10(max(getattr(r, key), 1)) for r in rows]
                for s, rows in drawn.items()}
        lo = math.floor(min(min(v) for v in logs.values()))
        hi = math.ceil(max(max(v) for v in logs.values()))
        width, top = pw - 40, H - PAD
        out.append(f'<line x1="{x0}" y1="{top}" x2="{x0 + width}" y2="{top}" stroke="black"/>')
        out.append(f'<text x="{x0 + width / 2}" y="{H - 14}" text-anchor="middle">{title} '
                   '(log scale)</text>')
        for e in range(lo, hi + 1):
            x = x0 + (e - lo) / (hi - lo) * width
            out.append(f'<text x="{x:.1f}" y="{top + 14}" text-anchor="middle">1e{e}</text>')
        for s, v in logs.items():
            counts = [0] * BINS
            for x in v:
                counts[min(BINS - 1, int((x - lo) / (hi - lo) * BINS))] += 1
            pts = [(x0 + (i + 0.5) / BINS * width, top - c / len(v) * (H - 2 * PAD) * 3)
                   for i, c in enumerate(counts)]
            out.append('<polyline fill="none" stroke-width="2" stroke="{}" points="{}"/>'
                       .format(COLOURS[s], " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)))
    for i, (s, col) in enumerate(COLOURS.items()):
        out.append(f'<text x="{W - 110}" y="{40 + 14 * i}" fill="{col}">{s}</text>')
    out.append("</svg>")
    out_path.write_text("\n".join(out) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
