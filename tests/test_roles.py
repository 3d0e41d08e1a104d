"""Roles are data: each node's role and part are set by the lowering that made it, agree
with the real twins' module structure, and survive any renaming.

- the roles of every weighted node agree with where timm's and torchvision's own modules
  put it: inside an ``SEModule`` / ``EcaModule`` (attention, part se / eca), inside a
  block's ``downsample`` (shortcut), the model's classifier (head, classifier); a
  ``SplitAttn``'s, ``SelectiveKernel``'s or ``Bottle2neck``'s own modules (branch, part
  split_attn / sk / res2net) and their attention's (attention);
- renaming every node through a layout whose names share none of today's prefixes
  changes no node's role or part, no count under any convention and no diagram style.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from helpers import all_specs, spec_id

from archdsl.analysis.counts import CONVENTIONS, count
from archdsl.emit import dot
from archdsl.ir.graph import ROLES, Graph
from archdsl.layouts import module_of
from archdsl.load import load_spec_with_graph

SPECS = Path(__file__).resolve().parents[1] / "specs"


def renamed(graph: Graph) -> Graph:
    """``graph`` with every stage, block and node renamed to names no layout uses
    (``part2.unit0.m3``), order, shapes, roles and parts kept."""
    stages = {s: f"part{i}" for i, s in enumerate(dict.fromkeys(n.stage for n in graph))}
    blocks = {b: f"{stages[ns[0].stage]}.unit{i}" for i, (b, ns) in
              enumerate(graph.blocks().items())}
    names = {}
    for i, n in enumerate(graph):
        names[n.name] = f"{blocks[n.block]}.m{i}" if n.block else f"t{i}"
    nodes = tuple(replace(n, name=names[n.name], inputs=tuple(names[i] for i in n.inputs),
                          stage=stages[n.stage], block=blocks.get(n.block or ""))
                  for n in graph)
    return Graph(graph.name, nodes, {blocks[b]: k for b, k in graph.kinds.items()},
                 graph.layout)


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_renaming_changes_no_role_count_or_style(path: Path) -> None:
    graph = load_spec_with_graph(path)[1]
    other = renamed(graph)
    assert not {n.name.split(".")[-1] for n in graph} & {n.name.split(".")[-1] for n in other}
    assert [(n.role, n.part) for n in graph] == [(n.role, n.part) for n in other]
    assert {n.role for n in graph} <= set(ROLES)
    for conv in CONVENTIONS:
        a, b = count(graph, conv), count(other, conv)
        assert [(r.macs, r.params) for r in a.nodes] == [(r.macs, r.params) for r in b.nodes]
        assert (a.total.macs, a.total.params) == (b.total.macs, b.total.params)
    assert [dot._kind(n) for n in graph] == [dot._kind(n) for n in other]


def _twin(name: str) -> torch.nn.Module:
    if name in torchvision.models.list_models():
        return torchvision.models.get_model(name)
    return timm.create_model(name, pretrained=False)


def _truth(model: torch.nn.Module, param: str) -> tuple[str, str | None]:
    """Where the twin's own module tree puts parameter-holding module ``param``."""
    mods = dict(model.named_modules())
    parts = param.split(".")
    owners = [mods[".".join(parts[:i])] for i in range(1, len(parts) + 1)]
    kinds = {type(m).__name__ for m in owners}
    if mods[param] is model.get_classifier() if hasattr(model, "get_classifier") \
            else mods[param] is model.fc:
        return "head", "classifier"
    if kinds & {"SEModule", "SqueezeExcite"}:
        return "attention", "se"
    if "EcaModule" in kinds:
        return "attention", "eca"
    if "downsample" in parts:
        return "shortcut", None
    # a construct in a conv's place: its attention's modules, then its own
    if "SelectiveKernelAttn" in kinds:
        return "attention", "sk"
    if "SplitAttn" in kinds:
        return ("attention" if parts[-1] in ("fc1", "bn1", "fc2") else "branch"), "split_attn"
    if "SelectiveKernel" in kinds:
        return "branch", "sk"
    if "Bottle2neck" in kinds and parts[-2] in ("convs", "bns"):
        return "branch", "res2net"
    blocks = ("BasicBlock", "Bottleneck", "PreActBottleneck", "SEResNetBottleneck",
              "SEResNetBlock", "SEResNeXtBottleneck", "SEBottleneck", "ResNestBottleneck",
              "SelectiveKernelBasic", "SelectiveKernelBottleneck", "Bottle2neck")
    if kinds & set(blocks):
        return "branch", None
    return ("head", None) if parts[0] in ("head", "norm", "fc") else ("stem", None)


@pytest.mark.parametrize("name", ["resnet50", "seresnext50_32x4d", "ecaresnet26t",
                                  "legacy_seresnet18", "resnetv2_50d", "resnet50d",
                                  "resnest50d_4s2x40d", "skresnet18", "skresnext50_32x4d",
                                  "res2net50d"])
def test_roles_agree_with_the_twins_modules(name: str) -> None:
    graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
    with torch.device("meta"):
        model = _twin(name)
    weighted = {k.rsplit(".", 1)[0] for k, _ in model.named_parameters()}
    seen = set()
    for n in graph:
        owner = module_of(graph, n)
        if owner in weighted:
            assert (n.role, n.part) == _truth(model, owner), n.name
            seen.add(owner)
    assert seen == weighted


@pytest.mark.parametrize(("name", "part", "other"), [("ecaresnet26t", "eca", "se"),
                                                     ("seresnet50", "se", "eca")])
def test_an_attention_is_drawn_as_its_kind(name: str, part: str, other: str) -> None:
    """ECA's nodes (named se.* after timm's) draw in ECA's style under an ECA legend entry
    at the layer and block levels, and SE's in SE's: the style comes from the part."""
    graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
    attention = [n for n in graph if n.role == "attention"]
    assert attention and {n.part for n in attention} == {part}
    assert {dot._kind(n) for n in attention} == {part}
    style = dot.STYLES[part]
    for level in ("layer", "block"):
        source = dot.to_dot(graph, level)
        assert f"legend_{part} [label={style.label} fillcolor=\"{style.fill}\"" in source
        assert f"legend_{other} " not in source and source.count(style.fill) > 1
