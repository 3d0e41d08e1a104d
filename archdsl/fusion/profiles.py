"""Device profiles: data files that say which fusion rules a device applies and what its
kernels are called. A user adds a device by writing one more YAML file, checked here as a
spec is: an unknown or misspelled key, a value of the wrong kind, or an IR op without
kernels is a one-line ``file:line:col: field: what is wrong`` error (a SpecError)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from ..ir.ops import OPS
from ..spec.errors import Location, SpecError, did_you_mean, format_path
from ..spec.loader import Path_, Positions, parse_yaml, read_text
from .rules import ACTIVATIONS, EXECUTABLE, EXECUTES, NEEDS, OPTIONS, RULES
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
        return list(self.ops[op])


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


# The schema. A check takes the value at a path and returns it as the profile holds it,
# or raises a SpecError that points at it.
Check = Callable[["_Doc", Any, Path_], Any]


@dataclass
class _Doc:
    """Where a profile's values are, to point an error at one."""

    file: str
    pos: Positions

    def fail(self, path: Path_, message: str, *, at_key: bool = False) -> NoReturn:
        where = self.pos.key(path) if at_key else self.pos.value(path)
        raise SpecError(message, location=where or Location(self.file, 1, 1),
                        field=format_path(path))

    def mapping(self, value: Any, path: Path_, allowed: Sequence[str] | None = None,
                needs: Sequence[str] = ()) -> dict[str, Any]:
        """``value`` as a mapping with keys among ``allowed`` (any, if None) and each of
        ``needs``."""
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_shown(value)}")
        for key in value:
            if allowed is not None and key not in allowed:
                self.fail(path + (key,), f"unknown key; {did_you_mean(key, allowed)}"
                          f"allowed: {', '.join(allowed)}", at_key=True)
        for key in needs:
            if key not in value:
                self.fail(path + (key,), "required field is missing")
        return value


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:36]}..."


def _text(doc: _Doc, value: Any, path: Path_) -> str:
    if not isinstance(value, str):
        doc.fail(path, f"expected a string, got {_shown(value)}")
    return value


def _flag(doc: _Doc, value: Any, path: Path_) -> bool:
    if not isinstance(value, bool):
        doc.fail(path, f"expected true or false, got {_shown(value)}")
    return value


def _setting(doc: _Doc, value: Any, path: Path_) -> Any:
    """An engine setting, as the plan shows it: a scalar, or a list of them."""
    if any(isinstance(v, dict | list) for v in (value if isinstance(value, list) else [value])):
        doc.fail(path, "expected a string, number, true/false or a list of them, got "
                 f"{_shown(value)}")
    return value


def _one_of(choices: Sequence[str], what: str) -> Check:
    """A string among ``choices`` (``what`` says what they are: ``an IR op``)."""
    def check(doc: _Doc, value: Any, path: Path_) -> str:
        if _text(doc, value, path) not in choices:
            doc.fail(path, f"{value!r} is not {what}; {did_you_mean(value, choices)}"
                     f"allowed: {', '.join(choices)}")
        return value
    return check


def _list_of(item: Check) -> Check:
    def check(doc: _Doc, value: Any, path: Path_) -> list[Any]:
        if not isinstance(value, list):
            doc.fail(path, f"expected a list, got {_shown(value)}")
        return [item(doc, v, path + (i,)) for i, v in enumerate(value)]
    return check


def _mapping_of(keys: Sequence[str] | None, item: Check) -> Check:
    """A mapping with keys among ``keys`` (any, if None), each value checked by ``item``."""
    def check(doc: _Doc, value: Any, path: Path_) -> dict[str, Any]:
        doc.mapping(value, path, keys)
        return {k: item(doc, v, path + (k,)) for k, v in value.items()}
    return check


def _fields(checks: dict[str, Check], needs: Sequence[str] = ()) -> Check:
    """A mapping of these keys only, each value checked by its own check."""
    def check(doc: _Doc, value: Any, path: Path_) -> dict[str, Any]:
        doc.mapping(value, path, list(checks), needs)
        return {k: checks[k](doc, v, path + (k,)) for k, v in value.items()}
    return check


_OP = _one_of(list(OPS), "an IR op")
_KERNELS = _list_of(_text)
_PER_OP = _mapping_of(list(OPS), _KERNELS)
# the kinds of rule options (archdsl.fusion.rules.OPTIONS)
_OPTION_KINDS: dict[str, Check] = {
    "flag": _flag, "ops": _list_of(_OP),
    "activations": _list_of(_one_of(ACTIVATIONS, "an activation")),
    "chains": _list_of(_list_of(_OP)), "per_op": _PER_OP}
