"""The IR: a flat, topologically ordered graph of shaped primitive nodes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .ops import Shape, ShapeError, op

# where a node sits: outside the blocks (stem, head), or on one of a block's paths
ROLES = ("stem", "branch", "shortcut", "attention", "gate", "head")


@dataclass(slots=True, eq=False)
class Node:
    """One primitive op.

    ``name`` is unique and, for ops with parameters, the state_dict prefix
    (``layer1.0.conv1``). ``stage`` is ``stem``, ``layer1``… or ``head``;
    ``block`` is the residual block (``layer1.0``) or None outside blocks. ``role`` is
    the part of the network the node is on, set by the lowering that made it (ROLES), and
    ``part`` the construct within that role where there are several (an attention's kind,
    ``se`` or ``eca``; a gate's form; the head's ``classifier``; on the branch, a construct
    in a conv's place: ``split_attn``, ``sk``, ``res2net``, its attention sharing it); a
    layout's renaming never touches either. Nodes are never changed once made (a slotted
    class: a frozen one makes a design-space sampler a fifth slower).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any]
    shape: Shape
    stage: str
    block: str | None = None
    role: str = "stem"
    part: str | None = None

    @property
    def local(self) -> str:
        """The name inside its block (``conv1``, ``se.fc1``), or the full name outside."""
        return self.name[len(self.block) + 1:] if self.block else self.name


@dataclass(frozen=True, eq=False)
class Graph:
    """A lowered model: its nodes in execution order (the first is the input), the
    kind of each residual block (``{"layer1.0": "bottleneck"}``), and the naming layout
    of its twin's modules (``torchvision``, ``timm_resnetv2``: archdsl.layouts), where
    the layout renamed them each node's, block's and stage's canonical name, and for a
    backbone the nodes whose maps it returns (archdsl.ir.features)."""

    name: str
    nodes: tuple[Node, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    layout: str = "torchvision"
    canonical: dict[str, str] = field(default_factory=dict)  # a layout's name -> the IR's
    features: tuple[str, ...] = ()  # a backbone's outputs, its feature maps (ir.features)
    _index: dict[str, Node] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n.name: n for n in self.nodes})

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        return self._index[name]

    @property
    def input(self) -> Node:
        return self.nodes[0]

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def in_canonical_names(self) -> Graph:
        """This graph with the IR's own (torchvision) names back."""
        if not self.canonical:
            return self
        c = self.canonical
        nodes = tuple(Node(c[n.name], n.op, tuple(c[i] for i in n.inputs), n.attrs, n.shape,
                           c.get(n.stage, n.stage), c[n.block] if n.block else None, n.role,
                           n.part) for n in self.nodes)
        return Graph(self.name, nodes, {c[k]: v for k, v in self.kinds.items()},
                     features=tuple(c[f] for f in self.features))

    def blocks(self) -> dict[str, list[Node]]:
        """Each residual block's nodes, blocks in order."""
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            if n.block:
                out.setdefault(n.block, []).append(n)
        return out

    def count_ops(self) -> dict[str, int]:
        """How many nodes of each op the graph holds."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts


class GraphBuilder:
    """Appends nodes in order, computing each output shape from the ops table."""

    def __init__(self, name: str, input_shape: Shape) -> None:
        self.name = name
        self._nodes: list[Node] = []
        self._shapes: dict[str, Shape] = {}
        self.stage = "stem"
        self.block: str | None = None
        # the role and part of the nodes added now (Node.role, Node.part): scope() sets them
        self.role, self.part = "stem", None
        self.kinds: dict[str, str] = {}
        self.add("input", "x", (), shape=tuple(input_shape))

    @contextmanager
    def scope(self, role: str, part: str | None = None) -> Iterator[None]:
        """Nodes added inside are on ``role`` (one of ROLES), as ``part``."""
        assert role in ROLES, role
        outer = self.role, self.part
        self.role, self.part = role, part
        try:
            yield
        finally:
            self.role, self.part = outer

    def shape(self, name: str) -> Shape:
        return self._shapes[name]

    def add(self, op_name: str, name: str, inputs: tuple[str, ...], **attrs: Any) -> str:
        """Append one node and return its name (the handle later nodes read)."""
        if name in self._shapes:
            raise ValueError(f"duplicate node name {name!r}")
        ins = [self._shapes[i] for i in inputs]
        try:
            shape = op(op_name).shape(attrs, ins)
        except ShapeError as exc:
            raise ShapeError(f"{name} ({op_name}): {exc}", exc.field) from None
        node = Node(name, op_name, inputs, attrs, tuple(shape), self.stage, self.block,
                    self.role, self.part)
        self._nodes.append(node)
        self._shapes[name] = node.shape
        return name

    def conv(self, x: str, name: str, out: int, kernel: int, *, stride: int = 1,
             groups: int = 1, bias: bool = False, padding: int | None = None,
             **extra: Any) -> str:
        """A 2-D convolution; padding defaults to kernel // 2 ("same" at stride 1);
        ``extra``: optional attributes (ops.OPTIONAL_ATTRS)."""
        return self.add("conv2d", name, (x,), in_channels=self._shapes[x][0],
                        out_channels=out, kernel=kernel, stride=stride,
                        padding=kernel // 2 if padding is None else padding,
                        groups=groups, bias=bias, **extra)

    def act(self, x: str, name: str, kind: str = "relu") -> str:
        """An activation (``relu``, ``sigmoid``)."""
        return self.add(kind, name, (x,))

    def build(self) -> Graph:
        return Graph(self.name, tuple(self._nodes), dict(self.kinds))
