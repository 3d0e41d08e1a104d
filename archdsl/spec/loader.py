"""Spec files: read (at most 1 MiB of UTF-8), parsed with every value's position
(archdsl.spec.yamlread), ``extends:`` resolved, and, for a server, confined to its folder
(archdsl.spec.paths)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import Location, SpecError
from .paths import unservable
from .yamlread import Path_, Positions, parse_yaml

__all__ = ["MAX_FILE_BYTES", "Path_", "Positions", "load_document", "parse_yaml", "read_text"]

MAX_FILE_BYTES = 1 << 20  # DESIGN "Outputs": spec files over 1 MiB are refused before parsing


def read_text(path: Path, shown: str) -> str:
    """A spec-sized UTF-8 file's text (a spec's, a device profile's); a file over
    ``MAX_FILE_BYTES``, missing, unreadable or not UTF-8 is a SpecError naming ``shown``."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SpecError("not a regular file", file=shown)
        if size > MAX_FILE_BYTES:
            raise SpecError(f"file is {size} bytes; spec files are limited to "
                            f"{MAX_FILE_BYTES} bytes (1 MiB)", file=shown)
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except FileNotFoundError:
        raise SpecError("no such file", file=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", file=shown) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"byte 0x{data[exc.start]:02x} is not UTF-8; spec files are UTF-8 "
                        "text", location=Location(shown, line, col)) from None


def _merge(base: dict[str, Any], over: dict[str, Any], pos: Positions,
           over_pos: Positions, path: Path_ = ()) -> dict[str, Any]:
    """Overlay ``over`` on ``base``: mappings merge recursively, anything else replaces.
    A mapping that names another ``kind`` (a stem of another kind, say) replaces too:
    the base's fields belong to the base's kind."""
    out = dict(base)
    for key, value in over.items():
        sub = path + (key,)
        old = out.get(key)
        if (isinstance(value, dict) and isinstance(old, dict)
                and value.get("kind", old.get("kind")) == old.get("kind")):
            pos.keys[sub] = over_pos.keys[sub]
            out[key] = _merge(out[key], value, pos, over_pos, sub)
        else:
            pos.drop(sub)
            for table, src in ((pos.values, over_pos.values), (pos.keys, over_pos.keys)):
                table.update({p: loc for p, loc in src.items() if p[: len(sub)] == sub})
            out[key] = value
    return out


def load_document(path: str | os.PathLike[str], *, shown: str | None = None,
                  text: str | None = None, root: Path | None = None,
                  _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Positions]:
    """Load a spec file with ``extends:`` resolved, as plain data plus positions.

    ``text`` stands in for the file's contents (an editor's unsaved buffer; ``extends:``
    still resolves against the files next to ``path``). With ``root``, every file read
    (this one and whatever it extends) must be one a server of that folder may read
    (``unservable``)."""
    file = Path(path)
    shown = shown if shown is not None else str(path)
    refusal = None if root is None else unservable(file, root)
    if refusal:
        raise SpecError(f"{refusal}; only spec files of the served folder are read",
                        file=shown)
    data, pos = parse_yaml(read_text(file, shown) if text is None else text, shown)
    if "extends" not in data:
        return data, pos
    target = data.pop("extends")
    where = pos.value(("extends",))
    if not isinstance(target, str) or not target:
        raise SpecError("expected a path to another spec, relative to this file",
                        location=where, field="extends")
    if "name" not in data:
        raise SpecError("a spec that extends another must set its own name",
                        location=Location(shown, 1, 1), field="name")
    base_file = (file.parent / target)
    resolved = base_file.resolve()
    refusal = None if root is None else unservable(base_file, root)
    if refusal:
        raise SpecError(f"cannot extend '{target}': {refusal}", location=where,
                        field="extends")
    chain = _chain + (file.resolve(),)
    if resolved in chain:
        loop = " -> ".join(p.name for p in chain + (resolved,))
        raise SpecError(f"extends cycle: {loop}", location=where, field="extends")
    if not base_file.is_file():
        raise SpecError(f"cannot extend '{target}': no such file (paths are relative to "
                        "this file)", location=where, field="extends")
    base_shown = os.path.normpath(os.path.join(os.path.dirname(shown), target))
    base, base_pos = load_document(base_file, shown=base_shown, root=root, _chain=chain)
    pos.drop(("extends",))
    merged = _merge(base, data, base_pos, pos)
    return merged, base_pos
