"""Merges across the graph: convs that read one tensor run as one wider conv, SE's scale
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
            diff = [k for k in ("kernel", "stride", "padding", "groups", "dilation")
                    if c.attrs.get(k, 1) != first.attrs.get(k, 1)]
            if diff:
                st.refuse("horizontal_merge", [first.name, c.name],
                          f"both read {t.name} but {' and '.join(diff)} differ: "
                          f"{first.name} is {conv_desc(first)}, {c.name} is {conv_desc(c)}")
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
