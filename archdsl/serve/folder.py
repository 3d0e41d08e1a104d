"""The served folder (every path a request names, through the one path policy,
archdsl.spec.paths.unservable) and what a request's body and a spec file may be."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..bundle import atomic_file
from ..spec.paths import unservable

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

    def read(self, rel: str, path: Path) -> dict[str, Any]:
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


async def json_body(request: Request) -> dict[str, Any]:
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


def write_atomically(path: Path, text: str) -> None:
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
