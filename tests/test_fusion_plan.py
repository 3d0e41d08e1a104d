"""The fusion planner: profiles as data, legality with reasons, the MSRA vs v1.5 story."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from helpers import DEVICES, ROOT, SPECS, all_specs, spec_id

from archdsl.analysis.counts import count
from archdsl.blocks.layers import Layers
from archdsl.cli.main import main
from archdsl.fusion.planner import plan_for
from archdsl.fusion.profiles import builtin_names, load_profile
from archdsl.ir.graph import GraphBuilder
from archdsl.ir.ops import OPS
from archdsl.load import load_spec_with_graph
from archdsl.spec.errors import SpecError


def graph_of(name):
    return load_spec_with_graph(SPECS / f"{name}.yaml")[1]


def test_shipped_profiles():
    assert builtin_names() == sorted(DEVICES)


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_every_profile_plans_every_spec(path):
    _, graph = load_spec_with_graph(path)
    for device in DEVICES:
        p = plan_for(graph, device)
        merged = [g for g in p.groups if g.rules]
        seen = [n for g in merged for n in g.nodes]
        assert len(seen) == len(set(seen)), "a node sits in two kernels"
        assert p.kernels_before == len(graph) - 1
        assert p.kernels_after == sum(p.kernel_counts.values())
        if device in ("eager", "eager-cuda"):  # archdsl's executor never adds a kernel to
            profile = load_profile(device)  # what the unfused module runs on the device
            unfused = sum(len(profile.kernel_types(n.op)) for n in graph if n.op != "input")
            assert p.kernels_after <= unfused + len(profile.ops.get("input", []))
        assert all(r.reason for r in p.refused)


@pytest.mark.parametrize("device", ["cuda", "eager-cuda"])
def test_plan_cli_for_the_gpu_profiles_on_every_spec(device, capsys):
    for path in all_specs():
        assert main(["plan", str(path), "--device", device, "--format", "json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["device"] == device and out["hardware"] == ["cuda"]
        assert out["verified_with"] is None and out["modelled_from"]


def test_eager_cuda_folds_bn_only_where_a_cudnn_kernel_takes_the_bias():
    p = plan_for(graph_of("seresnext50_32x4d"), "eager-cuda")
    kept = [r for r in p.rule_refusals("bn_fold")]
    assert [r.nodes for r in kept] == [(f"{b}.conv3", f"{b}.bn3") for b in (
        [f"layer1.{i}" for i in range(3)] + [f"layer2.{i}" for i in range(4)]
        + [f"layer3.{i}" for i in range(6)] + [f"layer4.{i}" for i in range(3)])]
    assert kept[0].reason.startswith("layer1.0.bn3 is read by layer1.0.se.pool (")
    assert "not by relu or add → relu" in kept[0].reason
    v2 = plan_for(graph_of("resnetv2_50"), "eager-cuda")
    assert "cudnn_conv_add_relu" not in v2.kernel_counts
    assert all("always ends in relu" in r.reason for r in v2.rule_refusals("conv_add_act"))
    assert len(v2.rule_refusals("conv_add_act")) == 16


def merges(plan):
    return [g for g in plan.rule_groups("horizontal_merge")]


def test_horizontal_merge_msra_vs_v15():
    msra = plan_for(graph_of("resnet50_msra"), "eager")
    assert [sorted({n.split(".")[0] + "." + n.split(".")[1] for n in g.nodes})
            for g in merges(msra)] == [["layer1.0"], ["layer2.0"], ["layer3.0"], ["layer4.0"]]
    v15 = plan_for(graph_of("resnet50"), "eager")
    assert [g.nodes for g in merges(v15)] == [
        ("layer1.0.conv1", "layer1.0.bn1", "layer1.0.downsample.0", "layer1.0.downsample.1")]
    reasons = [r.reason for r in v15.rule_refusals("horizontal_merge")]
    assert reasons == [
        f"both read {x} but stride differ: {b}.conv1 is 1x1/1 pad 0, {b}.downsample.0 is "
        "1x1/2 pad 0" for x, b in (("layer1.2.relu3", "layer2.0"),
                                   ("layer2.3.relu3", "layer3.0"),
                                   ("layer3.5.relu3", "layer4.0"))]


def test_tensorrt_refuses_every_merge_with_the_reason():
    p = plan_for(graph_of("resnet50_msra"), "tensorrt")
    assert merges(p) == []
    refusals = p.rule_refusals("horizontal_merge")
    assert [r.nodes for r in refusals] == [(f"layer{i}.0.conv1", f"layer{i}.0.downsample.0")
                                           for i in range(1, 5)]
    for r, i in zip(refusals, range(1, 5), strict=True):
        assert r.reason == (f"layer{i}.0.conv1 is followed by relu, layer{i}.0.downsample.0 "
                            "by none: this device merges only convs with the same kernel and "
                            "activation")


def test_kernel1_pool_msra():
    g = graph_of("resnet50_msra")
    p = plan_for(g, "eager")
    pools = p.rule_groups("kernel1_pool")
    assert len(pools) == 3
    assert [g.nodes[0] for g in pools] == ["layer1.2.conv2", "layer2.3.conv2", "layer3.5.conv2"]
    assert p.macs_saved == 375_717_888
    total = count(g).total.macs
    assert total == 3_857_973_248 and round(100 * p.macs_saved / total, 1) == 9.7
    # the savings are the 3x3 and the last 1x1 of each stage's last block, 3/4 of each
    per = 3 * (56 * 56 * 64 * 64 * 9 + 56 * 56 * 256 * 64) // 4
    assert [g.macs_saved for g in pools] == [per] * 3


def test_kernel1_pool_refused_on_v15():
    p = plan_for(graph_of("resnet50"), "eager")
    assert p.rule_groups("kernel1_pool") == [] and p.macs_saved == 0
    reasons = [r.reason for r in p.rule_refusals("kernel1_pool")]
    assert reasons[0] == ("layer1.2.relu3 is also read at every pixel by layer2.0.conv1 "
                          "(1x1/1 pad 0), where the stride sits on the 3x3")
    assert len(reasons) == 3


def test_kernel1_pool_refused_under_se():
    """SE's global pool reads the whole branch output: nothing upstream shrinks."""
    b = GraphBuilder("se_msra", (64, 8, 8))
    y = b.conv("x", "c3", 64, 3)
    s = b.add("global_avg_pool", "pool", (y,))
    s = b.act(b.conv(s, "fc", 64, 1, bias=True), "gate", "sigmoid")
    z = b.add("relu", "r", (b.add("mul", "scale", (y, s)),))
    b.conv(z, "down", 128, 1, stride=2, padding=0)
    p = plan_for(b.build(), "eager")
    assert p.macs_saved == 0
    assert [r.reason for r in p.rule_refusals("kernel1_pool")] == [
        "no conv upstream of r can run at fewer pixels (a global pool, such as SE's, reads "
        "the full map)"]


