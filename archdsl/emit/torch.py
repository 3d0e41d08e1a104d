"""The torch emitter: a tree of ``torch.fx.GraphModule``s generated straight from the IR.

Every node is a submodule at its qualified name (the state_dict prefixes; an op without
parameters as an :class:`~archdsl.emit.nest.Op`), and stages, blocks and their named
parts are submodules in run order (archdsl.emit.nest), so a call runs exactly the IR's
ops with no interpretation and the module has the shape a hand-written twin has.
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
from .nest import Op, Step, tree


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


def steps(graph: Graph) -> list[Step]:
    """Each IR node after the input as a named step: its module, or its call as an Op."""
    out = []
    for n in graph.nodes[1:]:
        m = module(n)
        if m is None:
            fn, extra, kwargs = call(n)
            m = Op(fn, extra, kwargs)
        out.append(Step(n.name, m, n.inputs))
    return out


def emit(graph: Graph) -> fx.GraphModule:
    """The IR as a module tree (archdsl.emit.nest) whose state_dict keys are the IR's
    qualified names."""
    model = tree(steps(graph), [graph.input.name], graph.output.name, root=ArchdslModule,
                 class_name="ArchdslNet")
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
