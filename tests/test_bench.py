"""`archdsl bench` runs end to end (no timed assertions: the numbers live in
docs/benchmarks.md, measured by benchmarks/inference.py)."""

from __future__ import annotations

import json

from helpers import SPECS

from archdsl.cli.main import main


def test_bench_runs_and_reports(capsys):
    assert main(["bench", str(SPECS / "resnet18.yaml"), "--repeat", "2", "--only",
                 "eager,onnxruntime,channels_last"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == "resnet18, batch 1, 2 interleaved rounds"
    names = [line[:40].strip() for line in lines[2:] if line.strip()]
    assert names == ["twin eager", "archdsl eager", "archdsl fused (eager)",
                     "fused + channels_last", "onnxruntime, twin export",
                     "onnxruntime, plain export", "onnxruntime, fused export",
                     "onnxruntime, fused export, no merges"]
    assert "round 2/2" in out.err


def test_bench_json(capsys):
    assert main(["bench", str(SPECS / "ablations" / "resnet110_cifar.yaml"), "--repeat", "2",
                 "--only", "archdsl", "--format", "json", "--batch", "1", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["batch"] for r in rows} == {1, 2}
    assert all(len(r["times_s"]) == 2 for r in rows)  # no twin: archdsl only
