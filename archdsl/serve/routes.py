"""The live page's routes: each handler over the served folder (archdsl.serve.folder),
the device and level choices, and the lock that makes a save's check and write one."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..emit.dot import LEVELS
from ..emit.jinja import environment
from ..jsonschema import dumps, file_schema
from .folder import Folder, json_body, write_atomically
from .render import render_spec


class Routes:
    """The handlers of one served folder; ``first``: the spec shown first, if any."""

    def __init__(self, folder: Folder, first: str | None, device: str,
                 devices: list[str]) -> None:
        self.folder, self.first, self.device, self.devices = folder, first, device, devices
        self.save_lock = threading.Lock()  # a save's check and its write, together
        self.env = environment(html=True)

    def table(self) -> list[Route]:
        return [
            Route("/", self.page), Route("/static/{name}", self.static),
            Route("/schema.json", self.schema), Route("/api/files", self.files),
            Route("/api/file", self.read, methods=["GET"]),
            Route("/api/file", self.save, methods=["PUT"]),
            Route("/api/render", self.render, methods=["POST"]), Route("/events", self.events)]

    async def page(self, request: Request) -> HTMLResponse:
        files = self.folder.specs()
        opened = None
        for rel in ([self.first] if self.first else []) + files[:1]:
            try:
                opened = self.folder.read(rel, self.folder.spec(rel))
                break
            except HTTPException:
                continue
        boot = {"files": files, "file": opened, "devices": self.devices, "device": self.device,
                "levels": list(LEVELS), "level": "block"}
        # inside <script>: no character that could end it or open a comment
        text = json.dumps(boot).replace("<", "\\u003c").replace(">", "\\u003e") \
            .replace("&", "\\u0026")
        html = self.env.get_template("serve.html.j2").render(boot=text)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("editor.js", "serve.js"):
            raise HTTPException(404, "no such file")
        body = (resources.files("archdsl.serve") / "static" / name).read_bytes()
        return Response(body, media_type="text/javascript")

    async def schema(self, request: Request) -> Response:
        return Response(dumps(file_schema()), media_type="application/json")

    async def files(self, request: Request) -> JSONResponse:
        return JSONResponse({"files": self.folder.specs()})

    async def read(self, request: Request) -> JSONResponse:
        rel = request.query_params.get("path")
        return JSONResponse(self.folder.read(rel, self.folder.spec(rel)))

    async def save(self, request: Request) -> JSONResponse:
        doc = await json_body(request)
        rel = doc.get("path")
        path = self.folder.spec(rel, exists=False)
        text = doc.get("text")
        if not isinstance(text, str):
            raise HTTPException(400, "text: the spec's contents, a string")
        if self.folder.is_link(rel):
            raise HTTPException(403, f"{rel}: a symlink; save the file it names")

        def work() -> JSONResponse:
            with self.save_lock:
                if path.exists() and not doc.get("force"):
                    disk = self.folder.read(rel, path)
                    if disk["etag"] != doc.get("base_etag"):
                        return JSONResponse({"conflict": True, **disk}, status_code=409)
                write_atomically(path, text)
                return JSONResponse(self.folder.read(rel, path) | {"text": None})

        try:
            return await run_in_threadpool(work)
        except OSError as exc:
            raise HTTPException(409, f"{rel}: cannot write ({exc.strerror})") from None

    async def render(self, request: Request) -> JSONResponse:
        doc = await json_body(request)
        path = self.folder.spec(doc.get("path"))
        text, dev = doc.get("text"), doc.get("device", self.device)
        level = doc.get("level", "block")
        if not isinstance(text, str) or dev not in self.devices or level not in LEVELS:
            raise HTTPException(400, f"render takes text, device ({', '.join(self.devices)}) "
                                     f"and level ({', '.join(LEVELS)})")

        def work() -> dict[str, Any]:  # only the drawing itself waits for another render
            return render_spec(path, text, root=self.folder.root, shown=doc["path"], device=dev,
                               level=level)

        return JSONResponse({"seq": doc.get("seq"), **await run_in_threadpool(work)})

    async def events(self, request: Request) -> StreamingResponse:
        from watchfiles import awatch

        stopping = getattr(request.app.state, "stopping", lambda: False)

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            idle = 0
            async for changes in awatch(self.folder.root, debounce=50, step=25,
                                        yield_on_timeout=True, rust_timeout=1000):
                if stopping():  # the server is shutting down: end the stream cleanly
                    return
                if not changes:
                    idle += 1
                    if idle % 15 == 0:
                        yield ": keep-alive\n\n"  # finds a closed connection
                    continue
                for rel in sorted({self.folder.rel(Path(p)) for _, p in changes
                                   if self.folder.allows(Path(p))}):
                    try:
                        mtime: str | None = str((self.folder.root / rel).stat().st_mtime_ns)
                    except OSError:  # removed (or renamed away) since
                        mtime = None
                    yield f"data: {json.dumps({'path': rel, 'mtime_ns': mtime})}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})



async def refused(request: Request, exc: Exception) -> JSONResponse:
    """Every HTTP error as JSON: ``{"error": why}`` with its status."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
