"""Renderings of counts: text table (Netscope's analysis view), JSON, CSV, Markdown,
and the side-by-side diff of two models."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from . import counters
from .counts import BUILT_IN, Counts, Row, Versus

FORMATS = ("table", "json", "csv", "markdown")
UNITS = {
    "params": "parameters (count)",
    "macs": "multiply-accumulates per image",
    "flops": "floating-point operations per image",
    "activations": "output elements written per image",
    "param_bytes": "bytes at fp32",
    "activation_bytes": "bytes at fp32",
}


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _row_dict(r: Row, with_op: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"name": r.name}
    if with_op:
        d["op"] = r.op
    d.update(shape=list(r.shape), params=r.params, macs=r.macs, flops=r.flops,
             activations=r.activations)
    return d


def to_json(c: Counts) -> dict[str, Any]:
    """Totals at the top, then the stage, block and node lists."""
    t = c.total
    tool = _tool(c.convention)
    return {
        "model": c.model, "convention": c.convention,
        **({"reproduces": tool.reproduces} if tool else {}), "input": list(c.input),
        "params": t.params, "macs": t.macs, "flops": t.flops, "activations": t.activations,
        "param_bytes": t.param_bytes, "activation_bytes": t.activation_bytes,
        "units": UNITS,
        "stages": [_row_dict(r, False) for r in c.stages],
        "blocks": [_row_dict(r, False) for r in c.blocks],
        "nodes": [_row_dict(r, True) for r in c.nodes],
    }


def dumps(doc: dict[str, Any]) -> str:
    """JSON with one key per line and each list item on one line: readable, diffable,
    and fast (the C encoder does every item)."""
    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n  ".join(json.dumps(v) for v in value)
            lines.append(f" {json.dumps(key)}: [\n  {items}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}" if whole else "0.00"


def _table_rows(c: Counts, level: str) -> tuple[list[str], list[list[str]]]:
    head = ["name", "op", "output", "params", "MACs", "MACs %", "cum. %"]
    total = c.total.macs
    rows, cum = [], 0
    for r in c.rows(level):
        cum += r.macs
        rows.append([r.name, r.op, _shape(r.shape), f"{r.params:,}", f"{r.macs:,}",
                     _pct(r.macs, total), _pct(cum, total)])
    rows.append(["total", "", "", f"{c.total.params:,}", f"{total:,}", "100.00", ""])
    return head, rows


def _align(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    text = ("name", "op", "output", "stage", "block", "node", "where", "A counts", "B counts")
    numeric = {i for i, h in enumerate(head) if h not in text}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *map(line, rows[:-1]), rule, line(rows[-1])]) + "\n"


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def header(c: Counts) -> str:
    t = c.total
    flops_note = "FLOPs = 2 x conv/linear MACs + elementwise ops (docs/counting.md)" \
        if c.convention == "all" else "FLOPs = 2 x MACs"
    return (f"{c.model}  input {_shape(c.input)}  convention {_label(c.convention)}\n"
            f"params {t.params:,}  MACs {t.macs:,} ({t.macs / 1e9:.3f} G)  "
            f"FLOPs {t.flops:,} ({flops_note})  activations {t.activations:,} elements\n")


def render(c: Counts, level: str, fmt: str) -> str:
    """Counts at one level (node, block or stage) in one format."""
    if fmt == "json":
        return dumps(to_json(c))
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "op", "shape", "params", "macs", "flops", "activations"])
        for r in (*c.rows(level), c.total):
            w.writerow([r.name, r.op, _shape(r.shape), r.params, r.macs, r.flops,
                        r.activations])
        return buf.getvalue()
    head, rows = _table_rows(c, level)
    if fmt == "markdown":
        return _markdown(head, rows)
    return header(c) + "\n" + _align(head, rows)


def _delta(a: int, b: int) -> tuple[str, str]:
    rel = f"{100 * (b - a) / a:+.1f}%" if a else ("n/a" if b else "0.0%")
    return f"{b - a:+,}", rel


def diff_rows(a: Counts, b: Counts) -> list[dict[str, Any]]:
    """Per-stage and total parameters and MACs of two models, with deltas (B − A)."""
    sa = {r.name: r for r in a.stages}
    sb = {r.name: r for r in b.stages}
    names = list(sa) + [n for n in sb if n not in sa]
    zero = Row("", "", (), 0, 0, 0, 0)
    out = []
    for name in [*names, "total"]:
        ra = a.total if name == "total" else sa.get(name, zero)
        rb = b.total if name == "total" else sb.get(name, zero)
        out.append({"stage": name, "params_a": ra.params, "params_b": rb.params,
                    "macs_a": ra.macs, "macs_b": rb.macs})
    return out


def render_diff(a: Counts, b: Counts, fmt: str) -> str:
    rows = diff_rows(a, b)
    if fmt == "json":
        return json.dumps({"a": a.model, "b": b.model, "convention": a.convention,
                           "stages": rows}, indent=1) + "\n"
    head = ["stage", f"params {a.model}", f"params {b.model}", "Δ params", "Δ %",
            f"MACs {a.model}", f"MACs {b.model}", "Δ MACs", "Δ %"]
    cells = [[r["stage"], f"{r['params_a']:,}", f"{r['params_b']:,}",
              *_delta(r["params_a"], r["params_b"]), f"{r['macs_a']:,}", f"{r['macs_b']:,}",
              *_delta(r["macs_a"], r["macs_b"])] for r in rows]
    if fmt == "markdown":
        return _markdown(head, cells)
    return f"{a.model} (A) vs {b.model} (B), convention {a.convention}\n\n" + \
        _align(head, cells)


def _tool(convention: str) -> counters.Tool | None:
    return None if convention in BUILT_IN else counters.load(convention)


def _label(convention: str) -> str:
    """A convention with the tool release it reproduces: ``thop (thop 0.1.1.post…)``."""
    tool = _tool(convention)
    return f"{convention} ({tool.label})" if tool else convention


def _pct_delta(a: int, b: int) -> str:
    if a:
        return f"{100 * (b - a) / a:+.2f}%"
    return "n/a" if b else ""


def versus_json(v: Versus) -> dict[str, Any]:
    """Both totals, their difference, and the two itemisations (``by_op``, and
    ``by_node``, ``by_block`` or ``by_stage``)."""
    def side(c: Counts) -> dict[str, Any]:
        tool = _tool(c.convention)
        return {"convention": c.convention, "macs": c.total.macs,
                **({"reproduces": tool.reproduces} if tool else {})}

    level = []
    for i in v.by_level:
        d: dict[str, Any] = {"name": i.name}
        if v.level == "node":
            d["op"] = i.op
        d.update(a=i.a, b=i.b, delta=i.delta)
        if v.level == "node":
            d.update(a_counts=i.a_formula, b_counts=i.b_formula)
        level.append(d)
    return {
        "model": v.model, "input": list(v.input), "units": UNITS["macs"],
        "a": side(v.a), "b": side(v.b), "delta": v.b.total.macs - v.a.total.macs,
        "by_op": [{"op": i.name, "where": i.where, "a": i.a, "b": i.b, "delta": i.delta,
                   "a_counts": i.a_formula, "b_counts": i.b_formula} for i in v.by_op],
        f"by_{v.level}": level,
    }


def render_versus(v: Versus, fmt: str) -> str:
    """The difference of two conventions: by op kind (with each side's formula), then by
    node (with its op and formulas), block or stage. Each table's Δ column sums to the
    difference of the totals."""
    if fmt == "json":
        return dumps(versus_json(v))
    a, b = v.a.convention, v.b.convention
    ta, tb = v.a.total.macs, v.b.total.macs
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["table", "name", "op", "where", f"A {a}", f"B {b}", "delta",
                    "A counts", "B counts"])
        for i in v.by_op:
            w.writerow(["op", i.name, i.name, i.where, i.a, i.b, i.delta, i.a_formula,
                        i.b_formula])
        for i in v.by_level:
            w.writerow([v.level, i.name, i.op, "", i.a, i.b, i.delta, i.a_formula,
                        i.b_formula])
        w.writerow(["total", "total", "", "", ta, tb, tb - ta, "", ""])
        return buf.getvalue()
    node = v.level == "node"
    op_head = ["op", "where", f"A {a}", f"B {b}", "Δ (B − A)", "A counts", "B counts"]
    op_rows = [[i.name, i.where, f"{i.a:,}", f"{i.b:,}", f"{i.delta:+,}", i.a_formula,
                i.b_formula] for i in v.by_op]
    lvl_head = [v.level, *(["op"] if node else []), f"A {a}", f"B {b}", "Δ (B − A)", "Δ %",
                *(["A counts", "B counts"] if node else [])]
    lvl_rows = [[i.name, *([i.op] if node else []), f"{i.a:,}", f"{i.b:,}", f"{i.delta:+,}",
                 _pct_delta(i.a, i.b), *([i.a_formula, i.b_formula] if node else [])]
                for i in v.by_level]
    total = [f"{ta:,}", f"{tb:,}", f"{tb - ta:+,}"]
    op_rows.append(["total", "", *total, "", ""])
    lvl_rows.append(["total", *([""] if node else []), *total, _pct_delta(ta, tb),
                     *(["", ""] if node else [])])
    if fmt == "markdown":
        return _markdown(op_head, op_rows) + "\n" + _markdown(lvl_head, lvl_rows)
    title = (f"{v.model}  input {_shape(v.input)}  MACs per image\n"
             f"A  {_label(a)}: {ta:,}\nB  {_label(b)}: {tb:,}\n"
             f"B − A: {tb - ta:+,} ({_pct_delta(ta, tb)})\n")
    return f"{title}\n{_align(op_head, op_rows)}\n{_align(lvl_head, lvl_rows)}"
