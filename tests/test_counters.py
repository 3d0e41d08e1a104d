"""`archdsl count --convention fvcore|ptflops|ptflops-aten|thop|torchinfo` against the
real tools (their pinned releases) run on the real torchvision and timm models: the
totals, every module with parameters, every block and stage, exactly. And `--vs`:
itemised differences that sum to the difference of the totals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from math import prod

import pytest
import torch
from helpers import COUNTED_TWINS, ROOT, SPECS, all_specs, make_twin, spec_id

from archdsl.analysis import counters
from archdsl.analysis.counts import CONVENTIONS, count, formula, versus
from archdsl.analysis.measure import _RUN, installed, measure
from archdsl.ir.ops import FAMILIES, OPS
from archdsl.load import load_spec_with_graph

TWINS = COUNTED_TWINS
TOOLS = counters.names()


def needs(tool: str) -> None:
    reason = installed(tool)
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must check the {tool} convention against the tool: {reason}")
        pytest.skip(reason)


def twin(name):
    """The torchvision/timm model with uninitialised weights (counts don't read them,
    and initialising wide_resnet101_2 takes longer than counting it five times)."""
    with torch.device("meta"):
        model = make_twin(name)
    return model.to_empty(device="cpu")


def graph_of(name, input_shape=None):
    return load_spec_with_graph(SPECS / f"{name}.yaml", input_shape)[1]


def assert_agrees(graph, model, tool):
    """The tool's total equals archdsl's count under its convention; where the tool
    reports per module, so does every module with parameters, block, stage and the
    root."""
    needs(tool)
    got = measure(tool, model, graph.input.shape)
    assert count(graph, tool).total.macs == got.total, f"{graph.name} {tool}"
    if got.modules:
        expected = counters.per_module(graph, counters.load(tool))
        assert len(expected) > 20
        assert {k: got.modules.get(k) for k in expected} == expected, f"{graph.name} {tool}"
    return got


@pytest.mark.parametrize("name", TWINS)
def test_every_tool_on_every_twin(name):
    """At the spec's own input (224²), full depth: fvcore, ptflops (both backends), thop
    and torchinfo each give exactly archdsl's number under their convention."""
    graph, model = graph_of(name), twin(name)
    per_module = {t for t in TOOLS if assert_agrees(graph, model, t).modules}
    assert per_module == {"fvcore", "ptflops", "thop"}


@pytest.mark.parametrize("name", ["resnet50", "seresnext50_32x4d", "resnet50d", "resnetv2_50"])
def test_other_resolutions(name):
    """The conventions are functions of the shapes: a non-square input whose maps have
    odd sizes (3x160x200 → 5x7 at the head) agrees too."""
    graph, model = graph_of(name, (3, 160, 200)), twin(name)
    per_module = {t for t in TOOLS if assert_agrees(graph, model, t).modules}
    assert per_module == {"fvcore", "ptflops", "thop"}


def test_cli_json_gives_the_tools_numbers():
    """The CLI's JSON `macs` for resnet50, as each tool reports it for torchvision's
    resnet50 (the figures of the issue, measured with the same releases)."""
    published = {"fvcore": 4_111_512_576, "ptflops": 4_132_436_968,
                 "ptflops-aten": 4_089_185_256, "thop": 4_133_742_592,
                 "torchinfo": 4_089_238_376}
    for tool, macs in published.items():
        out = subprocess.run([sys.executable, "-m", "archdsl", "count",
                              str(SPECS / "resnet50.yaml"), "--convention", tool,
                              "--format", "json"],
                             capture_output=True, text=True, check=True).stdout
        doc = json.loads(out)
        assert (doc["convention"], doc["macs"]) == (tool, macs)
        assert doc["reproduces"]["version"] == counters.load(tool).version


def test_vs_difference_is_the_tools_difference():
    """fvcore vs thop on seresnext50_32x4d: the itemised difference sums to what the two
    tools themselves report apart, and names what each counts."""
    needs("fvcore")
    needs("thop")
    graph, model = graph_of("seresnext50_32x4d"), twin("seresnext50_32x4d")
    v = versus(graph, "fvcore", "thop")
    measured = measure("thop", model, graph.input.shape).total - \
        measure("fvcore", model, graph.input.shape).total
    assert sum(i.delta for i in v.by_op) == sum(i.delta for i in v.by_level) == measured
    bn = {i.where: (i.a_formula, i.b_formula) for i in v.by_op if i.name == "batch_norm"}
    assert bn["branch"] == ("2·out", "4·out")
    pools = {i.where: (i.a_formula, i.b_formula, i.delta) for i in v.by_op
             if i.name == "global_avg_pool"}
    assert pools["head"] == ("in", "in + out", 2048)  # thop's (H·W + 1) per output
    assert "se" not in pools  # SE's mean: neither tool counts it, so it is no item


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_vs_sums_exactly(path):
    """Every convention on each side, on every spec: each itemisation's Δ sums to the
    difference of the totals, and each side to its own total."""
    graph = load_spec_with_graph(path)[1]
    totals = {c: count(graph, c).total.macs for c in CONVENTIONS}
    for a, b in zip(CONVENTIONS, CONVENTIONS[1:] + CONVENTIONS[:1], strict=True):
        for level in ("node", "block", "stage"):
            v = versus(graph, a, b, level)
            assert sum(i.a for i in v.by_level) == totals[a]
            assert sum(i.b for i in v.by_level) == totals[b]
            assert sum(i.delta for i in v.by_level) == totals[b] - totals[a]
        assert sum(i.delta for i in v.by_op) == totals[b] - totals[a]
        assert sum(i.a for i in v.by_op) == totals[a]


