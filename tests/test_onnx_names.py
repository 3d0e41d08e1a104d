"""ONNX exports a user can read: every node of every shipped spec's export is named by
the module path of the IR node it computes (``/layer1/layer1.0/conv1/Conv``), every
conv of the IR has its node, and the file's metadata names the spec, archdsl's version,
the input and the outputs; a fused module's nodes point back to the spec's too."""

from __future__ import annotations

import onnx
import pytest
from helpers import SPECS, all_specs, spec_id

import archdsl
from archdsl.load import load_spec_with_graph

EXPORTER = ("Identity", "Constant")  # the exporter's own copies of weights and constants


def qualified(node_name: str) -> str:
    """The module path of an exported node: the exporter writes each scope by its name
    in its parent's (``/stages/stages.0/blocks/blocks.0/conv1/Conv``)."""
    path: list[str] = []
    for seg in node_name.strip("/").split("/")[:-1]:
        if path and seg.startswith(path[-1] + "."):
            path[-1] = seg
        else:
            path.append(seg)
    return ".".join(path)


def within(path: str, name: str) -> bool:
    """Whether an exported node's module path names the IR node ``name`` or a module
    holding it: its parts in order, the last where it is; a part the exporter leaves out
    is a plain container (a part whose nodes interleave with others', archdsl.emit.nest)
    or a fused module's suffix (``conv1_merged``, ``add_in1``)."""
    want = name.split(".")
    got = path.split(".")
    if got[-1] not in want:
        got[-1] = next((w for w in want if got[-1].startswith(w + "_")), got[-1])
    it = iter(want)
    return all(part in it for part in got)


def scoped(path, tmp_path, fused: bool = False) -> tuple[set[str], onnx.ModelProto]:
    _, graph = load_spec_with_graph(path)
    model = archdsl.build_model(graph).eval()
    out = archdsl.export_onnx(archdsl.fuse(model) if fused else model,
                              tmp_path / "m.onnx")
    m = onnx.load(str(out))
    names = {n.name for n in graph}
    for n in m.graph.node:
        if n.op_type in EXPORTER:
            continue
        q = qualified(n.name)
        assert n.name.startswith("/") and any(within(q, x) for x in names), n.name
    return {qualified(n.name) for n in m.graph.node if n.op_type == "Conv"}, m


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_node_names_carry_the_module_path(path, tmp_path) -> None:
    convs, m = scoped(path, tmp_path)
    _, graph = load_spec_with_graph(path)
    missing = [n.name for n in graph if n.op == "conv2d"
               and not any(within(q, n.name) for q in convs)]
    assert not missing  # every conv of the IR has its node
    props = {p.key: p.value for p in m.metadata_props}
    assert props["archdsl.spec"] == graph.name
    assert props["archdsl.version"] == archdsl.__version__
    c, h, w = graph.input.shape
    assert props["archdsl.input"] == f"input: N x {c} x {h} x {w}, float32"
    assert props["archdsl.outputs"] == f"logits: {graph.output.name}"


@pytest.mark.parametrize("name", ["resnet50", "seresnext50_32x4d", "resnetv2_50"])
def test_fused_names_point_back_to_the_spec(name, tmp_path) -> None:
    scoped(SPECS / f"{name}.yaml", tmp_path, fused=True)


def test_backbone_outputs_are_named(tmp_path) -> None:
    model = archdsl.build_model(SPECS / "resnet18.yaml", features_only=True,
                                out_indices=(2, 4))
    m = onnx.load(str(archdsl.export_onnx(model, tmp_path / "b.onnx")))
    assert [o.name for o in m.graph.output] == ["feature_2", "feature_4"]
    assert {p.key: p.value for p in m.metadata_props}["archdsl.outputs"] == \
        "feature_2: layer2.1.relu2, feature_4: layer4.1.relu2"
