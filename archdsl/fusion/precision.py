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
output has a scale of its own).

OpenVINO (``outputs: as_read``) quantizes where a reader asks for it: a kernel writes int8
as a post-op where some reader reads int8, and only a kernel that can't (``out: float``)
gets a ``quantize`` kernel of its own (a FakeQuantize); dequantization is a scale in the
reader, no kernel. Precision names read the sign the graph proves (``{q}``: u8 for data
never negative, else i8; f32 for float), layouts the kernels' own (a blocked reader of
planar data gets ``relayout``, a Reorder, one a tensor and kind of reader). Forms the
profile marks ``unmodelled`` make the plan say it is modelled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from ..ir.graph import Graph, Node
from ..ir.ops import OPS
from ..ir.shapes import Attrs
from .state import RuleUse, State

INT8, FLOAT = "int8", "float"
PRECISIONS = ("int8", "int8 data", "float")


def form_key(name: str, attrs: Attrs, known: Container[str]) -> str:
    """Where a profile's table (``known``) reads an op's kernels: ``op.flag`` for the first
    of the op's forms (``OpDef.forms``) whose flag ``attrs`` sets and the table gives, else
    the op's own name."""
    return next((f"{name}.{f}" for f in OPS[name].forms
                 if attrs.get(f) and f"{name}.{f}" in known), name)


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
    # moves data: it asks for no int8 input itself, and reads int8 where its output is
    # read so (NNCF moves a FakeQuantize up through a MaxPool or a Reshape)
    follows: bool = False
    # where an int8 reader reads this float kernel's output: the kernels converting it for
    # each such reader (OpenVINO: a Reorder from f32 to u8 or i8), or for a reader of op
    # ``convert_by``'s key, its own
    convert: tuple[str, ...] = ()
    convert_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the readers (by op) whose converted copy is also laid out planar (a Reduce's)
    convert_planar: tuple[str, ...] = ()
    # the quantizer leaves the kernel out altogether (an NNCF ignored pattern): it reads
    # and writes float, and its readers take its output in float, unconverted
    ignored: bool = False
    # OpenVINO keeps its input in float: the writer writes float even where other readers
    # read int8, and each of those gets a ``quantize`` kernel of its own (a Split)
    input_stays_float: bool = False
    # where this kernel (with an add as its post-op) writes float, the kernel converting
    # its quantized sum operand to float first (OpenVINO: a Reorder)
    sum_convert: str = ""
    # which int8 input's sign names the kernel's precision: the first, or the last (the
    # engine keeps an add's last operand quantized and dequantizes the other)
    sign_from: str = "first"
    # the layout it writes: ``keeps`` its input's, ``blocked`` (channels-last blocks: a
    # Convolution, a pooling; it reads only that) or ``planar`` (NCHW: OpenVINO's MVN)
    layout: str = "keeps"
    planar_input: Int8Form | None = None  # the form taken on planar input (no Reorder)
    relayout: str = ""  # its own Reorder for planar input, where not the profile's
    # an approximation, not checked: a plan taking it says it is modelled (``source``: why)
    unmodelled: bool = False
    # (conditions on the kernel's first node, the form taken where they hold): its ``op``,
    # ``part``, ``part_act`` (its construct's activation), ``input_op`` (the op writing its
    # first input), ``reader_op`` (its only reader's), ``standardized`` (weights
    # standardized in the graph), ``grouped`` (grouped, not depthwise) or an attribute
    when: tuple[tuple[tuple[tuple[str, Any], ...], Int8Form], ...] = ()

    @staticmethod
    def holds(node: Node, graph: Graph, conditions: tuple[tuple[str, Any], ...]) -> bool:
        for key, want in conditions:
            if key in ("op", "part"):
                got: Any = getattr(node, key)
            elif key == "part_act":  # the activation of the node's construct (SE's ReLU)
                got = next((n.op for n in graph if n.block == node.block and n.part == node.part
                            and n.op != "sigmoid" and OPS[n.op].family == "activation"), None)
            elif key == "input_op":  # the op writing its first input
                got = graph[node.inputs[0]].op if node.inputs else None
            elif key == "reader_op":  # the op of its only reader
                readers = [n.op for n in graph if node.name in n.inputs]
                got = readers[0] if len(readers) == 1 else None
            elif key == "standardized":  # weight standardization, computed in the graph
                got = bool(node.attrs.get("standardize"))
            elif key == "grouped":
                g = node.attrs.get("groups", 1)
                got = 1 < g < node.attrs.get("in_channels", 0)
            else:
                got = node.attrs.get(key)
            if got != want:
                return False
        return True

    def on(self, node: Node, graph: Graph) -> Int8Form:
        """The form this kernel takes where its first node is ``node``."""
        return next((f for c, f in self.when if self.holds(node, graph, c)), self)


@dataclass(frozen=True)
class Int8Profile:
    """A profile's int8 behaviour: how the model was quantized, which fp32 rules still
    apply, the conversion kernels' names, and each kernel's int8 form."""

    quantizer: str
    checked: str
    # the fp32 rules that still apply, by id, or a rule use of the int8 model's own
    rules: tuple[str | RuleUse, ...]
    quantize: str
    dequantize: str
    merged: dict[str, Int8Form]
    ops: dict[str, Int8Form]
    source: str = ""
    no_vnni: str = ""  # what the plan says for a CPU without an int8 dot product
    # "form": a kernel writes what its form's ``out`` says (ORT: a QuantizeLinear after a
    # float one); "as_read": a kernel writes int8 where a reader asks for it, the
    # quantization a post-op of the kernel, but for a form whose ``out`` is float, which
    # needs the ``quantize`` kernel (OpenVINO: a FakeQuantize node)
    outputs: str = "form"
    # ops, and chains of ops (each the only reader of the one before), whose int8 kernels
    # are approximations, not checked
    unmodelled: tuple[tuple[str, ...], ...] = ()
    verified_isa: tuple[str, ...] = ()  # where the engine's int8 kernels depend on the ISA
    relayout: str = ""  # what a blocked reader of planar data gets, one a tensor and reader kind

    def unmodelled_in(self, graph: Graph) -> list[str]:
        """What of ``unmodelled`` the graph has, as text (``add → batch_norm → silu``)."""
        readers: dict[str, list[Node]] = {}
        for n in graph:
            for i in n.inputs:
                readers.setdefault(i, []).append(n)

        def starts(n: Node, chain: tuple[str, ...]) -> bool:
            if n.op != chain[0]:
                return False
            nxt = readers.get(n.name, [])
            return len(chain) == 1 or (len(nxt) == 1 and starts(nxt[0], chain[1:]))

        return [" → ".join(c) for c in self.unmodelled if any(starts(n, c) for n in graph)]

    def uses(self, fp32: tuple[RuleUse, ...]) -> list[RuleUse]:
        """The rules an int8 plan applies, in order."""
        by_id = {u.id: u for u in fp32}
        return [by_id[r] if isinstance(r, str) else r for r in self.rules]


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
    # what of the plan is an approximation: the profile's unmodelled ops and chains the
    # graph has, and the unmodelled forms taken (their sources)
    unmodelled: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kernels": [{"nodes": list(k.nodes), "kernels": list(k.kernels),
                             "precision": k.precision, "source": k.source}
                            for k in self.kernels],
                "conversions": [{"kernel": c, "tensor": t, "read_by": r}
                                for c, t, r in self.conversions],
                "unmodelled": list(self.unmodelled)}

    def node_precision(self) -> dict[str, str]:
        return {n: k.precision for k in self.kernels for n in k.nodes}


