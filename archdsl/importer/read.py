"""``import_spec``: the spec of a torchvision or timm model, a module, or a checkpoint.

A source is read in four steps: its state_dict's keys and shapes give a draft
(archdsl.importer.infer); a module's types and attributes settle what they decide
(archdsl.importer.modules); the caller's overrides settle the rest by hand; and the spec
is built on the meta device and held to the source's keys and shapes, so a spec is
only ever written when its module loads the source's state_dict strictly.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..jsonschema import SCHEMA_ID
from ..layouts import Foreign, name_in
from ..load import load_solved
from ..spec.errors import SpecError, did_you_mean
from ..spec.schema import NAME_PATTERN
from ..weights import read_checkpoint, unwrap
from . import infer, modules, write
from .draft import FIELDS, Draft, refuse
from .formats import settle_config

Source = str | os.PathLike[str] | nn.Module | Mapping[str, torch.Tensor]
OVERRIDES = (*FIELDS, "classes", "name")
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # save_pretrained's file names


class _Read:
    """What a source gives: its label, shapes, module (if any), name, notes, input size."""

    def __init__(self, label: str, state: Mapping[str, torch.Tensor], name: str, *,
                 module: nn.Module | None = None, notes: list[str] | None = None,
                 size: int | list[int] | None = None, how: str = "",
                 foreign: Foreign | None = None, folder: Path | None = None) -> None:
        self.label, self.module, self.name, self.size = label, module, name, size
        self.shapes = {k: tuple(v.shape) for k, v in state.items()}
        self.notes, self.how = notes or [], how
        self.foreign, self.folder = foreign, folder  # another library's naming; its folder


def _size(cfg: Mapping[str, Any] | None) -> int | list[int] | None:
    if not cfg or "input_size" not in cfg:
        return None
    _, h, w = cfg["input_size"]
    return h if h == w else [h, w]


def _library(source: str, library: str) -> Any:
    try:
        return importlib.import_module(library)
    except ImportError:
        raise refuse(source, "", f"reading a {library} model needs {library}: pip install "
                     "'archdsl[import]'") from None


@contextlib.contextmanager
def _widths_on_cpu(lib: Any) -> Iterator[None]:
    """torchvision's RegNet builders compute their widths with tensors and ``.tolist()``
    (``BlockParams.from_init_params``), which the meta device cannot: run that one
    computation on the CPU while the model is built on the meta device."""
    params = getattr(getattr(lib.models, "regnet", None), "BlockParams", None)
    original = params.__dict__.get("from_init_params") if params is not None else None
    if not isinstance(original, classmethod):
        yield
        return

    def on_cpu(cls: type, *args: Any, **kwargs: Any) -> Any:
        with torch.device("cpu"):
            return original.__func__(cls, *args, **kwargs)

    params.from_init_params = classmethod(on_cpu)
    try:
        yield
    finally:
        params.from_init_params = original


def _from_name(source: str) -> _Read:
    library, _, name = source.partition(":")
    lib = _library(source, library)
    notes = []
    if library == "timm":
        arch, _, tag = name.partition(".")
        names = lib.list_models()
        current = lib.models.get_deprecated_models().get(arch)
        if current:  # a deprecated alias (regnetz_040h): timm builds the current model
            notes.append(f"timm's deprecated name {arch} stands for {current}")
            arch, _, alias_tag = current.partition(".")
            tag = tag or alias_tag
            name = f"{arch}.{tag}" if tag else arch
        if arch not in names:
            raise refuse(source, "", f"timm has no model {arch!r}; {did_you_mean(arch, names)}"
                         "allowed: a name timm.list_models() gives")
        if tag and name not in lib.list_pretrained(f"{arch}.*"):
            tags = ", ".join(n.partition(".")[2] for n in lib.list_pretrained(f"{arch}.*"))
            raise refuse(source, "", f"timm's {arch} has no tag {tag!r}; allowed: {tags}")
    else:
        names = lib.models.list_models(module=lib.models)  # classification models only
        if name not in names:
            raise refuse(source, "", f"torchvision has no classification model {name!r}; "
                         f"{did_you_mean(name, names)}allowed: a name "
                         "torchvision.models.list_models(module=torchvision.models) gives")
    with torch.device("meta"):
        if library == "timm":
            model = lib.create_model(name)
            size = _size(getattr(model, "pretrained_cfg", None))
        else:
            with _widths_on_cpu(lib):
                model = lib.models.get_model(name)
            weights = list(lib.models.get_model_weights(name))
            size = weights[0].transforms().crop_size[0] if weights else None
    modules.check(model, source)
    return _Read(source, model.state_dict(), name, module=model, size=size, notes=notes,
                 how=f"read from {library}'s module")


def _from_module(model: nn.Module) -> _Read:
    label = f"<{type(model).__name__}>"
    modules.check(model, label)
    cfg = getattr(model, "pretrained_cfg", None)
    name = (cfg or {}).get("architecture") or type(model).__name__.lower()
    return _Read(label, model.state_dict(), name, module=model, size=_size(cfg),
                 how="read from the module")


def _from_file(path: Path, ema: bool) -> _Read:
    label = str(path)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem).lstrip("_.-")[:100] or "imported"
    if path.is_dir():  # transformers' save_pretrained folder
        path = next((path / f for f in HF_WEIGHTS if (path / f).is_file()), path)
    if not path.is_file():
        raise refuse(label, "", "no such checkpoint file; allowed: a .pth, .pt or "
                     ".safetensors file, a folder of transformers' save_pretrained ("
                     f"{' or '.join(HF_WEIGHTS)}), or torchvision:NAME / timm:NAME")
    return _from_state(read_checkpoint(path, shapes_only=True), label, name, ema=ema,
                       folder=path.parent)


def _from_state(obj: object, label: str, name: str, *, ema: bool = False,
                folder: Path | None = None) -> _Read:
    """A loaded checkpoint or a state_dict, unwrapped (see weights.unwrap)."""
    done = unwrap(obj, label, ema=ema)
    return _Read(label, done.state, name, notes=done.notes, foreign=done.foreign,
                 folder=folder, how="inferred from its keys and shapes")


def _read(source: Source, ema: bool) -> _Read:
    named = not isinstance(source, nn.Module | Mapping) and re.match(
        r"^(timm|torchvision):", os.fspath(source))
    if ema and (isinstance(source, nn.Module) or named):
        raise refuse(_label(source), "--ema", "a module has one set of weights; allowed: "
                     "--ema for a checkpoint (timm's state_dict_ema)")
    if isinstance(source, nn.Module) and hasattr(source, "archdsl_graph"):
        # archdsl's own module is a GraphModule of primitives: read it as a checkpoint
        return _Read("<archdsl module>", source.state_dict(), source.archdsl_graph.name,
                     how="built by archdsl, inferred from its keys and shapes")
    if isinstance(source, nn.Module):
        return _from_module(source)
    if isinstance(source, Mapping):
        return _from_state(dict(source), "<state_dict>", "imported", ema=ema)
    if named:
        return _from_name(os.fspath(source))
    return _from_file(Path(os.fspath(source)), ema)


def _label(source: Source) -> str:
    return f"<{type(source).__name__}>" if isinstance(source, nn.Module) else os.fspath(
        source)


def _override(draft: Draft, read: _Read, overrides: Mapping[str, Any]) -> None:
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"unknown override(s) {sorted(unknown)}; allowed: "
                         f"{', '.join(OVERRIDES)}")
    head, fc = draft.spec["head"], f"{name_in(draft.spec['layout'], 'fc')}.weight"
    if "classes" in overrides and "classes" in head:
        raise refuse(read.label, "--classes", f"the source has a classifier ({fc}) of "
                     f"{head['classes']} classes; allowed: --classes only for a head-less "
                     "source")
    if "classes" in overrides:
        head["classes"] = overrides["classes"]
    elif "classes" not in head:
        raise refuse(read.label, fc, "no classifier (a head-less model or checkpoint); give "
                     "the classes it should have (--classes N)")
    for key, value in overrides.items():
        if key in FIELDS:  # given, None too (antialias: None is "none")
            try:
                draft.settle(key, value)
            except ValueError as exc:
                raise refuse(read.label, FIELDS[key].flag, str(exc)) from None
    if overrides.get("name"):
        draft.spec["name"] = overrides["name"]
    if draft.spec["conv"]["kind"] == "standardized" and "conv_eps" not in overrides \
            and read.module is None:
        draft.assume("conv_eps", draft.spec["conv"].get("eps", 1e-6), infer.WHY["conv_eps"])


def _outputs(model: nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The output shape of every module of ``model`` that holds parameters, for one
    image of ``shape``, computed on the meta device whatever ``model``'s (its tensors are
    stood in for, not copied; its training mode is kept)."""
    out: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, y, n=n: out.__setitem__(n, tuple(y.shape)))
             for n, m in model.named_modules() if next(m.parameters(False), None) is not None]
    tensors = {n: torch.empty_like(t, device="meta") for n, t in
               itertools.chain(model.named_parameters(), model.named_buffers())}
    was = model.training
    try:
        with torch.no_grad():
            torch.func.functional_call(model.eval(), tensors,
                                       (torch.empty((1, *shape), device="meta"),))
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return out


