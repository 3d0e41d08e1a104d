"""The sum merge (the article's "lossless topology compression"): two convs whose results
are summed run as one conv over their concatenated inputs. Planned where it is legal,
refused with the reason where it is not, competing with the horizontal merge by the
profile's order; fuse() carries it out exactly and its ONNX export runs in ONNX Runtime.
(Every spec's fused module is held to the unfused one by test_fusion_exec.py.)"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import FUSED_RTOL, SPECS, assert_close, comparable_graph, outputs, randomised

import archdsl
from archdsl.emit.dot import to_dot
from archdsl.fusion.planner import plan
from archdsl.fusion.profiles import load_profile
from archdsl.ir.graph import GraphBuilder
from archdsl.load import load_spec_with_graph

SHAPE = (3, 64, 64)


def _profile(name: str = "eager", *, rule: bool = True, first: bool = False):
    """A shipped profile with the sum merge (before the horizontal merge where ``first``)
    or without it."""
    p = load_profile(name)
    rules = [r for r in p.rules if r.id != "sum_merge"]
    if rule:
        use = next((r for r in p.rules if r.id == "sum_merge"), None) or \
            next(r for r in load_profile("eager").rules if r.id == "sum_merge")
        at = next(i for i, r in enumerate(rules) if r.id == "horizontal_merge") + (not first)
        rules.insert(at, use)
    return dataclasses.replace(p, rules=tuple(rules))


def _summed(p) -> list[tuple[str, ...]]:
    return [g.nodes for g in p.groups if "sum_merge" in (g.rules or (g.rule,))]


def test_resnet50_eager_merges_every_projection_block_or_says_why() -> None:
    graph = load_spec_with_graph(SPECS / "resnet50.yaml")[1]
    with_it, without = plan(graph, _profile()), plan(graph, _profile(rule=False))
    adds = [f"layer{i}.0.add" for i in range(1, 5)]
    summed = {n for g in _summed(with_it) for n in g if n.endswith(".add")}
    refused = {r.nodes[-1]: r.reason for r in with_it.refused if r.rule == "sum_merge"}
    assert summed | set(refused) == set(adds) and summed >= set(adds[1:])
    assert "runs merged with layer1.0.conv1" in refused["layer1.0.add"]
    for g in _summed(with_it):  # the branch's last conv and the projection, BN folded
        assert [n.rsplit(".", 1)[1] for n in g][-1] == "add"
        assert {graph[n].op for n in g} == {"conv2d", "batch_norm", "add"}
    # exact: the MACs do not change; one kernel fewer a merge (cat + conv for conv, conv, add)
    assert with_it.macs_saved == without.macs_saved
    assert without.kernels_after - with_it.kernels_after == len(summed)
    assert with_it.kernel_counts["cat"] == len(summed)


def test_the_merges_compete_and_the_plan_says_what_it_gave_up() -> None:
    graph = comparable_graph(SPECS / "resnet50.yaml")
    p = plan(graph, _profile(first=True))
    assert any("layer1.0.add" in g for g in _summed(p))
    gave_up = [r.reason for r in p.refused if r.rule == "horizontal_merge"]
    assert "both read layer1.0.downsample.0_in, but" not in " ".join(gave_up)
    assert any("layer1.0.downsample.0 runs in layer1.0.add's sum merge" in r
               and "given up" in r for r in gave_up), gave_up
    model = randomised(archdsl.build_model(graph), SHAPE)
    assert_close(outputs(archdsl.fuse(model, p), SHAPE), outputs(model, SHAPE), FUSED_RTOL)


@pytest.mark.parametrize("name, why", [
    ("seresnet50", "se's scale layer1.0.se.scale sits between the branch's conv and the add"),
    ("ecaresnet50d", "eca's scale"),
    ("resnet34_option_a", "layer2.0.shortcut is option A's zero-padded identity"),
    ("ablations/shortcut_exclusive_gating", "is a gate's product (exclusive_gating)"),
    ("ablations/shortcut_only_gating", "is a gate's product (shortcut_gating)"),
    ("ablations/shortcut_scaling", "layer1.0.shortcut_scale is a scale"),
    ("ablations/shortcut_conv1x1", "their kernels differ: layer1.0.conv2 is 3x3/1 pad 1"),
])
def test_refused_with_the_reason(name: str, why: str) -> None:
    p = plan(load_spec_with_graph(SPECS / f"{name}.yaml")[1], _profile())
    assert not _summed(p)
    assert any(why in r.reason for r in p.refused if r.rule == "sum_merge"), \
        [r.reason for r in p.refused if r.rule == "sum_merge"][:3]


def _toy(groups: int, kernel: int = 3, stride: int = 1):
    """A block whose branch conv and shortcut conv (3x3 or 1x1, on inputs of one size, or
    the shortcut's at ``stride`` on the block's input) meet in an add."""
    b = GraphBuilder("toy", (8, 16, 16))
    b.stage, b.block = "layer1", "layer1.0"
    with b.scope("branch"):
        x = b.conv("x", "layer1.0.conv1", 8, 3, groups=groups, stride=stride)
        y = b.conv(x, "layer1.0.conv2", 16, kernel, groups=groups)
    with b.scope("shortcut"):
        r = b.act("x", "layer1.0.act")
        z = b.conv(r, "layer1.0.downsample.0", 16, kernel, groups=groups, stride=stride)
    b.add("add", "layer1.0.add", (y, z))
    b.act("layer1.0.add", "layer1.0.relu")
    return b.build()


@pytest.mark.parametrize("kernel, stride", [(3, 1), (1, 1), (1, 2)])
def test_a_merge_of_3x3s_and_of_strided_1x1s_is_exact(kernel: int, stride: int) -> None:
    graph = _toy(1, kernel, stride)
    p = plan(graph, _profile())
    assert _summed(p) == [("layer1.0.conv2", "layer1.0.downsample.0", "layer1.0.add")]
    model = randomised(archdsl.build_model(graph), (8, 16, 16))
    fused = archdsl.fuse(model, p)
    convs = [m for m in fused.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.in_channels for c in convs] == [8, 16]  # conv1, then the merged conv
    assert_close(outputs(fused, (8, 16, 16)), outputs(model, (8, 16, 16)), FUSED_RTOL)


def test_grouped_convs_merge_neither_way() -> None:
    """A grouped conv pair is refused by both merges: side by side in one grouped conv,
    outputs or inputs, each group would read another's channels."""
    b = GraphBuilder("toy", (8, 16, 16))
    b.stage, b.block = "layer1", "layer1.0"
    with b.scope("branch"):
        y = b.conv("x", "layer1.0.conv1", 16, 3, groups=2)
    with b.scope("shortcut"):
        z = b.conv("x", "layer1.0.downsample.0", 16, 3, groups=2)
    b.add("add", "layer1.0.add", (y, z))
    p = plan(b.build(), _profile(first=True))
    assert not _summed(p) and not any("merge" in g.rule for g in p.groups)
    assert {r.rule: r.reason for r in p.refused} == {
        "sum_merge": "layer1.0.add: both are grouped (2 groups): the concatenated input "
                     "would interleave the groups",
        "horizontal_merge": "both read x but are grouped (2 groups): one grouped conv of "
                            "their outputs side by side would read the wrong group's inputs"}
    model = randomised(archdsl.build_model(_toy(2)), (8, 16, 16))
    assert_close(outputs(archdsl.fuse(model, plan(_toy(2), _profile())), (8, 16, 16)),
                 outputs(model, (8, 16, 16)), FUSED_RTOL)


def test_the_fused_export_carries_it_and_runs_in_onnxruntime(tmp_path) -> None:
    graph = comparable_graph(SPECS / "resnet50.yaml")
    model = randomised(archdsl.build_model(graph), SHAPE)
    p = plan(graph, _profile())
    fused = archdsl.fuse(model, p)
    path = archdsl.export_onnx(fused, tmp_path / "fused.onnx", input_shape=SHAPE)
    nodes = onnx.load(str(path)).graph.node
    concats = [n.name for n in nodes if n.op_type == "Concat"]
    assert len(concats) == len(_summed(p)) == 3
    assert all(n.startswith(f"/layer{i}/layer{i}.0/") for i, n in zip((2, 3, 4), concats,
                                                                        strict=True))
    x = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(2))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert_close(torch.from_numpy(np.asarray(got)), model(x), FUSED_RTOL)


def test_the_diagram_overlay_draws_the_merged_kernel() -> None:
    graph = comparable_graph(SPECS / "resnet50.yaml")
    dot = to_dot(graph, "layer", None, plan(graph, _profile()).overlay())
    assert dot.count('label="bn_fold+sum_merge') == 3
