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

from ..ir.ops import FAMILIES, OPS, OpDef, family_ops
from ..ir.shapes import Attrs
from ..spec.errors import Location, SpecError, did_you_mean, format_path
from ..spec.loader import Path_, Positions, parse_yaml, read_text
from .isa import ISAS
from .precision import FLOAT, INT8, PRECISIONS, Int8Form, Int8Profile, form_key
from .rules import EXECUTABLE, EXECUTES, NEEDS, OPTIONS, RULES
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
    # how the device's engine runs an int8 model of the network (plan --precision int8)
    int8: Int8Profile | None = None

    def layouts_unmodelled(self, ops: set[str]) -> list[str]:
        """Those of ``ops`` whose surrounding layout kernels the profile does not model
        (``engine.layouts_unmodelled``)."""
        return [o for o in self.engine.get("layouts_unmodelled", []) if o in ops]

    def kernel_types(self, op: str, attrs: Attrs | None = None) -> list[str]:
        """The kernels one unfused IR op becomes (none for an op the device drops): its
        form's (``op.flag``, a flag of ``attrs`` set) where the profile gives one."""
        if op not in self.ops:  # an op defined after the profile was read
            raise ValueError(f"profile {self.name} has no kernels for op {op!r}: it was "
                             "defined after the profile was read")
        return list(self.ops[form_key(op, attrs or {}, self.ops)])


HARDWARE = ("cpu", "cuda")

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


def _one_of(choices: Sequence[str] | Callable[[], Sequence[str]], what: str) -> Check:
    """A string among ``choices`` (``what`` says what they are: ``an IR op``), or among
    what ``choices()`` gives when the check runs (the ops table as it is then)."""
    def check(doc: _Doc, value: Any, path: Path_) -> str:
        allowed = choices() if callable(choices) else choices
        if _text(doc, value, path) not in allowed:
            doc.fail(path, f"{value!r} is not {what}; {did_you_mean(value, allowed)}"
                     f"allowed: {', '.join(allowed)}")
        return value
    return check


def _list_of(item: Check) -> Check:
    def check(doc: _Doc, value: Any, path: Path_) -> list[Any]:
        if not isinstance(value, list):
            doc.fail(path, f"expected a list, got {_shown(value)}")
        return [item(doc, v, path + (i,)) for i, v in enumerate(value)]
    return check


def _mapping_of(keys: Callable[[], Sequence[str]] | None, item: Check) -> Check:
    """A mapping with keys among ``keys()`` (any, if None), each value checked by ``item``."""
    def check(doc: _Doc, value: Any, path: Path_) -> dict[str, Any]:
        doc.mapping(value, path, keys() if keys else None)
        return {k: item(doc, v, path + (k,)) for k, v in value.items()}
    return check


def _fields(checks: dict[str, Check], needs: Sequence[str] = ()) -> Check:
    """A mapping of these keys only, each value checked by its own check."""
    def check(doc: _Doc, value: Any, path: Path_) -> dict[str, Any]:
        doc.mapping(value, path, list(checks), needs)
        return {k: checks[k](doc, v, path + (k,)) for k, v in value.items()}
    return check


def _ops_and_families() -> list[str]:
    return [*OPS, *(f for f in FAMILIES if f not in OPS)]


def _ops_families_and_forms() -> list[str]:
    return [*_ops_and_families(), *(f"{o}.{f}" for o, d in OPS.items() for f in d.forms)]


def _expand(names: list[str]) -> list[str]:
    """Op names, each family name replaced by the ops of that family (table order)."""
    out: list[str] = []
    for n in names:
        out += [o for o in (family_ops(n) if n in FAMILIES else (n,)) if o not in out]
    return out


def _ops_list(item: Check) -> Check:
    """A list of ops and op families, read as the ops they name."""
    def check(doc: _Doc, value: Any, path: Path_) -> list[str]:
        return _expand(_list_of(item)(doc, value, path))
    return check


def _per_op(given: dict[str, list[str]],
            defined: Callable[[OpDef], list[str] | None] = lambda d: None) -> dict[str, list[str]]:
    """Kernels by op and op family, read per op: the op's own entry, else what
    ``defined`` takes from the op's definition, else its family's; an op with none is
    left out; an op's form (``op.flag``) as given."""
    out = {}
    for o, d in OPS.items():
        found = next((k for k in (given.get(o), defined(d), given.get(d.family))
                      if k is not None), None)
        if found is not None:
            out[o] = found
    return out | {k: v for k, v in given.items() if "." in k}  # ops' forms (OpDef.forms)


