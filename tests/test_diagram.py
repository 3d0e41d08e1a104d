"""Diagrams: every spec at every level renders to SVG without a system Graphviz; the
layer view is the IR, node for node and edge for edge."""

from __future__ import annotations

import os
import re
import subprocess
import sys

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


def test_dot_is_deterministic():
    _, graph = load_spec_with_graph(SPECS / "resnext50_32x4d.yaml")
    assert to_dot(graph, "layer", count(graph)) == to_dot(graph, "layer", count(graph))


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
