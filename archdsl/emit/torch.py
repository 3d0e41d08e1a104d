"""The torch emitter: a ``torch.fx.GraphModule`` generated straight from the IR.

Ops with parameters become submodules at their qualified names (the state_dict
prefixes); everything else is a plain function call in the generated forward,
so a call runs exactly the IR's ops with no interpretation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

from ..ir.graph import Graph, Node
from ..ir.ops import op
from ..spec.schema import Spec


class ArchdslModule(fx.GraphModule):
    """A ``torch.fx.GraphModule`` that keeps archdsl's attributes (``archdsl_graph``, the
    IR the fusion executor and the exporters read back; ``archdsl_applied``) through
    ``copy.deepcopy``, which rebuilds a GraphModule from its graph and drops them."""

    KEPT = ("archdsl_graph", "archdsl_applied")

    def __deepcopy__(self, memo: dict[int, Any]) -> fx.GraphModule:
        res = super().__deepcopy__(memo)
        for key in self.KEPT:
            if key in self.__dict__:  # immutable (a frozen Graph, a tuple): shared
                setattr(res, key, self.__dict__[key])
        return res


def _target(n: Node) -> Any:
    """The torch module class or function the ops table names for ``n``."""
    d = op(n.op)
    name = d.torch(n.attrs) if callable(d.torch) else d.torch
    if not name:
        raise NotImplementedError(f"{n.name}: the ops table names no torch module or "
                                  f"function for op {n.op!r}")
    where, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(where), attr)


def module(n: Node) -> nn.Module | None:
    """The submodule computing ``n`` (an op the table runs as a module), else None."""
    if not op(n.op).module:
        return None
    args, kwargs = op(n.op).torch_args(n.attrs, n.shape)
    return _target(n)(*args, **kwargs)


Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def call(n: Node) -> Call:
    """The function computing ``n`` (an op the table runs as a call): it, the arguments
    after the inputs, the keyword arguments."""
    args, kwargs = op(n.op).torch_args(n.attrs, n.shape)
    return _target(n), args, kwargs


def _init(module: nn.Module) -> None:
    """torchvision's initialisation: He normal (fan_out) convs, BN γ=1, β=0. Nothing on
    the meta device, where there are no values (and where torch's normal_ would import
    the whole of torch._dynamo, seconds, to draw none)."""
    if next(module.parameters(recurse=False), torch.empty(0)).is_meta:
        return
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def emit(graph: Graph) -> fx.GraphModule:
    """The IR as a GraphModule whose state_dict keys are the IR's qualified names."""
    fxg = fx.Graph()
    values: dict[str, fx.Node] = {}
    modules: dict[str, nn.Module] = {}
    for n in graph:
        args = tuple(values[i] for i in n.inputs)
        hint = n.name.replace(".", "_")
        if n.op == "input":
            values[n.name] = fxg.placeholder(hint)
        elif (m := module(n)) is not None:
            modules[n.name] = m
            values[n.name] = fxg.call_module(n.name, args)
        else:
            fn, extra, kwargs = call(n)
            values[n.name] = fxg.create_node("call_function", fn, args + extra, kwargs,
                                             name=hint)
    fxg.output(values[graph.output.name])
    model = ArchdslModule(modules, fxg, class_name="ArchdslNet")
    model.apply(_init)
    model.archdsl_graph = graph  # lets analyses and the fusion executor read the IR back
    return model


def build_model(spec_or_graph: Spec | Graph) -> fx.GraphModule:
    """Build the module of a Spec or a lowered Graph (a spec file is the facade's to load:
    archdsl.build_model)."""
    if isinstance(spec_or_graph, Spec):
        from ..lower import lower

        spec_or_graph = lower(spec_or_graph)
    return emit(spec_or_graph)


def check_output(model: nn.Module, graph: Graph) -> None:
    """Run one image through ``model`` (on its device: the meta device checks shapes
    without computing) and check the shape the IR predicts."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        y = model(torch.zeros((1, *graph.input.shape), device=device))
    model.train(was_training)
    if tuple(y.shape[1:]) != graph.output.shape:
        raise RuntimeError(f"internal error: the built module outputs {tuple(y.shape[1:])}, "
                           f"the IR predicts {graph.output.shape}")
