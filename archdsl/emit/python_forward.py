"""The forward of a generated block class (one line per IR node of a representative
block, the shortcut's source and the attention's, gate's and shortcut's locals named by
role) and the end of the network's (generated Python, archdsl.emit.python)."""

from __future__ import annotations

from ..ir.features import features
from ..ir.graph import Graph, Node
from ..ir.ops import op
from .python_channels import attr_path


def identity_reads(members: list[list[Node]], rep: list[Node]) -> str | None:
    """The local name of the node an identity shortcut reads where it is not the block's
    input (a pre-activation RegNet's norm1 and activation), in ``rep``'s names."""
    for nodes in members:
        if any(n.role == "shortcut" for n in nodes):
            continue
        names = {n.name: n for n in nodes}
        adds = [n for n in nodes if n.op == "add" and n.role == "branch"]
        read = adds[-1].inputs[1] if adds else None
        if read in names and names[read].role == "branch":
            local = names[read].local
            return next((n.name for n in rep if n.local == local), None)
    return None


def block_forward(rep: list[Node], proj: list[Node], x: str, identity: str | None = None,
                  exprs: dict[str, dict[str, str]] | None = None) -> list[str]:
    """``exprs``: attributes of a node written as expressions over the class's arguments
    (a slice's bounds). A value stays ``out`` only where the next node on the branch is
    its one reader; else it has a name of its own (Res2Net's splits, SKNet's paths)."""
    consumers: dict[str, list[str]] = {}
    for n in rep:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n.name)
    chain = [n.name for n in rep if n not in proj and n.role != "shortcut"]
    after = dict(zip(chain, chain[1:], strict=False))
    var = {x: "x"}
    op_of = {n.name: n.op for n in rep}
    lines: list[str] = []
    shortcut_done = False
    for n in rep:
        if n in proj:
            if not shortcut_done:
                src = var[proj[0].inputs[0]]
                if proj[0].op == "pad_channels":
                    expr = (f"F.pad({src}[:, :, :: self.stride, :: self.stride], "
                            "(0, 0, 0, 0, 0, self.extra))")
                    lines.append(f"shortcut = {expr} if self.project else x")
                else:
                    same = var[identity] if identity else "x"
                    lines.append(f"shortcut = {same} if self.downsample is None else "
                                 f"self.downsample({src})")
                shortcut_done = True
            var[n.name] = "shortcut"
            continue
        ins = [var[i] for i in n.inputs]
        if n.role == "shortcut":  # scale or dropout on the shortcut
            if not shortcut_done:
                lines.append(f"shortcut = {ins[0]}")
                ins, shortcut_done = ["shortcut"], True
            name = "shortcut"
        elif n.role == "attention" and n.op != "mul":
            name = "s"
        elif n.role == "gate" and n.op == "one_minus":
            name = "keep"
        elif n.role == "gate" and n.op == "mul" and op_of.get(n.inputs[0]) == "one_minus":
            name = "shortcut"  # (1 - g)·shortcut
        elif n.role == "gate" and n.op != "mul":  # the gate's conv and sigmoid
            name = "g"
        else:
            readers = consumers.get(n.name, [])
            name = "out" if not readers or readers == [after.get(n.name)] else \
                n.local.replace(".", "_")
        d = op(n.op)
        call = d.py_call.format(*ins, module=attr_path(n.local)) if d.py_expr is None else \
            d.py_expr.format(*ins, inputs=", ".join(ins),
                             **{**n.attrs, **(exprs or {}).get(n.name, {})})
        lines.append(f"{name} = {call}")
        var[n.name] = name
    last = var[rep[-1].name]
    lines.append(f"return {last}")
    return lines


def network_return(forward: list[str], graph: Graph, containers: dict[str, list[str]]
                   ) -> list[str]:
    """The network's forward (``x = self.attr(x)`` a line) ending in its return: of the
    last value, or for a backbone of its feature maps, a container holding one called
    member by member."""
    if not graph.features:
        return forward[:-1] + [forward[-1].replace("x = ", "return ", 1)]
    modules = {f.module for f in features(graph) if f.node in graph.features}
    lines = ["feats = []"]
    for line in forward:
        attr = line.removeprefix("x = self.").partition("(")[0]
        inside = [m for m in modules if m.startswith(attr + ".")]
        if inside:
            for i, member in enumerate(containers[attr]):
                lines.append(f"x = self.{attr}[{i}](x)")
                lines += ["feats.append(x)"] if member in graph.features else []
        else:
            lines += [line] + (["feats.append(x)"] if attr in modules else [])
    return [*lines, "return feats"]
