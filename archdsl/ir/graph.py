"""The IR: a flat, topologically ordered graph of shaped primitive nodes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .ops import Shape, ShapeError, op


@dataclass(frozen=True, eq=False)
class Node:
    """One primitive op.

    ``name`` is unique and, for ops with parameters, the state_dict prefix
    (``layer1.0.conv1``). ``stage`` is ``stem``, ``layer1``… or ``head``;
    ``block`` is the residual block (``layer1.0``) or None outside blocks.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any]
    shape: Shape
    stage: str
    block: str | None = None

    @property
    def local(self) -> str:
        """The name inside its block (``conv1``, ``se.fc1``), or the full name outside."""
        return self.name[len(self.block) + 1:] if self.block else self.name

    @property
    def path(self) -> str:
        """Which part of its block the node is on: branch, shortcut, se or gate."""
        for prefix, path in (("downsample", "shortcut"), ("shortcut", "shortcut"),
                             ("se.", "se"), ("se_module.", "se"), ("gate.", "gate")):
            if self.block and self.local.startswith(prefix):
                return path
        return "branch"


@dataclass(frozen=True, eq=False)
class Graph:
    """A lowered model: its nodes in execution order (the first is the input), the
    kind of each residual block (``{"layer1.0": "bottleneck"}``), and the naming layout
    of its twin's modules (``torchvision``, ``timm_resnetv2``: archdsl.layouts)."""

    name: str
    nodes: tuple[Node, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    layout: str = "torchvision"
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
        self.kinds: dict[str, str] = {}
        # what bn() adds: the spec's norm kind, as an op and its attributes
        self.norm: tuple[str, dict[str, Any]] = ("batch_norm", {"eps": 1e-5})
        # anti-aliased downsampling: (kind, blur taps), or None for strided convs
        self.antialias: tuple[str, int] | None = None
        # weight standardisation of every conv without a bias: its ε, or None
        self.standardize: float | None = None
        self.add("input", "x", (), shape=tuple(input_shape))

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
        node = Node(name, op_name, inputs, attrs, tuple(shape), self.stage, self.block)
        self._nodes.append(node)
        self._shapes[name] = node.shape
        return name

    def conv(self, x: str, name: str, out: int, kernel: int, *, stride: int = 1,
             groups: int = 1, bias: bool = False, padding: int | None = None) -> str:
        """A 2-D convolution; padding defaults to kernel // 2 ("same" at stride 1). A conv
        without a bias standardises its weights where the spec says so (BiT's StdConv2d;
        SE's FCs and a conv classifier, with biases, keep plain weights)."""
        ws = {} if bias or self.standardize is None else {"standardize": self.standardize}
        return self.add("conv2d", name, (x,), in_channels=self._shapes[x][0],
                        out_channels=out, kernel=kernel, stride=stride,
                        padding=kernel // 2 if padding is None else padding,
                        groups=groups, bias=bias, **ws)

    def bn(self, x: str, name: str) -> str:
        """The spec's normalization (BatchNorm unless it says otherwise)."""
        op_name, attrs = self.norm
        return self.add(op_name, name, (x,), **attrs)

    def downsample(self, x: str, name: str) -> str:
        """The anti-aliased stride 2 after a conv run at stride 1: a blur or a 2x2 avg."""
        assert self.antialias is not None
        kind, size = self.antialias
        if kind == "blur":
            return self.add("blur_pool", name, (x,), size=size, stride=2)
        return self.add("avg_pool", name, (x,), kernel=2, stride=2, padding=0,
                        ceil_mode=False, count_include_pad=True)

    def act(self, x: str, name: str, kind: str = "relu") -> str:
        """An activation; a ReLU straight after a norm that carries its own (EvoNorm-S0,
        FRN: attribute ``act``) is that norm's: it applies it, and no node is added."""
        last = self._nodes[-1]
        if kind == "relu" and last.name == x and last.attrs.get("act") is False:
            self._nodes[-1] = replace(last, attrs={**last.attrs, "act": True})
            return x
        return self.add(kind, name, (x,))

    def build(self) -> Graph:
        return Graph(self.name, tuple(self._nodes), dict(self.kinds))