def _verify(graph: Any, read: _Read, headless: bool) -> None:
    """The spec's module must hold exactly the source's keys, at their shapes; a module's
    layers must also give the spec's layers' output shapes (strides and pools have no
    weights to compare)."""
    from ..emit.torch import emit

    with torch.device("meta"):
        model = emit(graph)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    fc = name_in(graph.layout, "fc")
    for key in sorted(own.keys() | read.shapes.keys(), key=lambda k: (k not in own, k)):
        theirs, ours = read.shapes.get(key), own.get(key)
        if headless and theirs is None and key.startswith(f"{fc}."):
            continue  # the classifier --classes added: the source has none
        if theirs == ours or theirs is None and key.endswith(".num_batches_tracked"):
            continue  # older checkpoints lack the BN counter; loading tolerates that
        what = (infer.MISSING if theirs is None else
                "is more than a ResNet of this shape holds: a construct archdsl has no form "
                "for, or another family" if ours is None else
                f"has shape {list(theirs)}, a ResNet of this shape {list(ours)}")
        raise refuse(read.label, key or "''", what)
    if read.module is None:
        return
    source, spec = _outputs(read.module, graph.input.shape), _outputs(model, graph.input.shape)
    for name in spec:  # feature maps (ECA's 1-D conv runs on another view of its input)
        if name in source and len(source[name]) == len(spec[name]) == 4 and \
                source[name] != spec[name]:
            h, w = graph.input.shape[1:]
            raise refuse(read.label, name, f"outputs {list(source[name][1:])} at a {h}x{w} "
                         f"input, the spec's layer {list(spec[name][1:])}: a stride, pool or "
                         "padding archdsl does not read")


