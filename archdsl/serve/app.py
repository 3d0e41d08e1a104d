"""`archdsl serve`: the live page over one folder of spec files (Starlette).

Every path a request names is relative to the served folder and must stay inside it,
symlinks resolved; only ``.yaml``/``.yml`` files are read or written; request bodies are
capped at 1 MiB; saves are atomic (a temporary file in the same folder, then a rename)
and refuse to overwrite a file that changed on disk since the page loaded it, unless
told to. Changes on disk reach the page by Server-Sent Events (``watchfiles``)."""

from __future__ import annotations

import json
import os
import stat
import tempfile
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

from ..emit.dot import LEVELS
from ..emit.jinja import environment
from ..fusion.profiles import builtin_names
from ..jsonschema import dumps, file_schema
from .render import render_spec

MAX_BODY = 1 << 20
SUFFIXES = (".yaml", ".yml")
MAX_FILES = 2000
_SKIP_DIRS = {"node_modules", "__pycache__", "archdsl-out"}


class Folder:
    """The served folder: the only place the app reads or writes."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def spec(self, rel: Any, *, exists: bool = True) -> Path:
        """The spec file ``rel`` names, or an HTTP error: 400 for a malformed path, 403
        for one outside the folder (``..``, absolute, a symlink out) or not a spec file,
        404 for one that isn't there."""
        if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
            raise HTTPException(400, "a path is a non-empty relative path with / separators")
        parts = PurePosixPath(rel)
        if parts.is_absolute() or ".." in parts.parts or (len(rel) > 1 and rel[1] == ":"):
            raise HTTPException(403, f"{rel}: outside the served folder")
        full = self.root / parts
        if not full.resolve().is_relative_to(self.root):
            raise HTTPException(403, f"{rel}: a symlink out of the served folder")
        if full.suffix not in SUFFIXES:
            raise HTTPException(403, f"{rel}: only spec files (.yaml, .yml) are served")
        if exists and not full.is_file():
            raise HTTPException(404, f"{rel}: no such spec file")
        return full

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def specs(self) -> list[str]:
        """Every spec file inside the folder (hidden and build folders skipped)."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames
                                 if not d.startswith(".") and d not in _SKIP_DIRS)
            for f in sorted(filenames):
                p = Path(dirpath) / f
                if p.suffix in SUFFIXES and not f.startswith(".") and \
                        p.resolve().is_relative_to(self.root):
                    out.append(self.rel(p))
                    if len(out) >= MAX_FILES:
                        return out
        return out


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read up to MAX_BODY bytes (413 beyond)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise HTTPException(413, f"request bodies are limited to {MAX_BODY} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise HTTPException(413, f"request bodies are limited to {MAX_BODY} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise HTTPException(400, "the body is a JSON object")
    return doc


def _write_atomically(path: Path, text: str) -> int:
    """Replace ``path``'s contents in one rename, keeping its mode; its new mtime_ns."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_mtime_ns


def create_app(target: Path, device: str = "eager") -> Starlette:
    """The app serving ``target`` (a spec file, shown first, in its folder; or a folder).
    Set ``app.state.stopping`` to a callable that turns true when the server shuts down,
    and the event streams end by themselves within a second."""
    target = target.resolve()
    folder = Folder(target if target.is_dir() else target.parent)
    first = None if target.is_dir() else folder.rel(target)
    devices = builtin_names()
    render_lock = threading.Lock()  # one render at a time: the Graphviz module is shared
    env = environment(html=True)

    def warm_up() -> None:
        """Load (or compile, the first time on a machine) the Graphviz module before the
        page asks for its first render, under the render lock: never twice at once."""
        from ..emit.render import render as render_dot

        with render_lock:
            render_dot("digraph { a -> b }", "svg")

    threading.Thread(target=warm_up, daemon=True, name="archdsl-warm-up").start()

    def file_doc(path: Path) -> dict[str, Any]:
        # mtimes travel as strings: nanoseconds since 1970 exceed a JavaScript number
        return {"path": folder.rel(path), "text": path.read_text(encoding="utf-8"),
                "mtime_ns": str(path.stat().st_mtime_ns)}

    async def page(request: Request) -> HTMLResponse:
        files = folder.specs()
        start = first or (files[0] if files else None)
        boot = {"files": files, "file": file_doc(folder.spec(start)) if start else None,
                "devices": devices, "device": device, "levels": list(LEVELS),
                "level": "block"}
        html = env.get_template("serve.html.j2").render(
            boot=json.dumps(boot).replace("</", "<\\/"), root=str(folder.root))
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
        return JSONResponse(file_doc(folder.spec(request.query_params.get("path"))))

    async def save(request: Request) -> JSONResponse:
        doc = await _body(request)
        path = folder.spec(doc.get("path"), exists=False)
        text = doc.get("text")
        if not isinstance(text, str):
            raise HTTPException(400, "text: the spec's contents, a string")
        if path.is_symlink():
            raise HTTPException(403, f"{folder.rel(path)}: a symlink; save the file it names")
        if path.exists() and not doc.get("force") and \
                str(path.stat().st_mtime_ns) != doc.get("base_mtime_ns"):
            return JSONResponse({"conflict": True, **file_doc(path)}, status_code=409)
        mtime = await run_in_threadpool(_write_atomically, path, text)
        return JSONResponse({"path": folder.rel(path), "mtime_ns": str(mtime)})

    async def render(request: Request) -> JSONResponse:
        doc = await _body(request)
        path = folder.spec(doc.get("path"))
        text, dev, level = doc.get("text"), doc.get("device", device), doc.get("level", "block")
        if not isinstance(text, str) or dev not in devices or level not in LEVELS:
            raise HTTPException(400, f"render takes text, device ({', '.join(devices)}) and "
                                     f"level ({', '.join(LEVELS)})")

        def work() -> dict[str, Any]:
            with render_lock:
                return render_spec(path, text, root=folder.root, shown=folder.rel(path),
                                   device=dev, level=level)

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
                                   if Path(p).suffix in SUFFIXES
                                   and not Path(p).name.startswith(".")
                                   and Path(p).resolve().is_relative_to(folder.root)}):
                    p = folder.root / rel
                    mtime = str(p.stat().st_mtime_ns) if p.exists() else None
                    yield f"data: {json.dumps({'path': rel, 'mtime_ns': mtime})}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    return Starlette(routes=[
        Route("/", page), Route("/static/{name}", static), Route("/schema.json", schema),
        Route("/api/files", files), Route("/api/file", read, methods=["GET"]),
        Route("/api/file", save, methods=["PUT"]), Route("/api/render", render, methods=["POST"]),
        Route("/events", events),
    ], exception_handlers={HTTPException: refused})
