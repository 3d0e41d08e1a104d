"""Every CPU plan held to the engine it models, kernel for kernel: the x86-onednn plan to
what Inductor (freezing) generates for the built module, the openvino-cpu plan to the
nodes OpenVINO's CPU plugin executes for the ONNX export. Compared as kernel_counts under
the profile's mapping (docs/fusion.md), not only as totals.

Inductor compiles take 10-25 s a spec here, so CI checks the reference specs and one spec
per block kind; OpenVINO compiles in under a second, so it checks every spec.
benchmarks/engines.py checks both on every spec and ablation."""

from __future__ import annotations

import collections
import importlib.util
import os
import warnings

import pytest
import torch
from helpers import SPECS, all_specs, comparable_graph, dilated_graph, spec_id

import archdsl
from archdsl.fusion.engines import (
    code_kernels,
    comparable,
    inductor_kernels,
    openvino_kernels,
    planned_kernels,
)
from archdsl.fusion.isa import detect_isa
from archdsl.fusion.planner import plan
from archdsl.fusion.profiles import load_profile
from archdsl.load import load_spec_with_graph

# the reference specs, then one spec per block form: basic, SE basic, option-A padding,
# avg-down shortcut with a deep stem, a gated shortcut, a full pre-activation basic block,
# ECA with an avg-down shortcut and a tiered stem, GroupNorm, blur anti-aliasing, RegNetY
# (SE after a grouped 3x3), RegNetZ (SiLU, no first shortcuts, a final conv), RegNetV
# (every shortcut reads the pre-activation), ResNeSt (radix 2 with the avd pool after the
# split attention; radix 4 in 2 groups with it before), SKNet (split and whole-input
# paths), Res2Net (the hierarchical splits and the first block's pooled last split)
INDUCTOR_SPECS = ["resnet50", "seresnext50_32x4d", "resnetv2_50", "resnet50_msra",
                  "resnet18", "seresnet18", "resnet34_option_a", "resnet50d",
                  "ablations/shortcut_exclusive_gating", "ablations/placement_full_preact",
                  "ecaresnet26t", "resnet50_gn", "resnetblur50", "regnety_004", "regnetz_005",
                  "regnetv_040", "resnest14d", "resnest50d_4s2x40d", "skresnet18",
                  "skresnext50_32x4d", "res2net50_26w_4s"]


def needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must check the plans against {module}: pip install -e .[test]")
        pytest.skip(f"{module} is not installed (pip install -e .[test])")


def small_input(graph) -> torch.Tensor:
    c, h, w = graph.input.shape
    return torch.randn(1, c, min(h, 64), min(w, 64))


@pytest.mark.parametrize("name", INDUCTOR_SPECS)
def test_inductor_runs_what_the_x86_onednn_plan_says(name):
    graph = comparable_graph(SPECS / f"{name}.yaml")
    profile = load_profile("x86-onednn")
    engine = inductor_kernels(archdsl.build_model(graph), small_input(graph))
    assert engine == planned_kernels(plan(graph, profile), profile)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device: the cuda profile is held to Inductor's generated "
                           "Triton code on a GPU (and by benchmarks/gpu.py)")
@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d", "seresnext50_32x4d",
                                  "resnetv2_50"])
def test_inductor_on_cuda_runs_what_the_cuda_plan_says(name):
    graph = comparable_graph(SPECS / f"{name}.yaml")
    profile = load_profile("cuda")
    engine = inductor_kernels(archdsl.build_model(graph).cuda(), small_input(graph).cuda(),
                              freezing=False)
    assert engine == planned_kernels(plan(graph, profile), profile)


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_openvino_runs_what_the_openvino_cpu_plan_says(path, tmp_path):
    needs("openvino")
    graph = comparable_graph(path)
    profile = load_profile("openvino-cpu")
    onnx = archdsl.export_onnx(archdsl.build_model(graph).eval(), tmp_path / "m.onnx")
    engine, planned, left_out = comparable(
        openvino_kernels(onnx), planned_kernels(plan(graph, profile), profile), profile,
        detect_isa(), graph)
    if left_out:
        warnings.warn(left_out, stacklevel=1)  # a difference outside the model, named
    assert engine == planned


@pytest.mark.parametrize("name", ["resnet50d", "resnest50d", "skresnet18"])
def test_dilated_plans_are_what_openvino_and_inductor_run(name, tmp_path):
    """At output_stride 8: OpenVINO fuses the same-padded pool's Pad into its Pooling,
    Inductor computes it inside the pool's generated kernel."""
    needs("openvino")
    graph = dilated_graph(name)
    model = archdsl.build_model(graph).eval()
    ov = load_profile("openvino-cpu")
    engine, planned, _ = comparable(
        openvino_kernels(archdsl.export_onnx(model, tmp_path / "m.onnx")),
        planned_kernels(plan(graph, ov), ov), ov, detect_isa(), graph)
    assert engine == planned
    if name == "resnet50d":
        x86 = load_profile("x86-onednn")
        assert inductor_kernels(model, small_input(graph)) == \
            planned_kernels(plan(graph, x86), x86)


def test_a_machine_of_another_isa_compares_all_but_the_layout_kernels():
    profile = load_profile("openvino-cpu")
    engine = collections.Counter({"Convolution": 53, "Reorder": 5})
    planned = collections.Counter({"Convolution": 53, "Reorder": 2})
    assert comparable(engine, planned, profile, "avx2")[:2] == (engine, planned)
    e, p, why = comparable(engine, planned, profile, "avx512")
    assert e == p == {"Convolution": 53} and "checked on avx2, this machine is avx512" in why
    assert comparable(engine, planned, load_profile("x86-onednn"), "avx512")[2] == ""


