"""The int8 plan where a user looks: the report and the live page outline each node of the
layer diagram by its precision (the modelled int8 plan's, or what ``archdsl quantize``
measured, with each node's SQNR), and a plan.json that can't be shown is one line."""

import json
import re

import pytest
from helpers import SPECS
from test_int8 import quantized
from test_serve import client, folder, needs_serve  # noqa: F401 (fixtures)

from archdsl.cli.main import main
from archdsl.emit.dot import PRECISION_COLOR


def outlined(html: str, node: str) -> str | None:
    """The outline colour of ``node`` in a page's layer diagram."""
    m = re.search(r'<g id="node\d+" class="node">\s*<title>' + re.escape(node) +
                  r'</title>[^<]*<(?:polygon|ellipse|path)[^>]*stroke="([^"]+)"', html, re.S)
    return m.group(1) if m else None


def test_report_outlines_each_node_by_its_int8_plans_precision(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(SPECS / "seresnet18.yaml"), "--device", "openvino-cpu",
                 "--precision", "int8", "-o", str(out)]) == 0
    html = out.read_text()
    # NNCF's SE_BLOCK pattern: the SE's FCs float; the block's convolutions int8
    assert outlined(html, "layer1.0.se.fc1") == PRECISION_COLOR["float"]
    assert outlined(html, "layer1.0.conv1") == PRECISION_COLOR["int8"]
    assert outlined(html, "maxpool") == PRECISION_COLOR["int8 data"]
    assert "nncf.quantize" in html and "(int8)" in html
    assert main(["report", str(SPECS / "seresnet18.yaml"), "-o", str(tmp_path / "f.html")]) == 0
    fp32 = outlined((tmp_path / "f.html").read_text(), "layer1.0.conv1")
    assert fp32 is not None and fp32 not in PRECISION_COLOR.values()


def test_report_shows_what_quantize_measured(tmp_path):
    (tmp_path / "q").mkdir()
    _, plan = quantized("resnet18", "onnxruntime", tmp_path / "q")
    (tmp_path / "plan.json").write_text(json.dumps(plan, default=float))
    out = tmp_path / "r.html"
    assert main(["report", str(SPECS / "resnet18.yaml"), "--device", "onnxruntime-cpu",
                 "--int8", str(tmp_path / "plan.json"), "-o", str(out)]) == 0
    html = out.read_text()
    row = next(r for r in plan["nodes"] if "sqnr_db" in r and r["precision"] == "int8")
    assert f"SQNR {row['sqnr_db']:.1f} dB" in html and "cosine" in html
    assert outlined(html, row["node"]) == PRECISION_COLOR["int8"]


@pytest.mark.parametrize("content, why", [
    ("{", "not a readable JSON file"),
    ('{"model": "resnet18"}', "no nodes list"),
    ('{"model": "resnet50", "nodes": []}', "the plan of 'resnet50', not of 'resnet18'"),
    ('{"model": "resnet18", "nodes": [{"node": "nope", "precision": "int8"}]}', "nodes[0]"),
    ('{"model": "resnet18", "nodes": [{"node": "fc", "precision": "int8", "sqnr_db": "x"}]}',
     "nodes[0]"),
    ('{"model": "resnet18", "nodes": [{"node": "fc", "precision": "int8", "sqnr_db": null}]}',
     "nodes[0]"),
    ('{"model": "resnet18", "nodes": [{"node": ["fc"], "precision": "int8"}]}', "nodes[0]"),
    # rows that pass, but not the fields the page's summary reads
    ('{"model": "resnet18", "nodes": [{"node": "fc", "precision": "int8"}]}',
     "not an archdsl quantize plan.json: its summary's KeyError"),
])
def test_a_plan_json_that_cannot_be_shown_is_one_line(tmp_path, capsys, content, why):
    (tmp_path / "plan.json").write_text(content)
    out = tmp_path / "r.html"
    assert main(["report", str(SPECS / "resnet18.yaml"), "--int8",
                 str(tmp_path / "plan.json"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err and err.startswith("archdsl: --int8: ")
    assert not out.exists()


def test_live_page_offers_int8_plans(client, folder):  # noqa: F811 (a fixture)
    needs_serve()
    page = client.get("/").text
    assert "openvino-cpu:int8" in page and "onnxruntime-cpu:int8" in page
    text = (folder / "seresnet18.yaml").read_text()
    r = client.post("/api/render", json={"path": "seresnet18.yaml", "text": text,
                                         "level": "layer", "device": "openvino-cpu:int8"})
    body = r.json()
    assert body["ok"] and "(int8)" in body["fusion"] and "Convolution:f32" in body["fusion"]
    assert outlined(body["diagram"], "layer1.0.se.fc1") == PRECISION_COLOR["float"]
