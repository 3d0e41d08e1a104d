"""``archdsl quantize``: each engine's own quantizer on archdsl's export, held to the
engine's report of what it runs and to the float model torch computes."""

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import SPECS, randomised

from archdsl.cli.main import main
from archdsl.emit.torch import build_model
from archdsl.int8 import calibration, error, nodes
from archdsl.int8.quantize import quantize
from archdsl.int8.settings import QuantSettings, choose
from archdsl.load import load_spec_with_graph

SHAPE = (3, 64, 64)


def model_of(name, shape=SHAPE):
    _, graph = load_spec_with_graph(SPECS / f"{name}.yaml", shape)
    return randomised(build_model(graph), shape)


def quantized(name, engine, tmp_path, keep=frozenset()):
    m = model_of(name)
    plan = quantize(m, engine, tmp_path, data=calibration.synthetic(SHAPE, 4),
                    held_out=calibration.synthetic(SHAPE, 4, seed=1), keep_fp32=set(keep),
                    source="synthetic")
    return m, plan


def torch_logits(m, xs):
    with torch.no_grad():
        return np.concatenate([m(torch.from_numpy(x)).numpy() for x in xs])


def test_every_onnx_node_of_the_export_is_named_by_the_ir_node_it_computes(tmp_path):
    import archdsl

    m = model_of("seresnext50_32x4d")
    archdsl.export_onnx(m, tmp_path / "m.onnx")
    matched = nodes.match(m, tmp_path / "m.onnx", calibration.synthetic(SHAPE, 1)[0])
    graph = m.archdsl_graph
    convs = [n for n in onnx.load(tmp_path / "m.onnx").graph.node if n.op_type == "Conv"]
    assert convs and all(n.name in matched for n in convs)
    # the exporter folds each BN into its conv: the Conv computes the BN's output
    assert {graph[matched[n.name]].op for n in convs} <= {"batch_norm", "conv2d"}
    se = [o for o, i in matched.items() if graph[i].part == "se"]
    assert len(se) == 16 * 6  # pool, fc1, act, fc2, gate, scale in each of 16 blocks


@pytest.mark.parametrize("name", ["resnet18", "seresnet18"])
def test_onnxruntime_int8_model_runs_int8_kernels_and_agrees_with_torch(name, tmp_path):
    m, plan = quantized(name, "onnxruntime", tmp_path)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "check.onnx")
    sess = ort.InferenceSession(str(tmp_path / "model.int8.onnx"), so,
                                providers=["CPUExecutionProvider"])
    ran = Counter(n.op_type for n in onnx.load(tmp_path / "check.onnx").graph.node)
    assert plan["kernel_counts"] == dict(ran)
    # the modelled int8 plan (archdsl plan --precision int8) of the same model agrees
    assert plan["modelled"] == {"compared": True, "agrees": True, "differences": {}}
    n_convs = sum(1 for n in m.archdsl_graph if n.op == "conv2d")
    assert ran["QLinearConv"] == n_convs and "Conv" not in ran
    xs = calibration.synthetic(SHAPE, 4, seed=2)
    got = np.concatenate([sess.run(None, {"input": x})[0] for x in xs])
    a = error.agreement(got, torch_logits(m, xs))
    assert a["cosine_min"] > 0.99, a
    assert plan["agreement"]["cosine_min"] > 0.99
    s = plan["settings"]
    assert s["activations"] == "uint8" and s["weights"] == "int8" and s["samples"] == 4
    assert s["reduce_range"] is not s["vnni"]
    # the classifier's QGemm writes the logits in float: no DequantizeLinear after it
    assert list(s["float_outputs"]) == ["Gemm"]
    assert "Gemm output in float" in QuantSettings(**s).line()
    last = onnx.load(tmp_path / "check.onnx").graph
    writer = next(n for n in last.node if last.output[0].name in n.output)
    assert writer.op_type == "QGemm"
    int8 = [r for r in plan["nodes"] if r.get("kernel") == "QLinearConv"]
    assert int8 and all(r["precision"] == "int8" for r in int8)
    # each quantized tensor has its error: a conv's output feeding a ReLU is not one
    measured = [r for r in plan["nodes"] if r["op"] in ("relu", "max_pool")]
    assert measured and all(r["sqnr_db"] > 10 for r in measured)


def test_keep_fp32_keeps_the_role_in_float_and_says_why(tmp_path):
    m, plan = quantized("seresnet18", "onnxruntime", tmp_path, {"se"})
    se = [r for r in plan["nodes"] if r.get("part") == "se" and "kernel" in r]
    assert se and all(r["precision"] == "float" for r in se)
    assert any(r.get("why_float") == "--keep-fp32 se" for r in se)
    ran = Counter(n.op_type for n in
                  onnx.load(tmp_path / "model.int8.onnx").graph.node)
    assert ran["Sigmoid"] == 8  # the SE gates stay float ops between Q/DQ
    rest = [r for r in plan["nodes"] if r["role"] == "branch" and r.get("op") == "batch_norm"]
    assert rest and all(r["precision"] == "int8" for r in rest)


