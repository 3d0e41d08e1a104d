"""Lowering: shapes and node counts, checked against torchvision's real modules."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision
from helpers import ROOT, SPECS, all_specs, spec_id

from archdsl import lower
from archdsl.load import load_spec, load_spec_with_graph


def stage_outputs(graph):
    """The output shape of each stage: its last node's shape."""
    out = {}
    for n in graph:
        out[n.stage] = n.shape
    return {k: v for k, v in out.items() if k.startswith("layer")}


def test_resnet50_stage_shapes_224():
    # ResNet paper, Table 1: conv2_x..conv5_x at 56, 28, 14, 7.
    _, graph = load_spec_with_graph(SPECS / "resnet50.yaml")
    assert stage_outputs(graph) == {"layer1": (256, 56, 56), "layer2": (512, 28, 28),
                                    "layer3": (1024, 14, 14), "layer4": (2048, 7, 7)}


@pytest.mark.parametrize("hw", [(224, 224), (160, 192), (97, 131)])
def test_resnet50_stage_shapes_match_torchvision(hw):
    spec = load_spec(SPECS / "resnet50.yaml")
    graph = lower(spec.model_copy(update={"input": spec.input.model_copy(update={"size": hw})}))
    tv = torchvision.models.resnet50().eval()
    seen = {}
    for i in range(1, 5):
        getattr(tv, f"layer{i}").register_forward_hook(
            lambda m, a, y, i=i: seen.__setitem__(f"layer{i}", tuple(y.shape[1:])))
    with torch.no_grad():
        tv(torch.zeros(1, 3, *hw))
    assert stage_outputs(graph) == seen


def test_resnet50_node_counts():
    _, graph = load_spec_with_graph(SPECS / "resnet50.yaml")
    ops = graph.count_ops()
    assert (ops["conv2d"], ops["batch_norm"], ops["add"]) == (53, 53, 16)
    tv = torchvision.models.resnet50()
    assert ops["conv2d"] == sum(isinstance(m, torch.nn.Conv2d) for m in tv.modules())
    assert ops["batch_norm"] == sum(isinstance(m, torch.nn.BatchNorm2d) for m in tv.modules())


def test_every_node_shape_matches_the_built_module():
    """Every IR shape equals what the built module computes, node by node (each node is
    the submodule at its qualified name)."""
    from archdsl.emit.torch import build_model

    _, graph = load_spec_with_graph(SPECS / "resnext50_32x4d.yaml")
    model = build_model(graph).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    for n in graph.nodes[1:]:
        model.get_submodule(n.name).register_forward_hook(
            lambda m, a, y, name=n.name: shapes.__setitem__(name, tuple(y.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, *graph.input.shape))
    assert shapes == {n.name: n.shape for n in graph.nodes[1:]}


def test_names_are_torchvision_prefixes():
    _, graph = load_spec_with_graph(SPECS / "resnet50.yaml")
    names = {n.name for n in graph if n.op in ("conv2d", "batch_norm", "linear")}
    tv = {k.rsplit(".", 1)[0] for k in torchvision.models.resnet50().state_dict()}
    assert names == tv


def test_topological_order():
    for path in all_specs():
        _, graph = load_spec_with_graph(path)
        seen = set()
        for n in graph:
            assert all(i in seen for i in n.inputs), (spec_id(path), n.name)
            seen.add(n.name)


def test_core_never_imports_torch():
    """Validate and lower every spec, and count under every convention, in a process
    where ``import torch`` fails."""
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, Block())
        from pathlib import Path
        from archdsl.cli.main import main
        from archdsl.load import load_spec_with_graph
        specs = sorted(Path({str(SPECS)!r}).rglob("*.yaml"))
        for p in specs:
            load_spec_with_graph(p)
        assert main(["validate", *map(str, specs)]) == 0
        for c in ("all", "fvcore", "ptflops", "ptflops-aten", "thop", "torchinfo"):
            assert main(["count", str(specs[0]), "--convention", c, "--vs", "conv+linear",
                         "--by", "node", "--format", "json"]) == 0
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
        print("ok", len(specs))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == f"ok {len(all_specs())}"
