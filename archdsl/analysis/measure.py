"""Run the real counters (fvcore, ptflops, thop, torchinfo) on a module: their totals,
and their per-module figures where the tool reports them, keyed by module name. The
tests and ``benchmarks/counters.py`` hold archdsl's conventions to these numbers."""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import io
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import counters


@dataclass(frozen=True)
class Measured:
    """One tool's count of one module at batch 1: the total and, where the tool reports
    them, each module's figure (its submodules included; the root is ``""``)."""

    total: int
    modules: dict[str, int] = field(default_factory=dict)


def installed(name: str) -> str | None:
    """Why the pinned tool of counter ``name`` can't run here, or None when it can."""
    c = counters.load(name)
    try:
        have = importlib.metadata.version(c.distribution)
    except importlib.metadata.PackageNotFoundError:
        return f"{c.distribution} is not installed (pip install '{c.distribution}=={c.version}')"
    if have.replace("-", ".post") != c.version and have != c.version:
        return f"{c.distribution} {have} is installed; the convention is {c.label}'s"
    return None


def _fvcore(model: Any, x: Any) -> Measured:
    from fvcore.nn import FlopCountAnalysis

    f = FlopCountAnalysis(model, x)
    f.unsupported_ops_warnings(False)
    f.uncalled_modules_warnings(False)
    return Measured(int(f.total()), {k: int(v) for k, v in f.by_module().items()})


_PTFLOPS_LINE = re.compile(r"^(\s*)(?:\((?P<name>[^)]+)\): )?(?:\d+ x )?\w+\((?P<rest>.*)$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")  # torch's repr of equal ModuleList items: (0-2): 3 x
_PTFLOPS_FIGURES = re.compile(r"^\s*\d+, [\d.]+% Params, (?P<macs>[\d.e+]+) Mac,")


def _expand(name: str) -> list[str]:
    """The module names a printed name stands for (``convs.0-2``: convs.0, .1 and .2)."""
    names = [""]
    for part in name.split("."):
        m = _RANGE.match(part)
        items = [str(i) for i in range(int(m[1]), int(m[2]) + 1)] if m else [part]
        names = [f"{n}.{i}" if n else i for n in names for i in items]
    return names


def _ptflops_modules(text: str) -> dict[str, int]:
    """Each module's MACs from ptflops' per-layer printout (``print_per_layer_stat``,
    raw units): one line a module, indented two spaces a level, the figures on the
    module's line or, for a container, on the next; equal items of a ModuleList print
    once, as a range (``(0-2): 3 x Conv2d(…)``), each with the figures of one."""
    out: dict[str, int] = {}
    path: list[str] = []
    pending: str | None = None
    for line in text.splitlines():
        if pending is not None:
            m = _PTFLOPS_FIGURES.match(line)
            pending, name = None, pending
            if m:  # else the module prints its own repr (timm's SelectAdaptivePool2d)
                out[name] = int(float(m["macs"]))
                continue
        m = _PTFLOPS_LINE.match(line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        del path[max(depth - 1, 0):]
        if m["name"] is not None:
            path.append(m["name"])
        name = ".".join(path)
        figures = _PTFLOPS_FIGURES.match(m["rest"])
        if figures:
            out[name] = int(float(figures["macs"]))
        else:
            pending = name
    return {n: v for k, v in out.items() for n in _expand(k)}


def _ptflops(backend: str) -> Callable[[Any, Any], Measured]:
    def run(model: Any, x: Any) -> Measured:
        from ptflops import get_model_complexity_info

        buf = io.StringIO()
        per_layer = backend == "pytorch"
        with contextlib.redirect_stdout(io.StringIO()):
            macs, _ = get_model_complexity_info(
                model, tuple(x.shape[1:]), as_strings=False, backend=backend,
                print_per_layer_stat=per_layer, ost=buf, flops_units="Mac", param_units="",
                verbose=False)
        if macs is None:
            raise RuntimeError(f"ptflops ({backend}) failed on {type(model).__name__}")
        return Measured(int(macs), _ptflops_modules(buf.getvalue()) if per_layer else {})

    return run


def _thop(model: Any, x: Any) -> Measured:
    import thop

    model = copy.deepcopy(model)  # thop leaves a buffer on every module it has no rule for
    total, _, layers = thop.profile(model, (x,), verbose=False, ret_layer_info=True)
    out: dict[str, int] = {"": int(total)}

    def walk(tree: dict[str, Any], prefix: str) -> None:
        for name, (ops, _, sub) in tree.items():
            out[prefix + name] = int(ops)
            walk(sub, f"{prefix}{name}.")

    walk(layers, "")
    return Measured(int(total), out)


def _torchinfo(model: Any, x: Any) -> Measured:
    import torchinfo

    summary = torchinfo.summary(model, input_size=tuple(x.shape), verbose=0)
    return Measured(int(summary.total_mult_adds))


_RUN: dict[str, Callable[[Any, Any], Measured]] = {
    "fvcore": _fvcore, "ptflops": _ptflops("pytorch"), "ptflops-aten": _ptflops("aten"),
    "thop": _thop, "torchinfo": _torchinfo,
}


def measure(name: str, model: Any, input_shape: tuple[int, ...]) -> Measured:
    """Counter ``name``'s own count of ``model`` (eval mode) on one random image."""
    import torch

    model.eval()
    x = torch.randn(1, *input_shape)
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _RUN[name](model, x)
    finally:
        logger.setLevel(level)
