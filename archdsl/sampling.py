"""Design-space sampling, the method of "Designing Network Design Spaces" (Radosavovic et
al., 2020): draw N models from a space given as data (a YAML file: a base spec and a
distribution for each free field), optionally within a MACs band, and count each with
the torch-free counter. Draws are made in order from one seed, so a space, N, the seed
and the band always give the same samples, however many processes count them.
"""

from __future__ import annotations

import copy
import math
import os
import random
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .analysis.counts import pycls_activations, total
from .lower import lower
from .spec.errors import Location, SpecError
from .spec.loader import Positions, load_document, read_text
from .spec.validate import validate
from .spec.yamlread import parse_yaml

DISTRIBUTIONS = ("int", "uniform", "log", "choice")
_PER_STAGE = re.compile(r"^stages\[\*\]\.(\w+)$")
_KEY = re.compile(r"^(stages\[\*\]\.)?[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
MAX_SAMPLES = 1_000_000


@dataclass(frozen=True)
class Draw:
    """One field's distribution: ``int`` (uniform integers in [lo, hi]), ``uniform`` or
    ``log`` (uniform, or log-uniform, reals in [lo, hi], rounded to a multiple of ``q``
    where given), ``choice`` (one of ``values``), or a fixed value."""

    kind: str
    lo: float = 0.0
    hi: float = 0.0
    q: float | None = None
    values: tuple[Any, ...] = ()

    def __call__(self, rng: random.Random) -> Any:
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "choice":
            return rng.choice(self.values)
        if self.kind == "int":
            return rng.randint(int(self.lo), int(self.hi))
        v = rng.uniform(self.lo, self.hi) if self.kind == "uniform" else \
            math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))
        if self.q is None:
            return round(v, 6)
        v = max(self.q, round(v / self.q) * self.q)
        return int(v) if float(self.q).is_integer() else round(v, 6)


@dataclass(frozen=True)
class Space:
    """A design space: the base spec's data, the number of drawn stages (where stage
    fields are drawn), and each free field's distribution, by dotted path."""

    name: str
    base: dict[str, Any]
    base_pos: Positions
    base_file: str
    stages: int
    draws: dict[str, Draw]

    def spec_data(self, values: dict[str, Any]) -> dict[str, Any]:
        """The base spec's data with ``values`` (one draw of every field) set."""
        d = copy.deepcopy(self.base)
        if self.stages:  # the stages are drawn: the base's own, or its rule's, go
            for key in ("stages", "regnet"):
                d.pop(key, None)
            d["stages"] = [{} for _ in range(self.stages)]
        for path, value in values.items():
            m = re.match(r"^stages\[(\d+)\]\.(.+)$", path)
            target, key = (d["stages"][int(m.group(1))], m.group(2)) if m else (d, path)
            *parents, leaf = key.split(".")
            for p in parents:
                target = target.setdefault(p, {})
                if not isinstance(target, dict):
                    raise SpecError(f"{path}: {p} is not a mapping in the base spec")
            target[leaf] = value
        return d

    def draw(self, rng: random.Random) -> dict[str, Any]:
        """One point: each field's value, a stage field once a stage (``stages[i].f``)."""
        out: dict[str, Any] = {}
        for path, dist in self.draws.items():
            m = _PER_STAGE.match(path)
            if m:
                for i in range(self.stages):
                    out[f"stages[{i}].{m.group(1)}"] = dist(rng)
            else:
                out[path] = dist(rng)
        return out


@dataclass(frozen=True)
class Sample:
    """One accepted point: its values, parameters, MACs, archdsl's activations (every
    op's output elements) and pycls's (the outputs of convs, pools and linears)."""

    index: int
    values: dict[str, Any]
    params: int
    macs: int
    activations: int
    pycls_activations: int