def test_openvino_int8_model_is_saved_in_f32_and_agrees_with_torch(tmp_path):
    import openvino as ov

    m, plan = quantized("seresnet18", "openvino", tmp_path)
    xml = (tmp_path / "model.xml").read_text()
    assert 'element_type="f16"' not in xml and "FakeQuantize" in xml
    compiled = ov.Core().compile_model(str(tmp_path / "model.xml"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    xs = calibration.synthetic(SHAPE, 4, seed=2)
    got = np.concatenate([np.array(compiled(x)[0]) for x in xs])
    assert error.agreement(got, torch_logits(m, xs))["cosine_min"] > 0.99
    k = plan["kernel_counts"]
    assert k["Convolution:u8"] == 20 and k["Convolution:f32"] == 16  # NNCF's SE_BLOCK
    fcs = [r for r in plan["nodes"] if r.get("part") == "se" and r["op"] == "conv2d"]
    assert fcs and all("SE_BLOCK" in r["why_float"] for r in fcs)
    measured = [r["sqnr_db"] for r in plan["nodes"] if r.get("sqnr_db") is not None]
    assert len(measured) > 40 and min(measured) > 10, sorted(measured)[:5]


def test_openvino_keep_fp32_stem(tmp_path):
    _, plan = quantized("resnet18", "openvino", tmp_path, {"stem"})
    assert plan["kernel_counts"]["Convolution:f32"] == 1
    stem = [r for r in plan["nodes"] if r["role"] == "stem" and "kernel" in r]
    assert stem and all(r["precision"] == "f32" for r in stem)
    # the stem's names are prefixes of others' (/Relu of /Relu_1): only the stem is kept
    rest = [r for r in plan["nodes"] if r["role"] != "stem" and r.get("kernel") ==
            "Convolution"]
    assert rest and all(r["precision"] == "u8" for r in rest)


def test_an_added_output_read_in_the_quantized_units_is_no_measurement():
    ref = np.random.default_rng(0).standard_normal(1000).clip(0)
    noisy = ref + np.random.default_rng(1).normal(0, 0.01, 1000)
    assert error.in_scale(ref, noisy)
    assert not error.in_scale(ref, np.round(noisy * 507))  # u8 steps, no dequantization


def test_sqnr_is_the_ratio_of_signal_to_noise_power():
    ref = np.array([3.0, 4.0])
    assert error.sqnr(ref, ref + np.array([0.3, 0.4])) == pytest.approx(20.0)
    assert error.sqnr(ref, ref) == float("inf")


def test_settings_follow_the_instruction_set():
    assert choose("onnxruntime", 8, vnni=False).reduce_range
    assert not choose("onnxruntime", 8, vnni=True).reduce_range
    s = choose("openvino", 8, vnni=False)
    assert not s.reduce_range and s.weights_granularity == "per output channel"


def test_calibration_images_are_preprocessed_as_imagenet_evaluation(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((300, 400, 3), 255, np.uint8)).save(tmp_path / "a.png")
    (x,) = calibration.load_images(tmp_path, (3, 64, 64), 4)
    assert x.shape == (1, 3, 64, 64)
    np.testing.assert_allclose(x[0, :, 0, 0], (1 - np.array(calibration.MEAN)) /
                               np.array(calibration.STD), rtol=1e-5)


@pytest.mark.parametrize("setup, flag, says", [
    (lambda d: None, "--calibration", "no images in the folder"),
    (lambda d: (d / "x.png").write_bytes(b"not a png"), "--calibration", "not a readable image"),
    (lambda d: None, "--keep-fp32=se", "'se' is no role or part of resnet18"),
    (lambda d: None, "--input=4x32x32", "images give 1 (grayscale) or 3 (RGB) channels"),
])
def test_bad_input_is_one_line_and_nothing_is_written(setup, flag, says, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    setup(folder)
    out = tmp_path / "out"
    args = [str(SPECS / "resnet18.yaml"), "--engine", "onnxruntime", "-o", str(out),
            "--input", "3x32x32"]
    args += [flag, str(folder)] if flag == "--calibration" else [flag]
    if flag == "--input=4x32x32":
        (folder / "a.png").write_bytes(b"")
        args += ["--calibration", str(folder)]
    assert main(["quantize", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_cli_writes_the_model_plan_and_report(tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", str(SPECS / "resnet18.yaml"), "--engine", "onnxruntime",
                 "-o", str(out), "--input", "3x64x64", "--samples", "2"]) == 0
    cap = capsys.readouterr()
    assert "no real calibration" in cap.err
    assert "vs float, held-out inputs: cosine" in cap.out
    assert sorted(p.name for p in out.iterdir()) == ["model.int8.onnx", "plan.json",
                                                     "report.md"]
    assert "| layer1.0.bn1 | branch | QLinearConv | int8 |" in (out / "report.md").read_text()


def test_an_engine_that_refuses_the_model_is_one_line_and_nothing_is_written(
        tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Exception during initialization: unsupported op\nmore detail")

    import onnxruntime.quantization

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", refuse)
    out = tmp_path / "q"
    assert main(["quantize", str(SPECS / "resnet18.yaml"), "--engine", "onnxruntime",
                 "-o", str(out), "--input", "3x32x32", "--samples", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("archdsl: --engine onnxruntime: resnet18: onnxruntime's quantizer "
                       "refused the model: RuntimeError: Exception during initialization: "
                       "unsupported op")
    assert not out.exists()
