"""``archdsl plan --precision int8``: the modelled int8 plan, torch-free, held kernel for
kernel to what the engine runs for the int8 model its own quantizer makes of archdsl's
export (ORT's optimised QDQ graph at ORT_ENABLE_EXTENDED; OpenVINO's runtime model as
layerType:runtimePrecision), on a subset of specs that takes every int8 form of the
profile; benchmarks/engines.py --precision int8 checks every spec and ablation."""

import json
from collections import Counter

import pytest
from helpers import SPECS, comparable_graph, dilated_graph, randomised

import archdsl
from archdsl.cli.main import main
from archdsl.fusion.engines import int8_comparable
from archdsl.fusion.isa import detect_isa
from archdsl.fusion.planner import plan, plan_for
from archdsl.fusion.profiles import load_profile, read_profile
from archdsl.int8.engines import int8_kernels
from archdsl.spec.errors import SpecError

# each takes a form the others don't: SE's QLinearSigmoid/Mul, the float pre-activation
# BN, ECA's view, ResNeSt's float sum and the AveragePool after it, Res2Net's Split and
# QLinearConcat, SiLU, a ReLU whose input the shortcut also reads, option A's float Pad,
# the float reflect Pad of a blur, GroupNorm, FRN, EvoNorm, BiT's zero Pad, SK's softmax,
# the radix softmax
SUBSET = ["resnet18", "seresnet18", "resnetv2_18", "ecaresnet26t", "resnest14d",
          "res2net50_26w_4s", "regnetz_005", "ablations/placement_relu_preact",
          "resnet34_option_a", "resnetblur50", "resnet50_gn", "resnetv2_50d_frn",
          "resnetv2_50d_evos", "resnetv2_50x1_bit", "skresnet18", "resnest50d_4s2x40d"]


def engine_and_plan(name, engine, device, tmp_path):
    graph = comparable_graph(SPECS / f"{name}.yaml")
    c, h, w = graph.input.shape
    shape = (c, min(h, 64), min(w, 64))
    model = randomised(archdsl.build_model(graph).eval(), shape)
    onnx_path = archdsl.export_onnx(model, tmp_path / "m.onnx", input_shape=shape)
    got = int8_kernels(onnx_path, engine, shape, tmp_path)
    return got, Counter(plan_for(graph, device, precision="int8").kernel_counts)


@pytest.mark.parametrize("name", SUBSET)
def test_onnxruntime_int8_plan_is_what_ort_runs(name, tmp_path):
    got, planned = engine_and_plan(name, "onnxruntime", "onnxruntime-cpu", tmp_path)
    assert planned == got, {k: (got[k], planned[k]) for k in got | planned
                            if got[k] != planned[k]}


# OpenVINO: plain, SE (its FCs float by NNCF's pattern), pre-activation (BN+ReLU folded
# into a FakeQuantize), ResNet-D's ceil-mode average pool (f32 with a FakeQuantize of its
# own), a ReLU before the add (a sum post-op), a gate; and, on the instruction set they
# were measured on, the grouped convolutions (f32, a converting Reorder per int8 reader),
# SE after one, ECA, Res2Net's f32 Split, option A, the blur, GroupNorm's planar MVN,
# FRN, EvoNorm, SiLU (its SE quantized), a ReLU-only pre-activation, ResNeSt's split
# attention (the paths' planar u8 copy, the f32 softmax), the radix softmax and grouped
# 1x1 FCs, SK's concatenated paths (their sum in f32) and a Split whose input the
# shortcut also reads, RegNetV's BN before x·σ(x), BiT's f32 weight-standardized convs
OV_SUBSET = ["resnet18", "seresnet18", "resnetv2_18", "resnet50d",
             "ablations/placement_relu_before_add", "ablations/shortcut_exclusive_gating"]
OV_AVX512 = ["regnetx_004", "regnety_004", "ecaresnet26t", "res2next50",
             "resnet34_option_a", "resnetblur50", "resnet50_gn", "resnetv2_50d_frn",
             "resnetv2_50d_evos", "regnetz_005", "ablations/placement_relu_preact",
             "resnest14d", "resnest50d_4s2x40d", "skresnet18", "skresnet50d", "regnetv_040",
             "resnetv2_50x1_bit"]


