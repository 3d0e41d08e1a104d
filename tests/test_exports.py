"""Exports: generated Python source, ONNX and TorchScript round trips for every spec;
pretrained-weight loading with a report."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import onnxruntime as ort
import pytest
import torch
import torchvision
from helpers import (
    FUSED_RTOL,
    PARITY_RTOL,
    ROOT,
    SPECS,
    all_specs,
    assert_close,
    comparable_graph,
    outputs,
    randomised,
    ruff_bin,
    spec_id,
)

import archdsl
from archdsl.cli.main import main
from archdsl.emit.python import to_python
from archdsl.load import load_spec_with_graph
from archdsl.weights import load_weights


def small(graph):
    c, h, w = graph.input.shape
    return (c, min(h, 48), min(w, 48))


DRIVER = """
import importlib.util, json, sys, torch

def load(name):
    spec = importlib.util.spec_from_file_location(name, f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

bad = []
for i, name in json.load(open("cases.json")):
    with torch.device("meta"):  # the full-depth source: every key and shape
        full = load(f"full_{i}").build()
    shapes = {k: list(v.shape) for k, v in full.state_dict().items()}
    if shapes != json.load(open(f"{i}.json")):
        bad.append(name + " (state_dict)")
    case = torch.load(f"{i}.pt", weights_only=True)
    with torch.device("meta"):  # the classifier takes num_classes, whatever its name
        few = load(f"full_{i}").Network(num_classes=7).eval()
        if few(torch.zeros(1, *case["x"].shape[1:])).shape[-1] != 7:
            bad.append(name + " (num_classes)")
    net = load(f"gen_{i}").build().eval()  # the comparable graph's source: outputs
    net.load_state_dict(case["sd"], strict=True)
    with torch.no_grad():
        y = net(case["x"])
    if (y - case["y"]).abs().max().item() > RTOL * case["y"].abs().max().item():
        bad.append(name)
assert not [m for m in sys.modules if m.split(".")[0] == "archdsl"]
print("bad", bad)
"""


def test_generated_python_for_every_spec(tmp_path):
    """Every spec's source, imported in a fresh process that never imports archdsl, has
    the built module's state_dict keys and shapes at full depth, a classifier that takes
    ``num_classes`` (whatever the layout names it: senet.py's ``last_linear`` too), and
    (for the comparable graph) loads the built module's state_dict strictly and computes
    the same outputs."""
    cases = []
    for i, path in enumerate(all_specs()):
        _, graph = load_spec_with_graph(path)
        (tmp_path / f"full_{i}.py").write_text(to_python(graph, str(path)))
        with torch.device("meta"):
            shapes = {k: list(v.shape) for k, v in
                      archdsl.build_model(graph).state_dict().items()}
        (tmp_path / f"{i}.json").write_text(json.dumps(shapes))
        graph = comparable_graph(path)
        (tmp_path / f"gen_{i}.py").write_text(to_python(graph, str(path)))
        model = randomised(archdsl.build_model(graph), small(graph))
        x = torch.randn(2, *small(graph), generator=torch.Generator().manual_seed(i))
        with torch.no_grad():
            torch.save({"sd": model.state_dict(), "x": x, "y": model(x)}, tmp_path / f"{i}.pt")
        cases.append((i, spec_id(path)))
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "driver.py").write_text(DRIVER.replace("RTOL", str(PARITY_RTOL)))
    out = subprocess.run([sys.executable, "driver.py"], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "bad []"
    ruff = subprocess.run([ruff_bin(), "check", "--isolated", "--select", "E,W,F,I,UP,B",
                           *map(str, sorted(tmp_path.glob("[fg]*_*.py")))],
                          capture_output=True, text=True, timeout=120)
    assert ruff.returncode == 0, ruff.stdout[-3000:]


def test_generated_python_reads_like_torchvision():
    _, graph = load_spec_with_graph(SPECS / "resnext50_32x4d.yaml")
    src = to_python(graph, "specs/resnext50_32x4d.yaml")
    assert src.splitlines()[2:4] == ["    resnext50_32x4d", "    specs/resnext50_32x4d.yaml"]
    assert src.count("class Bottleneck(nn.Module):") == 1
    assert "Bottleneck(64, 256, inner=128, groups=32, project=True)," in src
    assert "def build() -> nn.Module:" in src and "archdsl" not in src.split('"""', 2)[2]


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_onnx_round_trip(path, tmp_path):
    graph = comparable_graph(path)
    shape = small(graph)
    model = randomised(archdsl.build_model(graph), shape)
    onnx_path = archdsl.export_onnx(model, tmp_path / "m.onnx", input_shape=shape)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            ref = model(x)
        got = torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
        assert_close(got, ref, FUSED_RTOL)


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_torchscript_round_trip(path, tmp_path):
    from archdsl.emit.torchscript import export_torchscript

    graph = comparable_graph(path)
    shape = small(graph)
    model = randomised(archdsl.build_model(graph), shape)
    export_torchscript(model, tmp_path / "m.pt", input_shape=shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(tmp_path / "m.pt"))
    assert_close(outputs(loaded, shape), outputs(model, shape), PARITY_RTOL)


@pytest.fixture(scope="module")
def resnet50_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "resnet50.pth"
    torch.save(randomised(torchvision.models.resnet50(), (3, 64, 64)).state_dict(), path)
    return path


def test_exact_checkpoint_loads_strictly(resnet50_checkpoint):
    model = archdsl.build_model(SPECS / "resnet50.yaml")
    report = load_weights(model, resnet50_checkpoint)
    assert report.exact and report.loaded == 320
    ref = torchvision.models.resnet50()
    ref.load_state_dict(torch.load(resnet50_checkpoint, weights_only=True))
    assert_close(outputs(model, (3, 64, 64)), outputs(ref, (3, 64, 64)), PARITY_RTOL)


def test_ten_classes_reinitialises_fc(resnet50_checkpoint, tmp_path, capsys):
    spec = tmp_path / "r50_10.yaml"
    spec.write_text(f"extends: {SPECS / 'resnet50.yaml'}\nname: resnet50_10\n"
                    "head: {classes: 10}\n")
    model = archdsl.build_model(spec)
    fresh_fc = model.fc.weight.detach().clone()
    report = load_weights(model, resnet50_checkpoint)
    assert report.reinitialised == ["fc: the checkpoint has 1000 classes, the model 10; the "
                                    "classifier keeps its fresh initialisation"]
    assert torch.equal(model.fc.weight, fresh_fc)
    ckpt = torch.load(resnet50_checkpoint, weights_only=True)
    assert torch.equal(model.state_dict()["layer4.2.conv3.weight"],
                       ckpt["layer4.2.conv3.weight"])
    assert main(["build", str(spec), "--weights", str(resnet50_checkpoint),
                 "-o", str(tmp_path / "b")]) == 0
    assert "re-initialised: fc: the checkpoint has 1000 classes" in capsys.readouterr().out


def test_se_layers_missing_from_a_plain_checkpoint(resnet50_checkpoint):
    model = archdsl.build_model(SPECS / "seresnet50.yaml")
    report = load_weights(model, resnet50_checkpoint)
    assert len(report.missing) == 16 * 4  # fc1/fc2 weight and bias in 16 blocks
    assert "missing from the checkpoint (newly initialised): layer1.0.se.fc1 (weight, bias)" \
        in report.text()
    assert report.loaded == 320


def test_unsafe_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Evil()}, path)
    model = archdsl.build_model(SPECS / "resnet18.yaml")
    with pytest.raises(Exception, match="Weights only load failed|weights_only"):
        load_weights(model, path)


def test_export_cli(tmp_path, capsys):
    spec = str(SPECS / "resnet18.yaml")
    assert main(["export", spec, "--format", "python", "-o", str(tmp_path / "m.py")]) == 0
    assert (tmp_path / "m.py").read_text().startswith('"""A residual network generated')
    assert main(["export", spec, "--format", "onnx", "--fused", "-o",
                 str(tmp_path / "m.onnx")]) == 0
    assert "fused" in capsys.readouterr().out
    assert main(["export", spec, "--format", "torchscript", "-o",
                 str(tmp_path / "m.ts")]) == 0
    assert (tmp_path / "m.ts").stat().st_size > 1_000_000


def test_exported_python_needs_only_torch(tmp_path):
    assert main(["export", str(SPECS / "seresnext50_32x4d.yaml"), "--format", "python",
                 "-o", str(tmp_path / "m.py")]) == 0
    out = subprocess.run([sys.executable, "-c", "import m, sys; m.build(); print(sorted("
                          "k for k in sys.modules if k.split('.')[0] in ('archdsl', 'timm', "
                          "'torchvision')))"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
    assert not tmp_path.is_relative_to(ROOT)  # it ran outside the project
