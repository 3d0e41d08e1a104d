"""The fusion executor: apply a plan's rules that archdsl carries out itself (the profile's
``executes``) to a built module and return a new ``torch.fx.GraphModule`` that computes
the same function with fewer kernels (and, with kernel-1 pooling, fewer MACs)."""

from __future__ import annotations

import os

import torch
from torch import fx, nn

from ..emit.layers import standardized
from ..emit.nest import Op, Step, tree
from ..emit.torch import ArchdslModule, build_model, module
from ..emit.torch import call as call_of
from ..ir.features import outputs
from ..ir.graph import Graph, Node
from ..spec.schema import Spec
from .kernels import ConvAddReLU, ConvReLU
from .planner import FusionPlan, plan_for
from .rules import subsampled_only
from .state import State


def subsample(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Every ``stride``-th pixel: the kernel-1 pooling moved upstream (2), a 1x1 conv's
    stride moved onto its input (the sum merge)."""
    return x[:, :, ::stride, ::stride]


def cat_channels(*xs: torch.Tensor) -> torch.Tensor:
    """The sum merge's concatenated input, written once."""
    return torch.cat(xs, 1)


def _bn_affine(sd: dict[str, torch.Tensor], name: str, eps: float) -> tuple[torch.Tensor, ...]:
    s = sd[f"{name}.weight"] / torch.sqrt(sd[f"{name}.running_var"] + eps)
    return s, sd[f"{name}.bias"] - sd[f"{name}.running_mean"] * s


class _Fuser:
    def __init__(self, graph: Graph, plan: FusionPlan, sd: dict[str, torch.Tensor],
                 dtype: torch.dtype | None = None) -> None:
        self.g, self.plan, self.sd = graph, plan, sd
        floats = [v for v in sd.values() if v.is_floating_point()]
        own = floats[0].dtype if floats else torch.float32
        self.dtype = dtype or own  # the fused module's
        # folding in bf16/fp16 itself loses more than the unfused module: float32, or
        # float64 where either dtype is
        compute = torch.float64 if torch.float64 in (own, self.dtype) else torch.float32
        # the folding's inputs, in the compute precision, on the module's device
        self.f = {k: v.to(compute) if v.is_floating_point() else v for k, v in sd.items()}
        self.weights: dict[str, list[torch.Tensor]] = {}
        # the convs whose bias is not all zeros: their own, or a folded one
        self.biased = {n.name for n in graph if f"{n.name}.bias" in sd and n.op == "conv2d"}
        self.executes = plan.executes
        for n in graph:
            if n.op == "conv2d":
                w = self.f[f"{n.name}.weight"].clone()
                if "standardize" in n.attrs:  # once, here, rather than on every call
                    w = standardized(w, n.attrs["standardize"])
                b = self.f.get(f"{n.name}.bias")
                self.weights[n.name] = [w, b.clone() if b is not None else
                                        torch.zeros(w.shape[0], dtype=w.dtype,
                                                    device=w.device)]
        self.alias: dict[str, str] = {}      # node → the node whose value it is
        self.stride: dict[str, int] = {n.name: n.attrs["stride"] for n in graph
                                       if n.op == "conv2d"}
        self.sub: set[str] = set()           # outputs computed at every other pixel
        self.axpy: dict[str, str] = {}       # add → the SE mul it absorbs
        self.merged: dict[str, list[str]] = {}  # first conv → the convs merged with it
        self.summed: dict[str, tuple[str, str]] = {}  # add → the two convs it sums
        self.conv_relu: set[str] = set()     # convs run as ConvReLU
        self.conv_add: dict[str, tuple[str, str]] = {}  # add → (conv, z) as ConvAddReLU
        self.applied: list[str] = []

    def value_of(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def _groups(self, rule: str) -> list[tuple[str, ...]]:
        if rule not in self.executes:
            return []
        return [g.nodes for g in self.plan.groups if rule in (g.rules or (g.rule,))]

    def prepare(self) -> None:
        g = self.g
        for nodes in self._groups("kernel1_pool"):
            sub = subsampled_only(State(g))
            region = [n for n in nodes if n in sub]
            self.sub.update(region)
            for n in nodes:
                node = g[n]
                if node.op == "conv2d":
                    reads_sub = node.inputs[0] in sub
                    if n in sub and not reads_sub:
                        self.stride[n] *= 2  # computes every other output pixel itself
                    elif n not in sub and reads_sub:
                        self.stride[n] //= 2  # its input is already subsampled
        for rule in ("bn_fold", "bn_fold_forward", "scale_fold"):
            for nodes in self._groups(rule):
                self._fold(rule, nodes)
        for nodes in self._groups("horizontal_merge"):
            convs = [n for n in nodes if g[n].op == "conv2d"]
            ins = {g[c].inputs[0] for c in convs}
            for x in ins:
                mates = [c for c in convs if g[c].inputs[0] == x]
                if len(mates) > 1:
                    self.merged[mates[0]] = mates
        for nodes in self._groups("sum_merge"):
            add = next(n for n in nodes if g[n].op == "add")
            a, b = (c for i in g[add].inputs for c in nodes
                    if g[c].op == "conv2d" and self.value_of(i) == c)
            self.summed[add] = (a, b)
        for nodes in self._groups("se_axpy"):
            mul = next(n for n in nodes if g[n].op == "mul")
            add = next(n for n in nodes if g[n].op == "add")
            self.axpy[add] = mul
        for d in (n for n in g if n.op == "dropout"):
            self.alias[d.name] = d.inputs[0]  # identity at inference
        for nodes in self._groups("conv_act"):
            conv = next(n for n in nodes if g[n].op == "conv2d")
            self.conv_relu.add(conv)
            self.alias[nodes[-1]] = conv
        for nodes in self._groups("conv_add_act"):
            conv = next(n for n in nodes if g[n].op == "conv2d")
            add = next(n for n in nodes if g[n].op == "add")
            z = next(i for i in g[add].inputs if self.value_of(i) != conv)
            self.conv_add[add] = (conv, z)
            if nodes[-1] != add:
                self.alias[nodes[-1]] = add
        for conv, z in self.conv_add.values():
            self._move_bias(self.value_of(z), conv)
        self.applied = [r for r in self.executes if self._groups(r)]

    @property
    def add_convs(self) -> set[str]:
        """The convs that run as ConvAddReLU, emitted at their add."""
        return {conv for conv, _ in self.conv_add.values()}

    def _move_bias(self, src: str, conv: str) -> None:
        """A folded bias on a conv whose one reader is a conv+add kernel's ``z`` (a
        projection shortcut) moves into that kernel's bias: it is added there anyway, and
        on CUDA a bias of its own would be a broadcast add."""
        g = self.g
        if src not in self.biased or g[src].op != "conv2d" or src in self.conv_relu \
                or src in self.merged or any(src in ms for ms in self.merged.values()):
            return
        readers = [n.name for n in g if n.name not in self.alias
                   and any(self.value_of(i) == src for i in n.inputs)]
        if len(readers) != 1 or readers[0] not in self.conv_add:
            return
        self.weights[conv][1] = self.weights[conv][1] + self.weights[src][1]
        self.weights[src][1] = torch.zeros_like(self.weights[src][1])
        self.biased.discard(src)
        self.biased.add(conv)

    def _fold(self, rule: str, nodes: tuple[str, ...]) -> None:
        g = self.g
        for n in nodes:
            node = g[n]
            if rule == "bn_fold" and node.op == "batch_norm" and g[node.inputs[0]].op == "conv2d" \
                    and node.inputs[0] in nodes:
                conv = node.inputs[0]
                s, t = _bn_affine(self.f, n, node.attrs["eps"])
                w, b = self.weights[conv]
                self.weights[conv] = [w * s.view(-1, 1, 1, 1), b * s + t]
                self.biased.add(conv)
                self.alias[n] = conv
            elif rule == "scale_fold" and node.op == "scale":
                conv = self.value_of(node.inputs[0])
                w, b = self.weights[conv]
                f = node.attrs["factor"]
                self.weights[conv] = [w * f, b * f]
                self.alias[n] = node.inputs[0]
            elif rule == "bn_fold_forward" and node.op == "batch_norm":
                conv = next(c for c in nodes if g[c].op == "conv2d")
                s, t = _bn_affine(self.f, n, node.attrs["eps"])
                w, b = self.weights[conv]
                groups = g[conv].attrs["groups"]
                # W'[o, i] = W[o, i]·s[i]; b' = b + Σ_i W[o, i]·t[i] (per group)
                cin = w.shape[1]
                s_g = s.view(groups, cin)
                t_g = t.view(groups, cin)
                w_g = w.view(groups, -1, cin, *w.shape[2:])
                b = b + (w_g * t_g.view(groups, 1, cin, 1, 1)).sum((2, 3, 4)).reshape(-1)
                w = (w_g * s_g.view(groups, 1, cin, 1, 1)).reshape(w.shape)
                self.weights[conv] = [w, b]
                self.biased.add(conv)
                self.alias[n] = node.inputs[0]

    def _weights(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The (merged) convs' weight and bias, cast once, at the end, to the module's own
        dtype; no bias where all are zeros by construction (no bias of their own, none
        folded), since on CUDA a conv's bias is a kernel of its own."""
        w = torch.cat([self.weights[c][0] for c in names]).to(self.dtype)
        if not any(c in self.biased for c in names):
            return w, None
        return w, torch.cat([self.weights[c][1] for c in names]).to(self.dtype)

    def _conv(self, names: list[str]) -> nn.Module:
        a = self.g[names[0]].attrs
        w, b = self._weights(names)
        stride = self.stride[names[0]]
        fused = ConvReLU if names[0] in self.conv_relu else \
            ConvAddReLU if names[0] in self.add_convs else None
        if fused is not None:
            # a zero bias of its own: without one, cuDNN's fused ops fill one every call
            return fused(w, torch.zeros_like(w[:, 0, 0, 0]) if b is None else b, stride,
                         a["padding"], a["groups"], a.get("dilation", 1))
        conv = nn.Conv2d(a["in_channels"], w.shape[0], a["kernel"], stride=stride,
                         padding=a["padding"], dilation=a.get("dilation", 1),
                         groups=a["groups"], bias=b is not None, dtype=self.dtype,
                         device=w.device)
        with torch.no_grad():
            conv.weight.copy_(w)
            if b is not None:
                conv.bias.copy_(b)
        return conv

    def _summed_conv(self, a: str, b: str) -> nn.Module:
        """One conv over the concatenated inputs of ``a`` and ``b``: their weights side by
        side along the input channels, their biases added; a 1x1's stride is taken by
        subsampling its input, so the merged conv strides only where both 3x3s do."""
        at = self.g[a].attrs
        w = torch.cat([self.weights[a][0], self.weights[b][0]], 1).to(self.dtype)
        bias = (self.weights[a][1] + self.weights[b][1]).to(self.dtype) \
            if a in self.biased or b in self.biased else None
        stride = 1 if at["kernel"] == 1 else self.stride[a]
        conv = nn.Conv2d(w.shape[1], w.shape[0], at["kernel"], stride=stride,
                         padding=at["padding"], dilation=at.get("dilation", 1),
                         bias=bias is not None, dtype=self.dtype, device=w.device)
        with torch.no_grad():
            conv.weight.copy_(w)
            if bias is not None:
                conv.bias.copy_(bias)
        return conv

    def emit(self) -> fx.GraphModule:
        g = self.g
        steps: list[Step] = []
        skip = set(self.axpy.values()) | {m for ms in self.merged.values() for m in ms[1:]} \
            | self.add_convs | {c for ab in self.summed.values() for c in ab}

        at: dict[str, str] = {}  # a value -> the step computing it, where they differ

        def ref(i: str) -> str:
            v = self.value_of(i)
            return at.get(v, v)

        def arg(n: Node, i: str) -> str:
            v = ref(i)
            if n.name in self.sub and v not in self.sub and n.op != "conv2d" \
                    and g[i].shape[1:] != (1, 1):
                name = f"{n.name}_in{n.inputs.index(i)}"  # beside n: in its block
                steps.append(Step(name, Op(subsample, (2,)), (v,)))
                return name
            return v

        def add(name: str, m: nn.Module, *inputs: str) -> None:
            steps.append(Step(name, m, inputs))

        for n in g.nodes[1:]:
            if n.name in self.alias or n.name in skip:
                continue
            if n.name in self.merged:
                names = self.merged[n.name]
                target = f"{n.name}_merged"
                add(target, self._conv(names), arg(n, n.inputs[0]))
                start = 0
                for c in names:
                    width = self.weights[c][0].shape[0]
                    add(c, Op(torch.narrow, (1, start, width)), target)
                    start += width
            elif n.name in self.summed:
                a, b = self.summed[n.name]
                ins = []
                for c in (a, b):
                    v = arg(g[c], g[c].inputs[0])
                    if g[c].attrs["kernel"] == 1 and self.stride[c] > 1:
                        add(f"{c}_in", Op(subsample, (self.stride[c],)), v)
                        v = f"{c}_in"
                    ins.append(v)
                add(f"{a}_cat", Op(cat_channels), *ins)
                add(a, self._summed_conv(a, b), f"{a}_cat")
                at[n.name] = a
            elif n.name in self.conv_add:
                conv, z = self.conv_add[n.name]
                add(conv, self._conv([conv]), arg(g[conv], g[conv].inputs[0]), arg(n, z))
                at[n.name] = conv
            elif n.op == "conv2d":
                add(n.name, self._conv([n.name]), arg(n, n.inputs[0]))
            elif n.name in self.axpy:
                mul = g[self.axpy[n.name]]
                short = next(i for i in n.inputs if i != mul.name)
                add(n.name, Op(torch.addcmul), arg(n, short), arg(n, mul.inputs[0]),
                    ref(mul.inputs[1]))
            elif (m := module(n)) is not None:
                own = {k: v for k, v in self.sd.items() if k.startswith(n.name + ".")}
                if own:
                    m = m.to(device=next(iter(own.values())).device, dtype=self.dtype)
                m.load_state_dict({k[len(n.name) + 1:]: v for k, v in own.items()})
                add(n.name, m, *(arg(n, i) for i in n.inputs))
            else:
                fn, extra, kw = call_of(n)
                add(n.name, Op(fn, extra, kw), *(arg(n, i) for i in n.inputs))
        model = tree(steps, [g.input.name], [ref(o) for o in outputs(g)], root=ArchdslModule,
                     class_name="ArchdslFused", listed=bool(g.features))
        model.archdsl_applied = tuple(self.applied)
        return model.eval()

def fuse(model_or_spec: nn.Module | Spec | Graph,
         plan_or_device: FusionPlan | str | os.PathLike[str] | None = None, *,
         dtype: torch.dtype | None = None) -> fx.GraphModule:
    """A fused copy of a built module (or of a fresh one built from a spec), in eval mode,
    on the module's device (cpu, cuda, meta) and in ``dtype`` (default: the module's own:
    float32, float64, bfloat16 or float16). The folding is computed in float32 (float64
    where either dtype is) and cast once at the end: to run in bf16/fp16, fuse the float32
    module with ``dtype=torch.bfloat16`` (one rounding of the folded weights), rather than
    a module already cast (its weights are rounded twice). A ``copy.deepcopy`` of a built
    module fuses too. ``plan_or_device``: a plan, or a profile by name or file (default:
    ``eager-cuda`` for a module on CUDA, ``eager`` otherwise).

    Applies the rules of the plan's profile that archdsl carries out itself (its
    ``executes``; by default BN folding both ways, constant-scale folding, horizontal
    merges with a split, SE as ``torch.addcmul`` and kernel-1 pooling); what only an engine
    can do is left to the engine. The ``eager-cuda`` profile (the default for a module on
    CUDA) also runs conv+bias+ReLU and conv+bias+add+ReLU as cuDNN's fused kernels
    (:class:`ConvReLU`, :class:`ConvAddReLU`; plain ops off CUDA, so the fused module
    still runs, and is tested, on the CPU). ``model.archdsl_applied`` lists the rules
    applied.
    """
    model = model_or_spec if isinstance(model_or_spec, nn.Module) else \
        build_model(model_or_spec)
    graph = getattr(model, "archdsl_graph", None)
    if graph is None:
        raise ValueError("fuse() needs a module built by archdsl (it reads the IR back)")
    if plan_or_device is None:
        on_cuda = any(t.is_cuda for t in model.state_dict().values())
        plan_or_device = "eager-cuda" if on_cuda else "eager"
    plan = plan_or_device if isinstance(plan_or_device, FusionPlan) else \
        plan_for(graph, plan_or_device)
    if model.training:
        raise ValueError("fuse() folds BN running statistics: call model.eval() first")
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    f = _Fuser(graph, plan, sd, dtype)
    with torch.no_grad():
        f.prepare()
        fused = f.emit()
    fused.archdsl_graph = graph
    return fused
