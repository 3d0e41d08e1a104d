"""Fusion rules: each finds its pattern on the IR, checks legality, and either merges the
nodes into one kernel or records why it refused. Registered by rule ID."""

from __future__ import annotations

from collections.abc import Callable
from math import prod

from ..ir.graph import Node
from ..ir.ops import op
from .state import Group, RuleUse, State

Rule = Callable[[State, RuleUse], None]
RULES: dict[str, Rule] = {}
ACTIVATIONS = ("relu", "sigmoid")
# the rules archdsl.fuse() carries out itself (fusion/executor.py), by default and at most;
# a profile's ``executes`` names which of its rules it does (the rest are the engine's)
EXECUTES = ("bn_fold", "bn_fold_forward", "scale_fold", "horizontal_merge", "se_axpy",
            "kernel1_pool", "dropout_elim")
EXECUTABLE = (*EXECUTES, "conv_act", "conv_add_act")


# the options each rule reads from its profile entry, by kind (``flag``: a boolean;
# ``ops``: IR op names; ``activations``: some of ACTIVATIONS; ``chains``: lists of IR op
# names; ``per_op``: IR op name to the kernel names it adds), which profiles.py checks
OPTIONS: dict[str, dict[str, str]] = {}
# the options a rule can't do without
NEEDS: dict[str, tuple[str, ...]] = {}


def rule(rid: str, *, needs: tuple[str, ...] = (), **options: str) -> Callable[[Rule], Rule]:
    """Register a rule by ID, with the options (by kind) a profile may give it."""
    def deco(fn: Rule) -> Rule:
        RULES[rid] = fn
        OPTIONS[rid] = options
        NEEDS[rid] = needs
        return fn
    return deco


def _of(st: State, opname: str) -> list[Node]:
    return [n for n in st.graph if n.op == opname]


def _label(use: RuleUse, act: str | None) -> str:
    """The rule's kernel name, with ``{act}`` (where the profile writes it) replaced by the
    activation the kernel ends with: ``onednn_conv{act}`` is ``onednn_conv+relu``."""
    return use.kernel.replace("{act}", f"+{act}" if act else "")


def _conv_desc(n: Node) -> str:
    a = n.attrs
    g = f" g{a['groups']}" if a["groups"] > 1 else ""
    return f"{a['kernel']}x{a['kernel']}/{a['stride']} pad {a['padding']}{g}"


@rule("bn_fold", before="chains")
def bn_fold(st: State, use: RuleUse) -> None:
    """conv → BN: the BN's affine map folds into the conv's weight and bias. With
    ``before`` (chains of ops, such as ``[relu]`` and ``[add, relu]``), only where one of
    them follows the BN, each op its predecessor's one reader: a kernel that takes the
    folded bias (on CUDA a bias alone is a broadcast add, slower than the BN kernel)."""
    before = [list(c) for c in use.options.get("before", ())]
    for b in _of(st, "batch_norm"):
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
    for b in _of(st, "batch_norm"):
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
                      f"{c.name} is {_conv_desc(c)}: its zero-padded border would see "
                      f"BN(0) ≠ 0; exact only without padding"
                      + (" (VALID)" if use.options.get("valid_padding_only") else ""))
            continue
        st.merge([b.name, c.name], "bn_fold_forward", use.kernel)


@rule("scale_fold")
def scale_fold(st: State, use: RuleUse) -> None:
    """conv → ×λ (a constant): folds into the conv's weight and bias."""
    for s in _of(st, "scale"):
        p = st.producer(s)
        if not st.conv_tail(p.name):
            continue
        st.fuse_if_only_reader("scale_fold", p.name, s.name, use.kernel)


@rule("dropout_elim")
def dropout_elim(st: State, use: RuleUse) -> None:
    """Dropout is the identity at inference: the device runs nothing for it."""
    for d in _of(st, "dropout"):
        st.elided.add(d.name)


