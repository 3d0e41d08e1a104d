"""Standalone PyTorch source from the IR, rendered with jinja2 templates.

The model class reads like torchvision's: its ``__init__`` lists the stem, each stage as
a ``nn.Sequential`` of block instances, and the head. Each block kind becomes one class
(named and documented as its family registered it) whose modules and forward are read
off the IR of one of its blocks by role, with channel counts, strides and groups turned
back into the class's arguments; each module and expression is the ops table's rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import __version__
from ..analysis.counts import count
from ..blocks import BLOCKS
from ..blocks.registry import PyClass
from ..ir.graph import Graph, Node
from ..ir.ops import PyArgs, op
from ..layouts import LAYOUTS
from .jinja import environment
from .python_channels import Args, Expr, assign, containers, holds, solve
from .python_forward import block_forward, identity_reads, network_return

WIDTH = 88  # ruff's default line length, so the file is clean under any configuration


def _call(head: str, args: list[str]) -> str:
    return f"{head}({', '.join(args)})"


def _split_args(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur.strip()] if p]


def wrap(line: str) -> list[str]:
    """Split a call that is longer than WIDTH one argument per line, as ruff format would."""
    if len(line) <= WIDTH or "(" not in line:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    start = line.index("(")
    depth = 0
    for end in range(start, len(line)):
        depth += {"(": 1, ")": -1}.get(line[end], 0)
        if depth == 0:
            break
    args = _split_args(line[start + 1:end])
    if len(args) < 1 or end == start + 1:
        return [line]
    inner = indent + "    "
    out = [line[: start + 1]]
    for a in args:
        out += wrap(f"{inner}{a},")
    out.append(f"{indent}{line[end:]}")
    return out


def _module(n: Node, ch: dict[str, str], stride: str | None = None,
            groups: str | None = None, classes: str | None = None,
            top: bool = False) -> list[str]:
    """Class and constructor arguments of ``n`` (the ops table's rendering); ``ch`` maps
    tensors to channel expressions."""
    render = op(n.op).python
    if render is None:
        raise NotImplementedError(f"{n.name}: the ops table has no Python rendering of "
                                  f"op {n.op!r} as a module")
    inp = ch[n.inputs[0]] if n.inputs else ""
    return render(n.attrs, PyArgs(inp, classes or ch[n.name], stride, groups, top))


def _as_module(n: Node) -> bool:
    """Whether generated Python runs ``n`` as a module (it has no expression form)."""
    return op(n.op).py_expr is None


@dataclass
class _Block:
    cls: str
    doc: str
    inner: bool
    groups: bool
    se: bool
    first: bool = False  # the first 1x1's width differs from the 3x3's (reduce_first, pruned)
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    # channel counts no expression over the other arguments gives: each block's own
    extra: dict[str, dict[str, int]] = field(default_factory=dict)  # arg -> block -> value


def _squeeze(nodes: list[Node]) -> Node | None:
    """SE's squeeze among a block's nodes (its first conv), if the block has SE."""
    return next((n for n in nodes if n.part == "se" and n.op == "conv2d"), None)


def _first_differs(nodes: list[Node]) -> bool:
    """Whether a bottleneck's first 1x1 outputs another width than its 3x3 (one without
    a construct in the 3x3's place, whose widths are the inner width's multiples)."""
    convs = [n for n in nodes if n.op == "conv2d" and n.role == "branch"]
    return len(convs) == 3 and not any(n.part for n in convs) and \
        convs[0].attrs["out_channels"] != convs[1].attrs["out_channels"]


def _py_class(kind: str) -> PyClass:
    """The generated class of a block kind, as its family registered it."""
    py = BLOCKS[kind].python
    if py is None:
        raise NotImplementedError(f"block kind {kind!r} registered no generated-Python class")
    return py


def _signature(kind: str, nodes: list[Node]) -> tuple:
    keep = ("kernel", "padding", "bias", "factor", "p", "standardize", "act", "groups")
    # a projection wider than 1x1 (SENet-154's 3x3 where strided) is a class of its own
    wide = max((n.attrs["kernel"] for n in nodes if n.role == "shortcut" and n.op == "conv2d"),
               default=1)
    return (kind, _first_differs(nodes), wide if wide > 1 else None,
            tuple((n.local, n.op, tuple((k, n.attrs[k]) for k in keep if k in n.attrs))
                  for n in nodes if n.role != "shortcut"))


def _args(graph: Graph, nodes: list[Node], kind: str) -> dict[str, int | bool]:
    first = graph[nodes[0].inputs[0]]
    convs = [n for n in nodes if n.op == "conv2d" and n.role == "branch"]
    args: dict[str, int | bool] = {"in_channels": first.shape[0],
                                   "out_channels": nodes[-1].shape[0]}
    if _py_class(kind).inner:
        # the 3x3's width; where a construct stands in its place, the first 1x1's
        args["inner"] = convs[0 if any(c.part for c in convs) else 1].attrs["out_channels"]
        if _first_differs(nodes):
            args["first"] = convs[0].attrs["out_channels"]
    args["stride"] = max(n.attrs.get("stride", 1) for n in nodes)
    groups = max(c.attrs["groups"] for c in convs)
    if groups > 1:
        args["groups"] = groups
    se = _squeeze(nodes)
    if se:
        args["se_channels"] = se.attrs["out_channels"]
    args["project"] = any(n.role == "shortcut" and n.op != "scale" and n.op != "dropout"
                          for n in nodes)
    return args


def _int_args(graph: Graph, nodes: list[Node], kind: str) -> Args:
    return {k: int(v) for k, v in _args(graph, nodes, kind).items() if k != "project"}


def _channels(graph: Graph, kind: str, members: list[list[Node]], rep: list[Node],
              guess: dict[str, str], b: _Block) -> dict[str, str]:
    """Each tensor's channels in ``rep`` as an expression over the class's arguments: the
    guess by role where it holds in every member, else one solved from the members'
    values, else an argument of its own (``b.extra``)."""
    args = [_int_args(graph, m, kind) for m in members]
    local = [{n.local: n for n in m} for m in members]
    ch = {rep[0].inputs[0]: "in_channels"}
    for n in rep:
        have = [(a, loc[n.local].shape[0]) for a, loc in zip(args, local, strict=True)
                if n.local in loc]
        sub_args, values = [a for a, _ in have], [v for _, v in have]
        expr = Expr(guess[n.name]) if guess[n.name] in sub_args[0] else None
        if expr is None or not holds(expr, values, sub_args):
            expr = solve(values, sub_args)
        if expr is None:
            arg = f"{n.local.replace('.', '_')}_channels"
            b.extra[arg] = {m[0].block or "": loc[n.local].shape[0]
                            for m, loc in zip(members, local, strict=True) if n.local in loc}
            for a, loc in zip(args, local, strict=True):
                a[arg] = loc[n.local].shape[0] if n.local in loc else 0
            expr = Expr(arg)
        ch[n.name] = expr.text()
    return ch


def _slices(graph: Graph, kind: str, members: list[list[Node]], rep: list[Node],
            b: _Block) -> dict[str, dict[str, str]]:
    """A slice's bounds as expressions over the class's arguments, which the block keeps
    (``self.inner = inner``) for its forward."""
    args = [_int_args(graph, m, kind) for m in members]
    out: dict[str, dict[str, str]] = {}
    for n in rep:
        if n.op != "slice":
            continue
        nodes = [next(x for x in m if x.local == n.local) for m in members]
        bounds = {}
        for key in ("start", "stop"):
            expr = solve([x.attrs[key] for x in nodes], args)
            if expr is None:
                raise NotImplementedError(f"{n.name}: no expression gives its {key} in "
                                          "every block of its class")
            bounds[key] = expr.text("self.")
            keep = f"self.{expr.name} = {expr.name}"
            if expr.name and keep not in b.init:
                b.init.append(keep)
        out[n.name] = bounds
    return out


def _block_class(graph: Graph, kind: str, members: list[list[Node]], cls: str) -> _Block:
    """One class for blocks of one kind and structure, read off a representative."""
    rep = max(members, key=lambda ns: (sum(n.role == "shortcut" for n in ns),
                                       max(n.attrs.get("stride", 1) for n in ns)))
    args = _args(graph, rep, kind)
    b = _Block(cls, _py_class(kind).doc + ".", "inner" in args, "groups" in args,
               "se_channels" in args, "first" in args)
    x = rep[0].inputs[0]
    branch = [n for n in rep if n.op == "conv2d" and n.role == "branch"]
    squeeze = _squeeze(rep)
    guess = {x: "in_channels"}
    scaled = next((n.inputs[0] for n in rep if n.role == "attention"), None)
    for n in rep:
        if n.op == "conv2d":
            guess[n.name] = (
                "se_channels" if n is squeeze else
                guess[scaled] if n.role == "attention" else  # the width the attention scales
                "first" if b.first and n is branch[0] else
                "inner" if b.inner and n.role == "branch" and n is not branch[-1]
                else "out_channels")
        else:
            guess[n.name] = guess[n.inputs[0]]
    ch = _channels(graph, kind, members, rep, guess, b)
    strided = args["stride"] > 1
    proj = [n for n in rep if n.role == "shortcut" and n.op not in ("scale", "dropout")]
    made: set[str] = set()
    for n in rep:
        if n.role == "shortcut" or not _as_module(n):
            continue
        s = "stride" if strided and n.attrs.get("stride") == args["stride"] else None
        g = "groups" if n.attrs.get("groups", 1) == args.get("groups") else None
        head, *rest = _module(n, ch, s, g)
        b.init += [*containers(n.local, made), assign(n.local, _call(head, rest))]
    pad = [n for n in proj if n.op == "pad_channels"]
    if pad:
        b.init += ["self.stride = stride", "self.extra = out_channels - in_channels",
                   "self.project = project"]
    elif proj:
        items: dict[str, str] = {}
        for n in proj:
            key = n.local.split(".", 1)[1]
            if n.op == "avg_pool":
                items[key] = ("nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)"
                              " if stride > 1 else nn.Identity()")
            else:
                s = "stride" if n.attrs.get("stride", 1) > 1 else None
                head, *rest = _module(n, ch, s)
                items[key] = _call(head, rest)
        if all(k.isdigit() for k in items):
            seq = [f"{items.get(str(i), 'nn.Identity()')},"
                   for i in range(max(map(int, items)) + 1)]
        else:
            seq = ["OrderedDict(", "    [",
                   *[f'        ("{k}", {v}),' for k, v in items.items()], "    ]", "),"]
        b.init.append("self.downsample = (")
        b.init.append("    nn.Sequential(")
        b.init += [f"        {s}" for s in seq]
        b.init.append("    )")
        b.init.append("    if project")
        b.init.append("    else None")
        b.init.append(")")
    b.forward = block_forward(rep, proj, x, identity_reads(members, rep),
                              _slices(graph, kind, members, rep, b))
    return b


def _top_module(n: Node, graph: Graph) -> str:
    ch = {i: str(graph[i].shape[0]) for i in n.inputs}
    ch[n.name] = str(n.shape[0])
    fc = n.part == "classifier"
    head, *rest = _module(n, ch, classes="num_classes" if fc else None, top=True)
    return _call(head, rest)


def _renames(graph: Graph) -> dict[str, str]:
    """Each module with weights: its canonical name -> the layout's."""
    return {graph.canonical[n.name]: n.name for n in graph
            if op(n.op).params(n.attrs, [graph[i].shape for i in n.inputs])}


