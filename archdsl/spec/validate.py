"""From loaded YAML data to a validated Spec, with every error placed in the file."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..blocks import BLOCKS, STAGE_RULES
from .errors import Location, SpecError, did_you_mean, format_path
from .fields import FieldError
from .loader import Positions
from .schema import Spec

_STAGE_FIELDS = sorted({f for k in BLOCKS.values() for f in k.schema.model_fields})


def _inherit(defaults: dict[str, Any], stage: dict[str, Any], pos: Positions,
             src: tuple[str | int, ...], dst: tuple[str | int, ...]) -> dict[str, Any]:
    """``stage`` over ``defaults``, mappings merged; inherited values keep the
    position of their line in ``defaults``."""
    out = dict(stage)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
            label = f"{format_path(dst + (key,))} (from {format_path(src + (key,))})"
            pos.copy_subtree(src + (key,), dst + (key,), label)
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _inherit(value, out[key], pos, src + (key,), dst + (key,))
    return out


@dataclass(frozen=True)
class Expanded:
    """The stages a stage rule gave (``archdsl validate`` prints them)."""

    rule: str
    stages: tuple[dict[str, Any], ...]

    def text(self) -> str:
        rows = [", ".join(f"{k} {v}" for k, v in st.items()) for st in self.stages]
        return f"{self.rule}: {len(rows)} stages: " + "; ".join(rows)


def expand_rules(data: dict[str, Any], pos: Positions,
                 file: str = "") -> tuple[dict[str, Any], list[Expanded]]:
    """Replace a stage rule's section (``regnet:``) by the ``stages`` it gives; a stage
    so made is placed, in messages, at the rule."""
    data, out = dict(data), []
    for key, schema in STAGE_RULES.items():
        if key not in data:
            continue
        if "stages" in data:
            raise SpecError(f"given with stages, which it gives; allowed: one of {key} and "
                            "stages", location=pos.key((key,)) or Location(file, 1, 1),
                            field=key)
        try:
            rule = schema.model_validate(data.pop(key))
        except ValidationError as exc:
            raise _translate(exc.errors()[0], pos, file, schema, (key,)) from None
        stages = rule.stages()  # type: ignore[attr-defined]
        data["stages"] = stages
        where = pos.value((key,))
        if where is not None:
            pos.values[("stages",)] = where
        for i in range(len(stages)):
            pos.shown[("stages", i)] = f"stages[{i}] (from {key})"
        out.append(Expanded(key, tuple(stages)))
    return data, out


def apply_defaults(data: dict[str, Any], pos: Positions) -> dict[str, Any]:
    """Expand a stage rule, then fold ``defaults`` into every stage; a stage's own fields
    win."""
    data, _ = expand_rules(data, pos)
    defaults = data.pop("defaults", None)
    if defaults is None:
        return data
    if not isinstance(defaults, dict):
        raise SpecError("expected a mapping of stage fields", location=pos.value(("defaults",)),
                        field="defaults")
    for key in defaults:
        if key not in _STAGE_FIELDS:
            raise SpecError(f"unknown stage field; {did_you_mean(key, _STAGE_FIELDS)}"
                            f"allowed: {', '.join(_STAGE_FIELDS)}",
                            location=pos.key(("defaults", key)), field=f"defaults.{key}")
    stages = data.get("stages")
    if isinstance(stages, list):
        data["stages"] = [
            _inherit(defaults, s, pos, ("defaults",), ("stages", i)) if isinstance(s, dict)
            else s for i, s in enumerate(stages)]
    return data


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _is_tag(model: type[BaseModel], part: str) -> bool:
    return any(part in typing.get_args(f.annotation) for f in model.model_fields.values()
               if typing.get_origin(f.annotation) is typing.Literal)


def _resolve(loc: tuple[str | int, ...], root: type[BaseModel] = Spec
             ) -> tuple[tuple[str | int, ...], list[type[BaseModel]]]:
    """Drop pydantic's union tags from ``loc``; return it with the models found there."""
    path: tuple[str | int, ...] = ()
    models: list[type[BaseModel]] = [root]
    leaf = False
    for part in loc:
        if isinstance(part, int):
            path += (part,)
            continue
        if leaf:
            continue  # pydantic's names for the branches of a union of plain types
        owners = [m for m in models if part in m.model_fields]
        if owners:
            models = _models_in(owners[0].model_fields[part].annotation)
            path += (part,)
        elif tagged := [m for m in models if _is_tag(m, part)]:
            models = tagged
        else:
            path += (part,)
            models = []
        leaf = not models and bool(path)
    return path, models


def _discriminator(models: list[type[BaseModel]]) -> tuple[str, list[str]]:
    for name in ("block", "kind"):
        tags = [a for m in models if name in m.model_fields
                for a in typing.get_args(m.model_fields[name].annotation)]
        if tags:
            return name, [str(t) for t in tags]
    return "kind", []


def _translate(err: Any, pos: Positions, file: str, root: type[BaseModel] = Spec,
               prefix: tuple[str, ...] = ()) -> SpecError:
    """pydantic's error ``err`` about ``root`` (a section at ``prefix`` of the file) as a
    placed SpecError."""
    kind = err["type"]
    path, models = _resolve(tuple(err["loc"]), root)
    path = prefix + path
    given = err.get("input")
    where: Location | None
    if kind == "extra_forbidden":
        key = str(path[-1])
        _, parent = _resolve(tuple(err["loc"])[:-1], root)
        allowed = sorted(parent[0].model_fields) if len(parent) == 1 else []
        if len(path) == 1:  # the top level also takes a stage rule's section
            allowed = sorted([*allowed, *STAGE_RULES])
        msg = f"unknown key; {did_you_mean(key, allowed)}allowed: {', '.join(allowed)}"
        where = pos.key(path)
    elif kind == "missing":
        msg = "required field is missing"
        where = pos.value(path[:-1])
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        disc, tags = _discriminator(models)
        path += (disc,)
        if kind == "union_tag_not_found":
            msg = f"required; allowed: {', '.join(tags)}"
        else:
            tag = err["ctx"]["tag"]
            msg = f"unknown kind {tag!r}; {did_you_mean(tag, tags)}allowed: {', '.join(tags)}"
        where = pos.value(path)
    elif kind == "value_error":
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, FieldError):
            path += (cause.field,)
        msg = str(cause) if cause is not None else err["msg"]
        where = pos.value(path)
    else:
        shown = repr(given)
        if len(shown) > 60:
            size = f"{len(given):,} characters" if isinstance(given, str) else "truncated"
            shown = f"{shown[:50]}... ({size})"
        msg = f"{err['msg'][0].lower()}{err['msg'][1:]}, got {shown}"
        where = pos.value(path)
    return SpecError(msg, location=where or Location(file, 1, 1), field=pos.label(path))


def validate(data: dict[str, Any], pos: Positions, file: str) -> Spec:
    """Validate loaded data into a Spec, raising the first problem as a SpecError."""
    data = apply_defaults(data, pos)
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # An error about a container that also holds a more specific error is its echo.
        locs = [tuple(e["loc"]) for e in errors]
        specific = [e for e in errors
                    if not any(o[: len(e["loc"])] == tuple(e["loc"]) and len(o) > len(e["loc"])
                               for o in locs)]
        # A misspelt key also makes its correct spelling "missing": report the typo.
        rank = {"extra_forbidden": 0, "missing": 2}
        first = min(specific, key=lambda e: rank.get(e["type"], 1))
        raise _translate(first, pos, file) from None