@rule("conv_act", activations="activations")
def conv_act(st: State, use: RuleUse) -> None:
    """conv (+folded BN) → activation: one kernel with the activation as a post-op."""
    acts = use.options.get("activations", list(ACTIVATIONS))
    for a in st.graph:
        if a.op not in acts:
            continue
        p = st.producer(a)
        if not st.conv_tail(p.name):
            continue
        st.fuse_if_only_reader("conv_act", p.name, a.name, _label(use, a.op),
                               f" before the {a.op}")


def _follow_act(st: State, name: str) -> str | None:
    nxt = st.only_consumer(name)
    return nxt if nxt is not None and st.node(nxt).op in ACTIVATIONS else None


@rule("conv_add_act", activations="activations")
def conv_add_act(st: State, use: RuleUse) -> None:
    """conv (+BN) → residual add (→ ReLU): the add is a sum post-op of the conv. With
    ``activations``, only where one of them follows the add (cuDNN's conv+add kernel always
    ends in ReLU)."""
    acts = use.options.get("activations")
    for d in _of(st, "add"):
        fused = False
        after = _follow_act(st, d.name)
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
                     _label(use, st.node(after).op if after else None))
            fused = True


@rule("add_act")
def add_act(st: State, use: RuleUse) -> None:
    """add → ReLU: the add carries the activation (TFLite's fused_activation_function)."""
    for d in _of(st, "add"):
        act = _follow_act(st, d.name)
        if act and st.node(act).op == "relu":
            st.merge([d.name, act], "add_act", use.kernel)


@rule("conv_act_pool")
def conv_act_pool(st: State, use: RuleUse) -> None:
    """conv → ReLU → max-pool, as one kernel."""
    for m in _of(st, "max_pool"):
        p = st.producer(m)
        members = st.members(p.name)
        if p.op not in ACTIVATIONS or not any(st.node(x).op == "conv2d" for x in members):
            continue
        st.fuse_if_only_reader("conv_act_pool", p.name, m.name, use.kernel)


@rule("bn_act", norms="ops", act_one_reader="flag", per_op="per_op")
def bn_act(st: State, use: RuleUse) -> None:
    """A BN that no conv absorbed, then ReLU (pre-activation nets): one pointwise kernel.
    ``norms`` names the norm ops it applies to (default: batch_norm); with
    ``act_one_reader`` only where one node reads the activation; ``per_op`` the
    kernels a norm brings besides the merged one (a group norm's reshapes)."""
    norms = use.options.get("norms", ["batch_norm"])
    for a in _of(st, "relu"):
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


def _activation_after(st: State, conv: str) -> str:
    """The activation a conv's kernel ends with: the op right after it (through a BN)."""
    name = conv
    nxt = st.only_consumer(name)
    if nxt is not None and st.node(nxt).op == "batch_norm":
        name, nxt = nxt, st.only_consumer(nxt)
    return st.node(nxt).op if nxt is not None and st.node(nxt).op in ACTIVATIONS else "none"


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
            diff = [k for k in ("kernel", "stride", "padding", "groups")
                    if c.attrs[k] != first.attrs[k]]
            if diff:
                st.refuse("horizontal_merge", [first.name, c.name],
                          f"both read {t.name} but {' and '.join(diff)} differ: "
                          f"{first.name} is {_conv_desc(first)}, {c.name} is {_conv_desc(c)}")
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
    for m in _of(st, "mul"):
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
        act = _follow_act(st, d) if use.options.get("with_act") else None
        st.merge([m.name, d, *([act] if act else [])], "se_axpy", use.kernel)


@rule("se_fc_as_conv")
def se_fc_as_conv(st: State, use: RuleUse) -> None:
    """An FC on a 1x1 map is a 1x1 conv: SE's FCs (and a conv head) already are."""
    by_block: dict[str | None, list[str]] = {}
    for c in _of(st, "conv2d"):
        if st.producer(c).shape[1:] == (1, 1):
            by_block.setdefault(c.block, []).append(c.name)
    for names in by_block.values():
        st.notes.append(Group("se_fc_as_conv", tuple(names), "1x1 conv (FC on a 1x1 map)"))


