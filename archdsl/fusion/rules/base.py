"""What every fusion rule shares: the registry (a rule by ID, with the options a profile
may give it), the rules archdsl.fuse() carries out, and the helpers that read op families."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from math import prod

from ...ir.graph import Node
from ...ir.ops import OPS, op
from ..state import RuleUse, State

Rule = Callable[[State, RuleUse], None]
RULES: dict[str, Rule] = {}
# the rules archdsl.fuse() carries out itself (fusion/executor.py), by default and at most;
# a profile's ``executes`` names which of its rules it does (the rest are the engine's)
EXECUTES = ("bn_fold", "bn_fold_forward", "scale_fold", "horizontal_merge", "sum_merge",
            "se_axpy", "kernel1_pool", "dropout_elim")
EXECUTABLE = (*EXECUTES, "conv_act", "conv_add_act")


# the options each rule reads from its profile entry, by kind (``flag``: a boolean;
# ``ops``: IR op names; ``activations``: some activations; ``chains``: lists of IR op
# names; ``per_op``: IR op name to the kernel names it adds), which profiles.py checks and
# reads (an op family in ``ops``, ``activations`` or ``per_op`` stands for its ops)
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


def nodes_of(st: State, opname: str) -> list[Node]:
    return [n for n in st.graph if n.op == opname]


def is_activation(st: State, name: str) -> bool:
    return op(st.node(name).op).family == "activation"


def pointwise_ops(views: bool) -> frozenset[str]:
    """The ops that compute each element from the same place of their inputs (with or
    without those that only view or pass data: dropout)."""
    return _pointwise(views, len(OPS))


@cache
def _pointwise(views: bool, known: int) -> frozenset[str]:  # ``known``: a define() since
    return frozenset(k for k, d in OPS.items()
                     if d.pointwise and (views or d.family != "view"))


def kernel_label(use: RuleUse, act: str | None, names: dict[str, str] | None = None) -> str:
    """The rule's kernel name, with ``{act}`` (where the profile writes it) replaced by the
    activation the kernel ends with, as the engine names it (``names``, a rule's
    ``act_names``): ``onednn_conv{act}`` is ``onednn_conv+relu``, for SiLU
    ``onednn_conv+swish``."""
    name = (names or {}).get(act, act) if act else None
    return use.kernel.replace("{act}", f"+{name}" if name else "")


def conv_desc(n: Node) -> str:
    a = n.attrs
    g = f" g{a['groups']}" if a["groups"] > 1 else ""
    return f"{a['kernel']}x{a['kernel']}/{a['stride']} pad {a['padding']}{g}"


def follow_act(st: State, name: str) -> str | None:
    nxt = st.only_consumer(name)
    return nxt if nxt is not None and is_activation(st, nxt) else None


def bytes_internal(st: State, names: list[str]) -> int:
    """fp32 bytes a kernel no longer writes and reads back: outputs used only inside it."""
    inside = set(names)
    total = 0
    for n in names:
        cons = st.consumers[n]
        if cons and all(c in inside for c in cons):
            total += 2 * 4 * prod(st.node(n).shape)
    return total
