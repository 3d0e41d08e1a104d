"""The HTML report: self-contained, one table row per IR node, and linked to the diagram
both ways, checked in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from helpers import SPECS

from archdsl.cli.main import main
from archdsl.load import load_spec_with_graph

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(SPECS / "seresnet18.yaml"), "-o", str(path),
                 "--device", "tensorrt"]) == 0
    return path


def test_self_contained(report):
    html = report.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html), "a network fetch"
    assert html.count("<svg") >= 4  # three diagram levels and the bars
    assert "<script src" not in html and "<link " not in html
    assert "refused candidates" in html and "se_axpy" in html and "conv+relu+pool" in html


def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if CHROMIUM is None or sync_playwright is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser test: install chromium and playwright")
        pytest.skip("needs Debian's chromium and PyPI's playwright")
    return sync_playwright


def test_in_chromium(report, tmp_path):
    sync_playwright = browser()
    _, graph = load_spec_with_graph(SPECS / "seresnet18.yaml")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS[1:],
                               headless=True)
        page = b.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(report.as_uri())
        # one row per IR node (the input included), plus a subtotal per stage
        assert page.locator("tr.node-row").count() == len(graph)
        assert page.locator("tr.subtotal").count() == 6
        # layer level: click a node of the diagram, its row lights up
        page.check("input[name=level][value=layer]")
        page.uncheck("#fit")
        node = page.locator(".level.shown g.node", has=page.locator(
            "title", has_text=re.compile(r"^layer2\.0\.conv2$")))
        node.click()
        assert page.locator("tr.hl").evaluate_all("rs => rs.map(r => r.dataset.name)") == [
            "layer2.0.conv2"]
        # and the other way round: a row lights up its diagram node
        page.locator('tr[data-name="layer3.1.se.fc1"]').click()
        lit = page.locator(".level.shown g.node.hl title").evaluate_all(
            "ts => ts.map(t => t.textContent)")
        assert lit == ["layer3.1.se.fc1"]
        # block level: a block's node lights up all its rows
        page.check("input[name=level][value=block]")
        page.locator(".level.shown g.node", has=page.locator(
            "title", has_text=re.compile(r"^layer4\.1/branch$"))).click()
        names = page.locator("tr.hl").evaluate_all("rs => rs.map(r => r.dataset.name)")
        assert names and all(n.startswith("layer4.1.") for n in names)
        # sort by MACs: the largest first
        page.click("th[data-key=macs]")
        macs = page.locator("tr.node-row").evaluate_all(
            "rs => rs.map(r => Number(r.dataset.macs))")
        assert macs == sorted(macs, reverse=True) and macs[0] > 0
        # filter by stage
        page.select_option("#stage-filter", "layer2")
        visible = page.locator("tr.node-row:not(.hidden)").evaluate_all(
            "rs => rs.map(r => r.dataset.stage)")
        assert visible and set(visible) == {"layer2"}
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        b.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_build_writes_report(tmp_path):
    assert main(["build", str(SPECS / "resnet18.yaml"), "-o", str(tmp_path / "b")]) == 0
    html = (tmp_path / "b" / "report.html").read_text()
    assert "resnet18" in html and html.count('class="node-row"') == 70