def _foreign(draft: Draft, read: _Read, overrides: Mapping[str, Any]) -> None:
    """What another library's naming implies: a detector's trunk has no classifier
    (``classes: 0``) and, without BN counters, FrozenBatchNorm2d; a Hugging Face model's
    config.json settles what its keys cannot tell."""
    foreign = read.foreign
    if foreign is None:
        return
    if foreign.trunk and "classes" not in draft.spec["head"] and "classes" not in overrides:
        draft.spec["head"]["classes"] = 0
        draft.notes.append(f"no classifier in {foreign.what}'s ResNet: classes 0 (the "
                           "spec's output is the pooled features)")
    counters = any(k.endswith(".num_batches_tracked") for k in read.shapes)
    if foreign.trunk and draft.spec["norm"]["kind"] == "batch" and not counters:
        draft.spec["norm"]["kind"] = "frozen_batch"
        draft.notes.append("no num_batches_tracked: the norms are FrozenBatchNorm2d "
                           "(norm kind frozen_batch)")
    if foreign.config is not None:
        if read.folder is None:
            draft.notes.append(f"{foreign.what}'s defaults are assumed where the keys "
                               "cannot tell (no config.json: a state_dict was given)")
        else:
            settle_config(foreign, read.folder, draft, read.label)


def import_spec(source: Source, overrides: Mapping[str, Any] | None = None, *,
                schema: str | None = None, ema: bool = False) -> str:
    """The YAML text of the spec of ``source``: ``timm:NAME``, ``torchvision:NAME``, a
    checkpoint path (.pth, .pt, .safetensors), an ``nn.Module`` or a state_dict.
    ``overrides`` settles what the source cannot tell (keys: OVERRIDES; ``strides`` a
    list, ``antialias`` a mapping or None, ``shortcut_form`` a mapping such as
    ``{"form": "scaling", "scale": 0.5}``). ``schema`` is the modeline's schema path;
    ``ema``: a timm training checkpoint's EMA weights (``state_dict_ema``) are read.
    Raises SpecError (one line: ``SOURCE: KEY OR MODULE: what``) for a source archdsl
    cannot say."""
    overrides = dict(overrides or {})
    read = _read(source, ema)
    name = overrides.get("name") or read.name
    if not re.match(NAME_PATTERN, name):
        raise refuse(read.label, "--name", f"{name!r} is not a spec name; allowed: letters, "
                     "digits, '_', '.', '-', starting with a letter or digit")
    draft = infer.infer(read.shapes, read.label, name)
    if read.size is not None:
        draft.settle("input_size", read.size)
    if read.module is not None:
        modules.settle(read.module, draft, read.label)
    _foreign(draft, read, overrides)
    headless = "classes" not in draft.spec["head"]
    _override(draft, read, overrides)
    try:
        spec, graph, _ = load_solved(Path("imported.yaml"), text=write.scalar(draft.spec),
                                     shown=read.label)
    except SpecError as exc:
        raise refuse(read.label, exc.field or "", exc.message) from None
    _verify(graph, read, headless)
    comments = {FIELDS[k].comment_at: f"assumed: {why}" for k, why in draft.assumed.items()}
    modeline = f"yaml-language-server: $schema={schema or SCHEMA_ID.format('archdsl')}"
    header = [f"{spec.name}: imported by archdsl {__version__} from {read.label}, "
              f"{read.how}."]
    header += [f"{n[0].upper()}{n[1:]}." for n in read.notes + draft.notes]
    if headless:
        header.append(f"The source has no classifier: {spec.head.classes} classes as "
                      "given (--classes).")
    if draft.assumed:
        header.append(f"{len(draft.assumed)} field(s) it cannot tell are assumed, each "
                      "marked below with the flag that sets it.")
    text = write.to_yaml(spec, comments, header, modeline)
    again, _, _ = load_solved(Path("imported.yaml"), text=text, shown=read.label)
    if again != spec:
        raise AssertionError(f"internal error: the minimal spec of {read.label} reads back "
                             "differently")
    return text
