"""Exact counts: the analytic counter equals the built module and FlopCounterMode."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision
from helpers import ROOT, SPECS, all_specs, spec_id
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.resnet import BasicBlock

from archdsl.analysis.counts import count
from archdsl.analysis.tables import diff_rows
from archdsl.cli.main import main
from archdsl.emit.torch import build_model
from archdsl.load import load_spec_with_graph


def measured(graph):
    """Parameters and conv+linear MACs of the built module, by torch's own counter.
    The module lives on the meta device: shapes only, no memory, no arithmetic."""
    with torch.device("meta"):
        model = build_model(graph).eval()
        x = torch.empty((1, *graph.input.shape))
    with FlopCounterMode(display=False) as fc:
        model(x)
    return sum(p.numel() for p in model.parameters()), fc.get_total_flops() // 2


@pytest.mark.parametrize("shape", [None, (3, 160, 192)], ids=["spec-input", "3x160x192"])
@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_counts_equal_torch(path, shape):
    _, graph = load_spec_with_graph(path, shape)
    c = count(graph)
    assert (c.total.params, c.total.macs) == measured(graph)
    assert c.total.flops == 2 * c.total.macs


def test_rollups_add_up():
    _, graph = load_spec_with_graph(SPECS / "resnext50_32x4d.yaml")
    for conv in ("conv+linear", "all"):
        c = count(graph, conv)
        for level in ("stage", "block"):
            rows = c.rows(level)
            assert sum(r.macs for r in rows) == c.total.macs
            assert sum(r.params for r in rows) == c.total.params
            assert sum(r.activations for r in rows) == c.total.activations
        assert [r.name for r in c.stages] == ["stem", "layer1", "layer2", "layer3", "layer4",
                                              "head"]


def test_reference_macs():
    for name, macs in (("resnet50", 4_089_184_256), ("resnext50_32x4d", 4_230_479_872)):
        assert count(load_spec_with_graph(SPECS / f"{name}.yaml")[1]).total.macs == macs


def test_all_convention_adds_documented_elementwise_costs():
    _, graph = load_spec_with_graph(SPECS / "resnet18.yaml")
    base, full = count(graph), count(graph, "all")
    extra = 0
    for n in graph:
        numel = 1
        for d in n.shape:
            numel *= d
        if n.op in ("batch_norm", "relu", "add"):
            extra += numel
        elif n.op == "max_pool":
            extra += numel * 9
        elif n.op == "global_avg_pool":
            extra += 512 * 7 * 7
    assert full.total.macs - base.total.macs == extra
    assert full.total.params == base.total.params


def test_all_convention_totals_equal_torchvisions_own_work():
    """`all` for resnet18 at 64x64, rebuilt from a forward of torchvision's resnet18 with
    the per-op costs of docs/counting.md: conv+linear from FlopCounterMode; BN 1 MAC and
    2 FLOPs per output element; each ReLU call and each block's residual add 1 per output
    element; max-pool k² per output element; the global pool 1 per input element."""
    model = torchvision.models.resnet18().eval()
    extra = {"macs": 0, "flops": 0}

    def cost(macs, flops, of_input=False):
        def hook(module, args, out):
            numel = (args[0] if of_input else out).numel()
            extra["macs"] += macs * numel
            extra["flops"] += flops * numel
        return hook

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.register_forward_hook(cost(1, 2))
        elif isinstance(m, (torch.nn.ReLU, BasicBlock)):  # a block's output is its add's
            m.register_forward_hook(cost(1, 1))
        elif isinstance(m, torch.nn.MaxPool2d):
            m.register_forward_hook(cost(m.kernel_size ** 2, m.kernel_size ** 2))
        elif isinstance(m, torch.nn.AdaptiveAvgPool2d):
            m.register_forward_hook(cost(1, 1, of_input=True))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert extra["flops"] > extra["macs"] > 0
    _, graph = load_spec_with_graph(SPECS / "resnet18.yaml", (3, 64, 64))
    total = count(graph, "all").total
    assert total.flops == fc.get_total_flops() + extra["flops"]
    assert total.macs == fc.get_total_flops() // 2 + extra["macs"]


def test_count_json_cli(capsys):
    assert main(["count", str(SPECS / "resnet50.yaml"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["params"], doc["macs"], doc["flops"]) == (25557032, 4089184256, 8178368512)
    assert doc["convention"] == "conv+linear" and doc["input"] == [3, 224, 224]
    assert len(doc["nodes"]) == 175 and len(doc["blocks"]) == 18 and len(doc["stages"]) == 6
    assert {"name", "op", "shape", "params", "macs", "flops", "activations"} <= set(
        doc["nodes"][0])


def test_count_formats_and_input(capsys):
    path = str(SPECS / "resnet50.yaml")
    assert main(["count", path, "--by", "node", "--format", "csv", "--input", "3x160x192"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "name,op,shape,params,macs,flops,activations"
    assert lines[1].startswith("conv1,conv2d,64x80x96,9408,")
    assert len(lines) == 1 + 175 + 1 and lines[-1].startswith("total,")
    assert main(["count", path, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| name | op | output |") and "| layer3 |" in md
    assert main(["count", path]) == 0
    table = capsys.readouterr().out
    assert "MACs 4,089,184,256 (4.089 G)" in table and "layer4" in table


def test_count_bad_input_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["count", str(SPECS / "resnet50.yaml"), "--input", "224"])
    assert info.value.code == 2
    assert "expected CxHxW such as 3x224x224, got '224'" in capsys.readouterr().err


def test_diff_resnet50_resnext50():
    a = count(load_spec_with_graph(SPECS / "resnet50.yaml")[1])
    b = count(load_spec_with_graph(SPECS / "resnext50_32x4d.yaml")[1])
    rows = {r["stage"]: r for r in diff_rows(a, b)}
    assert rows["total"]["params_b"] - rows["total"]["params_a"] == 25_028_904 - 25_557_032
    assert rows["stem"]["macs_a"] == rows["stem"]["macs_b"]
    assert sum(rows[s]["macs_b"] for s in rows if s != "total") == 4_230_479_872


def test_diff_cli(capsys):
    assert main(["diff", str(SPECS / "resnet50.yaml"), str(SPECS / "resnext50_32x4d.yaml")]) == 0
    out = capsys.readouterr().out
    assert "-528,128" in out and "+141,295,616" in out and "+3.5%" in out


def test_count_path_never_imports_torch():
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, Block())
        from archdsl.cli.main import main
        spec = {str(SPECS / "resnet152.yaml")!r}
        assert main(["count", spec, "--format", "json", "--convention", "all"]) == 0
        assert main(["diff", spec, {str(SPECS / "resnet50.yaml")!r}]) == 0
        assert main(["sweep", spec, "--grid", "input.size=160,224", "--quiet"]) == 0
        assert not [m for m in sys.modules if m.split(".")[0] == "torch"]
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
