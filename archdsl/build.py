"""The build bundle: every artefact a spec produces, written atomically.

Each artefact is a file name and a function of the build's inputs; later
capabilities add theirs to ``ARTIFACTS``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .analysis.counts import Counts, count
from .analysis.tables import render as render_counts
from .bundle import atomic_dir
from .emit.dot import drawable_level, to_dot
from .emit.python import to_python
from .emit.render import render as render_dot
from .emit.report import to_html
from .fusion.planner import FusionPlan, plan_for
from .fusion.report import render_plan
from .ir.graph import Graph
from .spec.schema import Spec


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


@dataclass
class BuildInputs:
    """What the artefacts are made from."""

    source: str
    spec: Spec
    graph: Graph
    model: Any = None  # the torch module, once built
    options: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def diagram_dot(self) -> str:
        """The block-level diagram with counts (the bundle's diagram.dot and .svg); the
        stage level for a network whose block view has more nodes than are drawn."""
        return to_dot(self.graph, drawable_level(self.graph, "block"), self.counts)

    @cached_property
    def plan(self) -> FusionPlan:
        return plan_for(self.graph, self.options.get("device", "eager"))

    @cached_property
    def counts(self) -> Counts:
        return count(self.graph)


def normalized_yaml(spec: Spec, source: str) -> str:
    """The resolved spec with every default explicit, as YAML that validates again."""
    data = spec.model_dump(mode="json", exclude_none=True)
    # the kind first, as people write it
    data["stages"] = [{"block": s.pop("block"), **s} for s in data["stages"]]
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200)
    return f"# normalized by archdsl {__version__} from {source}\n{body}"


def summary_text(b: BuildInputs) -> str:
    """The short human summary that ``build`` prints and saves."""
    t = b.counts.total
    lines = [
        f"model        {b.spec.name}  (from {b.source})",
        f"parameters   {t.params:,}  ({t.param_bytes / 2**20:.1f} MiB at fp32)",
        f"MACs         {t.macs:,}  ({t.macs / 1e9:.3f} G, conv+linear; FLOPs = 2 x MACs)",
        f"input        {fmt_shape(b.graph.input.shape)}",
        f"output       {fmt_shape(b.graph.output.shape)}",
        f"nodes        {len(b.graph)} IR nodes, "
        f"{sum(s.depth for s in b.spec.stages)} residual blocks in {len(b.spec.stages)} stages",
    ]
    applied = getattr(b.model, "archdsl_applied", None)
    if applied is not None:
        lines.append(f"fused        for {b.plan.device}: {', '.join(applied)}; "
                     f"{b.plan.macs_saved:,} MACs saved per image")
    return "\n".join(lines) + "\n"


def _weights(b: BuildInputs, path: Path) -> None:
    import torch

    torch.save(b.model.state_dict(), path)


def _onnx(b: BuildInputs, path: Path) -> None:
    from .emit.onnx import export_onnx

    export_onnx(b.model, path)


Writer = Callable[[BuildInputs, Path], None]


def _text(render: Callable[[BuildInputs], str]) -> Writer:
    return lambda b, path: path.write_text(render(b), encoding="utf-8")


# (file name, writer, option that enables it or None for always)
ARTIFACTS: list[tuple[str, Writer, str | None]] = [
    ("spec.yaml", _text(lambda b: normalized_yaml(b.spec, b.source)), None),
    ("summary.txt", _text(summary_text), None),
    ("counts.json", _text(lambda b: render_counts(b.counts, "node", "json")), None),
    ("counts.txt", _text(lambda b: render_counts(b.counts, "node", "table")), None),
    ("diagram.dot", _text(lambda b: b.diagram_dot), None),
    ("diagram.svg", lambda b, path: path.write_bytes(render_dot(b.diagram_dot, "svg")), None),
    ("plan.json", _text(lambda b: render_plan(b.plan, "json")), None),
    ("plan.md", _text(lambda b: render_plan(b.plan, "markdown")), None),
    ("model.py", _text(lambda b: to_python(b.graph, b.source)), None),
    ("report.html", _text(lambda b: to_html(b.graph, b.counts, b.plan,
                                            normalized_yaml(b.spec, b.source), b.source)),
     None),
    ("weights.pt", _weights, "save_weights"),
    ("model.onnx", lambda b, path: _onnx(b, path), "export_onnx"),
]


def write_bundle(dest: str | os.PathLike[str], inputs: BuildInputs) -> list[Path]:
    """Write every enabled artefact into ``dest`` atomically; return the final paths."""
    names = []
    with atomic_dir(dest) as tmp:
        for name, writer, option in ARTIFACTS:
            if option is None or inputs.options.get(option):
                writer(inputs, tmp / name)
                names.append(name)
    return [Path(dest) / n for n in names]
