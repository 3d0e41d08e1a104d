"""A module tree from a run of named steps: every IR node a submodule at its qualified
name, and every name prefix whose steps run together with one result (a stage
``layer1``, a block ``layer1.0``, a shortcut ``layer1.0.downsample``) a submodule of its
own, its children in run order.

So a built module has the shape a hand-written one has: torchvision's
``IntermediateLayerGetter`` (which calls the root's children in order) and
``create_feature_extractor`` (which names traced nodes by module path) take it, and the
ONNX exporter scopes each node by its path (``/layer1/layer1.0/conv1/Conv``). A prefix
whose steps are interleaved with others', or whose run has several results used after
it, stays a plain container of its steps (the names, hence the state_dict keys, are the
same either way).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import fx, nn


class Op(nn.Module):
    """An op without parameters (a function and its constant arguments) as a module, so
    that it has a name in the module tree."""

    def __init__(self, fn: Callable[..., Any], extra: tuple[Any, ...] = (),
                 kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.fn, self.extra, self.kwargs = fn, extra, dict(kwargs or {})

    def forward(self, *xs: Any) -> Any:
        return self.fn(*xs, *self.extra, **self.kwargs)

    def extra_repr(self) -> str:
        args = [repr(a) for a in self.extra] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        return name + (f"({', '.join(args)})" if args else "")


@dataclass(frozen=True, slots=True)
class Step:
    """One named computation: ``module`` applied to the values of ``inputs`` (the names
    of earlier steps or of the tree's inputs)."""

    name: str
    module: nn.Module
    inputs: tuple[str, ...]


def tree(steps: Sequence[Step], inputs: Sequence[str], outputs: Sequence[str], *,
         root: type[fx.GraphModule] = fx.GraphModule, class_name: str = "Net",
         listed: bool = False) -> fx.GraphModule:
    """The module tree of ``steps``: takes the values named ``inputs``, returns the value
    of the one step in ``outputs``, or with ``listed`` (a backbone's feature maps) a list
    of their values."""
    return _level(list(steps), "", list(inputs), list(outputs), root, class_name, listed)


def _key(step: Step, prefix: str) -> str:
    return step.name[len(prefix):].split(".", 1)[0]


def _runs(steps: list[Step], prefix: str) -> list[tuple[str, list[Step]]]:
    runs: list[tuple[str, list[Step]]] = []
    for s in steps:
        k = _key(s, prefix)
        if runs and runs[-1][0] == k:
            runs[-1][1].append(s)
        else:
            runs.append((k, [s]))
    return runs


def _level(steps: list[Step], prefix: str, inputs: list[str], outputs: list[str],
           cls: type[fx.GraphModule], class_name: str, listed: bool = False
           ) -> fx.GraphModule:
    g = fx.Graph()
    values = {name: g.placeholder("v_" + re.sub(r"\W", "_", name)) for name in inputs}
    modules: dict[str, nn.Module] = {}
    runs = _runs(steps, prefix)
    keys = [k for k, _ in runs]
    for i, (k, run) in enumerate(runs):
        made = {s.name for s in run}
        later = {x for _, r in runs[i + 1:] for s in r for x in s.inputs} | set(outputs)
        results = [s.name for s in run if s.name in later]
        if len(run) == 1 and run[0].name == prefix + k:
            modules[k] = run[0].module
            values[run[0].name] = g.call_module(k, tuple(values[x] for x in run[0].inputs))
        elif keys.count(k) == 1 and len(results) == 1 and \
                all(s.name.startswith(f"{prefix}{k}.") for s in run):
            needs = list(dict.fromkeys(x for s in run for x in s.inputs if x not in made))
            modules[k] = _level(run, f"{prefix}{k}.", needs, results, fx.GraphModule, "Block")
            values[results[0]] = g.call_module(k, tuple(values[x] for x in needs))
        else:
            for s in run:
                local = s.name[len(prefix):]
                modules[local] = s.module
                values[s.name] = g.call_module(local, tuple(values[x] for x in s.inputs))
    g.output([values[o] for o in outputs] if listed or len(outputs) > 1 else
             values[outputs[0]])
    return cls(modules, g, class_name=class_name)
