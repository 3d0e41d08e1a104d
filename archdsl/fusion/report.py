"""Fusion plans as text, Markdown and JSON."""

from __future__ import annotations

import json

from .planner import FusionPlan

FORMATS = ("text", "json", "markdown")


def _mib(b: int) -> str:
    return f"{b / 2**20:.1f} MiB"


def provenance_line(p: FusionPlan) -> str:
    """One line: the engine that checked this plan, or what it is modelled from."""
    if p.verified_with:
        v = p.verified_with
        settings = ", ".join(f"{k}={val}" for k, val in v["settings"].items())
        return f"Checked against {v['engine']} {v['version']} ({settings})."
    return f"Modelled, not checked against an engine: {p.modelled_from}."


def hardware_line(p: FusionPlan) -> str:
    return (f"Runs on: {', '.join(p.hardware)}." if p.hardware else
            "Runs on: nothing archdsl can drive here (plan only).")


def _summary(p: FusionPlan) -> list[str]:
    counts = ", ".join(f"{k} {v}" for k, v in p.kernel_counts.items())
    return [
        f"kernels      {p.kernels_before} → {p.kernels_after}  ({counts})",
        f"activations  {_mib(p.activation_bytes_saved)} per image no longer written and read "
        "back (fp32)",
        f"MACs saved   {p.macs_saved:,} per image (conv+linear)",
    ]


def to_text(p: FusionPlan) -> str:
    prof = p.profile
    lines = [f"{p.model} on {p.device}: {prof.description}", f"models: {prof.models}",
             provenance_line(p), hardware_line(p), "",
             *_summary(p), "", f"groups ({len(p.groups)})"]
    for g in p.groups:
        extra = f"  [saves {g.macs_saved:,} MACs]" if g.macs_saved else ""
        rules = "+".join(g.rules) if len(g.rules) > 1 else g.rule
        lines.append(f"  {rules:26} {g.kernel:28} {', '.join(g.nodes)}{extra}")
    lines += ["", f"refused ({len(p.refused)})"]
    lines += [f"  {r.rule:26} {', '.join(r.nodes)}\n  {'':26} because {r.reason}"
              for r in p.refused]
    return "\n".join(lines) + "\n"


def to_markdown(p: FusionPlan) -> str:
    prof = p.profile
    lines = [f"# Fusion plan: {p.model} on `{p.device}`", "", prof.description + ".",
             f"Models: {prof.models}.", "", provenance_line(p), hardware_line(p), "",
             *[f"- {s}" for s in _summary(p)], "",
             "## Groups", "", "| rule | kernel | nodes | MACs saved |", "|---|---|---|---|"]
    lines += [f"| {'+'.join(g.rules or (g.rule,))} | {g.kernel} | {', '.join(g.nodes)} | "
              f"{g.macs_saved:,} |" for g in p.groups]
    lines += ["", "## Refused", "", "| rule | nodes | reason |", "|---|---|---|"]
    lines += [f"| {r.rule} | {', '.join(r.nodes)} | {r.reason} |" for r in p.refused]
    lines += ["", "## Rules this device applies", ""]
    lines += [f"- `{u.id}`: {u.source}" for u in prof.rules]
    return "\n".join(lines) + "\n"


def render_plan(p: FusionPlan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(p.to_json(), indent=1) + "\n"
    if fmt == "markdown":
        return to_markdown(p)
    return to_text(p)
