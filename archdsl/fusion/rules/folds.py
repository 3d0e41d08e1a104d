"""Folds: a BN or a constant scale folded into the conv before or after it, and dropout
removed at inference."""

from __future__ import annotations

from ..state import RuleUse, State
from .base import conv_desc, nodes_of, rule


@rule("bn_fold", before="chains")
def bn_fold(st: State, use: RuleUse) -> None:
    """conv → BN: the BN's affine map folds into the conv's weight and bias. With
    ``before`` (chains of ops, such as ``[relu]`` and ``[add, relu]``), only where one of
    them follows the BN, each op its predecessor's one reader: a kernel that takes the
    folded bias (on CUDA a bias alone is a broadcast add, slower than the BN kernel)."""
    before = [list(c) for c in use.options.get("before", ())]
    for b in nodes_of(st, "batch_norm"):
        p = st.producer(b)
        if p.op != "conv2d":
            continue
        if before and not any(_chain_follows(st, b.name, c) for c in before):
            readers = ", ".join(f"{c} ({st.node(c).op})" for c in st.consumers[b.name])
            chains = " or ".join(" → ".join(c) for c in before)
            st.refuse("bn_fold", [p.name, b.name], f"{b.name} is read by {readers}, not "
                      f"by {chains}, whose kernel would take the folded bias: the BN "
                      "kernel is kept")
            continue
        st.fuse_if_only_reader("bn_fold", p.name, b.name, use.kernel,
                               ", which must see the conv without the BN")


def _chain_follows(st: State, name: str, ops: list[str]) -> bool:
    """``ops`` follow ``name`` in turn, each the one reader of the one before."""
    for o in ops:
        nxt = st.only_consumer(name)
        if nxt is None or st.node(nxt).op != o:
            return False
        name = nxt
    return True


@rule("bn_fold_forward", valid_padding_only="flag")
def bn_fold_forward(st: State, use: RuleUse) -> None:
    """BN → conv: the BN folds into the *following* conv; exact only without padding,
    since a zero-padded border would see BN(0) = β − μ·γ/σ instead of 0."""
    for b in nodes_of(st, "batch_norm"):
        if len(st.members(b.name)) > 1:
            continue
        convs = [c for c in st.consumers[b.name] if st.node(c).op == "conv2d"]
        if not convs:
            continue
        if len(st.consumers[b.name]) > 1:
            st.refuse("bn_fold_forward", [b.name, *convs], f"{b.name} is read by "
                      f"{len(st.consumers[b.name])} nodes; it can fold into one conv only "
                      "if that conv is its only reader")
            continue
        c = st.node(convs[0])
        if c.attrs["padding"]:
            st.refuse("bn_fold_forward", [b.name, c.name],
                      f"{c.name} is {conv_desc(c)}: its zero-padded border would see "
                      f"BN(0) ≠ 0; exact only without padding"
                      + (" (VALID)" if use.options.get("valid_padding_only") else ""))
            continue
        st.merge([b.name, c.name], "bn_fold_forward", use.kernel)


@rule("scale_fold")
def scale_fold(st: State, use: RuleUse) -> None:
    """conv → ×λ (a constant): folds into the conv's weight and bias."""
    for s in nodes_of(st, "scale"):
        p = st.producer(s)
        if not st.conv_tail(p.name):
            continue
        st.fuse_if_only_reader("scale_fold", p.name, s.name, use.kernel)


@rule("dropout_elim")
def dropout_elim(st: State, use: RuleUse) -> None:
    """Dropout is the identity at inference: the device runs nothing for it."""
    for d in nodes_of(st, "dropout"):
        st.elided.add(d.name)
