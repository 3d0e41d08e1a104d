"""Hostile checkpoints, written on demand, with the line each must be refused with; and
the child process that runs one command on one under a memory cap. Shared by
tests/test_hostile_checkpoints.py and benchmarks/bad_checkpoints.py.

Each file is small (a few MB at most) whatever it claims to hold: tensors are stride-0
views of one element, a bomb is compressed or sparse on disk.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision

CAP = 6 << 30  # address space of a child: importing torch maps over 3 GiB
TINY = "name: tiny\ninput: {size: 32}\nstem: {kind: cifar, width: 8}\nstages:\n" \
       "  - {depth: 1, width: 8, block: basic}\n"


def light(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` at its shapes and dtypes, each tensor a view of one element."""
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in state.items()}


def resnet18() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return light(torchvision.models.resnet18().state_dict())


def _save(obj: object, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


class _System:
    def __reduce__(self) -> tuple[Callable[..., int], tuple[str]]:
        return os.system, ("echo pwned",)


def _nested(depth: int) -> bytes:
    obj: dict[str, object] = dict(resnet18())
    for _ in range(depth):
        obj = {"state_dict": obj}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 4 * depth)  # the pickler recurses
    try:
        return _save(obj)
    finally:
        sys.setrecursionlimit(limit)


def _cycle() -> dict[str, object]:
    d: dict[str, object] = {}
    d["state_dict"] = d
    return d


