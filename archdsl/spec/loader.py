"""YAML loading that keeps every node's position, rejects duplicate keys,
bounds its work, and resolves ``extends:``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, SpecError, format_path

MAX_FILE_BYTES = 1 << 20  # DESIGN "Outputs": spec files over 1 MiB are refused before parsing
MAX_NODES = 10_000  # values after alias expansion; an alias bomb stops here, cheaply
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null")
}
_PLAIN_TAGS_STR = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass
class Positions:
    """Where each value (and each mapping key) of a loaded document came from.

    ``shown`` renames a path for messages, e.g. a stage field inherited from
    ``defaults`` is reported as ``stages[1].cardinality (from defaults)``.
    """

    values: dict[Path_, Location] = field(default_factory=dict)
    keys: dict[Path_, Location] = field(default_factory=dict)
    shown: dict[Path_, str] = field(default_factory=dict)

    def value(self, path: Path_) -> Location | None:
        """Position of the value at ``path``, or of its nearest recorded ancestor."""
        for n in range(len(path), -1, -1):
            loc = self.values.get(path[:n])
            if loc is not None:
                return loc
        return None

    def key(self, path: Path_) -> Location | None:
        """Position of the key that introduces ``path`` (falls back to its value)."""
        return self.keys.get(path) or self.value(path)

    def label(self, path: Path_) -> str:
        return self.shown.get(path, format_path(path))

    def drop(self, prefix: Path_) -> None:
        """Forget ``prefix`` and everything below it."""
        n = len(prefix)
        for table in (self.values, self.keys, self.shown):
            for p in [p for p in table if p[:n] == prefix]:
                del table[p]

    def copy_subtree(self, src: Path_, dst: Path_, label: str | None = None) -> None:
        """Record ``src``'s positions again under ``dst`` (for inherited values)."""
        n = len(src)
        for table in (self.values, self.keys):
            for p, loc in list(table.items()):
                if p[:n] == src:
                    table[dst + p[n:]] = loc
        if label is not None:
            self.shown[dst] = label


def _mark(file: str, mark: yaml.Mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


class _Walker:
    """Turns a composed YAML node tree into plain data, recording positions."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.count = 0
        self.pos = Positions()

    def walk(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.count += 1
        here = _mark(self.file, node.start_mark)
        if self.count > MAX_NODES:
            raise SpecError(
                f"the document expands to more than {MAX_NODES} values (anchors and "
                "aliases included); a spec is a few hundred at most",
                location=here, field=format_path(path))
        if depth > MAX_DEPTH:
            raise SpecError(f"nested deeper than {MAX_DEPTH} levels", location=here,
                            field=format_path(path[:3]) + "...")
        self.pos.values[path] = here
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP_TAG, path)
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ_TAG, path)
            return [self.walk(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        self._check_tag(node, None, path)
        return self.loader.construct_object(node)

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            where = _mark(self.file, key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported; use extends: "
                                "to build on another spec", location=where,
                                field=format_path(path))
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _PLAIN_TAGS_STR:
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                raise SpecError(f"key {shown!r} is not a string; mapping keys must be plain "
                                "strings", location=where, field=format_path(path))
            key = key_node.value
            if key in out:
                first = self.pos.keys[path + (key,)]
                raise SpecError(f"duplicate key '{key}' (first given at line {first.line}); "
                                "each key may appear once", location=where,
                                field=format_path(path + (key,)))
            self.pos.keys[path + (key,)] = where
            out[key] = self.walk(value_node, path + (key,), depth + 1)
        return out

    def _check_tag(self, node: yaml.Node, expected: str | None, path: Path_) -> None:
        ok = node.tag == expected if expected else node.tag in _PLAIN_TAGS
        if not ok:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise SpecError(
                f"tag '{tag}' is not allowed; specs hold plain strings, numbers, "
                "booleans, null, mappings and lists",
                location=_mark(self.file, node.start_mark), field=format_path(path))


def _read_text(path: Path, shown: str) -> str:
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


def parse_yaml(text: str, shown: str) -> tuple[dict[str, Any], Positions]:
    """Parse one YAML document safely into a mapping plus its positions."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            if exc.context and exc.problem:
                problem = f"{exc.context}, {exc.problem}"
            raise SpecError(f"invalid YAML: {problem}",
                            location=_mark(shown, mark) if mark else None,
                            file=shown) from None
        except yaml.YAMLError as exc:
            raise SpecError(f"invalid YAML: {exc}", file=shown) from None
        except RecursionError:
            raise SpecError(f"invalid YAML: nested deeper than {MAX_DEPTH} levels",
                            file=shown) from None
        if node is None:
            raise SpecError("the file is empty; a spec is a mapping with at least name, "
                            "stem and stages", location=Location(shown, 1, 1))
        if not isinstance(node, yaml.MappingNode):
            raise SpecError("the top level must be a mapping (key: value lines), not a "
                            f"{'list' if isinstance(node, yaml.SequenceNode) else 'scalar'}",
                            location=_mark(shown, node.start_mark))
        walker = _Walker(shown, loader)
        data = walker.walk(node, (), 0)
        return data, walker.pos
    finally:
        loader.dispose()


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


def _display(path: Path, base_dir: Path) -> str:
    try:
        return os.path.relpath(path, base_dir)
    except ValueError:
        return str(path)


def load_document(path: str | os.PathLike[str], *, shown: str | None = None,
                  _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Positions]:
    """Load a spec file with ``extends:`` resolved, as plain data plus positions."""
    file = Path(path)
    shown = shown if shown is not None else str(path)
    data, pos = parse_yaml(_read_text(file, shown), shown)
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
    chain = _chain + (file.resolve(),)
    if resolved in chain:
        loop = " -> ".join(p.name for p in chain + (resolved,))
        raise SpecError(f"extends cycle: {loop}", location=where, field="extends")
    if not base_file.is_file():
        raise SpecError(f"cannot extend '{target}': no such file (paths are relative to "
                        "this file)", location=where, field="extends")
    base_shown = os.path.normpath(os.path.join(os.path.dirname(shown), target))
    base, base_pos = load_document(base_file, shown=base_shown, _chain=chain)
    pos.drop(("extends",))
    merged = _merge(base, data, base_pos, pos)
    return merged, base_pos
