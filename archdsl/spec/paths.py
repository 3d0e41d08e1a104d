"""Which files a server confined to one folder may read: the one path policy of `archdsl
serve` (its requests, its file list, its change events) and of the loader (the files a
served spec extends or matches)."""

from __future__ import annotations

import os
from pathlib import Path

SPEC_SUFFIXES = (".yaml", ".yml")
BUILD_FOLDERS = frozenset({"node_modules", "__pycache__", "archdsl-out"})


def unservable(path: Path, root: Path, *, folder: bool = False) -> str | None:
    """Why a server confined to ``root`` (a resolved path) may not read ``path``, a spec
    file (with ``folder``: a folder to look for them in), or None when it may. The path as
    named and its real location (symlinks resolved) must both lie inside ``root``, no part
    of either hidden (``.github``, ``.x.yaml``) or a build folder (BUILD_FOLDERS), and a
    file must be named .yaml or .yml. The one policy of `archdsl serve`: its requests, its
    file list and its change events, and the files a served spec extends or matches."""
    real = path.resolve()
    if not real.is_relative_to(root):
        return "outside the served folder (symlinks resolved)"
    named = Path(os.path.normpath(os.path.abspath(path)))
    parts = real.relative_to(root).parts + (
        named.relative_to(root).parts if named.is_relative_to(root) else ())
    if any(part.startswith(".") or part in BUILD_FOLDERS for part in parts):
        return f"hidden or in a build folder ({', '.join(sorted(BUILD_FOLDERS))})"
    if not folder and (real.suffix not in SPEC_SUFFIXES or named.suffix not in SPEC_SUFFIXES):
        return "not a spec file (.yaml, .yml)"
    return None