def _repack(data: bytes, change: Callable[[zipfile.ZipFile, zipfile.ZipInfo], None]) -> bytes:
    """A torch zip, each record passed to ``change`` for writing into the new archive."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
            change(dst, info)
    return out.getvalue()


def _bomb(path: Path) -> None:
    """A 250 kB file whose one tensor inflates to 256 MiB (written from untouched pages,
    so making it costs no memory either)."""
    plain = path.with_suffix(".plain")
    torch.save({"conv1.weight": torch.empty(64 << 20)}, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            packed = zipfile.ZipInfo(info.filename)
            packed.compress_type = zipfile.ZIP_DEFLATED
            with src.open(info) as f, dst.open(packed, "w", force_zip64=True) as g:
                while chunk := f.read(1 << 24):
                    g.write(chunk)
    plain.unlink()


def _records(n: int) -> bytes:
    def add(dst: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        if info.filename.endswith("/byteorder"):
            for i in range(n):
                dst.writestr(f"x/r{i}", b"")
    return _repack(_save(resnet18()), add)


def _safetensors(header: dict[str, object], data: int = 0) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + bytes(data)


def _entries(n: int) -> bytes:
    text = ",".join(f'"layer.{i}.weight": {{"dtype": "F32", "shape": [1], "data_offsets": '
                    f'[{4 * i}, {4 * i + 4}]}}' for i in range(n))
    header = f"{{{text}}}".encode()  # json.dumps takes seconds on this many
    return len(header).to_bytes(8, "little") + header + bytes(4 * n)


def _with(change: dict[str, torch.Tensor], drop: str = "") -> bytes:
    state = {k: v for k, v in resnet18().items() if not k.startswith(drop or "\0")}
    return _save({**state, **change})


def _legacy_sparse_file(path: Path) -> None:
    path.write_bytes(_save(resnet18(), _use_new_zipfile_serialization=False))
    with path.open("r+b") as f:
        f.truncate(600 << 20)  # a hole: nothing on disk


def _quantized() -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(torch.rand(4), 0.1, 0, torch.qint8)


_PTR = "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 46830571\n"
_DAMAGED = "; a truncated or damaged file?"

# name -> (bytes or a writer, the refusal after "name: ", a prefix where it ends in a
# figure of the machine's) for `archdsl import NAME`, and for those in BUILD
# `archdsl build tiny.yaml --weights NAME` too
CASES: dict[str, tuple[Callable[[], bytes] | Callable[[Path], None], str]] = {
    "cycle.pth": (lambda: _save(_cycle()),
                  "a {'state_dict': …} wrapper that contains itself; allowed: a state_dict, "
                  "or a state_dict in a dict"),
    "deep.pth": (lambda: _nested(1000),
                 "{'state_dict': …} wrappers more than 8 deep; allowed: at most 8"),
    "random.pth": (lambda: b"\x13" + bytes(range(7, 206)),
                   "not a checkpoint: neither torch.save's zip archive or pickle, nor "
                   "safetensors (it starts b'\\x13\\x07\\x08\\t\\n\\x0b\\x0c\\r')"),
    "random_pickle.pth": (lambda: b"\x80\x02" + bytes(range(30, 230)),
                          "not a readable checkpoint (UnpicklingError: "),
    "cut.pth": (lambda: _save(resnet18())[:4_000],
                "not a readable checkpoint (RuntimeError: PytorchStreamReader failed reading zip "
                "archive: failed finding central directory)" + _DAMAGED),
    "not_a_state_dict.pth": (lambda: _save({"epoch": 3, "lr": 0.1}),
                             "not a state_dict (it holds float, int)"),
    "a_list.pth": (lambda: _save([torch.zeros(1)] * 3), "not a state_dict (got list)"),
    "system.pth": (lambda: _save({"state_dict": _System()}),
                   "it pickles posix.system, which safe loading (weights_only) will not run; "
                   "save model.state_dict() instead, or load it yourself and pass the "
                   "state_dict to archdsl.import_spec"),
    "protocol4.pth": (lambda: _save(resnet18(), pickle_protocol=4),
                      "pickled with protocol 4 (opcode FRAME), which torch's safe loader "
                      "(weights_only) does not read; save it again with torch.save's default "
                      "pickle protocol"),
    "lfs.pth": (lambda: _PTR.format("0" * 64).encode(),
                "a Git LFS pointer (133 bytes), not the weights it stands for; fetch them "
                "first (git lfs pull)"),
    "lfs.safetensors": (lambda: _PTR.format("1" * 64).encode(),
                        "a Git LFS pointer (133 bytes), not the weights it stands for; fetch "
                        "them first (git lfs pull)"),
    "sparse.pth": (lambda: _save({"conv1.weight": torch.eye(3).to_sparse()}),
                   "it holds sparse tensors; allowed: dense ones (t.to_dense())"),
    "quantized.pth": (lambda: _save({"conv1.weight": _quantized()}),
                      "it holds quantized tensors; allowed: floating-point ones "
                      "(t.dequantize())"),
    "bool.pth": (lambda: _save({"conv1.weight": torch.zeros(2, dtype=torch.bool)}),
                 "conv1.weight: a tensor of dtype bool; allowed: floating point (and an "
                 "integer num_batches_tracked)"),
    "complex.pth": (lambda: _save({"conv1.weight": torch.zeros(2, dtype=torch.complex64)}),
                    "conv1.weight: a tensor of dtype complex64; allowed: floating point "
                    "(and an integer num_batches_tracked)"),
    "int64.pth": (lambda: _with({"layer1.0.conv1.weight": torch.zeros(
        (), dtype=torch.int64).expand(64, 64, 3, 3)}),
        "layer1.0.conv1.weight: a tensor of dtype int64; allowed: floating point (and an "
        "integer num_batches_tracked)"),
    "bomb.pth": (_bomb, "bomb/data/0: a compressed record ("),
    "records.pth": (lambda: _records(30_000),
                    "a zip archive of 30,006 records in 1,609,293 bytes of directory; allowed: "
                    "at most 20,016 records in 4,194,304 bytes (a ResNet-family checkpoint has "
                    "under 4,000)"),
    "pickle.pth": (lambda: _save({"x": list(range(1_000_000))}),
                   "archive/data.pkl: a pickle of 4,870,690 bytes; allowed: at most 4,194,304 "
                   "(a ResNet-family checkpoint's is a few hundred kB)"),
    "entries.pth": (lambda: _save({f"k{i}": torch.zeros(()) for i in range(10_001)}),
                    "a state_dict of 10,001 entries; allowed: at most 10,000 (a ResNet-family "
                    "one has under 2,000)"),
    "long_key.pth": (lambda: _save({"k" * 100_000: torch.zeros(1)}),
                     "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…: a key of "
                     "100,000 characters; allowed: at most 300"),
    "int_keys.pth": (lambda: _save({1: torch.zeros(1)}),
                     "not a state_dict (a key 1 of type int; allowed: str keys)"),
    "legacy.pth": (_legacy_sparse_file, "a torch file from before torch 1.6 (read whole) of "
                                        "629,145,600 bytes; allowed: at most "),
    "header.safetensors": (lambda: _entries(300_000),
                           "a safetensors header of 2"),
    "entries.safetensors": (lambda: _entries(20_000),
                            "a state_dict of 20,000 entries; allowed: at most 10,000"),
    "claim.safetensors": (lambda: (1 << 60).to_bytes(8, "little") + b"{}",
                          "not a readable checkpoint (safetensors: a 1,152,921,504,606,846,976"
                          "-byte header in a 10-byte file)" + _DAMAGED),
    "json.safetensors": (lambda: b"\x04\0\0\0\0\0\0\0{{{{",
                         "not a readable checkpoint (safetensors header: Expecting property "
                         "name enclosed in double quotes: line 1 column 2 (char 1))" + _DAMAGED),
    "offsets.safetensors": (lambda: _safetensors(
        {"conv1.weight": {"dtype": "F32", "shape": [9], "data_offsets": [0, 8]}}, 8),
        "conv1.weight: not a readable checkpoint (safetensors entry "),
}
# refused only by `import` (build --weights loads what fits: these are keys and shapes)
IMPORT_ONLY: dict[str, tuple[Callable[[], bytes], str]] = {
    "conv6d.pth": (lambda: _with({"conv1.weight": torch.zeros(()).expand(64, 3, 7, 7, 1, 1)}),
                   "conv1.weight: has shape [64, 3, 7, 7, 1, 1]; allowed: 4 dimensions, none "
                   "of them 0"),
    "fc_head.pth": (lambda: _with({"fc.1.weight": torch.zeros(()).expand(10, 512),
                                   "fc.1.bias": torch.zeros(()).expand(10)}, drop="fc."),
                    "fc.1.weight: a classifier archdsl has no form for (keys under fc. but no "
                    "fc.weight); allowed: one Linear, fc.weight and fc.bias (a "
                    "Sequential(Dropout, Linear) head loads once its keys fc.1.* are renamed "
                    "fc.*, with --dropout P)"),
    "partial.pth": (lambda: _with({}, drop="layer4.1.bn2."),
                    "layer4.1.bn2.bias: is not in the source: a truncated checkpoint, or a "
                    "network archdsl reads differently"),
    "empty_key.pth": (lambda: _with({"": torch.zeros(1)}),
                      "'': is more than a ResNet of this shape holds: a construct archdsl has "
                      "no form for, or another family"),
}
# `build --weights` reads files as `import` does: these show each of its steps refusing
BUILD = ("cycle.pth", "deep.pth", "random.pth", "not_a_state_dict.pth", "system.pth",
         "lfs.pth", "sparse.pth", "bool.pth", "bomb.pth", "records.pth", "legacy.pth",
         "header.safetensors", "offsets.safetensors")
# refused only by build --weights: more than TINY's bound (4x its own weights + 16 MiB)
BUILD_ONLY: dict[str, tuple[Callable[[], bytes], str]] = {
    "too_big.pth": (lambda: _save({"conv1.weight": torch.zeros(5 << 20)}),
                    "records of 20,971,750 bytes; allowed: at most 16,944,736 (4x the model's "
                    "own tensors)"),
}


def write(folder: Path, cases: dict) -> None:
    for name, (make, _) in cases.items():
        if make in (_legacy_sparse_file, _bomb):  # too big to make in memory
            make(folder / name)
        else:
            (folder / name).write_bytes(make())


# One command in a fresh process; its exit status, seconds and VmHWM (not ru_maxrss:
# Linux keeps that across exec, so it would report the parent's peak) go to a report file.
DRIVER = r"""
import json, sys, time, traceback
start = time.perf_counter()
from archdsl.cli.main import main
try:
    rc = main(json.loads(sys.argv[2]))
except BaseException:
    rc = "crash"
    traceback.print_exc()
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "seconds": time.perf_counter() - start,
               "peak_mib": int(hwm.split()[1]) / 1024}, f)
"""


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def run(folder: Path, args: list[str], report: Path, timeout: float = 60) -> dict:
    """``archdsl ARGS`` in ``folder``, in its own process under CAP: its report with
    ``stdout``, ``stderr`` and ``wall`` (seconds, start-up included) added."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(report), json.dumps(args)],
                          cwd=folder, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_cap, check=False, errors="replace")
    out = json.loads(report.read_text()) if report.exists() else {"rc": proc.returncode}
    return {**out, "stdout": proc.stdout, "stderr": proc.stderr, "exit": proc.returncode,
            "wall": time.perf_counter() - start}