@pytest.mark.parametrize("name", OV_SUBSET + OV_AVX512)
def test_openvino_int8_plan_is_what_openvino_runs(name, tmp_path):
    profile = load_profile("openvino-cpu")
    if name in OV_AVX512 and detect_isa() not in profile.int8.verified_isa:
        pytest.skip(f"measured on {profile.int8.verified_isa}; this machine is "
                    f"{detect_isa()} (benchmarks/engines.py --precision int8 reports it)")
    got, _ = engine_and_plan(name, "openvino", "openvino-cpu", tmp_path)
    p = plan(comparable_graph(SPECS / f"{name}.yaml"), profile, precision="int8")
    got, planned, _ = int8_comparable(got, p, profile, detect_isa())
    assert planned == got, {k: (got[k], planned[k]) for k in got | planned
                            if got[k] != planned[k]}


@pytest.mark.parametrize("name", ["resnet50d", "resnest14d"])
def test_dilated_int8_plans_are_what_the_engines_run(name, tmp_path):
    """A dilated projection's same-padded pool (output_stride 8): ORT runs its Pad in
    float between a DequantizeLinear and a QuantizeLinear, OpenVINO on the u8 data."""
    graph = dilated_graph(name)
    shape = (3, 64, 64)
    model = randomised(archdsl.build_model(graph).eval(), shape)
    onnx_path = archdsl.export_onnx(model, tmp_path / "m.onnx", input_shape=shape)
    (tmp_path / "ort").mkdir()
    got = int8_kernels(onnx_path, "onnxruntime", shape, tmp_path / "ort")
    assert got == Counter(plan_for(graph, "onnxruntime-cpu", precision="int8").kernel_counts)
    profile = load_profile("openvino-cpu")
    got, planned, _ = int8_comparable(int8_kernels(onnx_path, "openvino", shape, tmp_path),
                                      plan(graph, profile, precision="int8"), profile,
                                      detect_isa())
    assert planned == got


def test_openvino_int8_plan_runs_se_fcs_and_grouped_convolutions_in_float():
    p = plan_for(comparable_graph(SPECS / "seresnext50_32x4d.yaml"), "openvino-cpu",
                 precision="int8")
    prec = p.int8.node_precision()
    graph = comparable_graph(SPECS / "seresnext50_32x4d.yaml")
    convs = [n for n in graph if n.op == "conv2d"]
    assert {prec[n.name] for n in convs if n.part == "se"} == {"float"}
    assert {prec[n.name] for n in convs if n.attrs["groups"] > 1} == {"float"}
    assert {prec[n.name] for n in convs if n.part is None and n.attrs["groups"] == 1} \
        == {"int8"}
    assert p.kernel_counts["Convolution:f32"] == sum(
        1 for n in convs if n.part == "se" or n.attrs["groups"] > 1)


UNMODELLED = "  unmodelled: [split_sum, [add, batch_norm, silu]]\n  quantize:"


@pytest.mark.parametrize("name, what", [("skresnet18", "split_sum"),
                                        ("regnetv_040", "add → batch_norm → silu")])
def test_an_int8_plan_with_an_unmodelled_op_says_it_is_modelled(name, what):
    # a profile may mark ops and chains of ops it does not model; the shipped ones model
    # every spec
    graph = comparable_graph(SPECS / f"{name}.yaml")
    assert plan_for(graph, "openvino-cpu", precision="int8").verified_with is not None
    profile = read_profile(load_profile_text("openvino-cpu").replace("  quantize:", UNMODELLED,
                                                                     1), "p.yaml")
    p = plan(graph, profile, precision="int8")
    assert p.verified_with is None and what in p.modelled_from
    assert int8_comparable(Counter(), p, profile, detect_isa()) is None


