"""Int8 plans: what an engine that quantizes runs, kernel by kernel, in which precision,
and where it converts between float and int8 (the profile's ``int8`` section, data with
sources). Torch-free.

An int8 plan starts from the kernels the fp32 rules that still apply after quantization
form (``int8.rules``: the exporter's folds and the graph rewrites made before the
quantizer runs); each kernel then takes its int8 form, looked up by the merged kernel's
name (``int8.merged``) or the single op's (``int8.ops``). A form reads its input as int8
or as float, one entry per read, and writes int8 or float; where a tensor's writer and
reader disagree the engine converts: one ``int8.quantize`` kernel a float tensor that an
int8 read needs, one ``int8.dequantize`` kernel per float read of an int8 tensor (ORT
gives every reading node its own DequantizeLinear). Two forms depend on the neighbours:
``float_input``, taken where nothing quantizes the input (ORT quantizes a MaxPool or an
AveragePool only after a quantized tensor), and ``shared_input``, taken where the input is
also read by another node and may be negative (a ReLU there keeps a requantization: its
output has a scale of its own)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..ir.graph import Graph
from ..ir.ops import OPS
from .state import State

INT8, FLOAT = "int8", "float"
PRECISIONS = ("int8", "int8 data", "float")


@dataclass(frozen=True)
class Int8Form:
    """What one kernel becomes in an int8 model."""

    kernels: tuple[str, ...]
    reads: tuple[str, ...] = (INT8,)  # how each read of the input takes it: int8 or float
    out: str = INT8
    precision: str = "int8"  # int8 (an int8 kernel), int8 data (moves int8), float
    source: str = ""
    float_input: Int8Form | None = None
    shared_input: Int8Form | None = None


@dataclass(frozen=True)
class Int8Profile:
    """A profile's int8 behaviour: how the model was quantized, which fp32 rules still
    apply, the conversion kernels' names, and each kernel's int8 form."""

    quantizer: str
    checked: str
    rules: tuple[str, ...]
    quantize: str
    dequantize: str
    merged: dict[str, Int8Form]
    ops: dict[str, Int8Form]
    source: str = ""
    no_vnni: str = ""  # what the plan says for a CPU without an int8 dot product


@dataclass(frozen=True)
class KernelPrecision:
    """One kernel of an int8 plan: its IR nodes, the engine kernels it runs as (its
    conversions not included), their precision and the source of that."""

    nodes: tuple[str, ...]
    kernels: tuple[str, ...]
    precision: str
    source: str


@dataclass(frozen=True)
class Int8Plan:
    kernels: tuple[KernelPrecision, ...]
    # (conversion kernel, the tensor converted: the IR node writing it, the IR node reading)
    conversions: tuple[tuple[str, str, str], ...]
    counts: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"kernels": [{"nodes": list(k.nodes), "kernels": list(k.kernels),
                             "precision": k.precision, "source": k.source}
                            for k in self.kernels],
                "conversions": [{"kernel": c, "tensor": t, "read_by": r}
                                for c, t, r in self.conversions]}

    def node_precision(self) -> dict[str, str]:
        return {n: k.precision for k in self.kernels for n in k.nodes}


def nonnegative(graph: Graph) -> dict[str, bool]:
    """Per node, whether its output is never negative (the ops table's ``nonneg``)."""
    out: dict[str, bool] = {}
    for n in graph:
        rule = OPS[n.op].nonneg
        out[n.name] = rule == "always" or (rule == "inputs" and all(out[i] for i in n.inputs))
    return out


def int8_plan(graph: Graph, st: State, roots: dict[str, list[str]], p: Int8Profile
              ) -> Int8Plan:
    """The int8 plan of the kernels ``roots`` (kernel root -> its IR nodes, in graph
    order) that ``st`` formed."""
    def source(name: str) -> str:
        while name in st.elided:  # a node the device drops passes its input on
            name = graph[name].inputs[0]
        return name

    def form(root: str, names: list[str]) -> Int8Form:
        found = (p.merged.get(st.label[root]) if len(names) > 1
                 else p.ops.get(graph[names[0]].op))
        if found is None:
            what = (f"merged kernel {st.label[root]}" if len(names) > 1
                    else f"op {graph[names[0]].op}")
            raise ValueError(f"the profile's int8 section has no form for {what}")
        return found

    inputs = {r: [source(i) for m in names for i in graph[m].inputs
                  if st.find(source(i)) != r or graph[source(i)].op == "input"]
              for r, names in roots.items()}
    base = {r: form(r, names) for r, names in roots.items()}
    readers: dict[str, list[str]] = {}
    for r, ins in inputs.items():
        for i in dict.fromkeys(ins):
            readers.setdefault(i, []).append(r)
    sign = nonnegative(graph)
    written: dict[str, str] = {n.name: FLOAT for n in graph if n.op == "input"}
    counts: Counter[str] = Counter()
    conversions: list[tuple[str, str, str]] = []
    rows: list[KernelPrecision] = []
    quantized: set[str] = set()
    for r, names in roots.items():
        f, ins = base[r], list(dict.fromkeys(inputs[r]))
        if f.float_input and all(written[i] == FLOAT and not any(
                INT8 in base[o].reads for o in readers[i] if o != r) for i in ins):
            f = f.float_input
        if f.shared_input and any(len(st.consumers[i]) > 1 and not sign[i] for i in ins):
            f = f.shared_input
        for i in ins:
            for read in f.reads:
                if written[i] == FLOAT and read == INT8 and i not in quantized:
                    quantized.add(i)
                    conversions.append((p.quantize, i, names[0]))
                elif written[i] == INT8 and read == FLOAT:
                    conversions.append((p.dequantize, i, names[0]))
        counts.update(f.kernels)
        rows.append(KernelPrecision(tuple(names), f.kernels, f.precision, f.source))
        for m in names:
            written[m] = f.out
    last = next(n.name for n in reversed(list(graph)))
    if written[source(last)] == INT8:
        conversions.append((p.dequantize, source(last), "output"))
    counts.update(c for c, _, _ in conversions)
    return Int8Plan(tuple(rows), tuple(conversions), counts)