_ENGINE = _fields({
    "name": _text, "version": _text, "modelled": _flag, "count": _text,
    "settings": _mapping_of(None, _setting), "labels": _mapping_of(None, _text),
    "verified_isa": _list_of(_one_of(list(ISAS), "an instruction set")),
    "isa_dependent": _KERNELS, "layouts_unmodelled": _list_of(_OP)}, needs=("name",))


def _rule(doc: _Doc, value: Any, path: Path_) -> RuleUse:
    """One entry of ``rules``: its ``id``, ``kernel``, ``source`` and the options its rule
    reads (each of the kind the rule declares)."""
    doc.mapping(value, path, needs=("id",))
    rid = _one_of(list(RULES), "a fusion rule")(doc, value["id"], path + ("id",))
    checks = {"id": _text, "kernel": _text, "source": _text,
              **{k: _OPTION_KINDS[kind] for k, kind in OPTIONS[rid].items()}}
    use = _fields(checks, NEEDS[rid])(doc, value, path)
    return RuleUse(rid, use.pop("kernel", ""), use.pop("source", ""),
                   {k: v for k, v in use.items() if k != "id"})


def _ops(doc: _Doc, value: Any, path: Path_) -> dict[str, list[str]]:
    """``ops``: the kernels of every IR op but ``input`` (which may have some: a layout
    transform of the image), as every counter prices every op."""
    ops = _PER_OP(doc, value, path)
    if missing := [o for o in OPS if o != "input" and o not in ops]:
        doc.fail(path, f"no kernels for {', '.join(missing)}; every IR op but input needs "
                 "its list of kernels ([] for one the device drops)")
    return ops


_PROFILE = _fields({
    "name": _text, "description": _text, "models": _text, "modelled_from": _text,
    "hardware": _list_of(_one_of(HARDWARE, "hardware archdsl runs on")),
    "executes": _list_of(_one_of(EXECUTABLE, "a rule archdsl.fuse() carries out")),
    "engine": _ENGINE, "rules": _list_of(_rule), "ops": _ops}, needs=("name", "ops"))


def read_profile(text: str, shown: str) -> Profile:
    """The profile a YAML text describes, checked against the schema; ``shown`` names the
    file in errors."""
    if all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise SpecError("the file is empty; a profile is a mapping with at least name and "
                        "ops", location=Location(shown, 1, 1))
    data, pos = parse_yaml(text, shown)
    doc = _Doc(shown, pos)
    p = _PROFILE(doc, data, ())
    engine = p.get("engine", {})
    if engine and not engine.get("modelled") and "version" not in engine:
        doc.fail(("engine", "version"), "required field is missing (or modelled: true)")
    executes = tuple(p.get("executes", EXECUTES))
    for i, use in enumerate(p.get("rules", [])):
        if use.id in ("conv_act", "conv_add_act") and use.id in executes \
                and list(use.options.get("activations", ())) != ["relu"]:
            doc.fail(("rules", i, "activations"), "archdsl.fuse() runs this rule as cuDNN's "
                     "conv+ReLU kernel: it needs activations: [relu]")
    return Profile(p["name"], p.get("description", ""), p.get("models", ""),
                   tuple(p.get("rules", ())), p["ops"], p.get("modelled_from", ""), engine,
                   tuple(p.get("hardware", ())), executes)


def builtin_names() -> list[str]:
    """The shipped profiles, by name."""
    folder = resources.files("archdsl.fusion") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


@cache
def _builtin(name: str) -> Profile:
    text = (resources.files("archdsl.fusion") / "profiles" / f"{name}.yaml").read_text("utf-8")
    return read_profile(text, f"archdsl/fusion/profiles/{name}.yaml")


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """A shipped profile by name (``eager``, ``onnxruntime-cpu``…) or a profile file (a
    path ending in .yaml or .yml). A file that can't be used is a SpecError; a name that
    is neither is a ValueError."""
    text = str(name_or_path)
    if text in builtin_names():
        return _builtin(text)
    path = Path(text)
    if path.suffix in (".yaml", ".yml"):
        return read_profile(read_text(path, text), text)
    raise ValueError(f"unknown device {text!r}; shipped profiles: {', '.join(builtin_names())} "
                     "(or a path to a profile .yaml)")
