"""Every counter on every spec with a torchvision or timm twin: the tool's own total on
the twin (fvcore, ptflops with both backends, thop, torchinfo; the releases the `bench`
extra pins) against `archdsl count --convention NAME`, and, where the tool reports per
module, every module with parameters, block and stage. Prints one row per spec; exits 1
on any difference. With --write, and only when everything agrees, rewrites the generated
part of docs/counting.md (the totals table and the per-tool sections).

    pip install -e ".[bench]"
    python benchmarks/counters.py                 # every twin spec at its own input
    python benchmarks/counters.py --write         # ... and regenerate docs/counting.md
    python benchmarks/counters.py --input 3x160x200 --specs resnet50 resnetv2_50
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import COUNTED_TWINS, SPECS, make_twin  # noqa: E402

from archdsl.analysis import counters  # noqa: E402
from archdsl.analysis.counting_doc import generated, replace_generated  # noqa: E402
from archdsl.analysis.counts import count  # noqa: E402
from archdsl.analysis.measure import installed, measure  # noqa: E402
from archdsl.cli.options import input_shape  # noqa: E402
from archdsl.load import load_spec_with_graph  # noqa: E402

DOC = ROOT / "docs" / "counting.md"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    twins = COUNTED_TWINS
    ap.add_argument("--specs", nargs="+", metavar="NAME", default=twins, choices=twins,
                    help="twin specs (default: all 20)")
    ap.add_argument("--input", type=input_shape, metavar="CxHxW",
                    help="another input than each spec's own")
    ap.add_argument("--write", action="store_true",
                    help="rewrite docs/counting.md's generated part (all specs, own input)")
    args = ap.parse_args()
    if args.write and (args.input or set(args.specs) != set(twins)):
        ap.error("--write regenerates the page from every twin spec at its own input")
    tools = counters.names()
    missing = {t: why for t in tools if (why := installed(t))}
    if missing:
        print("\n".join(f"cannot check {t}: {why}" for t, why in missing.items()))
        return 1
    print(f"# torch {torch.__version__}; " + ", ".join(
        f"{counters.load(t).column}: {counters.load(t).label}" for t in tools))
    print("| spec | input | " + " | ".join(tools) + " | modules checked | s |")
    print("|---|---|" + "---:|" * len(tools) + "---:|---:|")
    failures = []
    for name in args.specs:
        graph = load_spec_with_graph(SPECS / f"{name}.yaml", args.input)[1]
        with torch.device("meta"):
            model = make_twin(name)
        model = model.to_empty(device="cpu")  # counts don't read the weights
        start = time.perf_counter()
        cells, modules = [], 0
        for tool in tools:
            got = measure(tool, model, graph.input.shape)
            ours = count(graph, tool).total.macs
            cells.append(f"{got.total:,}" if ours == got.total else f"**{got.total:,} ≠ {ours:,}**")
            if ours != got.total:
                failures.append(f"{name} {tool}: tool {got.total:,}, archdsl {ours:,}")
            if got.modules:
                want = counters.per_module(graph, counters.load(tool))
                wrong = [k for k, v in want.items() if got.modules.get(k) != v]
                failures += [f"{name} {tool} module {k}: tool {got.modules.get(k)}, "
                             f"archdsl {want[k]}" for k in wrong]
                modules += len(want)
        shape = "x".join(map(str, graph.input.shape))
        print(f"| {name} | {shape} | " + " | ".join(cells) +
              f" | {modules} | {time.perf_counter() - start:.1f} |", flush=True)
    print(f"\n{len(failures)} differences" + "".join(f"\n  {f}" for f in failures))
    if failures:
        return 1
    if args.write:
        specs = [SPECS / f"{n}.yaml" for n in twins]
        DOC.write_text(replace_generated(DOC.read_text(), generated(specs)))
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
