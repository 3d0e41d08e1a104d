"""The int8 plan as text: a summary for the terminal and ``report.md`` for the folder."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from .settings import QuantSettings

WORST = 5


def _settings_line(plan: dict[str, Any]) -> str:
    return QuantSettings(**plan["settings"]).line()


def _agreement(a: dict[str, Any]) -> str:
    return (f"cosine {a['cosine_min']:.4f} (lowest of {a['samples']}; mean "
            f"{a['cosine_mean']:.4f}), max relative error {a['max_relative_error']:.4f}, "
            f"top-1 agreement {a['top1_agreement']:.0%}")


def _worst(plan: dict[str, Any], n: int) -> list[dict[str, Any]]:
    rows = [r for r in plan["nodes"] if "sqnr_db" in r]
    return sorted(rows, key=lambda r: r["sqnr_db"])[:n]


def _precisions(plan: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for r in plan["nodes"]:
        if "folded_into" not in r:
            counts[r["precision"]] = counts.get(r["precision"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _modelled(m: dict[str, Any] | None) -> str:
    if m is None:  # a plan.json written before quantize compared with the int8 plan
        return "int8 plan: not compared (this plan.json predates the comparison)"
    if not m["compared"]:
        return f"int8 plan: not compared ({m['why']})"
    if m["agrees"]:
        return "int8 plan (archdsl plan --precision int8): agrees, kernel for kernel"
    return "int8 plan (archdsl plan --precision int8): DIFFERS (engine, plan): " + ", ".join(
        f"{k} ({d['engine']}, {d['plan']})" for k, d in m["differences"].items())


def summary(plan: dict[str, Any]) -> str:
    """A few lines: settings, kernels, agreement, the worst nodes."""
    lines = [f"{plan['model']} int8 on {plan['engine_version']} ({plan['checked_with']})",
             f"  settings: {_settings_line(plan)}",
             f"  calibration: {plan['calibration']['source']}",
             f"  nodes: {_precisions(plan)}",
             "  kernels: " + ", ".join(f"{k} {v}" for k, v in plan["kernel_counts"].items()),
             f"  {_modelled(plan.get('modelled'))}",
             f"  vs float, held-out inputs: {_agreement(plan['agreement'])}",
             "  lowest SQNR: " + ", ".join(f"{r['node']} {r['sqnr_db']:.1f} dB"
                                           for r in _worst(plan, WORST))]
    return "\n".join(lines) + "\n"


def render(plan: dict[str, Any]) -> str:
    """``report.md``: the summary, then every node with its kernel, precision and error."""
    out = [f"# {plan['model']}: int8 on {plan['engine']}", "", "```", summary(plan).rstrip(),
           "```", "", f"Settings chosen because: {plan['settings']['why']}.", "",
           f"Per-node error: {plan['node_error']}.", "",
           "| node | role | kernel | precision | SQNR (dB) | why float / note |",
           "|---|---|---|---|---:|---|"]
    for r in plan["nodes"]:
        why = r.get("why_float") or r.get("note") or (
            f"folded into {r['folded_into']}" if "folded_into" in r else "")
        db = f"{r['sqnr_db']:.1f}" if "sqnr_db" in r else ""
        out.append(f"| {r['node']} | {r['role']}{'/' + r['part'] if r.get('part') else ''} "
                   f"| {r.get('kernel', '')} | {r['precision']} | {db} | {why} |")
    return "\n".join(out) + "\n"


MAX_PLAN_BYTES = 64 * 2**20


def read_plan(path: str | os.PathLike[str], names: set[str], model: str) -> dict[str, Any]:
    """An ``archdsl quantize`` plan.json to show on a report: its ``nodes`` (each an IR
    node of ``names``, a precision, an SQNR where measured) and its summary's fields
    checked, for the model ``model``; a ValueError says in one line what is wrong."""
    try:
        if os.path.getsize(path) > MAX_PLAN_BYTES:
            raise ValueError(f"{path}: over {MAX_PLAN_BYTES >> 20} MiB; a plan.json is far "
                             "smaller")
        with open(path, encoding="utf-8") as f:
            plan = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: not a readable JSON file: {exc}") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("nodes"), list):
        raise ValueError(f"{path}: not an archdsl quantize plan.json (no nodes list)")
    if plan.get("model") != model:
        raise ValueError(f"{path}: the plan of {plan.get('model')!r}, not of {model!r}")
    for i, r in enumerate(plan["nodes"]):
        db = r.get("sqnr_db") if isinstance(r, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("node"), str) or \
                r["node"] not in names or not isinstance(r.get("precision"), str) or \
                ("sqnr_db" in r and (isinstance(db, bool) or not isinstance(db, int | float)
                                     or not math.isfinite(db))):
            raise ValueError(f"{path}: nodes[{i}]: expected an IR node of {model} with its "
                             "precision (a string) and sqnr_db (a number), if any")
    try:
        summary(plan)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: not an archdsl quantize plan.json: its summary's "
                         f"{exc.__class__.__name__}: {exc}") from None
    return plan
