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

from ..ir.features import feature_info, head_split, outputs, with_classes
from ..ir.graph import Graph, Node
from ..ir.ops import op
from ..spec.schema import Spec
from .nest import Op, Step, tree


class ArchdslModule(fx.GraphModule):
    """A ``torch.fx.GraphModule`` that keeps archdsl's attributes (``archdsl_graph``, the
    IR the fusion executor and the exporters read back; ``archdsl_applied``) through
    ``copy.deepcopy``, which rebuilds a GraphModule from its graph and drops them; and
    timm's classifier interface (``forward_features``, ``forward_head``,
    ``reset_classifier``), its parts module trees over the same submodules."""

    KEPT = ("archdsl_graph", "archdsl_applied", "archdsl_classifier", "feature_info",
            "pretrained_cfg", "default_cfg")

    def __deepcopy__(self, memo: dict[int, Any]) -> fx.GraphModule:
        res = super().__deepcopy__(memo)
        for key in self.KEPT:
            if key in self.__dict__:  # immutable (a frozen Graph, a tuple): shared
                setattr(res, key, self.__dict__[key])
        return res

    def _part(self, first: int, stop: int, inputs: list[str], output: str) -> fx.GraphModule:
        """The module tree of nodes ``first:stop`` over this module's own submodules
        (made once, kept out of the module tree: no parameter is registered twice)."""
        parts = self.__dict__.setdefault("_archdsl_parts", {})
        key = (first, stop, output)
        if key not in parts:
            nodes = self.archdsl_graph.nodes[first:stop]
            parts[key] = tree([Step(n.name, self.get_submodule(n.name), n.inputs)
                               for n in nodes], inputs, [output])
        return parts[key]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The map the head pools (after a final norm or conv, where the net has one)."""
        g = self.archdsl_graph
        pool, _ = head_split(g)
        return self._part(1, g.nodes.index(pool), [g.input.name], pool.inputs[0])(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on forward_features' map: the logits, or with ``pre_logits`` the pooled
        features the classifier reads, flattened."""
        g = self.archdsl_graph
        pool, fc = head_split(g)
        last = fc.inputs[0] if pre_logits and fc is not None else g.output.name
        end = next(k for k, n in enumerate(g.nodes) if n.name == last) + 1
        y = self._part(g.nodes.index(pool), end, [pool.inputs[0]], last)(x)
        return torch.flatten(y, 1) if y.dim() > 2 else y

    def reset_classifier(self, num_classes: int) -> None:
        """A new classifier of ``num_classes`` outputs (initialised as torchvision's), or
        for 0 none: the module then returns the pooled features."""
        g = self.archdsl_graph
        fc = head_split(g)[1] or self.__dict__.get("archdsl_classifier")
        new = with_classes(g, num_classes, fc)
        if fc is None:
            return
        self.archdsl_classifier = fc  # the node, to take back after a reset to 0
        m = module(new[fc.name]) if num_classes else nn.Identity()
        if num_classes:
            _init(m)
            m.to(next(self.parameters()).device)
        parent, _, leaf = fc.name.rpartition(".")
        setattr(self.get_submodule(parent), leaf, m)
        self.archdsl_graph = new
        self.__dict__.pop("_archdsl_parts", None)


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
    model = tree(steps(graph), [graph.input.name], outputs(graph), root=ArchdslModule,
                 class_name="ArchdslNet", listed=bool(graph.features))
    model.apply(_init)
    model.archdsl_graph = graph  # lets analyses and the fusion executor read the IR back
    model.feature_info = feature_info(graph)
    return model


def build_model(spec_or_graph: Spec | Graph, *, num_classes: int | None = None,
                features_only: bool = False, out_indices: tuple[int, ...] | None = None,
                output_stride: int | None = None) -> fx.GraphModule:
    """Build the module of a Spec or a lowered Graph (a spec file is the facade's to load:
    archdsl.build_model, which says what the options do; they need a Spec)."""
    if num_classes is not None or features_only or output_stride is not None:
        if not isinstance(spec_or_graph, Spec):
            raise TypeError("num_classes, features_only and output_stride take a spec or a "
                            "spec file, not a lowered graph")
        from ..load import respec

        update: dict[str, Any] = {}
        if num_classes is not None:
            update["head"] = {"classes": num_classes}
        if features_only:
            update["features"] = tuple(out_indices) if out_indices is not None else \
                tuple(range(len(spec_or_graph.stages) + 1))
        if output_stride is not None:
            update["output_stride"] = output_stride
        spec_or_graph = respec(spec_or_graph, **update)
    if isinstance(spec_or_graph, Spec):
        from ..lower import lower

        spec_or_graph = lower(spec_or_graph)
    return emit(spec_or_graph)


def check_output(model: nn.Module, graph: Graph) -> None:
    """Run one image through ``model`` (on its device: the meta device checks shapes
    without computing) and check the shapes the IR predicts (a backbone's maps)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        y = model(torch.zeros((1, *graph.input.shape), device=device))
    model.train(was_training)
    got = [tuple(t.shape[1:]) for t in (y if isinstance(y, list) else [y])]
    want = [graph[o].shape for o in outputs(graph)]
    if got != want:
        raise RuntimeError(f"internal error: the built module outputs {got}, the IR "
                           f"predicts {want}")
