"""`archdsl serve`: the live page over one folder of spec files (Starlette).

Every path a request names is relative to the served folder and must be one the loader's
``unservable`` policy allows (inside it, symlinks resolved; no hidden or build folder;
``.yaml``/``.yml`` only). Request bodies are JSON, at most 1 MiB, Unicode text (no lone
surrogate) and no deeper than the JSON reader goes. Saves are atomic (a temporary file in
the same folder, then a rename) and refuse to overwrite a file that changed on disk since
the page loaded it, unless told to. Changes on disk reach the page by Server-Sent Events
(``watchfiles``)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..bundle import atomic_file
from ..emit.dot import LEVELS
from ..emit.jinja import environment
from ..emit.render import RenderError
from ..fusion.profiles import builtin_names
from ..jsonschema import dumps, file_schema
from ..spec.loader import unservable
from .render import render_spec

MAX_BODY = 1 << 20
MAX_FILES = 2000


class Folder:
    """The served folder: the only place the app reads or writes."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def spec(self, rel: Any, *, exists: bool = True) -> Path:
        """The spec file ``rel`` names, its symlinks resolved, or an HTTP error: 400 for a
        malformed path, 403 for one outside the folder (``..``, absolute) or that
        ``unservable`` refuses, or a folder, 404 for one that isn't there (or, with
        ``exists=False``, whose folder isn't)."""
        if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
            raise HTTPException(400, "a path is a non-empty relative path with / separators")
        parts = PurePosixPath(rel)
        if parts.is_absolute() or ".." in parts.parts or (len(rel) > 1 and rel[1] == ":"):
            raise HTTPException(403, f"{rel}: outside the served folder")
        refusal = unservable(self.root / parts, self.root)
        if refusal:
            raise HTTPException(403, f"{rel}: {refusal}")
        full = (self.root / parts).resolve()
        if full.is_dir():
            raise HTTPException(403, f"{rel}: a folder, not a spec file")
        if exists and not full.is_file():
            raise HTTPException(404, f"{rel}: no such spec file")
        if not full.parent.is_dir():
            raise HTTPException(404, f"{rel}: no such folder")
        return full

    def allows(self, path: Path, folder: bool = False) -> bool:
        return unservable(path, self.root, folder=folder) is None

    def is_link(self, rel: str) -> bool:
        return (self.root / rel).is_symlink()

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def specs(self) -> list[str]:
        """Every spec file inside the folder that ``unservable`` allows."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if self.allows(Path(dirpath) / d, True))
            for f in sorted(filenames):
                p = Path(dirpath) / f
                if self.allows(p) and p.resolve().is_file():
                    out.append(self.rel(p))
                    if len(out) >= MAX_FILES:
                        return out
        return out


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read up to MAX_BODY bytes (413 beyond). Only JSON is
    taken (a cross-site form or text/plain post cannot be), and only from this page's
    own origin when the browser names one."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send JSON (Content-Type: application/json)")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
        raise HTTPException(403, f"requests from {origin} are refused")
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise HTTPException(400, "Content-Length is not a number")
    if declared is not None and int(declared) > MAX_BODY:
        raise HTTPException(413, f"request bodies are limited to {MAX_BODY} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise HTTPException(413, f"request bodies are limited to {MAX_BODY} bytes")
    try:
        doc = json.loads(data)
        # "\ud800" reads as a lone surrogate: no text a file or a reply can hold
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise HTTPException(400, "the body nests deeper than the JSON reader goes") from None
    except UnicodeEncodeError as exc:
        raise HTTPException(400, f"the body holds {exc.object[exc.start:exc.end]!a}, a "
                                 "lone surrogate, which is not Unicode text") from None
    except ValueError:  # UnicodeDecodeError too
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise HTTPException(400, "the body is a JSON object")
    return doc


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path``'s contents in one rename (``atomic_file``), synced to disk first
    and keeping the file's permissions."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)


_LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}


class _HostCheck:
    """Refuse a request whose Host header names another machine than the one bound: a
    page of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding)
    can't reach the folder. With no ``allowed`` set (all interfaces bound), no check."""

    def __init__(self, app: Any, allowed: set[str] | None) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.allowed is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host[:host.index("]") + 1] if host.startswith("[") and "]" in host \
                else host.rsplit(":", 1)[0]
            if name not in self.allowed:
                response = JSONResponse({"error": f"host {host!r} is not served here"},
                                        status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(target: Path, device: str = "eager", host: str = "127.0.0.1") -> Starlette:
    """The app serving ``target`` (a spec file, shown first, in its folder; or a folder)
    to browsers that reach it as ``host`` (or a loopback name).
    Set ``app.state.stopping`` to a callable that turns true when the server shuts down,
    and the event streams end by themselves within a second."""
    target = Path(os.path.abspath(target))  # a symlinked spec: serve the link's folder
    folder = Folder(target if target.is_dir() else target.parent)
    first = None if target.is_dir() else target.name
    devices = builtin_names()
    save_lock = threading.Lock()  # a save's check and its write, together
    env = environment(html=True)

    def warm_up() -> None:
        """Load (or compile, the first time on a machine) the Graphviz module before the
        page asks for its first render; one that can't start is one line in the log (and
        each render says so too)."""
        from ..emit.render import render as render_dot

        try:
            render_dot("digraph { a -> b }", "svg")
        except RenderError as exc:
            print(f"archdsl serve: diagrams cannot be drawn: {exc}", file=sys.stderr,
                  flush=True)

    threading.Thread(target=warm_up, daemon=True, name="archdsl-warm-up").start()

    def file_doc(rel: str, path: Path) -> dict[str, Any]:
        """A spec's text, its mtime (a string: nanoseconds exceed a JavaScript number)
        and its etag (the SHA-256 of its bytes, which a save must name)."""
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime_ns
        except OSError as exc:
            raise HTTPException(404, f"{rel}: cannot read ({exc.strerror})") from None
        if len(data) > MAX_BODY:
            raise HTTPException(413, f"{rel}: spec files are limited to {MAX_BODY} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(415, f"{rel}: not UTF-8 text") from None
        return {"path": rel, "text": text, "mtime_ns": str(mtime), "etag": _etag(data)}

    async def page(request: Request) -> HTMLResponse:
        files = folder.specs()
        opened = None
        for rel in ([first] if first else []) + files[:1]:
            try:
                opened = file_doc(rel, folder.spec(rel))
                break
            except HTTPException:
                continue
        boot = {"files": files, "file": opened, "devices": devices, "device": device,
                "levels": list(LEVELS), "level": "block"}
        # inside <script>: no character that could end it or open a comment
        text = json.dumps(boot).replace("<", "\\u003c").replace(">", "\\u003e") \
            .replace("&", "\\u0026")
        html = env.get_template("serve.html.j2").render(boot=text)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("editor.js", "serve.js"):
            raise HTTPException(404, "no such file")
        body = (resources.files("archdsl.serve") / "static" / name).read_bytes()
        return Response(body, media_type="text/javascript")

    async def schema(request: Request) -> Response:
        return Response(dumps(file_schema()), media_type="application/json")

    async def files(request: Request) -> JSONResponse:
        return JSONResponse({"files": folder.specs()})

    async def read(request: Request) -> JSONResponse:
        rel = request.query_params.get("path")
        return JSONResponse(file_doc(rel, folder.spec(rel)))

    async def save(request: Request) -> JSONResponse:
        doc = await _body(request)
        rel = doc.get("path")
        path = folder.spec(rel, exists=False)
        text = doc.get("text")
        if not isinstance(text, str):
            raise HTTPException(400, "text: the spec's contents, a string")
        if folder.is_link(rel):
            raise HTTPException(403, f"{rel}: a symlink; save the file it names")

        def work() -> JSONResponse:
            with save_lock:
                if path.exists() and not doc.get("force"):
                    disk = file_doc(rel, path)
                    if disk["etag"] != doc.get("base_etag"):
                        return JSONResponse({"conflict": True, **disk}, status_code=409)
                _write_atomically(path, text)
                return JSONResponse(file_doc(rel, path) | {"text": None})

        try:
            return await run_in_threadpool(work)
        except OSError as exc:
            raise HTTPException(409, f"{rel}: cannot write ({exc.strerror})") from None

    async def render(request: Request) -> JSONResponse:
        doc = await _body(request)
        path = folder.spec(doc.get("path"))
        text, dev, level = doc.get("text"), doc.get("device", device), doc.get("level", "block")
        if not isinstance(text, str) or dev not in devices or level not in LEVELS:
            raise HTTPException(400, f"render takes text, device ({', '.join(devices)}) and "
                                     f"level ({', '.join(LEVELS)})")

        def work() -> dict[str, Any]:  # only the drawing itself waits for another render
            return render_spec(path, text, root=folder.root, shown=doc["path"], device=dev,
                               level=level)

        return JSONResponse({"seq": doc.get("seq"), **await run_in_threadpool(work)})

    async def events(request: Request) -> StreamingResponse:
        from watchfiles import awatch

        stopping = getattr(request.app.state, "stopping", lambda: False)

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            idle = 0
            async for changes in awatch(folder.root, debounce=50, step=25,
                                        yield_on_timeout=True, rust_timeout=1000):
                if stopping():  # the server is shutting down: end the stream cleanly
                    return
                if not changes:
                    idle += 1
                    if idle % 15 == 0:
                        yield ": keep-alive\n\n"  # finds a closed connection
                    continue
                for rel in sorted({folder.rel(Path(p)) for _, p in changes
                                   if folder.allows(Path(p))}):
                    try:
                        mtime: str | None = str((folder.root / rel).stat().st_mtime_ns)
                    except OSError:  # removed (or renamed away) since
                        mtime = None
                    yield f"data: {json.dumps({'path': rel, 'mtime_ns': mtime})}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    app = Starlette(routes=[
        Route("/", page), Route("/static/{name}", static), Route("/schema.json", schema),
        Route("/api/files", files), Route("/api/file", read, methods=["GET"]),
        Route("/api/file", save, methods=["PUT"]), Route("/api/render", render, methods=["POST"]),
        Route("/events", events),
    ], exception_handlers={HTTPException: refused})
    bound = f"[{host}]" if ":" in host else host
    allowed = None if host in ("0.0.0.0", "::", "") else _LOOPBACK | {bound.lower()}
    app.add_middleware(_HostCheck, allowed=allowed)
    return app
