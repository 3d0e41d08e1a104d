"""`archdsl serve`: the live page over one folder of spec files (Starlette).

Every path a request names is relative to the served folder and must be one the path
policy (``archdsl.spec.paths.unservable``) allows (inside it, symlinks resolved; no
hidden or build folder; ``.yaml``/``.yml`` only). Request bodies are JSON, at most 1 MiB,
Unicode text (no lone surrogate) and no deeper than the JSON reader goes. Saves are
atomic (a temporary file in the same folder, then a rename) and refuse to overwrite a
file that changed on disk since the page loaded it, unless told to. Changes on disk reach
the page by Server-Sent Events (``watchfiles``)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from ..emit.render import RenderError
from ..fusion.profiles import plan_choices
from .folder import Folder
from .routes import Routes, refused

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


def _warm_up() -> None:
    """Load (or compile, the first time on a machine) the Graphviz module before the
    page asks for its first render; one that can't start is one line in the log (and
    each render says so too)."""
    from ..emit.render import render as render_dot

    try:
        render_dot("digraph { a -> b }", "svg")
    except RenderError as exc:
        print(f"archdsl serve: diagrams cannot be drawn: {exc}", file=sys.stderr,
              flush=True)


def create_app(target: Path, device: str = "eager", host: str = "127.0.0.1") -> Starlette:
    """The app serving ``target`` (a spec file, shown first, in its folder; or a folder)
    to browsers that reach it as ``host`` (or a loopback name).
    Set ``app.state.stopping`` to a callable that turns true when the server shuts down,
    and the event streams end by themselves within a second."""
    target = Path(os.path.abspath(target))  # a symlinked spec: serve the link's folder
    folder = Folder(target if target.is_dir() else target.parent)
    routes = Routes(folder, None if target.is_dir() else target.name, device, plan_choices())
    threading.Thread(target=_warm_up, daemon=True, name="archdsl-warm-up").start()
    app = Starlette(routes=routes.table(), exception_handlers={HTTPException: refused})
    bound = f"[{host}]" if ":" in host else host
    allowed = None if host in ("0.0.0.0", "::", "") else _LOOPBACK | {bound.lower()}
    app.add_middleware(_HostCheck, allowed=allowed)
    return app