def nonnegative(graph: Graph) -> dict[str, bool]:
    """Per node, whether its output is never negative (the ops table's ``nonneg``: always,
    where its inputs are not, or as 1 − x of a sigmoid's x)."""
    out: dict[str, bool] = {}
    for n in graph:
        rule = OPS[n.op].nonneg
        out[n.name] = (rule == "always" or (rule == "inputs" and all(out[i] for i in n.inputs))
                       or (rule == "complement" and graph[n.inputs[0]].op == "sigmoid"))
    return out


def _runs(roots: dict[str, list[str]], inputs: dict[str, list[str]],
          find: Callable[[str], str]) -> list[str]:
    """The kernels in an order they can run in, each as early as its inputs allow (a conv
    that takes a later add as its post-op runs after the add's other operand)."""
    order: list[str] = []
    done: set[str] = set()
    waiting = list(roots)
    while waiting:
        ready = next((r for r in waiting
                      if all(find(i) in done or find(i) not in roots for i in inputs[r])), None)
        if ready is None:
            raise ValueError("the profile's rules merge kernels that read each other's "
                             f"output ({', '.join(waiting[:3])}): no order runs them")
        waiting.remove(ready)
        done.add(ready)
        order.append(ready)
    return order


def _wanted(roots: dict[str, list[str]], forms: dict[str, Int8Form],
            readers: dict[str, list[str]], out_of: dict[str, str]) -> set[str]:
    """The tensors some reader asks for as int8: a reader that reads int8, or one that
    follows and whose own output is asked for (walked from the output back); none that a
    reader keeps in float (``input_stays_float``)."""
    wanted: set[str] = set()
    for r in reversed(list(roots)):
        for t in roots[r]:
            if forms[r].ignored or any(forms[o].input_stays_float for o in readers.get(t, ())):
                continue
            if any(INT8 in forms[o].reads and (not forms[o].follows or out_of[o] in wanted)
                   for o in readers.get(t, ())):
                wanted.add(t)
    return wanted


