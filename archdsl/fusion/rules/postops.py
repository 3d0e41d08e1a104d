"""Post-op fusions: an activation, a residual add, a pooling or a chain of element-wise
ops run as part of the conv (or norm) kernel that produces their input."""

from __future__ import annotations

from ...ir.ops import family_ops, op
from ..state import RuleUse, State
from .base import follow_act, is_activation, kernel_label, nodes_of, pointwise_ops, rule


@rule("conv_act", activations="activations", act_names="names")
def conv_act(st: State, use: RuleUse) -> None:
    """conv (+folded BN) → activation: one kernel with the activation as a post-op."""
    acts = use.options.get("activations", family_ops("activation"))
    names = use.options.get("act_names")
    for a in st.graph:
        if a.op not in acts:
            if op(a.op).family == "reduce" and a.inputs and st.conv_tail(a.inputs[0]) and \
                    st.producer(a).shape == a.shape:  # a softmax across channel groups
                st.refuse("conv_act", [a.inputs[0], a.name], f"{a.name} normalises across "
                          "channel groups, not element by element: no conv post-op, it runs "
                          "as kernels of its own")
            continue
        p = st.producer(a)
        if not st.conv_tail(p.name):
            continue
        st.fuse_if_only_reader("conv_act", p.name, a.name, kernel_label(use, a.op, names),
                               f" before the {a.op}")


@rule("conv_add_act", activations="activations", takes="activations", act_names="names")
def conv_add_act(st: State, use: RuleUse) -> None:
    """conv (+BN) → residual add (→ ReLU): the add is a sum post-op of the conv. With
    ``activations``, only where one of them follows the add (cuDNN's conv+add kernel always
    ends in ReLU); with ``takes``, the activations the kernel runs after the sum (another
    runs on its own: oneDNN's sum then ReLU only)."""
    acts, takes = use.options.get("activations"), use.options.get("takes")
    names = use.options.get("act_names")
    for d in nodes_of(st, "add"):
        fused = False
        after = follow_act(st, d.name)
        if after is not None and takes is not None and st.node(after).op not in takes:
            after = None
        if acts and (after is None or st.node(after).op not in acts):
            convs = [i for i in d.inputs if st.conv_tail(i)]
            if convs:
                st.refuse("conv_add_act", [convs[0], d.name], f"{d.name} is not followed "
                          f"by {' or '.join(acts)}: this kernel always ends in {acts[0]}")
            continue
        for i in d.inputs:
            if fused or not st.conv_tail(i):
                continue
            if st.consumers[i] != [d.name]:
                st.refuse("conv_add_act", [i, d.name], f"{i}'s output is also read by "
                          f"{st.others(i, d.name)}")
                continue
            st.merge([i, d.name, *([after] if after else [])], "conv_add_act",
                     kernel_label(use, st.node(after).op if after else None, names))
            fused = True


@rule("add_act")
def add_act(st: State, use: RuleUse) -> None:
    """add → ReLU: the add carries the activation (TFLite's fused_activation_function)."""
    for d in nodes_of(st, "add"):
        act = follow_act(st, d.name)
        if act and st.node(act).op == "relu":
            st.merge([d.name, act], "add_act", use.kernel)


@rule("conv_act_pool")
def conv_act_pool(st: State, use: RuleUse) -> None:
    """conv → ReLU → max-pool, as one kernel."""
    for m in nodes_of(st, "max_pool"):
        p = st.producer(m)
        members = st.members(p.name)
        if not is_activation(st, p.name) or not any(st.node(x).op == "conv2d" for x in members):
            continue
        st.fuse_if_only_reader("conv_act_pool", p.name, m.name, use.kernel)


@rule("bn_act", norms="ops", act_one_reader="flag", per_op="per_op")
def bn_act(st: State, use: RuleUse) -> None:
    """A BN that no conv absorbed, then ReLU (pre-activation nets): one pointwise kernel.
    ``norms`` names the norm ops it applies to (default: batch_norm); with
    ``act_one_reader`` only where one node reads the activation; ``per_op`` the
    kernels a norm brings besides the merged one (a group norm's reshapes)."""
    norms = use.options.get("norms", ["batch_norm"])
    for a in nodes_of(st, "relu"):
        b = st.producer(a)
        if b.op not in norms or len(st.members(b.name)) > 1:
            continue
        if use.options.get("act_one_reader") and len(st.consumers[a.name]) > 1:
            st.refuse("bn_act", [b.name, a.name], f"{a.name}'s output is read by "
                      f"{', '.join(st.consumers[a.name])}: this engine fuses an activation "
                      "into the norm only where one node reads it")
            continue
        st.fuse_if_only_reader("bn_act", b.name, a.name, use.kernel)
        if st.find(a.name) == st.find(b.name):  # the norm's own extra kernels stay
            st.extra.update(use.options.get("per_op", {}).get(b.op, []))


@rule("conv_post_ops", ops="ops", not_before="ops")
def conv_post_ops(st: State, use: RuleUse) -> None:
    """conv (+folded BN) → [residual add] → a chain of element-wise ops (activation, BN as
    a per-channel scale-shift, a constant scale, 1 − x): each becomes a post-op of the
    conv while the chain so far has no other reader; the add (a sum post-op) only first.
    An element-wise op whose only reader is a ``not_before`` op is not taken (OpenVINO's
    int8 model quantizes the input of x·σ(x) first); the sum is."""
    ops = set(use.options.get("ops", pointwise_ops(views=False) - {"add", "mul"}))
    before = set(use.options.get("not_before", ()))
    for conv in nodes_of(st, "conv2d"):
        tail = st.members(conv.name)[-1]
        if not st.conv_tail(tail):
            continue
        readers = st.consumers[tail]
        if len(readers) > 1 and any(st.node(r).op in ops | {"add"} for r in readers):
            st.refuse("conv_post_ops", [tail, *readers], f"{tail}'s output is read by "
                      f"{', '.join(readers)}: a post-op needs the only reader")
        chain: list[str] = []
        nxt, allowed = st.only_consumer(tail), ops | {"add"}  # a sum only as the first
        while nxt is not None and st.node(nxt).op in allowed and len(st.members(nxt)) == 1 \
                and (st.node(nxt).op == "add" or not st.read_only_by(nxt, before)):
            chain.append(nxt)
            nxt, allowed = st.only_consumer(nxt), ops
        if chain:
            last = chain[-1]
            st.merge([tail, *chain], "conv_post_ops",
                     kernel_label(use, st.node(last).op if is_activation(st, last) else None))
