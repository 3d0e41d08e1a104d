"""Merges across the graph: convs that read one tensor run as one wider conv, convs whose
results are summed as one conv over their concatenated inputs, SE's scale
and add as one multiply-add, SE's FCs as convs, grouped paths as one grouped conv, the
slices of one tensor as one split."""

from __future__ import annotations

from itertools import pairwise

from ..state import Group, RuleUse, State
from .base import conv_desc, follow_act, is_activation, nodes_of, rule


def _activation_after(st: State, conv: str) -> str:
    """The activation a conv's kernel ends with: the op right after it (through a BN)."""
    name = conv
    nxt = st.only_consumer(name)
    if nxt is not None and st.node(nxt).op == "batch_norm":
        name, nxt = nxt, st.only_consumer(nxt)
    return st.node(nxt).op if nxt is not None and is_activation(st, nxt) else "none"


@rule("horizontal_merge", same_activation="flag")
def horizontal_merge(st: State, use: RuleUse) -> None:
    """Convs that read one tensor with equal kernel, stride, padding and groups become one
    conv with concatenated output channels, whose output is split."""
    for t in st.graph:
        convs = [st.node(c) for c in st.consumers[t.name] if st.node(c).op == "conv2d"]
        if len(convs) < 2:
            continue
        first = convs[0]
        mates = [first]
        for c in convs[1:]:
            summed = next((x for x in (first.name, c.name)
                           if "sum_merge" in st.applied.get(st.find(x), [])), None)
            if summed is not None:
                add = st.members(summed)[-1]
                st.refuse("horizontal_merge", [first.name, c.name],
                          f"both read {t.name}, but {summed} runs in {add}'s sum merge "
                          "(sum_merge, earlier in the profile): the horizontal merge is "
                          "given up")
                continue
            diff = [k for k in ("kernel", "stride", "padding", "groups", "dilation")
                    if c.attrs.get(k, 1) != first.attrs.get(k, 1)]
            if diff:
                st.refuse("horizontal_merge", [first.name, c.name],
                          f"both read {t.name} but {' and '.join(diff)} differ: "
                          f"{first.name} is {conv_desc(first)}, {c.name} is {conv_desc(c)}")
                continue
            if first.attrs["groups"] > 1:
                st.refuse("horizontal_merge", [first.name, c.name],
                          f"both read {t.name} but are grouped ({first.attrs['groups']} "
                          "groups): one grouped conv of their outputs side by side would "
                          "read the wrong group's inputs")
                continue
            if use.options.get("same_activation"):
                fa, ca = _activation_after(st, first.name), _activation_after(st, c.name)
                if fa != ca:
                    st.refuse("horizontal_merge", [first.name, c.name],
                              f"{first.name} is followed by {fa}, {c.name} by {ca}: this "
                              "device merges only convs with the same kernel and activation")
                    continue
            mates.append(c)
        if len(mates) > 1:
            st.merge([m.name for m in mates], "horizontal_merge", use.kernel)


def _effective_stride(st: State, conv: str) -> int:
    """A conv's stride as it runs: halved where kernel-1 pooling feeds it its input at
    every other pixel already."""
    s = st.node(conv).attrs["stride"]
    for g in st.notes:
        if g.rule == "kernel1_pool" and conv in g.nodes and st.node(conv).inputs[0] in g.nodes:
            return s // 2
    return s


def _not_a_conv(st: State, name: str) -> str:
    n = st.node(name)
    if n.role == "attention" or n.part in ("se", "eca"):
        return (f"{n.part or 'the attention'}'s scale {name} sits between the branch's conv "
                "and the add")
    if n.role == "gate":
        return f"{name} is a gate's product ({n.part})" if n.part else f"{name} is gated"
    if n.op == "pad_channels":
        return f"{name} is option A's zero-padded identity"
    return f"{name} is a {n.op}, not a conv's result"


def _sum_mates(st: State, add: str) -> tuple[list[str], str]:
    """The two convs whose results ``add`` sums, or the reason they can't merge (none for
    an add that is no candidate: an identity shortcut's, a block without a second conv)."""
    d = st.node(add)
    if len(d.inputs) != 2:
        return [], ""
    tails = [i for i in d.inputs if st.conv_tail(i)]
    own = [i for i in d.inputs if i not in tails and st.node(i).block == d.block]
    if len(tails) < 2:
        if not own or len(tails) + len(own) < 2:
            return [], ""
        return [], "; ".join(_not_a_conv(st, i) for i in own) + \
            ": only two convs' results merge"
    convs = []
    for t in tails:
        inside = [m for m in st.members(t) if st.node(m).op == "conv2d"]
        if len(inside) > 1:
            return [], (f"{inside[-1]} already runs merged with {inside[0]} "
                        f"({', '.join(st.applied[st.find(t)])}, earlier in the profile)")
        if st.consumers[t] != [add]:
            return [], f"{t}'s output is also read by {st.others(t, add)}"
        convs.append(inside[0])
    (na, a), (nb, b) = ((st.node(c), st.node(c).attrs) for c in convs)
    if diff := [k for k in ("kernel", "dilation", "groups") if a.get(k, 1) != b.get(k, 1)]:
        plural = {"kernel": "kernels", "dilation": "dilations", "groups": "groups"}
        return [], (f"their {' and '.join(plural[k] for k in diff)} differ: {na.name} is "
                    f"{conv_desc(na)}, "
                    f"{nb.name} is {conv_desc(nb)}")
    if a["groups"] > 1:
        return [], (f"both are grouped ({a['groups']} groups): the concatenated input "
                    "would interleave the groups")
    sizes = [st.producer(n).shape[1:] for n in (na, nb)]
    if a["kernel"] == 1 and not a["padding"] and not b["padding"]:
        return convs, ""  # a 1x1 at stride s reads its input subsampled by s
    if (a["stride"], a["padding"]) != (b["stride"], b["padding"]) or sizes[0] != sizes[1]:
        return [], (f"their inputs do not line up: {na.name} is {conv_desc(na)} on "
                    f"{sizes[0]}, {nb.name} {conv_desc(nb)} on {sizes[1]}")
    return convs, ""