def _by_op(doc: _Doc, value: Any, path: Path_) -> dict[str, list[str]]:
    """A mapping of ops and op families to kernels, read per op."""
    return _per_op(_mapping_of(_ops_and_families, _KERNELS)(doc, value, path))


_OP = _one_of(lambda: list(OPS), "an IR op")
_OP_OR_FAMILY = _one_of(_ops_and_families, "an IR op or op family")
_KERNELS = _list_of(_text)
# the kinds of rule options (archdsl.fusion.rules.OPTIONS); ops, activations and per_op
# take op families too (``activation``: every activation the ops table has)
_OPTION_KINDS: dict[str, Check] = {
    "flag": _flag, "ops": _ops_list(_OP_OR_FAMILY),
    "activations": _ops_list(_one_of(lambda: [*family_ops("activation"), "activation"],
                                     "an activation or the family activation")),
    "chains": _list_of(_list_of(_OP)), "per_op": _by_op,
    "names": _mapping_of(lambda: family_ops("activation"), _text)}
_ENGINE = _fields({
    "name": _text, "version": _text, "modelled": _flag, "count": _text,
    "settings": _mapping_of(None, _setting), "labels": _mapping_of(None, _text),
    "verified_isa": _list_of(_one_of(list(ISAS), "an instruction set")),
    "isa_dependent": _KERNELS, "layouts_unmodelled": _list_of(_OP)}, needs=("name",))


def _form(doc: _Doc, value: Any, path: Path_) -> Int8Form:
    """One int8 form: its kernels, how it reads its input and writes its output, its
    precision and source, whether it only moves data, and the forms it takes after a
    float input, a shared one, or where its node meets a condition (``when``)."""
    side = _one_of((INT8, FLOAT), "a tensor precision")
    f = _fields({"kernels": _KERNELS, "reads": _list_of(side), "out": side,
                 "precision": _one_of(PRECISIONS, "a kernel precision"), "source": _text,
                 "follows": _flag, "ignored": _flag, "input_stays_float": _flag,
                 "sum_convert": _text,
                 "sign_from": _one_of(("first", "last"), "an operand"), "convert": _KERNELS,
                 "layout": _one_of(("keeps", "blocked", "planar"), "a layout"),
                 "planar_input": _form, "unmodelled": _flag,
                 "convert_by": _mapping_of(lambda: list(OPS), _KERNELS), "float_input": _form,
                 "convert_planar": _list_of(_OP), "relayout": _text,
                 "shared_input": _form, "when": _list_of(_conditional)},
                needs=("kernels",))(doc, value, path)
    tuples = ("kernels", "reads", "convert", "convert_planar", "when")
    return Int8Form(**{k: tuple(v) if k in tuples else v for k, v in f.items()
                       if k != "convert_by"},
                    convert_by={k: tuple(v) for k, v in f.get("convert_by", {}).items()})


_CONDITIONS = ("op", "part", "part_act", "input_op", "reader_op", "grouped", "standardized",
               "ceil_mode", "count_include_pad", "kernel", "stride")


def _conditional(doc: _Doc, value: Any, path: Path_) -> tuple[tuple[tuple[str, Any], ...],
                                                             Int8Form]:
    """A form of ``when``: ``if`` (conditions on the kernel's first node: its op, part, the
    activation of its part (``part_act``: SE's ReLU), the op writing its first input
    (``input_op``) and the op of its only reader (``reader_op``), whether its weights are
    standardized in the graph (``standardized``), whether it is a grouped convolution, an
    attribute's value), then the form's own fields."""
    doc.mapping(value, path, needs=("if",))
    conditions = _mapping_of(lambda: _CONDITIONS, _setting)(doc, value["if"], path + ("if",))
    return tuple(conditions.items()), _form(doc, {k: v for k, v in value.items()
                                                  if k != "if"}, path)


def _chain(doc: _Doc, value: Any, path: Path_) -> list[str]:
    """A chain of ops, each the only reader of the one before: at least one op."""
    if not value:
        doc.fail(path, "an empty chain; give the ops in order, [add, batch_norm, silu]")
    return _list_of(_OP)(doc, value, path)