def test_int8_plan_names_each_kernels_precision_and_every_conversion(capsys):
    assert main(["plan", str(SPECS / "resnetv2_18.yaml"), "--device", "onnxruntime-cpu",
                 "--precision", "int8", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["precision"] == "int8"
    prec = {n: k["precision"] for k in out["int8"]["kernels"] for n in k["nodes"]}
    # the pre-activation BNs run in float, the convolutions and adds in int8
    assert {prec[n] for n in prec if n.endswith("norm1")} == {"float"}
    assert prec["stages.0.blocks.0.conv1"] == prec["stages.0.blocks.0.add"] == "int8"
    # each float BN is read after a DequantizeLinear and followed by a QuantizeLinear
    conv = Counter((c["kernel"], c["read_by"].endswith("norm1") or c["tensor"]
                    .endswith("norm1")) for c in out["int8"]["conversions"])
    assert conv[("DequantizeLinear", True)] == conv[("QuantizeLinear", True)] == 8
    assert out["kernel_counts"]["BatchNormalization"] == 9
    assert "FusedConv" not in out["kernel_counts"]  # no conv_act in a QDQ model


def test_the_fp32_plan_is_unchanged_by_the_int8_section():
    graph = comparable_graph(SPECS / "resnet18.yaml")
    p = plan_for(graph, "onnxruntime-cpu")
    assert p.precision == "fp32" and p.int8 is None and "FusedConv" in p.kernel_counts


def test_without_vnni_the_int8_plan_says_why_it_may_lose():
    graph = comparable_graph(SPECS / "resnet18.yaml")
    prof = load_profile("onnxruntime-cpu")
    assert any("VNNI" in n for n in plan(graph, prof, precision="int8", vnni=False).notes)
    assert plan(graph, prof, precision="int8", vnni=True).notes == ()
    # a pre-activation net's float BNs: the plan counts them and their conversions
    v2 = plan(comparable_graph(SPECS / "resnetv2_18.yaml"), prof, precision="int8", vnni=True)
    assert v2.notes == ("9 of 58 kernels run in float, with 20 conversions between float and "
                        "int8, each a pass over its tensor: the speed-up is smaller than an "
                        "all-int8 net's",)


def test_int8_on_a_profile_without_it_is_one_line(capsys):
    assert main(["plan", str(SPECS / "resnet18.yaml"), "--device", "x86-onednn",
                 "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no int8 section" in err


def test_int8_plan_on_another_instruction_set_is_modelled():
    graph = comparable_graph(SPECS / "resnet18.yaml")
    prof = load_profile("openvino-cpu")
    other = next(i for i in ("avx2", "avx512") if i not in prof.int8.verified_isa)
    assert plan(graph, prof, other, "int8").verified_with is None
    assert plan(graph, prof, prof.int8.verified_isa[0], "int8").verified_with is not None


def test_an_int8_section_without_a_form_for_an_op_is_one_line_at_its_place():
    text = (load_profile_text() .replace("    relu:\n", "    relux:\n", 1))
    with pytest.raises(SpecError) as err:
        read_profile(text, "p.yaml")
    assert "int8.ops.relux" in str(err.value) and "unknown key" in str(err.value)
    # an op the section does not name runs in float, and the plan says it is modelled
    text = load_profile_text().replace("    flatten: {kernels: [Flatten]", "    # ", 1)
    p = plan(comparable_graph(SPECS / "resnet18.yaml"), read_profile(text, "p.yaml"),
             precision="int8")
    assert p.verified_with is None and "flatten: no int8 form" in p.modelled_from
    assert p.int8.node_precision()["flatten"] == "float"
    text = load_profile_text().replace("reads: [float], out: float, precision: float",
                                       "reads: [floaty]", 1)
    with pytest.raises(SpecError) as err:
        read_profile(text, "p.yaml")
    assert "'floaty' is not a tensor precision" in str(err.value)
    text = load_profile_text().replace("rules: [bn_fold,", "rules: [conv_add_act, bn_fold,", 1)
    with pytest.raises(SpecError) as err:
        read_profile(text, "p.yaml")
    assert "int8.rules[0]: 'conv_add_act' is not among the profile's rules" in str(err.value)
    ov = load_profile_text("openvino-cpu").replace("{if: {part: se,", "{if: {parts: se,", 1)
    with pytest.raises(SpecError) as err:
        read_profile(ov, "p.yaml")
    assert "int8.merged.Convolution.when[1].if.parts: unknown key; did you mean 'part'?" \
        in str(err.value)


def load_profile_text(name="onnxruntime-cpu"):
    from importlib import resources

    return (resources.files("archdsl.fusion") / "profiles" / f"{name}.yaml").read_text("utf-8")


def test_a_user_int8_profile_is_held_to_what_it_can_claim(tmp_path, capsys):
    # no engine entry: its int8 plans are modelled, not "checked"
    text = load_profile_text()
    start, end = text.index("engine:\n"), text.index("rules:\n")
    own = tmp_path / "mine.yaml"
    own.write_text(text[:start] + text[end:])
    p = plan(comparable_graph(SPECS / "resnet18.yaml"), read_profile(own.read_text(), "m"),
             precision="int8")
    assert p.verified_with is None and p.int8 is not None
    # an empty chain of unmodelled ops is refused at its place
    ov = load_profile_text("openvino-cpu").replace("  quantize:", UNMODELLED.replace(
        "[split_sum,", "[[], split_sum,"), 1)
    with pytest.raises(SpecError) as err:
        read_profile(ov, "p.yaml")
    assert "int8.unmodelled[0]: an empty chain" in str(err.value)
    # a merged kernel without an int8 form: the plan command says so in one line
    own.write_text(text.replace("    Split: {kernels: [Split],", "    Splat: {kernels: [Split],"))
    assert main(["plan", str(SPECS / "res2net50_26w_4s.yaml"), "--device", str(own),
                 "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no form for merged kernel Split" in err
