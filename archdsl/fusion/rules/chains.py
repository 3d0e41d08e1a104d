"""Engine-specific chains: generated element-wise kernels (Inductor, OpenVINO), a sum's
operands, plain-layout ops between blocked ones, and paddings joined to their reader."""

from __future__ import annotations

from ..state import RuleUse, State
from .base import nodes_of, pointwise_ops, rule


def _kernel_ops(st: State, name: str) -> set[str]:
    """The ops of the nodes that run in ``name``'s kernel."""
    return {st.node(m).op for m in st.members(name)}


def _count_of(st: State, name: str, ops: set[str]) -> int:
    """How many nodes of ``name``'s kernel are one of ``ops``."""
    return sum(st.node(m).op in ops for m in st.members(name))


@rule("pointwise_chain", ops="ops", heads="ops", ends="ops", once="ops",
      shared_heads="flag", all_inputs="flag", per_op="per_op", not_before="ops")
def pointwise_chain(st: State, use: RuleUse) -> None:
    """Element-wise ops run as one generated kernel: a kernel of ``ops`` joins the kernel
    that produces its input when it is that output's only reader and that kernel holds
    only ``ops`` (or a ``heads`` op, such as a pooling whose epilogue it becomes); an
    ``ends`` op (a reduction) may close the chain. With ``all_inputs`` every such producer
    joins (Inductor), else the first (OpenVINO's Eltwise chains); with ``shared_heads`` a
    pooling head joins its first reader even where later ones read its output too
    (Inductor's kernel then writes both results); a kernel holds at most one
    ``once`` op (a group norm: a reduction and its normalisation). ``per_op`` names the
    kernels the engine adds for each such op inside a chain (a constant's reorder); an op
    whose only reader is a ``not_before`` op joins no producer (OpenVINO's int8 model
    quantizes the input of x·σ(x) first)."""
    ops = set(use.options.get("ops", pointwise_ops(views=False)))
    heads, ends = set(use.options.get("heads", [])), set(use.options.get("ends", []))
    once, before = set(use.options.get("once", [])), set(use.options.get("not_before", []))
    merged: list[str] = []
    for n in st.graph:
        if not st.only_of(n.name, ops | ends) or st.read_only_by(n.name, before):
            continue
        for i in n.inputs:
            if st.find(i) == st.find(n.name) or not st.only_of(i, ops | heads):
                continue
            shared = (use.options.get("shared_heads") and st.only_of(i, heads)
                      and st.consumers[i][0] == n.name)
            if st.consumers[i] != [n.name] and not shared:
                st.refuse("pointwise_chain", [i, n.name], f"{i}'s output is also read by "
                          f"{st.others(i, n.name)}")
                continue
            if _count_of(st, i, once) + _count_of(st, n.name, once) > 1:
                st.refuse("pointwise_chain", [i, n.name], f"{i} and {n.name} would put two "
                          f"of {', '.join(sorted(once))} in one kernel: each is a reduction "
                          "of its own")
                continue
            st.merge([i, n.name], "pointwise_chain", use.kernel)
            merged.append(n.name)
            if not use.options.get("all_inputs"):
                break
    for root in {st.find(n) for n in merged}:
        for m in st.members(root):
            st.extra.update(use.options.get("per_op", {}).get(st.node(m).op, []))


@rule("sum_operands", ops="ops")
def sum_operands(st: State, use: RuleUse) -> None:
    """The two generated kernels that feed one conv with a sum post-op, its input (such
    as ResNet-D's pooled shortcut) and its summand (such as an SE or ECA scale), run as
    one kernel where the conv is the input's only reader: Inductor's C++ scheduler emits
    them together, just before that conv."""
    gen = set(use.options.get("ops", pointwise_ops(views=False)))
    for d in nodes_of(st, "add"):
        conv = next((m for m in st.members(d.name) if st.node(m).op == "conv2d"), None)
        if conv is None:
            continue
        x = st.node(conv).inputs[0]
        z = next((i for i in d.inputs if st.find(i) != st.find(d.name)), None)
        if z is None or st.find(x) == st.find(z):
            continue
        if st.consumers[x] != [conv] or st.consumers[z] != [d.name]:
            continue  # computed earlier, for another reader too (a stem's max-pool, a
            # pre-activation that a RegNetV block's conv1 reads as well as its shortcut)
        if st.only_of(x, gen) and st.only_of(z, gen):
            st.merge([x, z], "sum_operands", use.kernel)


@rule("plain_layout", needs=("ops",), ops="ops")
def plain_layout(st: State, use: RuleUse) -> None:
    """OpenVINO's CPU plugin runs some nodes only in the plain NCHW layout (``ops``: a
    group norm's MVN), and element-wise kernels (or a global pool) reading them stay
    plain, while convolutions run channels-last: each change of layout is a ``kernel``
    (Reorder). A conv's (or a pool of one's) output read by a plain kernel; a plain tensor
    read by convs (once a tensor); a pooling reading a plain tensor (in, and out to its
    convs). A flatten of a plain tensor needs none of its usual Reorder."""
    plain_ops, pools = set(use.options["ops"]), {"max_pool", "avg_pool"}
    plain: set[str] = set()
    for n in st.graph:  # in topological order: a kernel's inputs are decided first
        root = st.find(n.name)
        if root in plain:
            continue
        ops = _kernel_ops(st, root)
        ins = [i for m in st.members(root) for i in st.node(m).inputs if st.find(i) != root]
        if ops & plain_ops or (ops <= {*pointwise_ops(views=False), "global_avg_pool"} and
                               any(st.find(i) in plain for i in ins)):
            plain.add(root)
    reordered: set[tuple[str, str]] = set()
    for n in st.graph:
        for i in n.inputs:
            src, dst = st.find(i), st.find(n.name)
            if src == dst:
                continue
            dst_ops, src_ops = _kernel_ops(st, dst), _kernel_ops(st, src)
            if src in plain and "conv2d" in dst_ops:
                reordered.add((i, "conv"))
            elif src in plain and dst_ops & pools:
                reordered.update({(i, "pool"), (n.name, "conv")})
            elif dst in plain and ("conv2d" in src_ops or src_ops & pools):
                reordered.add((i, "plain"))  # from a conv's layout (a pool keeps its input's)
            elif src in plain and "flatten" in dst_ops:
                st.extra[use.kernel] -= 1  # the tensor is plain already
    st.extra[use.kernel] += len(reordered)


@rule("pad_joins", needs=("ops",), ops="ops")
def pad_joins(st: State, use: RuleUse) -> None:
    """A blur's reflect padding is index arithmetic: Inductor computes it inside the
    generated kernel that produces the blur's input (a stride-1 max-pool) when the blur
    is that kernel's only reader, instead of as a ``kernel`` of its own (the profile's
    ``ops`` count one per blur)."""
    gen = set(use.options["ops"])
    for n in nodes_of(st, "blur_pool"):
        p = n.inputs[0]
        if st.consumers[p] == [n.name] and st.only_of(p, gen):
            st.extra[use.kernel] -= 1
