"""A validated spec as the minimal, idiomatic YAML a person would write (torch-free).

Fields equal to their default are left out unless an assumption comment sits on them;
a stage field every stage shares goes to ``defaults:``; depths and widths stay with their
stages. A section is one flow mapping unless one of its fields carries a comment. The
same spec and comments always give the same bytes.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml
from pydantic import BaseModel

from ..spec.errors import one_line
from ..spec.schema import Spec

FieldPath = tuple[str, ...]
SECTIONS = ("input", "stem", "shortcut", "head", "norm", "act", "conv")
# the order stage fields are written in
STAGE_ORDER = ("block", "depth", "width", "stride", "cardinality", "base_width", "inner_width",
               "group_width", "bottleneck_ratio", "stride_on", "expansion", "reduce_first",
               "placement", "se", "eca", "inner_widths")
KEEP_IN_STAGES = ("depth", "width")


def scalar(v: Any) -> str:
    """One value as YAML flow text: mappings and lists in flow style, floats as YAML 1.1
    reads them back (``1.0e-08``, not ``1e-08``)."""
    return yaml.safe_dump(v, default_flow_style=True, sort_keys=False,
                          width=1 << 16).removesuffix("\n...\n").strip()


def _defaults(model: BaseModel) -> dict[str, Any]:
    """A model's field defaults, as model_dump(mode='json') writes values."""
    out = {}
    for name, f in type(model).model_fields.items():
        if not f.is_required():
            value = f.get_default(call_default_factory=True)
            out[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return out


def _minimal(model: BaseModel, path: FieldPath, comments: dict[FieldPath, str],
             always: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``model`` that differ from their defaults, carry a comment or are
    ``always`` kept; a nested mapping (se, eca) likewise, keeping at least its first."""
    data, defaults = model.model_dump(mode="json"), _defaults(model)
    out = {k: v for k, v in data.items()
           if k in always or defaults.get(k, object()) != v or path + (k,) in comments}
    for k, v in out.items():
        nested = getattr(model, k)
        if isinstance(nested, BaseModel):  # commented: the fields its comment is about
            kept = getattr(type(nested), "WRITTEN", tuple(v)) if path + (k,) in comments \
                else (next(iter(v)),)
            out[k] = _minimal(nested, (), {}, kept)
    return out


def _stages(spec: Spec, comments: dict[FieldPath, str]) -> tuple[dict[str, Any],
                                                                list[dict[str, Any]]]:
    """(defaults, stages): each stage without its defaults, shared fields hoisted."""
    kept = [_minimal(s, ("defaults",), comments, ("block", "depth", "width"))
            for s in spec.stages]
    hoisted = {}
    for key in dict.fromkeys(k for s in kept for k in s):
        values = [s.get(key, KeyError) for s in kept]
        if key not in KEEP_IN_STAGES and KeyError not in values and all(
                v == values[0] for v in values):
            hoisted[key] = values[0]
    stages = [_ordered({k: v for k, v in s.items() if k not in hoisted}) for s in kept]
    return _ordered(hoisted), stages


def _ordered(fields: dict[str, Any]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(STAGE_ORDER)}
    return dict(sorted(fields.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _line(key: str, value: Any, comment: str | None, indent: str = "") -> str:
    text = f"{indent}{key}: {scalar(value)}"
    return f"{text}  # {comment}" if comment else text


def _block(key: str, fields: dict[str, Any], path: FieldPath,
           comments: dict[FieldPath, str]) -> list[str]:
    if not any(path + (k,) in comments for k in fields):
        return [_line(key, fields, comments.get(path))]
    return [f"{key}:"] + [_line(k, v, comments.get(path + (k,)), "  ")
                          for k, v in fields.items()]


def to_yaml(spec: Spec, comments: dict[FieldPath, str], header: list[str],
            modeline: str) -> str:
    """``spec`` as minimal YAML under ``modeline`` (one line, however long: editors read
    it whole) and ``header`` (its unprintable characters escaped, so a path of any bytes
    stays in its comment; wrapped between words, so a path stays whole); ``comments``
    by field path (a stage field's is at ``("defaults", field)`` and moves to the
    ``stages`` line where it is not hoisted)."""
    defaults, stages = _stages(spec, comments)
    comments = dict(comments)
    for path in [p for p in comments if p[:1] == ("defaults",)]:
        if path[1] not in defaults:
            text = comments.pop(path)
            comments[("stages",)] = "; ".join(filter(None, (comments.get(("stages",)),
                                                            text)))
    lines = [f"# {modeline}"] + [f"# {line}" for h in header for line in textwrap.wrap(
        one_line(h), 86, break_long_words=False, break_on_hyphens=False)]
    lines.append(_line("name", spec.name, None))
    sections = {name: _minimal(getattr(spec, name), (name,), comments,
                               ("kind",) if name in ("stem", "norm") else ())
                for name in SECTIONS}
    if sections["norm"] == {"kind": "batch"}:
        sections["norm"] = {}
    for name in ("input", "stem"):
        if sections[name]:
            lines += _block(name, sections[name], (name,), comments)
    if defaults:
        lines.append("defaults:")
        lines += [_line(k, v, comments.get(("defaults", k)), "  ") for k, v in defaults.items()]
    stage_comment = comments.get(("stages",))
    lines.append(f"stages:  # {stage_comment}" if stage_comment else "stages:")
    lines += [f"  - {scalar(s)}" for s in stages]
    for name in SECTIONS[2:]:
        if sections[name]:
            lines += _block(name, sections[name], (name,), comments)
    aa = _minimal(spec.antialias, (), {}, ("kind",)) if spec.antialias else None
    if aa is not None or ("antialias",) in comments:
        lines.append(_line("antialias", aa, comments.get(("antialias",))))
    if spec.layout != "torchvision":
        lines.append(_line("layout", spec.layout, None))
    return "\n".join(lines) + "\n"
