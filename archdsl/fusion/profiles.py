"""Device profiles: data files that say which fusion rules a device applies and what its
kernels are called. A user adds a device by writing one more YAML file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .rules import EXECUTABLE, EXECUTES, RULES
from .state import RuleUse


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    models: str
    rules: tuple[RuleUse, ...]
    ops: dict[str, list[str]]
    modelled_from: str = ""
    # the engine a test holds this profile's plans to, kernel for kernel: name, version,
    # settings, the instruction sets it was checked on (where its kernels depend on them)
    # and how the plan's kernel names map onto what the engine reports
    engine: dict[str, Any] = field(default_factory=dict)
    # where the device's engine runs (cpu, cuda; none for a device not runnable here)
    hardware: tuple[str, ...] = ()
    # the rules archdsl.fuse() carries out itself for this device; the rest are the engine's
    executes: tuple[str, ...] = EXECUTES

    def layouts_unmodelled(self, ops: set[str]) -> list[str]:
        """Those of ``ops`` whose surrounding layout kernels the profile does not model
        (``engine.layouts_unmodelled``)."""
        return [o for o in self.engine.get("layouts_unmodelled", []) if o in ops]

    def kernel_types(self, op: str) -> list[str]:
        """The kernels one unfused IR op becomes (none for an op the device drops)."""
        return list(self.ops.get(op, [op]))


HARDWARE = ("cpu", "cuda")

# the instruction sets a plan can be made for, widest first, with the cpuinfo flag of each
ISAS = {"amx": "amx_tile", "avx512": "avx512f", "avx2": "avx2", "sse4.2": "sse4_2"}


def detect_isa() -> str:
    """This machine's widest x86 vector extension as OpenVINO's CPU plugin picks kernels
    by it (amx, avx512, avx2, sse4.2), or the machine's architecture elsewhere."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        flags = []
    for isa, flag in ISAS.items():
        if flag in flags:
            return isa
    return platform.machine().lower() or "unknown"


def builtin_names() -> list[str]:
    folder = resources.files("archdsl.fusion") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _parse(data: dict[str, Any], where: str) -> Profile:
    uses = []
    for r in data.get("rules", []):
        r = dict(r)
        rid = r.pop("id")
        if rid not in RULES:
            raise ValueError(f"{where}: unknown rule {rid!r}; known: {', '.join(RULES)}")
        uses.append(RuleUse(rid, r.pop("kernel", ""), r.pop("source", ""), r))
    hardware = tuple(data.get("hardware", ()))
    if unknown := [h for h in hardware if h not in HARDWARE]:
        raise ValueError(f"{where}: hardware: unknown {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(HARDWARE)}")
    executes = tuple(data.get("executes", EXECUTES))
    if unknown := [r for r in executes if r not in EXECUTABLE]:
        raise ValueError(f"{where}: executes: archdsl.fuse() can't carry out "
                         f"{', '.join(map(repr, unknown))}; it can: {', '.join(EXECUTABLE)}")
    for u in uses:
        if u.id in ("conv_act", "conv_add_act") and u.id in executes \
                and list(u.options.get("activations", ())) != ["relu"]:
            raise ValueError(f"{where}: {u.id}: archdsl.fuse() runs it as cuDNN's conv+ReLU "
                             "kernel: it needs activations: [relu]")
    return Profile(data["name"], data.get("description", ""), data.get("models", ""),
                   tuple(uses), dict(data.get("ops", {})), data.get("modelled_from", ""),
                   dict(data.get("engine", {})), hardware, executes)


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """A shipped profile by name (``eager``, ``onnxruntime-cpu``…) or a profile file."""
    text = str(name_or_path)
    if text in builtin_names():
        source = (resources.files("archdsl.fusion") / "profiles" / f"{text}.yaml").read_text()
        return _parse(yaml.safe_load(source), f"profile {text}")
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _parse(yaml.safe_load(path.read_text()), str(path))
    raise ValueError(f"unknown device {text!r}; shipped profiles: {', '.join(builtin_names())} "
                     "(or a path to a profile .yaml)")