def test_openvino_strides_opt_msra_vs_v15():
    """OpenVINO's narrower kernel = 1 pooling: each MSRA transition's stride moves onto the
    previous block's conv3 (a 1x1 at 56x56x64 -> 256, three quarters of whose MACs go) and
    the identity shortcut gets a 1x1/2 pooling; on the v1.5 layout nothing moves."""
    msra = plan_for(graph_of("resnet50_msra"), "openvino-cpu", "avx2")
    groups = msra.rule_groups("strides_opt")
    assert [g.nodes[0] for g in groups] == ["layer1.2.conv3", "layer2.3.conv3",
                                            "layer3.5.conv3"]
    assert msra.macs_saved == 3 * (56 * 56 * 64 * 256 * 3 // 4)
    assert msra.kernel_counts["Pooling"] == 1 + 3  # the stem's max-pool and the three
    v15 = plan_for(graph_of("resnet50"), "openvino-cpu", "avx2")
    assert not v15.rule_groups("strides_opt") and v15.kernel_counts["Pooling"] == 1


def test_strides_opt_takes_a_shared_conv_once():
    """Two tensors, each read only by a 1x1/2 conv, share the 1x1 conv upstream: the
    stride lands on it once, its MACs are saved once, and no pooling is inserted."""
    b = GraphBuilder("t", (8, 16, 16))
    c0 = b.conv("x", "c0", 8, 1, padding=0)
    for k in "ab":
        b.conv(b.act(c0, f"r{k}"), f"s{k}", 8, 1, stride=2, padding=0)
    p = plan_for(b.build(), "openvino-cpu", "avx2")
    assert p.macs_saved == 16 * 16 * 8 * 8 * 3 // 4
    assert [g.nodes for g in p.rule_groups("strides_opt")] == [("c0", "ra")]
    assert "Pooling" not in p.kernel_counts


def test_se_scale_runs_alone_where_the_add_is_a_conv_post_op():
    p = plan_for(graph_of("seresnext50_32x4d"), "x86-onednn")
    refused = p.rule_refusals("se_axpy")
    assert [r.nodes for r in refused] == [(f"layer{k}.0.se.scale", f"layer{k}.0.add")
                                          for k in range(1, 5)]
    assert "already the sum post-op of layer1.0.downsample.0" in refused[0].reason
    assert not any(r.rule == "conv_add_act" for r in p.refused)  # no relu taken for a conv


def test_bn_fold_forward_on_a_hand_built_ir():
    """No shipped spec has BN → conv without a ReLU between, so build one."""
    b, bn = GraphBuilder("t", (8, 16, 16)), Layers().norm
    x = bn(b, "x", "bn")
    b.conv(x, "c1", 16, 1, padding=0)
    y = bn(b, b.conv("x", "c0", 8, 3), "bn_b")
    y2 = b.add("relu", "r", (y,))
    bn(b, y2, "bn2")
    b.conv("bn2", "c3", 8, 3)
    p = plan_for(b.build(), "eager")
    fwd = p.rule_groups("bn_fold_forward")
    assert [g.nodes for g in fwd] == [("bn", "c1")]
    assert [r.reason for r in p.rule_refusals("bn_fold_forward")] == [
        "c3 is 3x3/1 pad 1: its zero-padded border would see BN(0) ≠ 0; exact only "
        "without padding"]
    mobile = plan_for(b.build(), "mobile")
    assert mobile.rule_refusals("bn_fold_forward")[0].reason.endswith("(VALID)")


def test_onnxruntime_vocabulary():
    p = plan_for(graph_of("resnet50"), "onnxruntime-cpu")
    assert p.kernels_after == 89
    assert p.kernel_counts == {"FusedConv": 33, "Conv": 20, "Add": 16, "Relu": 16,
                               "Flatten": 1, "Gemm": 1, "GlobalAveragePool": 1, "MaxPool": 1}


def test_user_profile_file(tmp_path):
    ops = "".join(f"  {o}: [{o}]\n" for o in OPS if o != "input")
    prof = tmp_path / "mine.yaml"
    prof.write_text("name: mine\ndescription: only BN folding\nrules:\n  - id: bn_fold\n"
                    f"    kernel: conv\nops:\n{ops}")
    p = plan_for(graph_of("resnet18"), str(prof))
    assert p.device == "mine" and p.kernel_counts["conv"] == 20
    prof.write_text(f"name: bad\nrules:\n  - id: bn_fold_typo\nops:\n{ops}")
    with pytest.raises(SpecError, match=r"mine.yaml:3:9: rules\[0\].id: 'bn_fold_typo' is "
                                        "not a fusion rule; did you mean 'bn_fold'"):
        plan_for(graph_of("resnet18"), str(prof))


def test_plan_cli(capsys):
    spec = str(SPECS / "resnet50_msra.yaml")
    assert main(["plan", spec, "--device", "eager", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"device", "kernels_before", "kernels_after", "kernel_counts", "macs_saved",
            "groups", "refused"} <= set(doc)
    assert doc["macs_saved"] == 375_717_888
    assert main(["plan", spec, "--device", "tensorrt"]) == 0
    text = capsys.readouterr().out
    assert text.count("by none: this device merges only convs") == 4
    assert main(["plan", spec, "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_planner_never_imports_torch():
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("blocked")
        sys.meta_path.insert(0, Block())
        from archdsl.cli.main import main
        for d in {DEVICES!r}:
            assert main(["plan", {str(SPECS / "seresnext50_32x4d.yaml")!r}, "--device", d,
                         "--format", "json"]) == 0
        assert not [m for m in sys.modules if m.split(".")[0] == "torch"]
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