@rule("grouped_paths")
def grouped_paths(st: State, use: RuleUse) -> None:
    """ResNeXt's C parallel paths are one grouped conv (Xie et al., Fig. 3c)."""
    for c in _of(st, "conv2d"):
        g = c.attrs["groups"]
        if g > 1:
            a = c.attrs
            st.notes.append(Group("grouped_paths", (c.name,),
                                  f"{g} paths of {a['in_channels'] // g}→"
                                  f"{a['out_channels'] // g} channels as one grouped conv"))


_PASS = {"batch_norm", "relu", "sigmoid", "add", "scale", "one_minus", "dropout",
         "pad_channels"}


def _subsampling_reader(c: Node) -> bool:
    a = c.attrs
    return c.op == "conv2d" and a["kernel"] == 1 and a["stride"] == 2 and a["padding"] == 0


def _passes(st: State, c: Node, producer: str, sub: set[str]) -> bool:
    """Does ``c``, computed at every other pixel, need ``producer`` only there too?"""
    if c.name not in sub:
        return False
    if c.op == "conv2d":
        return c.attrs["kernel"] == 1 and c.attrs["padding"] == 0
    if c.op == "mul":
        return st.node(producer).shape == c.shape  # the full map, not SE's 1x1 gate
    return c.op in _PASS


def _subsampled(st: State, passes: Callable[[Node, str, set[str]], bool]) -> set[str]:
    """Nodes whose every reader reads every other pixel: a 1x1/2 conv, or a reader that
    ``passes`` (given the reader, the node and the set so far) lets the subsampling through."""
    sub: set[str] = set()
    for n in reversed(st.graph.nodes):
        cons = [st.node(c) for c in st.consumers[n.name]]
        if n.op == "input" or not cons or len(n.shape) != 3 or n.shape[1:] == (1, 1):
            continue
        if all(_subsampling_reader(c) or passes(c, n.name, sub) for c in cons):
            sub.add(n.name)
    return sub


def subsampled_only(st: State) -> set[str]:
    """Nodes whose every pixel-reader reads every other pixel (kernel = 1 pooling)."""
    return _subsampled(st, lambda c, producer, sub: _passes(st, c, producer, sub))


