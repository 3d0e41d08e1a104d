"""`archdsl bench` runs end to end (no timed assertions: the numbers live in
docs/benchmarks.md, measured by benchmarks/inference.py)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import SPECS

import archdsl
from archdsl import bench
from archdsl.cli.main import main
from archdsl.load import load_spec_with_graph


def test_bench_runs_and_reports(capsys):
    assert main(["bench", str(SPECS / "resnet18.yaml"), "--repeat", "2", "--only",
                 "eager,onnxruntime,channels_last"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == ("resnet18, batch 1, 2 interleaved rounds, ONNX Runtime's threads not "
                        "spinning between runs")
    names = [line[:40].strip() for line in lines[2:] if line.strip()]
    assert names == ["twin eager", "archdsl eager", "archdsl fused (eager)",
                     "fused + channels_last", "onnxruntime, twin export",
                     "onnxruntime, plain export", "onnxruntime, fused export",
                     "onnxruntime, fused export, no merges"]
    assert "round 2/2" in out.err


def test_bench_times_each_engines_int8_model_next_to_its_fp32_one(capsys):
    assert main(["bench", str(SPECS / "resnet18.yaml"), "--repeat", "2", "--only",
                 "plain export", "--precision", "int8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("int8 with ORT at ORT_ENABLE_ALL and OpenVINO at f32 inference "
                             "precision, ONNX Runtime's threads not spinning between runs")
    names = [line[:40].strip() for line in lines[2:] if line.strip()]
    assert names == ["onnxruntime, plain export", "openvino, plain export",
                     "onnxruntime int8, plain export", "openvino int8, plain export"]
    assert not any("skipped" in line for line in lines)


def test_bench_json(capsys):
    assert main(["bench", str(SPECS / "ablations" / "resnet110_cifar.yaml"), "--repeat", "2",
                 "--only", "archdsl", "--format", "json", "--batch", "1", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["batch"] for r in rows} == {1, 2}
    assert all(len(r["times_s"]) == 2 for r in rows)  # no twin: archdsl only


@pytest.mark.parametrize("args, why", [
    (["--on", "cuda"], "archdsl: --on cuda: no CUDA device here"),
    (["--device", "tensorrt"], "archdsl: --on cpu: the tensorrt profile runs on cuda only; "
                               "on cpu: eager, onnxruntime-cpu, openvino-cpu, x86-onednn"),
    (["--device", "cuda"], "archdsl: --on cpu: the cuda profile runs on cuda only"),
    (["--device", "mobile"], "archdsl: --on cpu: the mobile profile is a plan only"),
    (["--device", "x86-onednn", "--on", "cuda"],
     "archdsl: --on cuda: the x86-onednn profile runs on cpu only; on cuda: cuda, eager, "
     "eager-cuda, tensorrt"),
    (["--autocast", "bf16"], "archdsl: --autocast: only with --on cuda"),
    (["--channels-last"], "archdsl: --channels-last: only with --on cuda"),
    (["--precision", "int8", "--on", "cuda"], "archdsl: --precision int8: only with --on cpu"),
])
def test_bench_refuses_what_cannot_run_here_in_one_line(args, why, capsys):
    if torch.cuda.is_available() and args == ["--on", "cuda"]:
        pytest.skip("this machine has CUDA")
    assert main(["bench", str(SPECS / "resnet18.yaml"), *args]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith(why) and out.err.count("\n") == 1


def test_gpu_variants_compute_the_twins_function():
    """The --on cuda variants, built on the CPU (only the device differs): the fused module
    with bf16 weights, channels_last, is as close to the float32 twin as the twin is under
    bf16 autocast."""
    graph = load_spec_with_graph(SPECS / "resnet18.yaml")[1]
    torch.manual_seed(0)
    made = dict(bench.cuda_variants(graph, "eager-cuda", "bf16", True, print, on="cpu"))
    assert list(made) == ["twin eager", "archdsl eager", "archdsl fused (eager-cuda, bf16 "
                          "weights)", "torch.compile, twin", "torch.compile, fused (eager-cuda)"]
    torch.manual_seed(0)  # the same draws: the twin the variants copied their weights from
    archdsl.build_model(graph)
    ref = bench.twin(graph).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = ref(x)
    twin_low = made["twin eager"]()(x)
    fused_low = made["archdsl fused (eager-cuda, bf16 weights)"]()(x)
    assert twin_low.dtype == fused_low.dtype == torch.bfloat16

    def err(a):
        return ((a.float() - want).abs().max() / want.abs().max()).item()
    assert 0 < err(fused_low) <= 1.25 * err(twin_low)


def test_bench_leaves_the_process_as_it_found_it(monkeypatch, tmp_path):
    """``bench.run`` sets torch's thread count and Inductor's freezing for its variants and
    writes ONNX exports to a temporary folder; once it returns, the threads and the
    setting are the caller's again and the folder is gone."""
    import tempfile

    import torch._inductor.config as cfg

    graph = load_spec_with_graph(SPECS / "resnet10t.yaml")[1]
    compiled = []  # Inductor's freezing as the variant compiles (the compile itself skipped)
    monkeypatch.setattr(torch, "compile", lambda m: compiled.append(cfg.freezing) or m)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    threads, freezing = torch.get_num_threads(), cfg.freezing
    results = bench.run(graph, threads=1 if threads > 1 else 2, repeat=1, warmup=1,
                        only=("inductor", "onnxruntime, plain"))
    assert [r.name for r in results if r.times] == ["inductor (freezing), fused",
                                                    "onnxruntime, plain export"]
    assert compiled == [True]
    assert (torch.get_num_threads(), cfg.freezing) == (threads, freezing)
    assert list(tmp_path.iterdir()) == []
