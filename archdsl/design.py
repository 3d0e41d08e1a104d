"""Design-space tools: complexity matching (a field solved so the model meets a target,
as the ResNeXt paper chooses C and d), block-level matching (its Table 2), and sweeps.
All of it counts with the torch-free counter."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .analysis.counts import count
from .ir.graph import Graph
from .lower import lower
from .spec.errors import SpecError
from .spec.loader import Positions
from .spec.schema import Spec
from .spec.validate import apply_defaults, validate

SOLVABLE = ("base_width", "cardinality", "depth")
BY = ("params", "macs")
SEARCH_MAX = {"base_width": 4096, "cardinality": 1024, "depth": 1000}


@dataclass(frozen=True)
class Solved:
    """A field the solver filled: its value, what it achieves, and the target."""

    field: str
    value: int
    by: str
    achieved: int
    target: int

    @property
    def ratio(self) -> float:
        return self.achieved / self.target

    def text(self) -> str:
        return (f"solved {self.field} = {self.value}: {self.by} {self.achieved:,} = "
                f"{self.ratio:.4f} x target {self.target:,}")


def metric(graph: Graph, by: str) -> int:
    t = count(graph).total
    return t.params if by == "params" else t.macs


def _target(spec: dict[str, Any], by: str, base: Path, where: Any, field: str,
            graph_of: Callable[[Path], Graph], chain: tuple[Path, ...]) -> int:
    goal = spec["match"]
    if isinstance(goal, (int, float)) and not isinstance(goal, bool) and goal > 0:
        return int(goal)
    if isinstance(goal, str):
        other = (base / goal).resolve()
        if other in chain:  # as extends: a file whose matches are being solved
            loop = " -> ".join(p.name for p in chain + (other,))
            raise SpecError(f"match cycle: {loop}", location=where, field=field)
        try:
            return metric(graph_of(base / goal), by)
        except SpecError as err:
            if err.location is not None:  # a problem inside the other spec: shown there
                raise
            # the other spec can't be read at all: say so at this match
            raise SpecError(f"match: cannot read '{goal}': {err.message}", location=where,
                            field=field) from None
    raise SpecError("match: expected another spec's path or a positive number",
                    location=where, field=field)


def solve_matches(data: dict[str, Any], pos: Positions, file: str, base: Path,
                  graph_of: Callable[[Path], Graph], chain: tuple[Path, ...] = ()
                  ) -> tuple[dict[str, Any], list[Solved]]:
    """Replace every ``{match: …, by: …}`` stage field by the integer that meets it.
    Stages that inherit one match from ``defaults`` share one solved value. A match
    against another spec file gets that spec's graph from ``graph_of`` (the loader's,
    so the other spec may hold matches of its own); ``chain`` holds the files whose
    matches are being solved (resolved paths, this one last), and a match naming one of
    them is a cycle."""
    stages = data.get("stages")
    if not isinstance(stages, list):
        return data, []
    groups: dict[tuple[str, str], list[int]] = {}
    for i, st in enumerate(stages):
        if not isinstance(st, dict):
            continue
        for key, value in st.items():
            if isinstance(value, dict) and "match" in value:
                where = pos.value(("stages", i, key))
                label = pos.label(("stages", i, key))
                if key not in SOLVABLE:
                    raise SpecError(f"only {', '.join(SOLVABLE)} can be solved by match",
                                    location=where, field=label)
                extra = set(value) - {"match", "by", "tolerance"}
                if extra or value.get("by", "params") not in BY:
                    raise SpecError("a match is {match: SPEC or number, by: params|macs, "
                                    "tolerance: fraction}", location=where, field=label)
                groups.setdefault((key, json.dumps(value, sort_keys=True)), []).append(i)
    solved = []
    for (key, raw), idx in groups.items():
        goal = json.loads(raw)
        by = goal.get("by", "params")
        where = pos.value(("stages", idx[0], key))
        label = pos.label(("stages", idx[0], key)).split(" (from ")[0]
        field = label if len(idx) == 1 else f"stages[{','.join(map(str, idx))}].{key}"
        target = _target(goal, by, base, where, field, graph_of, chain)

        def trial(v: int, key: str = key, idx: list[int] = idx, by: str = by) -> int | None:
            d = copy.deepcopy(data)
            for i in idx:
                d["stages"][i][key] = v
            try:
                return metric(lower(validate(d, pos, file)), by)
            except (SpecError, ValueError):
                return None

        value, achieved = _closest(trial, target, SEARCH_MAX[key])
        tol = goal.get("tolerance", 0.05)
        if achieved is None or abs(achieved / target - 1) > tol:
            near = f"{key} {value} gives {achieved:,} ({achieved / target:.3f}x)" \
                if achieved else "no value builds"
            raise SpecError(f"cannot meet {by} {target:,} within {tol:.0%}; closest "
                            f"achievable: {near}", location=where, field=field)
        for i in idx:
            data["stages"][i][key] = value
        solved.append(Solved(field, value, by, achieved, target))
    return data, solved


def _closest(trial: Callable[[int], int | None], target: int,
             hi: int) -> tuple[int, int | None]:
    """The integer in [1, hi] whose (non-decreasing) metric is closest to ``target``."""
    lo_v, hi_v = 1, hi
    while lo_v < hi_v:  # first value reaching the target
        mid = (lo_v + hi_v) // 2
        m = trial(mid)
        if m is not None and m >= target:
            hi_v = mid
        else:
            lo_v = mid + 1
    best: tuple[int, int | None] = (lo_v, None)
    for v in (lo_v - 1, lo_v, lo_v + 1):
        if 1 <= v <= hi:
            m = trial(v)
            if m is not None and (best[1] is None or abs(m - target) < abs(best[1] - target)):
                best = (v, m)
    return best


# --- block-level matching: ResNeXt Table 2 --------------------------------------------

@dataclass(frozen=True)
class BlockMatch:
    cardinality: int
    width: int  # d, the width of each path
    params: int
    target: int


def block_params(graph: Graph, block: str, with_bn: bool) -> int:
    c = count(graph)
    ops = ("conv2d", "batch_norm") if with_bn else ("conv2d",)
    return sum(r.params for r in c.nodes if graph[r.name].block == block
               and graph[r.name].op in ops)


def match_block(spec: Spec, block: str, cardinalities: list[int], *,
                with_bn: bool = False, by_width: str = "base_width") -> list[BlockMatch]:
    """For each C, the bottleneck width d whose block (``layer1.1`` for ResNet-50's conv2
    stage) has the parameters closest to the same block of ``spec``."""
    target = block_params(lower(spec), block, with_bn)
    out = []
    for card in cardinalities:
        def trial(d: int, card: int = card) -> int | None:
            stages = tuple(s.model_copy(update={"cardinality": card, by_width: d})
                           for s in spec.stages)
            try:
                variant = Spec.model_validate(
                    {**spec.model_dump(), "stages": [s.model_dump() for s in stages]})
                return block_params(lower(variant), block, with_bn)
            except (ValueError, SpecError):
                return None

        d, m = _closest(trial, target, 1024)
        out.append(BlockMatch(card, d, m or 0, target))
    return out


# --- sweeps -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    values: dict[str, Any]
    spec: Spec | None
    params: int = 0
    macs: int = 0
    activations: int = 0
    error: str = ""


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``['cardinality=1,2,4', 'se.ratio=8,16']`` as {key: [values]} (ints where they
    parse, else strings)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,… such as cardinality=1,2,4")
        grid[key.strip()] = [int(v) if v.strip().lstrip("-").isdigit() else v.strip()
                             for v in values.split(",")]
    return grid


def _set(target: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        if not isinstance(target.get(k), dict):
            target[k] = {}
        target = target[k]
    target[keys[-1]] = value


TOP = ("input", "stem", "shortcut", "head", "layout", "name")


def sweep(data: dict[str, Any], pos: Positions, file: str,
          grid: dict[str, list[Any]]) -> Iterator[Point]:
    """Every combination of the grid applied to a loaded spec: top-level keys
    (``input.size``) as given, ``stages[i].x`` to one stage, anything else to every stage."""
    base = apply_defaults(data, pos)
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        d = copy.deepcopy(base)
        for key, value in zip(keys, combo, strict=True):
            if key.split(".")[0] in TOP:
                _set(d, key, value)
            elif key.startswith("stages["):
                i = int(key[7:key.index("]")])
                _set(d["stages"][i], key[key.index("]") + 2:], value)
            else:
                for st in d["stages"]:
                    _set(st, key, value)
        values = dict(zip(keys, combo, strict=True))
        try:
            spec = validate(d, pos, file)
            t = count(lower(spec)).total
            yield Point(values, spec, t.params, t.macs, t.activations)
        except (SpecError, ValueError) as exc:
            msg = exc.message if isinstance(exc, SpecError) else str(exc)
            field = f"{exc.field}: " if isinstance(exc, SpecError) and exc.field else ""
            yield Point(values, None, error=f"{field}{msg}")


def point_label(values: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items())