@rule("sum_merge", needs=("inserts",), inserts="per_op")
def sum_merge(st: State, use: RuleUse) -> None:
    """The article's "lossless topology compression", the dual of the horizontal merge:
    two convs whose results are summed are one conv over their concatenated inputs,
    ``W_a * x_a + W_b * x_b = [W_a | W_b] * [x_a ; x_b]`` (biases add). A 1x1 conv at
    stride s reads its input subsampled by s. ``inserts``: the kernels the device runs for
    the concatenation (``concat``) and each subsampling (``slice``)."""
    inserts = use.options["inserts"]
    for d in nodes_of(st, "add"):
        convs, why = _sum_mates(st, d.name)
        if not convs:
            if why:
                st.refuse("sum_merge", [*d.inputs, d.name], f"{d.name}: {why}")
            continue
        for c in convs:
            if _effective_stride(st, c) > 1:
                st.extra.update(inserts.get("slice", []))
        st.extra.update(inserts.get("concat", []))
        st.merge([*d.inputs, d.name], "sum_merge", use.kernel)


@rule("se_axpy", with_act="flag")
def se_axpy(st: State, use: RuleUse) -> None:
    """SE's channel scale then the residual add: out = s[c]·branch + shortcut (addcmul)."""
    for m in nodes_of(st, "mul"):
        gate = st.producer(m, 1)
        if gate.shape != (m.shape[0], 1, 1):
            continue
        d = st.only_consumer(m.name)
        if d is None or st.node(d).op != "add":
            st.refuse("se_axpy", [m.name], f"{m.name} is read by "
                      f"{', '.join(st.consumers[m.name])}, not only by the residual add")
            continue
        conv = next((x for x in st.members(d) if st.node(x).op == "conv2d"), None)
        if conv is not None:
            st.refuse("se_axpy", [m.name, d], f"{d} is already the sum post-op of {conv}; "
                      f"{m.name} runs alone")
            continue
        act = follow_act(st, d) if use.options.get("with_act") else None
        st.merge([m.name, d, *([act] if act else [])], "se_axpy", use.kernel)


@rule("se_fc_as_conv")
def se_fc_as_conv(st: State, use: RuleUse) -> None:
    """An FC on a 1x1 map is a 1x1 conv: SE's FCs (and a conv head) already are."""
    by_block: dict[str | None, list[str]] = {}
    for c in nodes_of(st, "conv2d"):
        if st.producer(c).shape[1:] == (1, 1):
            by_block.setdefault(c.block, []).append(c.name)
    for names in by_block.values():
        st.notes.append(Group("se_fc_as_conv", tuple(names), "1x1 conv (FC on a 1x1 map)"))


@rule("grouped_paths")
def grouped_paths(st: State, use: RuleUse) -> None:
    """ResNeXt's C parallel paths are one grouped conv (Xie et al., Fig. 3c)."""
    for c in nodes_of(st, "conv2d"):
        g = c.attrs["groups"]
        if g > 1:
            a = c.attrs
            st.notes.append(Group("grouped_paths", (c.name,),
                                  f"{g} paths of {a['in_channels'] // g}→"
                                  f"{a['out_channels'] // g} channels as one grouped conv"))


@rule("slice_split")
def slice_split(st: State, use: RuleUse) -> None:
    """Slices that cut one tensor's channels into consecutive pieces (Res2Net's splits,
    SKNet's split input) run as one split kernel."""
    for t in st.graph:
        slices = [st.node(c) for c in st.consumers[t.name] if st.node(c).op == "slice"]
        if len(slices) < 2:
            continue
        cuts = sorted((s.attrs["start"], s.attrs["stop"]) for s in slices)
        if cuts[0][0] == 0 and cuts[-1][1] == t.shape[0] and all(
                a[1] == b[0] for a, b in pairwise(cuts)):
            st.merge([s.name for s in slices], "slice_split", use.kernel)
        else:
            st.refuse("slice_split", [s.name for s in slices], f"the slices of {t.name} "
                      f"({', '.join(f'{a}:{b}' for a, b in cuts)}) do not cut it into "
                      "consecutive pieces")
