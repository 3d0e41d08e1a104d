"""Loading pretrained weights into a built module, with a report of what did not fit.

Only safe loading: ``torch.load(..., weights_only=True)`` or safetensors. Nothing is ever
fetched from the network. A file is inspected before a reader inflates it: what would cost
time or memory out of proportion to a ResNet's weights is refused first (docs/import.md,
"Refusals"). Every refusal is a one-line SpecError: ``FILE: KEY: what``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pickletools
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import torch
from torch import nn

from .importer.draft import refuse
from .importer.formats import Canonical, canonical

SOURCES = ("torchvision", "timm", "archdsl")
_WRAPPERS = ("state_dict", "model", "model_state", "model_state_dict", "module")
_EMA = "state_dict_ema"  # timm's training checkpoints: the EMA weights beside state_dict
_PREFIXES = ("module.", "backbone.", "model.")  # DataParallel's, detection backbones'…
# A ResNet-family state_dict has under 2,000 entries of keys under 100 characters
MAX_ENTRIES = 10_000
MAX_KEY = 300
MAX_DEPTH = 8  # wrappers around the state_dict
MAX_HEADER = 4 << 20  # bytes of a safetensors header, a zip's directory or its pickle
MAX_LEGACY = 512 << 20  # a torch file from before torch 1.6 is read whole
WEIGHTS_FACTOR = 4  # --weights may hold this many times the model's own tensors' bytes
WEIGHTS_SLACK = 16 << 20  # … plus this many (the metadata of a small model's checkpoint)
_LFS = b"version https://git-lfs.github.com/spec/"
_LEGACY = b"\x80"  # a pickle's PROTO opcode: torch.save's format before torch 1.6
_ZIP = b"PK\x03\x04"
# tensors a torch file may rebuild that no ResNet module holds (the meta device, which
# reads shapes alone, cannot rebuild them either)
_REBUILT = {b"_rebuild_sparse_tensor": "sparse tensors; allowed: dense ones (t.to_dense())",
            b"_rebuild_qtensor": "quantized tensors; allowed: floating-point ones "
                                 "(t.dequantize())"}
_SAFETENSORS = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
                "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64",
                "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
                "C64": "complex64"}


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


def unwrap(obj: object, path: str = "checkpoint", *, ema: bool = False) -> Canonical:
    """A loaded checkpoint as a flat state_dict by archdsl's names, and what was done to
    get it: taken out of a ``{"state_dict": …}``, ``{"model": …}`` or ``{"model_state":
    …}`` wrapper (``ema``: timm's ``state_dict_ema`` instead of its ``state_dict``), a
    ``module.``, ``backbone.`` or ``model.`` prefix that every key has removed, then
    another library's naming renamed or a wrapping module's attribute removed
    (importer.formats). Refuses (SpecError) anything else: wrappers more than MAX_DEPTH
    deep or one that contains itself, more than MAX_ENTRIES entries, and entries no
    ResNet module holds."""
    notes = []
    seen: set[int] = set()
    emas = False
    while isinstance(obj, dict):
        emas = emas or isinstance(obj.get(_EMA), dict)
        wrappers = (_EMA, *_WRAPPERS) if ema else _WRAPPERS
        inner = next((k for k in wrappers if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        if id(obj) in seen:
            raise refuse(path, "", f"a {{{inner!r}: …}} wrapper that contains itself; "
                         "allowed: a state_dict, or a state_dict in a dict")
        if len(seen) == MAX_DEPTH:
            raise refuse(path, "", f"{{{inner!r}: …}} wrappers more than {MAX_DEPTH} deep; "
                         f"allowed: at most {MAX_DEPTH}")
        seen.add(id(obj))
        notes.append(f"unwrapped {{{inner!r}: …}}"
                     + (" (the EMA weights)" if inner == _EMA else
                        f" (EMA weights are present too: {_EMA!r}, read with --ema)"
                        if isinstance(obj.get(_EMA), dict) else ""))
        obj = obj[inner]
    if ema and not emas:
        raise refuse(path, "--ema", f"no EMA weights (no {_EMA!r} in the checkpoint); "
                     "allowed: --ema for a timm training checkpoint that has them")
    if not isinstance(obj, dict):
        raise refuse(path, "", f"not a state_dict (got {type(obj).__name__})")
    _check_entries(path, len(obj))
    odd = sorted({type(v).__name__ for v in obj.values() if not isinstance(v, torch.Tensor)})
    if not obj or odd:
        raise refuse(path, "", f"not a state_dict ("
                     f"{'it is empty' if not obj else 'it holds ' + ', '.join(odd)})")
    for key, tensor in obj.items():
        _check_entry(path, key, tensor)
    while prefix := next((p for p in _PREFIXES if all(k.startswith(p) for k in obj)), None):
        obj = {k.removeprefix(prefix): v for k, v in obj.items()}  # model.backbone.…
        notes.append(f"removed the key prefix {prefix!r}")
    done = canonical(obj, path)
    done.notes[:0] = notes
    return done


def _check_entries(path: str, entries: int) -> None:
    """Refuse a state_dict of more entries than any ResNet's (MAX_ENTRIES)."""
    if entries > MAX_ENTRIES:
        raise refuse(path, "", f"a state_dict of {entries:,} entries; allowed: at most "
                     f"{MAX_ENTRIES:,} (a ResNet-family one has under 2,000)")


def _check_entry(path: str, key: object, tensor: torch.Tensor) -> None:
    """Refuse a key or tensor that no ResNet module's state_dict holds."""
    if not isinstance(key, str):
        raise refuse(path, "", f"not a state_dict (a key {key!r:.60} of type "
                     f"{type(key).__name__}; allowed: str keys)")
    if len(key) > MAX_KEY:
        raise refuse(path, key[:60] + "…", f"a key of {len(key):,} characters; allowed: at "
                     f"most {MAX_KEY}")
    dtype = str(tensor.dtype).removeprefix("torch.")
    if tensor.layout != torch.strided:
        raise refuse(path, key, f"a {str(tensor.layout).removeprefix('torch.')} tensor; "
                     "allowed: dense (strided) ones, as modules hold (t.to_dense())")
    if tensor.is_quantized:
        raise refuse(path, key, f"a quantized tensor ({dtype}); allowed: floating-point "
                     "ones (t.dequantize())")
    counter = key.endswith("num_batches_tracked") and dtype.startswith(("int", "uint"))
    if not (tensor.dtype.is_floating_point or counter):
        raise refuse(path, key, f"a tensor of dtype {dtype}; allowed: floating point (and "
                     "an integer num_batches_tracked)")


def read_checkpoint(path: str | os.PathLike[str], *, shapes_only: bool = False,
                    max_bytes: int | None = None) -> object:
    """A checkpoint file as it was saved, safely (no pickled code runs): a ``.safetensors``
    file, or anything ``torch.load(weights_only=True)`` reads. ``shapes_only`` gives its
    tensors on the meta device (none of their data is read); ``max_bytes`` bounds the
    bytes of its records. What is not a checkpoint, or would cost more to read than a
    ResNet's weights do, is refused (SpecError) before a reader inflates it."""
    p = Path(path)
    label = str(p)
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(64)
        f.seek(0)
        if head.startswith(_LFS):
            raise refuse(label, "", f"a Git LFS pointer ({size} bytes), not the weights it "
                         "stands for; fetch them first (git lfs pull)")
        if p.suffix == ".safetensors":
            return _safetensors(f, size, label, shapes_only, max_bytes)
        if head.startswith(_ZIP):
            _zip(f, size, label, max_bytes)
        elif not head.startswith(_LEGACY):
            raise refuse(label, "", f"not a checkpoint: neither torch.save's zip archive or "
                         f"pickle, nor safetensors (it starts {head[:8]!r})")
        elif size > (limit := MAX_LEGACY if max_bytes is None else max_bytes):
            raise refuse(label, "", f"a torch file from before torch 1.6 (read whole) of "
                         f"{size:,} bytes; allowed: at most {limit:,} (save it again with a "
                         "current torch)")
        return _torch_load(f, label, "meta" if shapes_only else "cpu")


def _damaged(what: str) -> str:
    return f"not a readable checkpoint ({what}); a truncated or damaged file?"


def _too_large(what: str, size: int, limit: int) -> str:
    return (f"{what} of {size:,} bytes; allowed: at most {limit:,} (a ResNet-family "
            "checkpoint's is a few hundred kB)")


def _safetensors(f: IO[bytes], size: int, label: str, shapes_only: bool,
                 max_bytes: int | None) -> dict[str, torch.Tensor]:
    """Keys, shapes and dtypes from the JSON header alone; the tensors themselves only
    where they are wanted and fit ``max_bytes``."""
    raw = f.read(8)
    length = int.from_bytes(raw, "little")
    if len(raw) < 8 or 8 + length > size:
        raise refuse(label, "", _damaged(f"safetensors: a {length:,}-byte header in a "
                                         f"{size:,}-byte file"))
    if length > MAX_HEADER:
        raise refuse(label, "", _too_large("a safetensors header", length, MAX_HEADER))
    try:
        header = json.loads(f.read(length))
    except ValueError as exc:  # not JSON, or not UTF-8
        raise refuse(label, "", _damaged(f"safetensors header: {exc}")) from None
    if not isinstance(header, dict):
        raise refuse(label, "", _damaged("safetensors: a header that is not a mapping"))
    header.pop("__metadata__", None)
    _check_entries(label, len(header))
    data = size - 8 - length
    meta = {key: _meta_tensor(label, key, entry, data) for key, entry in header.items()}
    if shapes_only:
        return meta
    if max_bytes is not None and data > max_bytes:
        raise refuse(label, "", f"tensors of {data:,} bytes; allowed: at most {max_bytes:,} "
                     f"({WEIGHTS_FACTOR}x the model's own)")
    try:
        from safetensors.torch import load
    except ImportError:
        raise refuse(label, "", "reading .safetensors needs the safetensors package: pip "
                     "install 'archdsl[import]'") from None
    f.seek(0)
    try:
        return load(f.read())
    except Exception as exc:  # safetensors' reader on a damaged file
        raise refuse(label, "", _reader_said(exc)) from None


def _meta_tensor(label: str, key: str, entry: object, data: int) -> torch.Tensor:
    """A safetensors header entry as a meta tensor, if it describes one within ``data``."""
    fields = entry if isinstance(entry, dict) else {}
    name, shape, span = fields.get("dtype"), fields.get("shape"), fields.get("data_offsets")
    dtype = getattr(torch, _SAFETENSORS.get(name, "") if isinstance(name, str) else "", None)
    if not (isinstance(dtype, torch.dtype) and isinstance(shape, list)
            and isinstance(span, list) and len(shape) <= 8 and len(span) == 2
            and all(type(i) is int and i >= 0 for i in (*shape, *span))
            and math.prod(max(d, 1) for d in shape) < 1 << 48
            and span[1] - span[0] == math.prod(shape) * dtype.itemsize and span[1] <= data):
        raise refuse(label, key, _damaged(f"safetensors entry {json.dumps(entry)[:100]}"))
    return torch.empty(shape, dtype=dtype, device="meta")


def _zip(f: IO[bytes], size: int, label: str, max_bytes: int | None) -> None:
    """Refuse, from its own records, a zip archive that torch's reader would spend time or
    memory out of all proportion on: a huge directory, compressed (inflating) records,
    an oversized pickle, tensors no ResNet module holds, or more bytes than ``max_bytes``."""
    tail = min(size, 22 + 0xFFFF)  # the end record, and the longest comment after it
    f.seek(size - tail)
    end = f.read(tail)
    at = end.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(end):
        return  # no directory at all: torch's reader says what is wrong
    records, directory = struct.unpack_from("<HI", end, at + 10)
    if (records == 0xFFFF or directory == 0xFFFFFFFF) and at >= 20 and \
            end[at - 20:at - 16] == b"PK\x06\x07":
        f.seek(struct.unpack_from("<Q", end, at - 12)[0])  # the zip64 end record
        zip64 = f.read(56)
        if zip64[:4] == b"PK\x06\x06":
            records, directory = struct.unpack_from("<QQ", zip64, 32)
    if records > 2 * MAX_ENTRIES + 16 or directory > MAX_HEADER:
        raise refuse(label, "", f"a zip archive of {records:,} records in {directory:,} "
                     f"bytes of directory; allowed: at most {2 * MAX_ENTRIES + 16:,} records "
                     f"in {MAX_HEADER:,} bytes (a ResNet-family checkpoint has under 4,000)")
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as archive:
            infos = archive.infolist()
            packed = max((i for i in infos if i.compress_type != zipfile.ZIP_STORED),
                         key=lambda i: i.file_size, default=None)
            if packed is not None:
                raise refuse(label, packed.filename, f"a compressed record ("
                             f"{packed.compress_size:,} bytes inflating to "
                             f"{packed.file_size:,}); allowed: stored records, as torch.save "
                             "writes them (inflating costs memory the file does not show)")
            pickle = next((i for i in infos if i.filename.rpartition("/")[2] == "data.pkl"),
                          None)
            if pickle is not None and pickle.file_size > MAX_HEADER:
                raise refuse(label, pickle.filename, _too_large("a pickle", pickle.file_size,
                                                                MAX_HEADER))
            body = archive.read(pickle) if pickle is not None else b""
    except zipfile.BadZipFile as exc:
        raise refuse(label, "", _damaged(f"zip: {exc}")) from None
    for name, what in _REBUILT.items():
        if name in body:
            raise refuse(label, "", f"it holds {what}")
    total = sum(i.file_size for i in infos)
    if max_bytes is not None and total > max_bytes:
        raise refuse(label, "", f"records of {total:,} bytes; allowed: at most {max_bytes:,} "
                     f"({WEIGHTS_FACTOR}x the model's own tensors)")


def _torch_load(f: IO[bytes], label: str, device: str) -> object:
    # timm's training checkpoints keep their argparse options beside the weights: a plain
    # attribute holder, safe to rebuild (torch < 2.5 has no allowlist: they stay unread)
    allow = getattr(torch.serialization, "safe_globals", None)
    with allow([argparse.Namespace]) if allow else contextlib.nullcontext(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecations, sparse checks: refusals say what matters
        try:
            f.seek(0)
            return torch.load(f, map_location=device, weights_only=True)
        except Exception as exc:  # torch's reader raises a dozen kinds on a damaged file
            raise refuse(label, "", _reader_said(exc)) from None


def _reader_said(exc: Exception) -> str:
    """What a reader's exception says, in one line: the global a pickle names, the
    pickle protocol torch's safe loader does not read, or the reader's first words."""
    text = str(exc)
    pickled = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
    if pickled:
        return (f"it pickles {pickled.group(1)}, which safe loading (weights_only) will not "
                "run; save model.state_dict() instead, or load it yourself and pass the "
                "state_dict to archdsl.import_spec")
    operand = re.search(r"Unsupported operand (\d{1,3})\b", text)
    op = pickletools.code2op.get(chr(int(operand.group(1)) % 256)) if operand else None
    if op is not None and op.proto >= 4:
        return (f"pickled with protocol {op.proto} (opcode {op.name}), which torch's safe "
                "loader (weights_only) does not read; save it again with torch.save's "
                "default pickle protocol")
    said = next((s.strip() for s in text.split("WeightsUnpickler error:")[-1].splitlines()
                 if s.strip()), "").split(". ")[0]
    return _damaged(f"{type(exc).__name__}: {said[:160]}" if said else type(exc).__name__)


def _classifier(model: nn.Module) -> str | None:
    graph = getattr(model, "archdsl_graph", None)
    if graph is None:
        return None
    out = graph.output if graph.output.op != "flatten" else graph[graph.output.inputs[0]]
    return out.name


def load_weights(model: nn.Module, path_or_state_dict: str | os.PathLike[str] | dict,
                 *, source: str = "torchvision", ema: bool = False) -> WeightsReport:
    """Load a checkpoint into ``model``: strictly where the architectures match, else every
    tensor that fits, re-initialising a classifier of another size; returns the report.
    ``ema``: timm's EMA weights (``state_dict_ema``) instead of its ``state_dict``."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES)}")
    own = model.state_dict()
    if isinstance(path_or_state_dict, dict):
        obj, label = path_or_state_dict, "<state_dict>"
    else:  # the file may hold an optimizer's state or an EMA copy, but not much more
        budget = WEIGHTS_FACTOR * sum(t.numel() * t.element_size() for t in own.values())
        obj, label = read_checkpoint(path_or_state_dict, max_bytes=budget + WEIGHTS_SLACK), \
            str(path_or_state_dict)
    # DataParallel's module. prefix, a {"state_dict": …} wrapper, another library's naming
    sd = unwrap(obj, label, ema=ema).state
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
    ck = next((a for k, a, _ in report.mismatched if fc and k == f"{fc}.weight"), None)
    if ck:
        report.reinitialised.append(
            f"{fc}: the checkpoint has {ck[0]} classes, the model "
            f"{own[f'{fc}.weight'].shape[0]}; the classifier keeps its fresh initialisation")
    model.load_state_dict(fit, strict=False)
    report.loaded = len(fit)
    return report