def _number(v: Any, where: Location | None, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError(f"expected a number, got {v!r}", location=where, field=field)
    return float(v)


def _dist(spec: Any, pos: Positions, path: tuple[str, ...]) -> Draw:
    field = ".".join(path)
    where = pos.value(path)
    if not isinstance(spec, dict):
        if isinstance(spec, (list, type(None))):
            raise SpecError("expected a fixed value or one of {int|uniform|log: [lo, hi], "
                            "q: step} or {choice: [values]}", location=where, field=field)
        return Draw("fixed", values=(spec,))
    kinds = [k for k in spec if k in DISTRIBUTIONS]
    extra = set(spec) - {*DISTRIBUTIONS, "q"}
    if len(kinds) != 1 or extra or ("q" in spec and kinds[0] in ("int", "choice")):
        raise SpecError(f"a distribution is one of {', '.join(DISTRIBUTIONS)} (q with "
                        "uniform or log); got " + ", ".join(map(str, spec)),
                        location=where, field=field)
    kind, arg = kinds[0], spec[kinds[0]]
    if kind == "choice":
        if not isinstance(arg, list) or not arg or len(arg) > 10_000:
            raise SpecError("expected a list of 1 to 10,000 values",
                            location=pos.value(path + (kind,)), field=f"{field}.choice")
        return Draw("choice", values=tuple(arg))
    if not isinstance(arg, list) or len(arg) != 2:
        raise SpecError("expected [lo, hi]", location=pos.value(path + (kind,)),
                        field=f"{field}.{kind}")
    lo, hi = (_number(v, pos.value(path + (kind,)), f"{field}.{kind}") for v in arg)
    if not lo <= hi or (kind == "log" and lo <= 0) or abs(hi) > 1e9:
        raise SpecError(f"[{arg[0]}, {arg[1]}] is not a range; allowed: lo ≤ hi"
                        + (", lo > 0" if kind == "log" else "") + ", |hi| ≤ 1e9",
                        location=pos.value(path + (kind,)), field=f"{field}.{kind}")
    if kind == "int" and not (lo.is_integer() and hi.is_integer()):
        raise SpecError("expected integer bounds", location=pos.value(path + (kind,)),
                        field=f"{field}.int")
    q = spec.get("q")
    if q is not None and _number(q, pos.value(path + ("q",)), f"{field}.q") <= 0:
        raise SpecError("expected a positive step", location=pos.value(path + ("q",)),
                        field=f"{field}.q")
    return Draw(kind, lo, hi, None if q is None else float(q))


def load_space(path: str | os.PathLike[str]) -> Space:
    """Read a space file (docs/design-space.md); every problem is a located SpecError."""
    shown = str(path)
    data, pos = parse_yaml(read_text(Path(path), shown), shown)
    top = Location(shown, 1, 1)
    unknown = set(data) - {"name", "base", "stages", "draw"}
    if unknown:
        key = sorted(unknown)[0]
        raise SpecError("unknown key; allowed: name, base, stages, draw",
                        location=pos.key((key,)), field=key)
    base = data.get("base")
    if not isinstance(base, str) or not base:
        raise SpecError("required: the base spec's path, relative to this file",
                        location=pos.value(("base",)) or top, field="base")
    stages = data.get("stages", 0)
    if isinstance(stages, bool) or not isinstance(stages, int) or not 0 <= stages <= 64:
        raise SpecError("expected the number of drawn stages, 1 to 64 (0: the base's)",
                        location=pos.value(("stages",)), field="stages")
    draws = data.get("draw")
    if not isinstance(draws, dict) or not draws:
        raise SpecError("required: a mapping of field paths to distributions",
                        location=pos.value(("draw",)) or top, field="draw")
    out = {}
    for key, spec in draws.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise SpecError("expected a field path such as regnet.w0 or stages[*].width",
                            location=pos.key(("draw", key)), field=f"draw.{key}")
        if _PER_STAGE.match(key) and not stages:
            raise SpecError("a per-stage field needs stages: N (the drawn stages)",
                            location=pos.key(("draw", key)), field=f"draw.{key}")
        out[key] = _dist(spec, pos, ("draw", key))
    base_file = Path(path).parent / base
    if not base_file.is_file():
        raise SpecError(f"no such spec '{base}' (paths are relative to this file)",
                        location=pos.value(("base",)), field="base")
    base_data, base_pos = load_document(base_file)
    name = data.get("name", Path(path).stem)
    return Space(str(name), base_data, base_pos, str(base_file), stages, out)


_SPACE: list[Space] = []  # the space a counting process counts points of


def _init(space: Space) -> None:
    _SPACE[:] = [space]


def _measure(values: dict[str, Any]) -> tuple[int, int, int, int] | str:
    """Count one point of the space: (params, MACs, activations, pycls activations), or
    why the point is no network."""
    space = _SPACE[0]
    try:
        spec = validate(space.spec_data(values), Positions(), space.base_file)
        graph = lower(spec, named=False)  # counts need no library's names
    except (SpecError, ValueError) as exc:
        return str(exc)
    t = total(graph)
    return t.params, t.macs, t.activations, pycls_activations(graph)


@dataclass
class Tally:
    """What the sampling drew besides the samples: points no network, points outside
    the band."""

    invalid: int = 0
    outside: int = 0


def sample(space: Space, n: int, seed: int = 0, macs: tuple[float, float] | None = None,
           *, jobs: int = 1, tries: int = 100, tally: Tally | None = None
           ) -> Iterator[Sample]:
    """``n`` samples of ``space`` from ``seed``: points that are no network, or whose
    MACs fall outside ``macs`` (lo, hi), are drawn again, up to ``tries`` draws a
    sample; counted by ``jobs`` processes."""
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"{n} samples; allowed: 1 to {MAX_SAMPLES:,}")
    rng, tally = random.Random(seed), tally if tally is not None else Tally()
    done, drawn, batch = 0, 0, max(64, 16 * jobs)
    _init(space)
    pool = ProcessPoolExecutor(jobs, initializer=_init, initargs=(space,)) if jobs > 1 \
        else None
    try:
        while done < n:
            if drawn >= tries * n:
                raise ValueError(f"{drawn:,} draws gave {done:,} of {n:,} samples (invalid "
                                 f"{tally.invalid:,}, outside the band {tally.outside:,}); "
                                 "widen the space or the band")
            points = [space.draw(rng) for _ in range(batch)]
            drawn += batch
            results = pool.map(_measure, points, chunksize=16) if pool else \
                map(_measure, points)
            for values, r in zip(points, results, strict=True):
                if done == n:
                    break
                if isinstance(r, str):
                    tally.invalid += 1
                elif macs and not macs[0] <= r[1] <= macs[1]:
                    tally.outside += 1
                else:
                    done += 1
                    yield Sample(done, values, *r)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
