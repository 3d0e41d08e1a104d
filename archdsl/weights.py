"""Loading pretrained weights into a built module, with a report of what did not fit.

Only safe loading: ``torch.load(..., weights_only=True)`` or safetensors. Nothing is ever
fetched from the network.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

SOURCES = ("torchvision", "timm", "archdsl")
_WRAPPERS = ("state_dict", "model", "model_state", "model_state_dict", "module")
_PREFIXES = ("module.", "backbone.", "model.")  # DataParallel's, detection backbones'…


@dataclass
class WeightsReport:
    """What a load did: loaded keys, and every key that did not fit, with why."""

    source: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def text(self) -> str:
        lines = [f"weights ({self.source}): {self.loaded} tensors loaded"
                 + (", exact match (strict)" if self.exact else "")]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  re-initialised: {m}" for m in self.reinitialised]
        lines += [f"  shape mismatch: {k}: checkpoint {list(a)}, model {list(b)}"
                  for k, a, b in self.mismatched]
        lines += [f"  missing from the checkpoint (newly initialised): {k}"
                  for k in _modules(self.missing)]
        lines += [f"  unexpected in the checkpoint (ignored): {k}"
                  for k in _modules(self.unexpected)]
        return "\n".join(lines) + "\n"


def _modules(keys: list[str]) -> list[str]:
    """Keys grouped by module: ``layer1.0.se.fc1 (weight, bias)``."""
    out: dict[str, list[str]] = {}
    for k in keys:
        mod, _, leaf = k.rpartition(".")
        out.setdefault(mod, []).append(leaf)
    return [f"{m} ({', '.join(v)})" for m, v in out.items()]


def unwrap(obj: object, path: str = "checkpoint") -> tuple[dict[str, torch.Tensor], list[str]]:
    """A loaded checkpoint as a flat state_dict, and what was done to get it: taken out
    of a ``{"state_dict": …}``, ``{"model": …}`` or ``{"model_state": …}`` wrapper, a
    ``module.``, ``backbone.`` or ``model.`` prefix that every key has removed."""
    notes = []
    while isinstance(obj, dict):
        inner = next((k for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        notes.append(f"unwrapped {{{inner!r}: …}}")
        obj = obj[inner]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a state_dict (got {type(obj).__name__})")
    odd = sorted({type(v).__name__ for v in obj.values() if not isinstance(v, torch.Tensor)})
    if not obj or odd:
        raise ValueError(f"{path}: not a state_dict ("
                         f"{'it is empty' if not obj else 'it holds ' + ', '.join(odd)})")
    while prefix := next((p for p in _PREFIXES if all(k.startswith(p) for k in obj)), None):
        obj = {k.removeprefix(prefix): v for k, v in obj.items()}  # model.backbone.…
        notes.append(f"removed the key prefix {prefix!r}")
    return obj, notes


def read_checkpoint(path: str | os.PathLike[str]) -> object:
    """A checkpoint file as it was saved, safely (no pickled code runs): a ``.safetensors``
    file, or anything ``torch.load(weights_only=True)`` reads."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    # timm's training checkpoints keep their argparse options beside the weights: a plain
    # attribute holder, safe to rebuild (torch < 2.5 has no allowlist: they stay unread)
    allow = getattr(torch.serialization, "safe_globals", None)
    with allow([argparse.Namespace]) if allow else contextlib.nullcontext():
        return torch.load(p, map_location="cpu", weights_only=True)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A checkpoint file as a flat state_dict (see ``unwrap``)."""
    return unwrap(read_checkpoint(path), str(path))[0]


def _classifier(model: nn.Module) -> str | None:
    graph = getattr(model, "archdsl_graph", None)
    if graph is None:
        return None
    out = graph.output if graph.output.op != "flatten" else graph[graph.output.inputs[0]]
    return out.name


def load_weights(model: nn.Module, path_or_state_dict: str | os.PathLike[str] | dict,
                 *, source: str = "torchvision") -> WeightsReport:
    """Load a checkpoint into ``model``: strictly where the architectures match, else every
    tensor that fits, re-initialising a classifier of another size; returns the report."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES)}")
    sd = path_or_state_dict if isinstance(path_or_state_dict, dict) else \
        read_state_dict(path_or_state_dict)
    sd = unwrap(sd)[0]  # DataParallel's module. prefix, a {"state_dict": …} wrapper
    own = model.state_dict()
    report = WeightsReport(source)
    report.missing = [k for k in own if k not in sd]
    report.unexpected = [k for k in sd if k not in own]
    fit = {}
    for k, v in sd.items():
        if k in own:
            if tuple(v.shape) == tuple(own[k].shape):
                fit[k] = v
            else:
                report.mismatched.append((k, tuple(v.shape), tuple(own[k].shape)))
    if report.exact:
        model.load_state_dict(sd, strict=True)
        report.loaded = len(sd)
        return report
    fc = _classifier(model)
    if fc and any(k.startswith(fc + ".") for k, _, _ in report.mismatched):
        ck = next(a for k, a, _ in report.mismatched if k == f"{fc}.weight")
        report.reinitialised.append(
            f"{fc}: the checkpoint has {ck[0]} classes, the model "
            f"{own[f'{fc}.weight'].shape[0]}; the classifier keeps its fresh initialisation")
    model.load_state_dict(fit, strict=False)
    report.loaded = len(fit)
    return report
