"""ResNeSt, SKNet and Res2Net beyond parity (tests/test_parity_timm.py) and import
(tests/test_timm_family.py): what the language refuses of them in one located line, how
their blocks read in a diagram, and the plans' account of their ops."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SPECS

from archdsl.cli.main import main
from archdsl.emit import dot
from archdsl.fusion.planner import plan_for
from archdsl.load import load_spec_with_graph

BASE = {"resnest": "resnest14d.yaml", "sk": "skresnet18.yaml", "res2net": "res2net50d.yaml"}


@pytest.mark.parametrize(("base", "text", "line"), [
    ("resnest", "antialias: {kind: blur}\n",
     "3:12: antialias: layer2.0.conv2: split_attn has no anti-aliased form (timm's has "
     "none); allowed: no antialias"),
    ("resnest", "defaults: {se: {ratio: 16}}\n",
     "3:16: stages[0].se (from defaults.se): ResNeSt's block has no channel attention but "
     "its own (timm refuses one); allowed: none"),
    ("res2net", "defaults: {scale: 1}\n",
     "3:19: stages[0].scale (from defaults.scale): input should be greater than or equal "
     "to 2, got 1"),
    ("sk", "stem: {kind: classic, width: 63}\n",
     "BASE:5:1: sk.split_input: layer1.0.conv1.paths: 63 input channels do not split into 2 "
     "paths; allowed: an input width the paths divide, or split_input: false"),
], ids=["antialias", "resnest-se", "res2net-scale", "sk-split"])
def test_refused_in_one_line(base: str, text: str, line: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text(f"extends: {SPECS / BASE[base]}\nname: x\n{text}")
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    where = f"{SPECS / BASE[base]}:" if line.startswith("BASE:") else f"{spec}:"
    assert err == [where + line.removeprefix("BASE:")]  # a block's input: the base's stages


@pytest.mark.parametrize(("name", "text"), [
    ("resnest50d_4s2x40d", "1×1 → 160 → split attention (3×3 g8 → 640; radix 4; "
                           "attention 160) → 1×1 → 512"),
    ("skresnext50_32x4d", "1×1 → 256 → selective kernel (3×3/2 g32 → 256, 3×3/2 d2 g32 → "
                          "256; 2 paths; attention 32) → 1×1 → 512"),
    ("res2net50_26w_4s", "1×1 → 208 → hierarchical 3×3s (3×3/2 → 52 ×3; 4 splits) → 1×1 → "
                         "512"),
])
def test_a_block_names_its_construct(name: str, text: str) -> None:
    """The block level draws the construct in the 3x3's place as one item, read from the
    nodes' part: its convs, its splits and its attention's width."""
    graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
    blocks = graph.blocks()
    assert dot._block_summary(blocks[next(b for b in blocks if ".0" in b[-3:] and
                                          b.startswith(("layer2", "s2")))])[0] == text


@pytest.mark.parametrize("device", ["onnxruntime-cpu", "openvino-cpu"])
def test_a_stages_splits_are_one_split_kernel(device: str) -> None:
    """Res2Net's slices of one tensor run as one Split (what ONNX Runtime and OpenVINO do,
    tests/test_fusion_exec.py and test_engines.py check it kernel for kernel); a softmax
    across channel groups is no conv post-op, and the plan says so."""
    graph = load_spec_with_graph(SPECS / "res2net50_26w_4s.yaml")[1]
    p = plan_for(graph, device)
    assert p.kernel_counts["Split"] == 16 and "Slice" not in p.kernel_counts
    if device == "onnxruntime-cpu":  # its conv_act takes activations as post-ops
        resnest = plan_for(load_spec_with_graph(SPECS / "resnest14d.yaml")[1], device)
        assert sum("normalises across channel groups" in r.reason
                   for r in resnest.refused) == 4
