"""Loading a spec file: parse, resolve, validate, lower; every problem a SpecError."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .ir.graph import Graph
from .ir.ops import ShapeError
from .lower import lower
from .spec.errors import Location, SpecError
from .spec.loader import load_document
from .spec.schema import Input, Spec
from .spec.validate import apply_defaults, expand_rules, validate

if TYPE_CHECKING:
    from .design import Solved
    from .spec.validate import Expanded

__all__ = ["load_solved", "load_spec", "load_spec_with_graph", "respec"]


def load_solved(path: str | os.PathLike[str],
                input_shape: tuple[int, int, int] | None = None, *,
                text: str | None = None, root: Path | None = None, shown: str | None = None,
                _chain: tuple[Path, ...] = ()) -> tuple[Spec, Graph, list[Solved | Expanded]]:
    """Load, solve ``match:`` fields, validate and lower a spec file, optionally at
    another input shape ``(C, H, W)``; every problem is a SpecError. ``text`` stands in
    for the file's contents, ``root`` confines every file read to one folder, and
    ``shown`` is the name errors give the file (see ``load_document``). ``_chain``: the
    files whose ``match:`` fields are being solved, outermost first."""
    from .design import solve_matches

    shown = str(path) if shown is None else shown
    data, pos = load_document(path, shown=shown, text=text, root=root)
    chain = _chain + (Path(path).resolve(),)
    data, expanded = expand_rules(data, pos, shown)
    data, solved = solve_matches(
        apply_defaults(data, pos), pos, shown, Path(path).parent,
        lambda other: load_solved(other, root=root, _chain=chain)[1], chain)
    spec = validate(data, pos, shown)
    if input_shape is not None:
        c, h, w = input_shape
        spec = spec.model_copy(update={"input": Input(channels=c, size=(h, w))})
    try:
        graph = lower(spec)
    except ShapeError as exc:
        path = tuple(exc.field.split("."))
        where = pos.value(path) or Location(shown, 1, 1)
        what = "the input is too small for this network: " if exc.field == "input.size" else ""
        raise SpecError(f"{what}{exc}", location=where, field=exc.field) from None
    return spec, graph, [*expanded, *solved]


def load_spec_with_graph(path: str | os.PathLike[str],
                         input_shape: tuple[int, int, int] | None = None) -> tuple[Spec, Graph]:
    """Load, validate and lower a spec file (see ``load_solved``)."""
    spec, graph, _ = load_solved(path, input_shape)
    return spec, graph


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Load and validate a spec file (``extends:`` resolved, defaults applied)."""
    return load_spec_with_graph(path)[0]


def respec(source: Spec | str | os.PathLike[str], **fields: object) -> Spec:
    """A spec (or a spec file's) with top-level ``fields`` replaced, validated again (a
    section as a dict of the fields it changes: ``head={"classes": 0}``)."""
    spec = source if isinstance(source, Spec) else load_spec(source)
    data = spec.model_dump()
    for key, value in fields.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return Spec.model_validate(data)
