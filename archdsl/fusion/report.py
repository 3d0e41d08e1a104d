"""Fusion plans as text, Markdown and JSON."""

from __future__ import annotations

import json
from collections import Counter

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
        f"back ({'int8' if p.int8 else 'fp32'})",
        f"MACs saved   {p.macs_saved:,} per image (conv+linear)",
    ]


def precision_lines(p: FusionPlan) -> list[str]:
    """An int8 plan's quantizer, what it warns of, and its kernels by precision."""
    if p.int8 is None or p.profile.int8 is None:
        return []
    by = Counter(k.precision for k in p.int8.kernels)
    conv = Counter(c for c, _, _ in p.int8.conversions)
    return [f"int8: {p.profile.int8.quantizer}",
            "precision    " + ", ".join(f"{v} {k}" for k, v in by.items()) + " (IR kernels)"
            + "; conversions: " + (", ".join(f"{k} {v}" for k, v in conv.items()) or "none"),
            *[f"note: {n}" for n in p.notes]]


def _kernel_rows(p: FusionPlan) -> list[tuple[str, str, str, str]]:
    """(precision, engine kernels, IR nodes, source) of the kernels of an int8 plan that
    are not int8 throughout, alike ones together, then the conversions by kernel."""
    if p.int8 is None:
        return []
    alike: dict[tuple[str, str, str], list[str]] = {}
    for k in p.int8.kernels:
        if k.precision != "int8":
            key = (k.precision, " ".join(k.kernels) or "(none)", k.source)
            alike.setdefault(key, []).append(", ".join(k.nodes))
    conv: dict[str, list[str]] = {}
    for c, t, r in p.int8.conversions:
        conv.setdefault(c, []).append(f"{t} -> {r}")
    return ([(prec, f"{kern} ×{len(nodes)}", "; ".join(nodes), src)
             for (prec, kern, src), nodes in alike.items()]
            + [("conversion", f"{c} ×{len(e)}", "; ".join(e), "") for c, e in conv.items()])


def to_text(p: FusionPlan) -> str:
    prof = p.profile
    lines = [f"{p.model} on {p.device}: {prof.description}", f"models: {prof.models}",
             provenance_line(p), hardware_line(p), *precision_lines(p), "",
             *_summary(p), "", f"groups ({len(p.groups)})"]
    for g in p.groups:
        extra = f"  [saves {g.macs_saved:,} MACs]" if g.macs_saved else ""
        rules = "+".join(g.rules) if len(g.rules) > 1 else g.rule
        lines.append(f"  {rules:26} {g.kernel:28} {', '.join(g.nodes)}{extra}")
    lines += ["", f"refused ({len(p.refused)})"]
    lines += [f"  {r.rule:26} {', '.join(r.nodes)}\n  {'':26} because {r.reason}"
              for r in p.refused]
    if rows := _kernel_rows(p):
        lines += ["", f"not int8 throughout, and conversions ({len(rows)})"]
        lines += [f"  {prec:10} {kern:28} {nodes}" + (f"\n  {'':10} {src}" if src else "")
                  for prec, kern, nodes, src in rows]
    return "\n".join(lines) + "\n"


def to_markdown(p: FusionPlan) -> str:
    prof = p.profile
    lines = [f"# Fusion plan: {p.model} on `{p.device}`", "", prof.description + ".",
             f"Models: {prof.models}.", "", provenance_line(p), hardware_line(p),
             *precision_lines(p), "",
             *[f"- {s}" for s in _summary(p)], "",
             "## Groups", "", "| rule | kernel | nodes | MACs saved |", "|---|---|---|---|"]
    lines += [f"| {'+'.join(g.rules or (g.rule,))} | {g.kernel} | {', '.join(g.nodes)} | "
              f"{g.macs_saved:,} |" for g in p.groups]
    lines += ["", "## Refused", "", "| rule | nodes | reason |", "|---|---|---|"]
    lines += [f"| {r.rule} | {', '.join(r.nodes)} | {r.reason} |" for r in p.refused]
    if rows := _kernel_rows(p):
        lines += ["", "## Not int8 throughout, and conversions", "",
                  "| precision | kernels | nodes | source |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["", "## Rules this device applies", ""]
    uses = prof.rules if prof.int8 is None or p.int8 is None else prof.int8.uses(prof.rules)
    lines += [f"- `{u.id}`: {u.source}" for u in uses]
    return "\n".join(lines) + "\n"


def render_plan(p: FusionPlan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(p.to_json(), indent=1) + "\n"
    if fmt == "markdown":
        return to_markdown(p)
    return to_text(p)