def test_vs_cli_formats():
    spec = str(SPECS / "resnet50.yaml")
    run = [sys.executable, "-m", "archdsl", "count", spec, "--convention", "ptflops", "--vs",
           "fvcore"]
    table = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert "B − A: -20,924,392" in table and "2·out" in table
    doc = json.loads(subprocess.run([*run, "--format", "json", "--by", "block"],
                                    capture_output=True, text=True, check=True).stdout)
    assert doc["delta"] == 4_111_512_576 - 4_132_436_968
    assert sum(i["delta"] for i in doc["by_block"]) == doc["delta"]
    relu = next(i for i in doc["by_op"] if (i["op"], i["where"]) == ("relu", "branch"))
    assert (relu["a_counts"], relu["b_counts"]) == ("2·out", "0")
    rows = subprocess.run([*run, "--format", "csv", "--by", "node"], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    assert rows[0] == "table,name,op,where,A ptflops,B fvcore,delta,A counts,B counts"
    assert "node,layer1.0.se.fc1" not in rows[1] and any(
        r.startswith("node,layer1.0.conv1,conv2d,,") and r.endswith(",macs,macs") for r in rows)
    bad = subprocess.run([*run[:-1], "flops"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'flops'" in bad.stderr


def test_rules_cover_every_op_and_each_fires():
    """Each counter prices every op of the IR (by op or by its family), names only ops
    and families; every node of every shipped spec finds a rule; and every rule prices
    some node of some shipped spec (no dead rule)."""
    graphs = [load_spec_with_graph(p)[1] for p in all_specs()]
    for tool in TOOLS:
        c = counters.load(tool)
        assert all(any(r.covers(o) for r in c.rules if not r.where) for o in OPS
                   if o != "input"), tool
        assert {o for r in c.rules for o in r.ops} <= set(OPS) | set(FAMILIES), tool
        fired = {c.rule(g, n) for g in graphs for n in g if n.op != "input"}
        dead = [r.why for r in c.rules if r not in fired]
        assert not dead, f"{tool}: rules that price no node of any spec: {dead}"


def test_pins_agree():
    """Each convention's release is the one pyproject pins for the tests and `bench`,
    and the runner knows every convention."""
    text = (ROOT / "pyproject.toml").read_text()
    extras = {name: re.search(rf"^{name} = \[(.*?)\]$", text, re.M | re.S)[1]
              for name in ("test", "bench")}
    for tool in TOOLS:
        c = counters.load(tool)
        pin = f'"{c.distribution}=={c.version}"'
        assert pin in extras["test"] and pin in extras["bench"], pin
    assert set(_RUN) == set(TOOLS)


def test_ptflops_counts_outside_modules_only_for_its_patches():
    """ptflops' second ReLU/pool count (its functional patch) is in no module's figure:
    the per-module root falls short of the total by exactly that share."""
    graph = graph_of("resnet18")
    c = counters.load("ptflops")
    outside = sum(c.cost(graph, n) - c.module_cost(graph, n) for n in graph if n.op != "input")
    relus = sum(prod(n.shape) for n in graph if n.op == "relu")
    pools = sum(prod(graph[n.inputs[0]].shape) for n in graph
                if n.op in ("max_pool", "global_avg_pool"))
    assert outside == relus + pools


def test_formulas_are_what_is_counted():
    """The formula each node shows (`--vs`) evaluates to the MACs counted for it, under
    every convention, on every spec: `all`'s op-table costs included."""
    for path in all_specs():
        graph = load_spec_with_graph(path)[1]
        for convention in CONVENTIONS:
            for row in count(graph, convention).nodes:
                n = graph[row.name]
                spec = OPS[n.op]
                ins = [graph[i].shape for i in n.inputs]
                terms = {"macs": spec.macs(n.attrs, ins, n.shape), "out": prod(n.shape),
                         "in": prod(ins[0]), "bias": prod(n.shape) * bool(n.attrs.get("bias")),
                         "params": spec.params(n.attrs, ins),
                         "k²·out": n.attrs.get("kernel", 0) ** 2 * prod(n.shape),
                         "channels": n.shape[0], "groups": n.attrs.get("groups", 0)}
                text = formula(graph, n.name, convention)
                parts = [] if text == "0" else text.split(" + ")
                value = sum(terms[p] if p in terms else int(p.split("·")[0]) *
                            terms[p.split("·")[1]] for p in parts)
                assert value == row.macs, (path.stem, convention, n.name, text)


def test_a_counter_yaml_with_a_bad_term_is_refused():
    with pytest.raises(ValueError, match=re.escape("a cost maps terms")):
        counters._rule({"op": "relu", "cost": {"elements": 1}, "why": "x"}, "here")
    with pytest.raises(ValueError, match="unknown op or op family 'gelu'"):
        counters._rule({"op": "gelu", "cost": {}, "why": "x"}, "here")
    with pytest.raises(ValueError, match="has 'standardise': no op carries it"):
        counters._rule({"op": "conv2d", "has": "standardise", "cost": {}, "why": "x"}, "here")
    with pytest.raises(ValueError, match="may have outside_modules, stage, role, part, layout"):
        counters._rule({"op": "relu", "stages": "head", "cost": {}, "why": "x"}, "here")