def _half(shape: tuple[int, ...]) -> tuple[int, ...]:
    c, h, w = shape
    return (c, -(-h // 2), -(-w // 2))


def _conv_macs(st: State, c: Node, out: tuple[int, ...]) -> int:
    return op("conv2d").macs(c.attrs, [st.producer(c).shape], out)


def _upstream(st: State, start: str, sub: set[str]) -> list[str]:
    seen, todo = [], [start]
    while todo:
        n = todo.pop()
        if n in sub and n not in seen:
            seen.append(n)
            todo.extend(st.node(n).inputs)
    return sorted(seen, key=st.order.__getitem__)


@rule("kernel1_pool")
def kernel1_pool(st: State, use: RuleUse) -> None:
    """The article's "kernel = 1 pooling": a 1x1/2 conv reads every other pixel, so the
    subsampling moves upstream and the producers compute a quarter of the pixels."""
    sub = subsampled_only(st)
    readers: dict[str, list[str]] = {}
    for c in st.graph:
        if _subsampling_reader(c):
            readers.setdefault(c.inputs[0], []).append(c.name)
    for x, convs in readers.items():
        if x not in sub:
            full = [c for c in st.consumers[x] if c not in convs and not _passes(
                st, st.node(c), x, sub)]
            desc = ", ".join(f"{c} ({_conv_desc(st.node(c))})" if st.node(c).op == "conv2d"
                             else c for c in full)
            st.refuse("kernel1_pool", [x, *convs], f"{x} is also read at every pixel by "
                      f"{desc}" + (", where the stride sits on the 3x3" if any(
                          st.node(c).op == "conv2d" and st.node(c).attrs["kernel"] == 1
                          for c in full) else ""))
            continue
        region = _upstream(st, x, sub)
        saved = sum(_conv_macs(st, st.node(n), st.node(n).shape)
                    - _conv_macs(st, st.node(n), _half(st.node(n).shape))
                    for n in region if st.node(n).op == "conv2d")
        if saved == 0:
            st.refuse("kernel1_pool", [x, *convs], f"no conv upstream of {x} can run at fewer "
                      "pixels (a global pool, such as SE's, reads the full map)")
            continue
        st.notes.append(Group("kernel1_pool", (*region, *convs),
                              f"subsample moved upstream of {x}: {len(region)} producers at "
                              "a quarter of the pixels", macs_saved=saved))


@rule("conv_post_ops", ops="ops")
def conv_post_ops(st: State, use: RuleUse) -> None:
    """conv (+folded BN) → [residual add] → a chain of element-wise ops (activation, BN as
    a per-channel scale-shift, a constant scale, 1 − x): each becomes a post-op of the
    conv while the chain so far has no other reader; the add (a sum post-op) only first."""
    ops = set(use.options.get("ops", ["relu", "sigmoid", "batch_norm", "scale",
                                      "one_minus"]))
    for conv in _of(st, "conv2d"):
        tail = st.members(conv.name)[-1]
        if not st.conv_tail(tail):
            continue
        readers = st.consumers[tail]
        if len(readers) > 1 and any(st.node(r).op in ops | {"add"} for r in readers):
            st.refuse("conv_post_ops", [tail, *readers], f"{tail}'s output is read by "
                      f"{', '.join(readers)}: a post-op needs the only reader")
        chain: list[str] = []
        nxt, allowed = st.only_consumer(tail), ops | {"add"}  # a sum only as the first
        while nxt is not None and st.node(nxt).op in allowed and len(st.members(nxt)) == 1:
            chain.append(nxt)
            nxt, allowed = st.only_consumer(nxt), ops
        if chain:
            last = st.node(chain[-1]).op
            st.merge([tail, *chain], "conv_post_ops",
                     _label(use, last if last in ACTIVATIONS else None))


_ELEMENTWISE = ("relu", "sigmoid", "add", "mul", "batch_norm", "scale", "one_minus")


def _kernel_ops(st: State, name: str) -> set[str]:
    """The ops of the nodes that run in ``name``'s kernel."""
    return {st.node(m).op for m in st.members(name)}


def _count_of(st: State, name: str, ops: set[str]) -> int:
    """How many nodes of ``name``'s kernel are one of ``ops``."""
    return sum(st.node(m).op in ops for m in st.members(name))


@rule("pointwise_chain", ops="ops", heads="ops", ends="ops", once="ops",
      shared_heads="flag", all_inputs="flag", per_op="per_op")
def pointwise_chain(st: State, use: RuleUse) -> None:
    """Element-wise ops run as one generated kernel: a kernel of ``ops`` joins the kernel
    that produces its input when it is that output's only reader and that kernel holds
    only ``ops`` (or a ``heads`` op, such as a pooling whose epilogue it becomes); an
    ``ends`` op (a reduction) may close the chain. With ``all_inputs`` every such producer
    joins (Inductor), else the first (OpenVINO's Eltwise chains); with ``shared_heads`` a
    pooling head joins its first reader even where later ones read its output too
    (Inductor's kernel then writes both results); a kernel holds at most one
    ``once`` op (a group norm: a reduction and its normalisation). ``per_op`` names the
    kernels the engine adds for each such op inside a chain (a constant's reorder)."""
    ops = set(use.options.get("ops", _ELEMENTWISE))
    heads, ends = set(use.options.get("heads", [])), set(use.options.get("ends", []))
    once = set(use.options.get("once", []))
    merged: list[str] = []
    for n in st.graph:
        if not st.only_of(n.name, ops | ends):
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
    gen = set(use.options.get("ops", _ELEMENTWISE))
    for d in _of(st, "add"):
        conv = next((m for m in st.members(d.name) if st.node(m).op == "conv2d"), None)
        if conv is None:
            continue
        x = st.node(conv).inputs[0]
        z = next((i for i in d.inputs if st.find(i) != st.find(d.name)), None)
        if z is None or st.find(x) == st.find(z):
            continue
        if st.consumers[x] != [conv]:
            continue  # computed earlier, for another reader too (a stem's max-pool)
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
        if ops & plain_ops or (ops <= {*_ELEMENTWISE, "global_avg_pool"} and
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
    for n in _of(st, "blur_pool"):
        p = n.inputs[0]
        if st.consumers[p] == [n.name] and st.only_of(p, gen):
            st.extra[use.kernel] -= 1


# what OpenVINO moves a stride through: kernel1_pool's element-wise ops, but not option A's
# padding (it has a stride of its own)
_STRIDE_PASSES = _PASS - {"pad_channels"}


def _takes_stride(n: Node) -> bool:
    a = n.attrs
    return n.op == "conv2d" and a["kernel"] == 1 and a["stride"] == 1 and not a["padding"]


@rule("strides_opt")
def strides_opt(st: State, use: RuleUse) -> None:
    """OpenVINO's StridesOptimization, a narrower kernel = 1 pooling: when every reader of a
    tensor is a 1x1/2 conv, the stride moves to its producer, through element-wise ops,
    onto a 1x1/1 conv (which then runs at a quarter of the pixels); an input of the
    element-wise ops that is also read at full size, or that no stride passes (an SE
    scale), gets a 1x1/2 pooling of its own, even where no conv takes the stride (the
    legacy SE-ResNets: two poolings before each stage's add instead of two strided
    convs after it)."""
    sub = _subsampled(st, lambda c, producer, sub: c.name in sub and c.op in _STRIDE_PASSES)
    taken: set[str] = set()  # a node two walks reach takes the stride once
    for x in st.graph:
        if x.name not in sub or any(c in sub for c in st.consumers[x.name]):
            continue
        region: list[str] = []
        absorbed: list[str] = []
        pools = 0
        todo = [x.name]
        while todo:
            n = st.node(todo.pop())
            if n.name in taken:
                continue
            taken.add(n.name)
            region.append(n.name)
            if _takes_stride(n):
                absorbed.append(n.name)
                continue
            for i in n.inputs if n.op in _STRIDE_PASSES else []:
                if i in sub and (st.node(i).op in _STRIDE_PASSES or _takes_stride(st.node(i))):
                    todo.append(i)
                else:
                    pools += 1
        if not absorbed and len(region) == 1:
            continue  # nothing to move through
        if pools:
            st.extra[use.kernel] += pools
        saved = sum(_conv_macs(st, st.node(n), st.node(n).shape)
                    - _conv_macs(st, st.node(n), _half(st.node(n).shape)) for n in absorbed)
        region.sort(key=st.order.__getitem__)
        onto = f"onto {', '.join(absorbed)}" if absorbed else "through element-wise ops only"
        st.notes.append(Group("strides_opt", tuple(region), f"stride moved upstream of "
                              f"{x.name} {onto}; {pools} 1x1/2 pooling(s) inserted",
                              macs_saved=saved))


def bytes_internal(st: State, names: list[str]) -> int:
    """fp32 bytes a kernel no longer writes and reads back: outputs used only inside it."""
    inside = set(names)
    total = 0
    for n in names:
        cons = st.consumers[n]
        if cons and all(c in inside for c in cons):
            total += 2 * 4 * prod(st.node(n).shape)
    return total