def test_unmodelled_layouts_leave_only_the_layout_kernels_out():
    """OpenVINO's Reorders around an FRN are not modelled: the plan of a graph with one
    says so (modelled, not verified), and the check compares every other kernel."""
    profile = load_profile("openvino-cpu")
    _, frn = load_spec_with_graph(SPECS / "resnetv2_50d_frn.yaml")
    _, bn = load_spec_with_graph(SPECS / "resnetv2_50d.yaml")
    assert plan(frn, profile, "avx2").verified_with is None
    assert "layout kernels around frn" in plan(frn, profile, "avx2").modelled_from
    assert plan(bn, profile, "avx2").verified_with is not None
    engine = collections.Counter({"Convolution": 53, "Reorder": 9})
    planned = collections.Counter({"Convolution": 53, "Reorder": 2})
    e, p, why = comparable(engine, planned, profile, "avx2", frn)
    assert e == p == {"Convolution": 53} and "around frn" in why
    assert comparable(engine, planned, profile, "avx2", bn)[:2] == (engine, planned)


def test_full_depth_figures():
    """The issue's figures at full depth: Inductor 58/121/72 kernels, OpenVINO 59/123/85
    at 224x224, as `python benchmarks/engines.py --full` measures them on both engines."""
    expected = {"resnet50": (58, 59), "seresnext50_32x4d": (121, 123),
                "resnetv2_50": (72, 85)}
    for name, (inductor, openvino) in expected.items():
        graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
        assert plan(graph, load_profile("x86-onednn")).kernels_after == inductor
        assert plan(graph, load_profile("openvino-cpu"), "avx2").kernels_after == openvino


def test_inductor_labels_follow_the_documented_mapping():
    from archdsl.fusion.engines import inductor_label

    assert inductor_label("torch.ops.mkldnn._convolution_pointwise.default",
                          "buf0, w, b, [1, 1], [1, 1], [1, 1], 1, 'relu', [None], ''") \
        == "onednn_conv+relu"
    assert inductor_label("torch.ops.mkldnn._convolution_pointwise.default",
                          "buf0, w, b, [0, 0], [1, 1], [1, 1], 1, 'none', [None], ''") \
        == "onednn_conv"
    assert inductor_label("torch.ops.mkldnn._convolution_pointwise_.binary",
                          "buf9, buf3, w, b, [0, 0], [1, 1], [1, 1], 1, 'add', 1.0, 'relu', "
                          "[None], ''") == "onednn_conv+sum+relu"
    assert inductor_label("cpp_fused_mean_2", "buf125, buf106") == "generated"
    assert inductor_label("extern_kernels.mm", "a, b") == "extern_kernels.mm"
    assert inductor_label("extern_kernels.convolution", "buf0, w, stride=(1, 1)") == "conv"


def test_gpu_code_is_counted_launch_for_launch():
    """A GPU's call(): Triton launches (``.run``) and cuDNN/cuBLAS extern calls."""
    code = """
def call(args):
    buf0 = empty_strided_cuda((1, 3, 64, 64), (12288, 1, 192, 3), torch.float32)
    stream0 = get_raw_stream(0)
    triton_poi_fused_0.run(arg0_1, buf0, 12288, stream=stream0)
    buf1 = extern_kernels.convolution(buf0, buf2, stride=(2, 2), padding=(3, 3), bias=None)
    triton_poi_fused__native_batch_norm_legit_no_training_relu_1.run(buf3, 4096, stream=s)
    extern_kernels.addmm(arg9_1, buf8, buf9, alpha=1, beta=1, out=buf10)
    return (buf10, )
"""
    assert code_kernels(code) == {"generated": 2, "conv": 1, "addmm": 1}


def test_every_plan_says_whether_an_engine_checked_it():
    graph = load_spec_with_graph(SPECS / "resnet18.yaml")[1]
    checked = {"x86-onednn": "torch-inductor", "openvino-cpu": "openvino",
               "onnxruntime-cpu": "onnxruntime"}
    for device in ["eager", "eager-cuda", "cuda", "tensorrt", "mobile", *checked]:
        p = plan(graph, load_profile(device), "avx2").to_json()
        if device in checked:
            assert p["verified_with"]["engine"] == checked[device]
            assert p["verified_with"]["version"] and p["verified_with"]["settings"]
        else:
            assert p["verified_with"] is None and p["modelled_from"]
    other = plan(graph, load_profile("openvino-cpu"), "avx512").to_json()
    assert other["isa"] == "avx512" and other["verified_with"] is None
    assert "as checked on avx2; on avx512" in other["modelled_from"]


def test_plan_cli_takes_the_instruction_set_and_says_what_checked_it(capsys):
    import json

    from archdsl.cli.main import main

    spec = str(SPECS / "resnet50.yaml")
    assert main(["plan", spec, "--device", "openvino-cpu", "--isa", "avx512",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["isa"] == "avx512" and out["verified_with"] is None
    assert main(["plan", spec, "--device", "openvino-cpu", "--isa", "avx2"]) == 0
    assert "Checked against openvino 2026.4.0" in capsys.readouterr().out
    assert main(["plan", spec, "--device", "tensorrt", "--format", "markdown"]) == 0
    assert "Modelled, not checked against an engine: NVIDIA TensorRT" in \
        capsys.readouterr().out