def _written(p: Int8Profile, f: Int8Form, t: str, wanted: bool, read: str,
             conversions: list[tuple[str, str, str]], readers: list[tuple[str, bool]]
             ) -> str:
    """What a kernel of form ``f`` writes as tensor ``t`` (its input was ``read``), with
    the conversion it needs where an int8 reader wants ``t`` and the kernel can't write
    int8 itself. ``readers``: (op, reads int8) of the kernels reading ``t``."""
    if p.outputs != "as_read":
        return f.out
    if f.follows:
        return read
    if wanted and f.out == FLOAT:  # a FakeQuantize of its own
        conversions.append((p.quantize, t, "its readers"))
    elif wanted and f.convert:
        conversions += [(k, t, op) for op, int8 in readers if int8
                        for k in f.convert_by.get(op, f.convert)]
    return INT8 if wanted else FLOAT


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
                 else p.ops.get(form_key(graph[names[0]].op, graph[names[0]].attrs, p.ops)))
        if found is None:
            what = (f"merged kernel {st.label[root]}" if len(names) > 1
                    else f"op {graph[names[0]].op}")
            raise ValueError(f"the profile's int8 section has no form for {what}")
        return found.on(graph[names[0]], graph)

    first = graph.input.name
    inputs = {r: list(dict.fromkeys(source(i) for m in names for i in graph[m].inputs
                                    if st.find(source(i)) != r or source(i) == first))
              for r, names in roots.items()}
    everything = {first: [first], **{r: roots[r] for r in _runs(roots, inputs, st.find)}}
    base = {r: form(r, names) for r, names in roots.items()}
    base[first] = p.ops.get("input", Int8Form((), (), FLOAT, "float"))
    readers: dict[str, list[str]] = {}
    for r, ins in inputs.items():
        for i in ins:
            readers.setdefault(i, []).append(r)
    out_of = {r: names[-1] for r, names in everything.items()}
    wanted = (_wanted(everything, base, readers, out_of) if p.outputs == "as_read"
              else set())
    sign = nonnegative(graph)
    written: dict[str, str] = {}
    layout: dict[str, str] = {}
    counts: Counter[str] = Counter()
    conversions: list[tuple[str, str, str]] = []
    rows: list[KernelPrecision] = []
    quantized: set[str] = set()
    relaid: set[tuple[str, tuple[str, ...]]] = set()
    rough = p.unmodelled_in(graph)

    def state(t: str) -> str:
        if written[t] != INT8:
            return "f32"
        return "u8" if sign[t] or t == first else "i8"

    planar_for: dict[str, tuple[str, ...]] = {}  # tensor -> readers of a planar copy

    for r, names in everything.items():
        f, ins = base[r], inputs.get(r, [])
        layout_in = {i: "planar" if graph[names[0]].op in planar_for.get(i, ()) else layout[i]
                     for i in ins}
        if f.float_input and all(written[i] == FLOAT and not any(
                INT8 in base[o].reads for o in readers[i] if o != r)
                for i in ins):
            f = f.float_input
        if f.shared_input and any(len(st.consumers[i]) > 1 and not sign[i] for i in ins):
            f = f.shared_input
        if f.planar_input and "planar" in layout_in.values():
            f = f.planar_input
        if f.layout == "blocked" and p.relayout:  # one Reorder a tensor and kind of reader
            for i in ins:
                if layout_in[i] == "planar" and (i, f.kernels[:1]) not in relaid:
                    relaid.add((i, f.kernels[:1]))
                    conversions.append(((f.relayout or p.relayout).replace("{q}", state(i)),
                                        i, names[0]))
        for i in ins if p.outputs == "as_read" and INT8 in f.reads else ():
            if written[i] == FLOAT and any(base[o].input_stays_float for o in readers[i]):
                quantized.add(i)  # a FakeQuantize of its own for each int8 reader
                conversions.append((p.quantize, i, names[0]))
        for i in ins if p.outputs == "form" else ():  # as_read: see _written
            for read in f.reads:  # each read of each input (a Shape reads it in float)
                if written[i] == FLOAT and read == INT8 and i not in quantized:
                    quantized.add(i)
                    conversions.append((p.quantize, i, names[0]))
                elif written[i] == INT8 and read == FLOAT and p.dequantize:
                    conversions.append((p.dequantize, i, names[0]))
        asked = [i for i in ins if INT8 in f.reads and written[i] == INT8]
        q = state((asked or ins)[0 if f.sign_from == "first" else -1]) if ins else "f32"
        kernels = tuple(k.replace("{q}", q) for k in f.kernels)
        counts.update(kernels)
        if r != first:
            rows.append(KernelPrecision(tuple(names), kernels, f.precision, f.source))
        if f.unmodelled and f.source not in rough:
            rough.append(f.source)
        for m in names:
            layout[m] = (f.layout if f.layout != "keeps" else
                         layout_in[ins[0]] if ins else "blocked")
            read_by = [(graph[everything[o][0]].op, INT8 in base[o].reads)
                       for o in readers.get(m, ())]
            written[m] = _written(p, f, m, m in wanted, written[ins[0]] if ins else FLOAT,
                                  conversions, read_by)
            if m in wanted and f.convert and f.out != FLOAT:
                planar_for[m] = f.convert_planar
        if f.sum_convert and written[names[-1]] == FLOAT:  # the quantized sum operands
            conversions += [(f.sum_convert.replace("{q}", "u8" if sign[o] else "i8"), o, names[0])
                            for o in ins[1:] if written[o] == INT8 or o in quantized]
    last = source(graph.output.name)
    if written[last] == INT8 and p.dequantize:
        conversions.append((p.dequantize, last, "output"))
    counts.update(c for c, _, _ in conversions)
    return Int8Plan(tuple(rows), tuple(conversions), counts, tuple(rough))
