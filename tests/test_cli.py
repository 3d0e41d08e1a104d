"""The CLI: validate and build, exit codes, one-line errors, atomic bundles."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT, SPECS, all_specs, spec_id

from archdsl import build as build_mod
from archdsl.cli.main import main
from archdsl.load import load_spec


def test_validate_ok(capsys):
    assert main(["validate", str(SPECS / "resnet50.yaml")]) == 0
    assert capsys.readouterr().out == f"{SPECS / 'resnet50.yaml'}: ok: resnet50 (176 nodes)\n"


def test_validate_misspelt_key_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstagez:\n  - {depth: 2, width: 64, block: basic}\n")
    out = subprocess.run([sys.executable, "-m", "archdsl", "validate", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == (f"{bad}:2:1: stagez: unknown key; did you mean 'stages'? allowed: "
                          "act, antialias, conv, features, head, input, layout, name, norm, "
                          "output_stride, regnet, shortcut, stages, stem\n")


def test_validate_mixed_reports_each(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["validate", str(SPECS / "resnet18.yaml"), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out.count("ok: resnet18") == 1
    assert err == f"{bad}:1:1: stages: required field is missing\n"


def test_build_writes_bundle(tmp_path, capsys):
    dest = tmp_path / "bundle"
    assert main(["build", str(SPECS / "resnext50_32x4d.yaml"), "-o", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "resnext50_32x4d" in out and "25,028,904" in out and str(dest) in out
    assert sorted(p.name for p in dest.iterdir()) == ["counts.json", "counts.txt", "diagram.dot",
                                                   "diagram.svg", "model.py", "plan.json",
                                                   "plan.md", "report.html", "spec.yaml",
                                                   "summary.txt"]
    # the normalized spec validates again, to the same spec, with every default explicit
    again = load_spec(dest / "spec.yaml")
    assert again == load_spec(SPECS / "resnext50_32x4d.yaml")
    text = (dest / "spec.yaml").read_text()
    assert "extends" not in text and "defaults" not in text and "stride_on: 3x3" in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_build_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(SPECS / "resnet18.yaml")]) == 0
    assert (tmp_path / "archdsl-out" / "resnet18" / "summary.txt").is_file()


def test_build_failure_leaves_earlier_bundle_untouched(tmp_path, monkeypatch, capsys):
    dest = tmp_path / "bundle"
    assert main(["build", str(SPECS / "resnet18.yaml"), "-o", str(dest)]) == 0
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    capsys.readouterr()

    def boom(b, path):
        path.write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(build_mod, "ARTIFACTS", [*build_mod.ARTIFACTS[:1],
                                                 ("summary.txt", boom, None)])
    assert main(["build", str(SPECS / "resnet34.yaml"), "-o", str(dest)]) == 1
    assert capsys.readouterr().err == "archdsl: disk full\n"
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_build_bad_spec_fails_before_torch(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages:\n  - {depth: 2, width: 64, block: basic, stride: 3}\n")
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from archdsl.cli.main import main\n"
        f"sys.exit(main(['build', {str(bad)!r}, '-o', {str(tmp_path / 'out')!r}]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr == (f"{bad}:3:49: stages[0].stride: a stride of 3 is not supported; "
                          "allowed: 1 or 2\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_every_spec_builds(path, tmp_path, capsys):
    assert main(["build", str(path), "-o", str(tmp_path / "b")]) == 0
    assert "parameters" in capsys.readouterr().out


def test_build_fused_with_onnx(tmp_path, capsys):
    import onnxruntime as ort
    import torch

    import archdsl

    dest = tmp_path / "b"
    assert main(["build", str(SPECS / "resnet50_msra.yaml"), "--fused", "--export", "onnx",
                 "-o", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "fused        for eager: bn_fold, horizontal_merge, kernel1_pool; 375,717,888" in out
    weights = torch.load(dest / "weights.pt", weights_only=True)
    with torch.device("meta"):
        fused = archdsl.fuse(archdsl.build_model(SPECS / "resnet50_msra.yaml").eval())
    assert set(weights) == set(fused.state_dict())
    sess = ort.InferenceSession(str(dest / "model.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": torch.zeros(2, 3, 224, 224).numpy()})[0]
    assert y.shape == (2, 1000)
    assert oct((dest / "model.onnx").stat().st_mode & 0o777) == oct(
        (dest / "spec.yaml").stat().st_mode & 0o777)


def test_first_command_is_quiet(tmp_path):
    """The README's first command prints no warning (torch warns without numpy, so the
    package requires it)."""
    import importlib.metadata

    assert any(r.split(";")[0].strip() == "numpy"
               for r in importlib.metadata.requires("archdsl"))
    out = subprocess.run([sys.executable, "-m", "archdsl", "build",
                          str(SPECS / "resnet18.yaml"), "-o", str(tmp_path / "b")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stderr == ""
