"""docs/architecture.md's recipes, executed: a block family and a new op registered from
outside the package (tests/toy_family.py, loaded through ARCHDSL_PLUGINS in a process of
its own) go through every capability — validate, count under every convention (held to
torch.utils.flop_counter), the diagram at every level, every device's plan, build, the
fused module, generated Python, ONNX (run by ONNX Runtime) and an ``archdsl import``
round trip of its state_dict.

Run as a script (``python tests/test_recipe.py FOLDER``) it is that child process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SPEC = """\
name: plain_mish
input: {channels: 3, size: 64}
stem: {kind: classic, width: 16}
defaults:
  block: plain
stages:
  - {depth: 2, width: 16}
  - {depth: 1, width: 32, stride: 2}
  - {depth: 1, width: 64, stride: 2}
head: {classes: 10}
"""


def test_a_family_and_an_op_from_outside_the_package(tmp_path: Path) -> None:
    env = {**os.environ, "ARCHDSL_PLUGINS": "toy_family",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, __file__, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert out.stdout.strip().endswith("recipe ok"), out.stdout[-2000:]


def test_a_plugin_that_cannot_be_imported_is_named() -> None:
    env = {**os.environ, "ARCHDSL_PLUGINS": " no_such_family ,"}
    out = subprocess.run([sys.executable, "-c", "import archdsl"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "ARCHDSL_PLUGINS names 'no_such_family', which cannot be imported" in out.stderr


def _cli(*argv: str) -> str:
    from archdsl.cli.main import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(list(argv))
    assert rc == 0, (argv, buf.getvalue())
    return buf.getvalue()


def run(folder: Path) -> None:  # noqa: PLR0915  (one path through every capability)
    import onnxruntime as ort
    import torch
    from helpers import assert_close, randomised
    from torch.utils.flop_counter import FlopCounterMode

    from archdsl import build_model, export_onnx, fuse, import_spec
    from archdsl.analysis.counts import CONVENTIONS, count
    from archdsl.emit import dot
    from archdsl.fusion.profiles import builtin_names
    from archdsl.load import load_solved, load_spec_with_graph

    spec = folder / "plain_mish.yaml"
    spec.write_text(SPEC)
    _cli("validate", str(spec))
    graph = load_spec_with_graph(spec)[1]
    mish = [n for n in graph if n.op == "mish"]
    assert len(mish) == 8 and {n.role for n in mish} == {"branch"}
    # counts: every convention prices the new op (its family's rule), and conv+linear is
    # what PyTorch's own counter finds in the built module
    for conv in CONVENTIONS:
        json.loads(_cli("count", str(spec), "--convention", conv, "--by", "node",
                        "--format", "json"))
    model = randomised(build_model(spec).eval(), graph.input.shape)
    x = torch.randn(2, *graph.input.shape)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        y = model(x)
    assert fc.get_total_flops() // 2 == 2 * count(graph).total.macs
    assert sum(r.macs for r in count(graph, "all").nodes if r.name in {n.name for n in mish}) \
        == sum(4 * n.shape[0] * n.shape[1] * n.shape[2] for n in mish)
    # the diagram draws it in its family's style, at every level
    assert {dot._kind(n) for n in mish} == {"act"}
    for level in dot.LEVELS:
        _cli("diagram", str(spec), "--level", level, "--format", "dot", "-o",
             str(folder / f"{level}.dot"))
    assert "mish" in (folder / "layer.dot").read_text()
    # every device plans it: the op's own kernels where an engine names them, else its
    # family's (Inductor's generated pointwise kernels)
    for device in builtin_names():
        plan = json.loads(_cli("plan", str(spec), "--device", device, "--format", "json"))
        assert plan["kernel_counts"], device
    eager = json.loads(_cli("plan", str(spec), "--device", "eager", "--format", "json"))
    assert eager["kernel_counts"].get("mish") == 8, eager["kernel_counts"]
    # build (bundle with generated Python), the fused module, ONNX, import
    bundle = folder / "bundle"
    _cli("build", str(spec), "-o", str(bundle))
    source = (bundle / "model.py").read_text()
    assert "class PlainBlock" in source and "F.mish(" in source
    namespace: dict[str, object] = {}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102  (our own output)
    generated = namespace["Network"]()
    generated.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert_close(generated.eval()(x), y, 1e-4)
        assert_close(fuse(model, "eager")(x), y, 1e-3)
    onnx_path = export_onnx(model, folder / "model.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert_close(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), y, 1e-4)
    torch.save(model.state_dict(), folder / "plain.pth")
    text = import_spec(str(folder / "plain.pth"), {"input_size": 64})  # no checkpoint holds it
    back = load_solved(folder / "imported.yaml", text=text)[1]
    assert [(n.name, n.op, n.attrs, n.shape, n.role) for n in back] == \
        [(n.name, n.op, n.attrs, n.shape, n.role) for n in graph], text
    print("recipe ok")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    run(Path(sys.argv[1]))
