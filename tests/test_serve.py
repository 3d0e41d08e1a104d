"""`archdsl serve`: the HTTP API's refusals (paths out of the served folder, symlinks,
oversized bodies), atomic saves that never overwrite a change on disk silently, renders
with the CLI's error messages, and the live page in a real headless Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import unquote

import pytest
from helpers import ROOT, SPECS
from test_report import CHROMIUM, FLAGS, browser

from archdsl.analysis.counts import count
from archdsl.load import load_spec_with_graph


def needs_serve():
    for module in ("starlette", "uvicorn", "watchfiles", "httpx"):
        try:
            __import__(module)
        except ImportError:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI must test archdsl serve: {module} is missing "
                            "(pip install -e .[test])")
            pytest.skip(f"needs the serve extra ({module}): pip install -e .[serve]")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "specs"
    shutil.copytree(SPECS, root)
    (tmp_path / "outside.yaml").write_text((SPECS / "resnet18.yaml").read_text())
    (tmp_path / "secret.txt").write_text("not yours")
    return root


@pytest.fixture
def client(folder):
    needs_serve()
    from starlette.testclient import TestClient

    from archdsl.serve.app import create_app

    return TestClient(create_app(folder / "resnet50.yaml"), base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize("path", ["../outside.yaml", "%2e%2e/outside.yaml",
                                  "%2E%2E%2Foutside.yaml", "ablations/../../outside.yaml",
                                  "/etc/passwd", "C:/x.yaml", "..%5Coutside.yaml"])
def test_paths_out_of_the_folder_are_refused(client, folder, path):
    r = client.get(f"/api/file?path={path}")
    assert r.status_code in (400, 403), (path, r.status_code)
    assert "error" in r.json() and "not yours" not in r.text
    # a JSON body is not URL-decoded: the decoded name is the one to refuse
    r = client.put("/api/file", json={"path": unquote(path), "text": "x", "force": True})
    assert r.status_code in (400, 403)
    assert not list(folder.parent.glob("x.yaml")) and \
        (folder.parent / "outside.yaml").read_text().startswith("#")


def test_symlinks_and_other_files_are_refused(client, folder):
    (folder / "link.yaml").symlink_to(folder.parent / "outside.yaml")
    (folder / "linkdir").symlink_to(folder.parent, target_is_directory=True)
    (folder / "notes.txt").write_text("text")
    (folder / "inner.yaml").symlink_to(folder / "resnet18.yaml")
    assert client.get("/api/file?path=link.yaml").status_code == 403
    assert client.get("/api/file?path=linkdir/outside.yaml").status_code == 403
    assert client.get("/api/file?path=notes.txt").status_code == 403
    assert client.get("/api/file?path=nope.yaml").status_code == 404
    # a symlink inside the folder is read, but not written through
    assert client.get("/api/file?path=inner.yaml").status_code == 200
    assert client.put("/api/file", json={"path": "inner.yaml", "text": "x",
                                         "force": True}).status_code == 403
    files = client.get("/api/files").json()["files"]
    assert "resnet50.yaml" in files and "ablations/shortcut_scaling.yaml" in files
    assert not any(f.startswith(("link", "linkdir")) for f in files)


def test_oversized_and_malformed_bodies(client):
    big = {"path": "resnet50.yaml", "text": "#" * (1 << 20)}
    assert client.put("/api/file", json=big).status_code == 413
    assert client.post("/api/render", json=big).status_code == 413
    assert client.post("/api/render", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 400
    # a cross-site form or text/plain post can't be JSON; a bad length is no number
    assert client.post("/api/render", content=b"{}",
                       headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/api/render", content=b"{}", headers={
        "content-type": "application/json", "content-length": "abc"}).status_code == 400
    assert client.post("/api/render", json=[1, 2]).status_code == 400
    assert client.post("/api/render", json={"path": "resnet50.yaml", "text": "x",
                                            "level": "node"}).status_code == 400


def test_saves_are_atomic_and_never_overwrite_silently(client, folder):
    path = folder / "resnet50.yaml"
    path.chmod(0o640)
    doc = client.get("/api/file?path=resnet50.yaml").json()
    edited = doc["text"].replace("depth: 3, width: 256", "depth: 4, width: 256")
    r = client.put("/api/file", json={"path": "resnet50.yaml", "text": edited,
                                      "base_etag": doc["etag"]})
    assert r.status_code == 200 and path.read_text() == edited
    assert r.json()["etag"] == hashlib.sha256(edited.encode()).hexdigest()
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left
    # someone else saves, keeping the old mtime (cp -p, rsync -t): a save based on the
    # old version is still refused, and told the new text
    before = path.stat()
    path.write_text(edited + "# theirs\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    stale = client.put("/api/file", json={"path": "resnet50.yaml", "text": "mine",
                                          "base_etag": r.json()["etag"]})
    assert stale.status_code == 409 and stale.json()["text"].endswith("# theirs\n")
    assert path.read_text().endswith("# theirs\n")
    forced = client.put("/api/file", json={"path": "resnet50.yaml", "text": "mine\n",
                                           "force": True})
    assert forced.status_code == 200 and path.read_text() == "mine\n"
    # a new spec file in an existing folder; none in a missing one, none onto a folder
    new = client.put("/api/file", json={"path": "ablations/mine.yaml", "text": "name: x\n"})
    assert new.status_code == 200 and (folder / "ablations" / "mine.yaml").is_file()
    assert client.put("/api/file", json={"path": "nope/mine.yaml", "text": "x"}
                      ).status_code == 404
    (folder / "dir.yaml").mkdir()
    assert client.put("/api/file", json={"path": "dir.yaml", "text": "x"}).status_code == 403


def test_requests_from_elsewhere_are_refused(client, folder):
    """DNS rebinding (another Host) and cross-site requests (another Origin) can't reach
    the folder; hidden files and folders are never served, and nothing non-UTF-8."""
    assert client.get("/api/files", headers={"host": "evil.example"}).status_code == 403
    assert client.get("/", headers={"host": "evil.example:8000"}).status_code == 403
    assert client.get("/api/files", headers={"host": "localhost:8000"}).status_code == 200
    assert client.post("/api/render", json={"path": "resnet50.yaml", "text": "x"},
                       headers={"origin": "https://evil.example"}).status_code == 403
    (folder / ".github").mkdir()
    for rel in (".github/ci.yaml", ".hidden.yaml", "archdsl-out/x.yaml"):
        r = client.put("/api/file", json={"path": rel, "text": "x", "force": True})
        assert r.status_code == 403, rel
    assert not (folder / ".github" / "ci.yaml").exists()
    (folder / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    assert client.get("/api/file?path=latin1.yaml").status_code == 415
    assert client.get("/").status_code == 200


def test_render_gives_counts_or_the_clis_error(client, folder):
    text = (folder / "resnet50.yaml").read_text()
    r = client.post("/api/render", json={"path": "resnet50.yaml", "text": text}).json()
    assert r["ok"] and r["macs"] == count(load_spec_with_graph(SPECS / "resnet50.yaml")[1]
                                          ).total.macs
    assert "<svg" in r["diagram"] and 'data-name="layer4.2.conv3"' in r["layers"]
    # a misspelled key: the same line as `archdsl validate` prints, at its line and column
    bad = text.replace("depth: 6,", "dpeth: 6,")
    err = client.post("/api/render", json={"path": "resnet50.yaml", "text": bad}).json()
    (folder / "bad.yaml").write_text(bad)
    cli = subprocess.run([sys.executable, "-m", "archdsl", "validate", "bad.yaml"],
                         cwd=folder, capture_output=True, text=True)
    assert cli.returncode == 2
    assert not err["ok"] and err["error"]["message"] == \
        cli.stderr.strip().replace("bad.yaml", "resnet50.yaml")
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if "dpeth" in s)
    assert (err["error"]["line"], err["error"]["col"]) == (line, bad.splitlines()[
        line - 1].index("dpeth") + 1)
    # extends: resolves next to the file, but never out of the folder
    for base, why in (("../outside.yaml", "outside the served folder"),
                      ("../secret.txt", "outside the served folder"),
                      ("notes.txt", "not a spec file")):
        (folder / "notes.txt").write_text("API_KEY: 123\n")
        out = client.post("/api/render", json={"path": "seresnet50.yaml",
                                               "text": f"extends: {base}\nname: x\n"}).json()
        assert not out["ok"] and why in out["error"]["message"]
        assert "API_KEY" not in out["error"]["message"] and out["error"]["line"] == 1
    ok = client.post("/api/render", json={"path": "seresnet50.yaml", "level": "layer",
                                          "text": (folder / "seresnet50.yaml").read_text()})
    assert ok.json()["ok"] and ok.json()["name"] == "seresnet50"


def test_match_against_a_spec_outside_is_refused(client, folder):
    text = (folder / "resnet50.yaml").read_text().replace(
        "{depth: 3, width: 256}", "{depth: {match: ../outside.yaml, by: params}, width: 256}")
    r = client.post("/api/render", json={"path": "resnet50.yaml", "text": text}).json()
    assert not r["ok"] and "outside the served folder" in r["error"]["message"]


@pytest.mark.parametrize("args,message", [
    (["nope/"], "not a spec file or folder"),
    (["README.md"], "not a spec file or folder"),
    (["specs", "--device", "gpu"], "--device: unknown profile 'gpu'"),
    (["specs", "--port", "0"], "--port: 0 is not a TCP port"),
])
def test_cli_refusals(args, message):
    out = subprocess.run([sys.executable, "-m", "archdsl", "serve", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_page_fetches_nothing_from_the_network(client):
    html = client.get("/").text
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for name in ("editor.js", "serve.js"):
        js = client.get(f"/static/{name}")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/app.py").status_code == 404
    assert client.get("/schema.json").json()["title"]


def test_editor_bundle_is_built_from_the_committed_lockfile():
    """web/build.mjs writes the lockfile's hash into the bundle's header: a bundle built
    from other dependencies than the committed ones fails here."""
    lock = hashlib.sha256((ROOT / "web" / "package-lock.json").read_bytes()).hexdigest()
    bundle = ROOT / "archdsl" / "serve" / "static" / "editor.js"
    assert bundle.read_text().splitlines()[0] == \
        f"/* archdsl serve editor; built by web/build.mjs from package-lock.json sha256 {lock} */"
    pkg = json.loads((ROOT / "web" / "package.json").read_text())
    assert {"codemirror", "@codemirror/lang-yaml", "codemirror-json-schema"} <= \
        set(pkg["dependencies"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(folder):
    needs_serve()
    from archdsl.serve.app import create_app
    from archdsl.serve.server import make_server

    port = free_port()
    srv = make_server(create_app(folder / "resnet50.yaml"), "127.0.0.1", port)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_live_page_in_chromium(server, folder, tmp_path):
    sync_playwright = browser()
    spec = folder / "resnet50.yaml"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS[1:], headless=True)
        page = b.new_page(viewport={"width": 1600, "height": 1000})
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def rendered(after: int) -> int:
            page.wait_for_function(f"Number(document.body.dataset.rendered || 0) > {after}",
                                   timeout=20_000)
            return int(page.evaluate("document.body.dataset.rendered"))

        def macs() -> int:
            return int(page.locator("#total-macs").text_content().replace(",", ""))

        def edit(old: str, new: str) -> None:
            page.evaluate("""([old, neu]) => {
                const view = archdslServe.editor.view, text = view.state.doc.toString();
                const at = text.indexOf(old);
                if (at < 0) throw new Error("not in the editor: " + old);
                view.dispatch({changes: {from: at, to: at + old.length, insert: neu}});
            }""", [old, new])

        page.goto(server + "/")
        seq = rendered(0)
        assert macs() == 4_089_184_256
        assert page.locator(".cm-content").count() == 1
        assert page.locator(".level.shown svg").count() == 1
        # completion and hover from the JSON Schema
        page.evaluate("""() => {
            const view = archdslServe.editor.view, text = view.state.doc.toString();
            view.dispatch({selection: {anchor: text.indexOf("stem:")}});
            view.focus();
        }""")
        page.keyboard.type("lay")
        page.wait_for_selector(".cm-tooltip-autocomplete li", timeout=5_000)
        assert page.locator(".cm-tooltip-autocomplete li").first.text_content().startswith(
            "layout")
        page.keyboard.press("Escape")
        edit("laystem:", "stem:")
        box = page.locator(".cm-line", has_text="stem:").first.bounding_box()
        page.mouse.move(box["x"] + 12, box["y"] + box["height"] / 2)
        page.wait_for_selector(".cm-tooltip-hover", timeout=5_000)
        schema = json.loads((ROOT / "schema" / "archdsl.schema.json").read_text())
        docs = {schema["properties"]["stem"]["description"],
                schema["$defs"]["ClassicStem"]["description"]}
        hover = page.locator(".cm-tooltip-hover").text_content()
        assert any(d.splitlines()[0] in hover for d in docs), hover
        page.wait_for_function("archdslServe.state.seq === archdslServe.state.shown && "
                               "!document.getElementById('problem').classList.contains('shown')")
        seq = int(page.evaluate("document.body.dataset.rendered"))
        # stage 1 depth 3 -> 4: totals and diagram follow
        edit("depth: 3, width: 256", "depth: 4, width: 256")
        seq = rendered(seq)
        assert macs() == 4_089_184_256 + 218_365_952  # one more layer1 bottleneck
        assert page.locator(".level.shown g.node title", has_text="layer1.3/branch").count() == 1
        # a misspelled key, typed: the error at its line, the last good render stays
        page.evaluate("""() => {
            const view = archdslServe.editor.view;
            const at = view.state.doc.toString().indexOf("depth: 6");
            view.dispatch({selection: {anchor: at}});
            view.focus();
        }""")
        page.keyboard.type("x")
        seq = rendered(seq)
        problem = page.locator("#problem")
        assert problem.is_visible() and "unknown key" in problem.text_content()
        line = spec.read_text().splitlines().index(next(
            s for s in spec.read_text().splitlines() if "depth: 6" in s)) + 1
        assert f"resnet50.yaml:{line}:" in problem.text_content()
        assert macs() == 4_089_184_256 + 218_365_952
        assert page.locator(".cm-lint-marker-error").count() >= 1
        # fixed: recovered
        page.keyboard.press("Backspace")
        seq = rendered(seq)
        assert not problem.is_visible()
        # another device: the plan changes
        before = page.locator("#fusion").text_content()
        page.select_option("#device", "tensorrt")
        seq = rendered(seq)
        assert "tensorrt" in page.locator("#fusion").text_content()
        assert page.locator("#fusion").text_content() != before
        # layer level; a click on a diagram node lights its row
        page.check("input[name=level][value=layer]")
        seq = rendered(seq)
        page.locator(".level.shown g.node", has=page.locator(
            "title", has_text=re.compile(r"^layer2\.0\.conv2$"))).click()
        assert page.locator("tr.hl").evaluate_all("rs => rs.map(r => r.dataset.name)") == [
            "layer2.0.conv2"]
        # saved from the page: on disk, atomically
        page.click("#save")
        page.wait_for_function("document.getElementById('save').disabled")
        assert "depth: 4, width: 256" in spec.read_text()
        # edited on disk by another editor: the page follows within a second or two
        spec.write_text(spec.read_text().replace("depth: 4, width: 256", "depth: 2, width: 256"))
        page.wait_for_function("archdslServe.editor.getDoc().includes('depth: 2, width: 256')",
                               timeout=5_000)
        seq = rendered(seq)
        assert macs() == 4_089_184_256 - 218_365_952
        # unsaved edits and a change on disk: the page asks, and nothing is overwritten
        edit("depth: 2, width: 256", "depth: 5, width: 256")
        spec.write_text(spec.read_text() + "# theirs\n")
        page.wait_for_selector("#conflict.shown", timeout=5_000)
        assert "depth: 5" in page.evaluate("archdslServe.editor.getDoc()")
        assert spec.read_text().endswith("# theirs\n")
        page.click("#take-disk")
        assert page.evaluate("archdslServe.editor.getDoc()").endswith("# theirs\n")
        page.screenshot(path=str(tmp_path / "serve.png"))
        b.close()
    assert not errors
    assert urls and all(u.startswith(server + "/") for u in urls), \
        [u for u in urls if not u.startswith(server)]