_INT8 = _fields({
    "quantizer": _text, "checked": _text, "source": _text, "no_vnni": _text,
    "outputs": _one_of(("form", "as_read"), "a way kernels write int8"),
    "unmodelled": _list_of(lambda d, v, p: _chain(d, v, p) if isinstance(v, list)
                           else [_OP(d, v, p)]),
    "verified_isa": _list_of(_one_of(list(ISAS), "an instruction set")), "relayout": _text,
    "rules": _list_of(lambda d, v, p: _rule(d, v, p) if isinstance(v, dict)
                      else _one_of(list(RULES), "a fusion rule")(d, v, p)), "quantize": _text,
    "dequantize": _text, "merged": _mapping_of(None, _form),
    "ops": _mapping_of(_ops_families_and_forms, _form)},
    needs=("quantizer", "checked", "quantize", "dequantize", "ops"))


def _int8(doc: _Doc, f: dict[str, Any], ops: dict[str, list[str]],
          fp32_rules: tuple[RuleUse, ...]) -> Int8Profile:
    """``int8`` (checked), with a form for every op the device runs: its own, its
    family's, or, for an op the section does not name, its fp32 kernels in float, marked
    unmodelled (the plan then says it is modelled)."""
    own = {u.id for u in fp32_rules}
    for i, r in enumerate(f.get("rules", ())):
        if isinstance(r, str) and r not in own:
            doc.fail(("int8", "rules", i), f"{r!r} is not among the profile's rules; name one "
                     "of them, or give the rule's use (id and options) for int8 alone")
    forms = _per_op(f["ops"])
    for o in ops:  # an op the section does not name (one registered from outside, say)
        forms.setdefault(o, Int8Form(
            tuple(ops[o]), (FLOAT,), FLOAT, "float", unmodelled=True,
            source=f"{o}: no int8 form in the profile, so assumed to run in float"))
    return Int8Profile(**{**f, "ops": forms, "merged": f.get("merged", {}),
                          "rules": tuple(f.get("rules", ())),
                          "unmodelled": tuple(tuple(c) for c in f.get("unmodelled", ())),
                          "verified_isa": tuple(f.get("verified_isa", ()))})


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


def _kernels_by_op(doc: _Doc, given: dict[str, list[str]], name: str) -> dict[str, list[str]]:
    """``ops``: the kernels of every IR op but ``input`` (which may have some: a layout
    transform of the image), as every counter prices every op: the op's own entry, else
    what the op's definition says this device (by profile ``name``) runs it as, else its
    family's entry."""
    out = _per_op(given, lambda d: d.kernels.get(name))
    if missing := [o for o in OPS if o != "input" and o not in out]:
        doc.fail(("ops",), f"no kernels for {', '.join(missing)}; every IR op but input "
                 "needs its list of kernels ([] for one the device drops), its own or its "
                 f"family's (families: {', '.join(FAMILIES[1:])})")
    return out


_PROFILE = _fields({
    "name": _text, "description": _text, "models": _text, "modelled_from": _text,
    "hardware": _list_of(_one_of(HARDWARE, "hardware archdsl runs on")),
    "executes": _list_of(_one_of(EXECUTABLE, "a rule archdsl.fuse() carries out")),
    "engine": _ENGINE, "rules": _list_of(_rule),
    "ops": _mapping_of(_ops_families_and_forms, _KERNELS), "int8": _INT8},
    needs=("name", "ops"))


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
    ops = _kernels_by_op(doc, p["ops"], p["name"])
    return Profile(p["name"], p.get("description", ""), p.get("models", ""),
                   tuple(p.get("rules", ())), ops, p.get("modelled_from", ""), engine,
                   tuple(p.get("hardware", ())), executes,
                   _int8(doc, p["int8"], {o: k for o, k in ops.items()
                                          if o in OPS and o != "input"},
                         tuple(p.get("rules", ())))
                   if "int8" in p else None)


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


def plan_choices() -> list[str]:
    """Every shipped profile, then ``NAME:int8`` for each with an int8 plan: the live
    page's device choices."""
    names = builtin_names()
    return names + [f"{n}:int8" for n in names if load_profile(n).int8 is not None]