def to_python(graph: Graph, source: str) -> str:
    """The model as a standalone PyTorch file: modules under the layout's names, or,
    for a layout whose module tree its classes don't build (RegNet's), under the IR's
    canonical names with the state_dict keys renamed to the layout's."""
    layout = graph.layout
    renames = {} if LAYOUTS[layout].python_names else _renames(graph)
    if renames:
        graph = graph.in_canonical_names()
    blocks = graph.blocks()
    variants: dict[tuple, list[str]] = {}
    for name, nodes in blocks.items():
        variants.setdefault(_signature(graph.kinds[name], nodes), []).append(name)
    classes: dict[str, str] = {}
    extras: dict[str, dict[str, dict[str, int]]] = {}  # class -> its extra args' values
    block_defs: list[_Block] = []
    used: dict[str, int] = {}
    for sig, names in variants.items():
        kind = sig[0]
        used[kind] = used.get(kind, 0) + 1
        cls = _py_class(kind).name + ("" if used[kind] == 1 else str(used[kind]))
        block_defs.append(_block_class(graph, kind, [blocks[n] for n in names], cls))
        extras[cls] = block_defs[-1].extra
        for n in names:
            classes[n] = cls
    init: list[str] = []
    forward: list[str] = []
    containers: dict[str, list[str]] = {}
    ordered = False
    stage_class = False
    seen: list[str] = []
    for n in graph:
        if n.op == "input":
            continue
        if n.block:
            parts = n.block.split(".")
            attr = parts[0]
            if attr not in seen:
                seen.append(attr)
                forward.append(f"x = self.{attr}(x)")
            continue
        attr = n.name.split(".")[0]
        if attr not in seen:
            seen.append(attr)
            forward.append(f"x = self.{attr}(x)")
        containers.setdefault(attr, []).append(n.name)
    # stage containers
    stage_lines: dict[str, list[str]] = {}
    for name in blocks:
        parts = name.split(".")
        a = _args(graph, blocks[name], graph.kinds[name])
        a.update((k, v[name]) for k, v in extras[classes[name]].items())
        call = f"{classes[name]}(" + ", ".join(
            [str(a["in_channels"]), str(a["out_channels"])]
            + [f"{k}={v}" for k, v in a.items()
               if k not in ("in_channels", "out_channels") and not (k == "stride" and v == 1)
               and not (k == "project" and not v)]) + ")"
        if len(parts) == 2:  # layerN.j
            stage_lines.setdefault(parts[0], []).append(call)
        else:  # stages.i.blocks.j
            stage_class = True
            stage_lines.setdefault(f"{parts[0]}.{parts[1]}", []).append(call)
    for attr in seen:
        if attr in containers:
            names = containers[attr]
            if len(names) == 1 and names[0] == attr:
                init.append(f"self.{attr} = {_top_module(graph[attr], graph)}")
                continue
            subs = {nm.split(".", 1)[1]: _top_module(graph[nm], graph) for nm in names}
            if all(k.isdigit() for k in subs):
                init.append(f"self.{attr} = nn.Sequential(")
                init += [f"    {subs.get(str(i), 'nn.Identity()')},"
                         for i in range(max(map(int, subs)) + 1)]
            else:
                ordered = True
                init.append(f"self.{attr} = nn.Sequential(")
                init.append("    OrderedDict(")
                init.append("        [")
                init += [f'            ("{k}", {v}),' for k, v in subs.items()]
                init.append("        ]")
                init.append("    )")
            init.append(")")
        elif stage_class:
            init.append(f"self.{attr} = nn.Sequential(")
            for calls in stage_lines.values():
                init.append("    Stage(")
                init += [f"        {c}," for c in calls]
                init.append("    ),")
            init.append(")")
        else:
            init.append(f"self.{attr} = nn.Sequential(")
            init += [f"    {c}," for c in stage_lines[attr]]
            init.append(")")
    forward = network_return(forward, graph, containers)
    env = environment(html=False)
    c, h, w = graph.input.shape
    ops = graph.count_ops()
    fc = graph.output if graph.output.op == "linear" else graph[graph.output.inputs[0]]
    context = dict(
        name=graph.name, version=__version__, source=source, ordered=ordered,
        blur="blur_pool" in ops, evonorm="evonorm_s0" in ops, frn="frn" in ops,
        **{k: any(a in n.attrs for n in graph) for k, a in (
            ("std_conv", "standardize"), ("frozen_bn", "frozen"), ("avg_same", "same"))},
        blocks=block_defs, stage_class=stage_class, input=f"{c}x{h}x{w}",
        renames=list(renames.items()), layout=layout,
        params=f"{count(graph).total.params:,}",
        classes=fc.attrs.get("out_features") or fc.attrs.get("out_channels"),
        returns="list[torch.Tensor]" if graph.features else "torch.Tensor",
        init=init, forward=forward)
    template = env.get_template("model.py.j2")
    text = template.render(functional=False, **context)
    if "F." in text:  # import torch.nn.functional only where the source calls it
        text = template.render(functional=True, **context)
    return "\n".join(w for line in text.split("\n") for w in wrap(line))
