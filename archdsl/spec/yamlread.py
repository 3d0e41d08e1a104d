"""The YAML event reader: one document into plain data plus the position of every value
and key, safely (no tags beyond plain ones, no duplicate keys) and within caps on size,
values, aliases and depth enforced as the parser's events arrive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Location, SpecError, format_path

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


def _new_parser(text: str, *, pure: bool = False) -> yaml.SafeLoader:
    """libyaml's event parser where PyYAML has it (its wheels do) and ``pure`` is not
    asked for, else PyYAML's own. Either is only asked for events: no node tree is ever
    composed."""
    if yaml.__with_libyaml__ and not pure:
        return yaml.CSafeLoader(text)  # type: ignore[return-value]
    return yaml.SafeLoader(text)


def _libyaml_nesting_cap(exc: yaml.YAMLError) -> bool:
    """Whether libyaml refused ``exc``'s document for its own nesting cap (1,000 levels
    since libyaml 0.2.5, which PyYAML 6.0.4's wheels bundle). Its scanner looks up to
    1,024 characters ahead of the events for a simple key, so on ``[[[[…`` it reaches its
    cap before archdsl's reader sees the 65th level."""
    return isinstance(exc, yaml.MarkedYAMLError) and \
        exc.problem == "exceeded maximum nesting depth"


_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class _Reader:
    """Turns the parser's events into plain data, recording positions, with every cap
    enforced as the events arrive: a document over a cap is refused after reading
    ``MAX_NODES`` values or ``MAX_DEPTH`` levels, whatever its size.

    An anchored value's events are kept (with aliases inside them already expanded), and
    an alias replays them, so expansion is counted value by value like any other input.
    """

    def __init__(self, file: str, parser: yaml.SafeLoader) -> None:
        self.file = file
        self.parser = parser
        self.count = 0
        self.pos = Positions()
        self.anchors: dict[str, list[yaml.Event]] = {}
        self._defined: dict[str, yaml.Mark] = {}  # where each anchor was set
        self._recording: list[tuple[str, list[yaml.Event]]] = []
        self._replay: list[list[Any]] = []  # [events, next index] per alias

    def _peek_replay(self) -> yaml.Event | None:
        while self._replay:
            events, i = self._replay[-1]
            if i < len(events):
                return events[i]
            self._replay.pop()
        return None

    def event(self) -> tuple[yaml.Event, bool]:
        """The next event, expanded aliases first; ``True`` when it came from the text."""
        ev = self._peek_replay()
        live = ev is None
        if ev is None:
            ev = self.parser.get_event()
        else:
            self._replay[-1][1] += 1
        if not isinstance(ev, yaml.AliasEvent):
            for _, events in self._recording:
                events.append(ev)
        return ev, live

    def node_event(self, path: Path_) -> tuple[yaml.Event, bool]:
        """The event that starts the next value or key, an alias replaced by the first
        event of its anchor's recording (see ``event``)."""
        ev, live = self.event()
        if not isinstance(ev, yaml.AliasEvent):
            return ev, live
        if ev.anchor in (name for name, _ in self._recording):
            raise SpecError(f"alias *{ev.anchor} refers to the value that contains it; "
                            "recursive values are not allowed",
                            location=_mark(self.file, ev.start_mark), field=format_path(path))
        events = self.anchors.get(ev.anchor)
        if events is None:
            raise SpecError(f"alias *{ev.anchor} names no anchor defined before it",
                            location=_mark(self.file, ev.start_mark), field=format_path(path))
        self._replay.append([events, 0])
        return self.event()

    def _define(self, ev: yaml.Event, path: Path_) -> None:
        """An anchor set by the text (replays set none): once per document, as PyYAML's
        safe loader requires."""
        first = self._defined.setdefault(ev.anchor, ev.start_mark)
        if first is not ev.start_mark:
            raise SpecError(f"duplicate anchor &{ev.anchor} (first set at line "
                            f"{first.line + 1}); each anchor may be set once",
                            location=_mark(self.file, ev.start_mark), field=format_path(path))

    def value(self, path: Path_, depth: int) -> Any:
        ev, live = self.node_event(path)
        self.count += 1
        here = _mark(self.file, ev.start_mark)
        if self.count > MAX_NODES:
            raise SpecError(
                f"the document expands to more than {MAX_NODES} values (anchors and "
                "aliases included); a spec is a few hundred at most",
                location=here, field=format_path(path))
        if depth > MAX_DEPTH:
            raise SpecError(f"nested deeper than {MAX_DEPTH} levels", location=here,
                            field=format_path(path[:3]) + "...")
        self.pos.values[path] = here
        anchor = ev.anchor if live else None
        if anchor is not None:
            self._define(ev, path)
            self._recording.append((anchor, [ev]))
        if isinstance(ev, yaml.MappingStartEvent):
            self._check_tag(ev, _collection_tag(ev, _MAP_TAG), {_MAP_TAG}, path)
            out: Any = self._mapping(path, depth)
        elif isinstance(ev, yaml.SequenceStartEvent):
            self._check_tag(ev, _collection_tag(ev, _SEQ_TAG), {_SEQ_TAG}, path)
            out = []
            while not self._at_end():
                out.append(self.value(path + (len(out),), depth + 1))
            self.event()
        else:
            out = self._scalar(ev, path)
        if anchor is not None:
            name, events = self._recording.pop()
            self.anchors[name] = events
        return out

    def _at_end(self) -> bool:
        ev = self._peek_replay()
        if ev is None:
            return self.parser.check_event(*_COLLECTION_END)
        return isinstance(ev, _COLLECTION_END)

    def _mapping(self, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while not self._at_end():
            ev, live = self.node_event(path)
            where = _mark(self.file, ev.start_mark)
            tag = self._scalar_tag(ev) if isinstance(ev, yaml.ScalarEvent) else None
            if tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported; use extends: "
                                "to build on another spec", location=where,
                                field=format_path(path))
            if tag != _PLAIN_TAGS_STR:
                shown = ev.value if isinstance(ev, yaml.ScalarEvent) else "?"
                raise SpecError(f"key {shown!r} is not a string; mapping keys must be plain "
                                "strings", location=where, field=format_path(path))
            if live and ev.anchor is not None:
                self._define(ev, path)
                self.anchors[ev.anchor] = [ev]
            key = ev.value
            if key in out:
                first = self.pos.keys[path + (key,)]
                raise SpecError(f"duplicate key '{key}' (first given at line {first.line}); "
                                "each key may appear once", location=where,
                                field=format_path(path + (key,)))
            self.pos.keys[path + (key,)] = where
            out[key] = self.value(path + (key,), depth + 1)
        self.event()
        return out

    def _scalar_tag(self, ev: yaml.ScalarEvent) -> str:
        if ev.tag is None or ev.tag == "!":
            return self.parser.resolve(yaml.ScalarNode, ev.value, ev.implicit)
        return ev.tag

    def _scalar(self, ev: yaml.ScalarEvent, path: Path_) -> Any:
        tag = self._scalar_tag(ev)
        self._check_tag(ev, tag, _PLAIN_TAGS, path)
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        return self.parser.yaml_constructors[tag](self.parser, node)

    def _check_tag(self, ev: yaml.Event, tag: str, allowed: set[str], path: Path_) -> None:
        if tag not in allowed:
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise SpecError(
                f"tag '{shown}' is not allowed; specs hold plain strings, numbers, "
                "booleans, null, mappings and lists",
                location=_mark(self.file, ev.start_mark), field=format_path(path))


def _collection_tag(ev: yaml.CollectionStartEvent, default: str) -> str:
    """A mapping's or list's tag: its explicit one, else the default for its kind."""
    return default if ev.tag in (None, "!") else ev.tag


def _yaml_error(exc: yaml.YAMLError, text: str, shown: str) -> SpecError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or ""
        lines = text.splitlines()
        if (mark and problem == "found character that cannot start any token"
                and mark.line < len(lines) and mark.column < len(lines[mark.line])):
            # libyaml does not say which character; PyYAML did
            problem = f"found character {lines[mark.line][mark.column]!r} that cannot " \
                "start any token"
        problem = ", ".join(p for p in (exc.context, problem) if p) or "invalid YAML"
        return SpecError(f"invalid YAML: {problem}",
                         location=_mark(shown, mark) if mark else None, file=shown)
    return SpecError(f"invalid YAML: {exc}", file=shown)


def parse_yaml(text: str, shown: str) -> tuple[dict[str, Any], Positions]:
    """Parse one YAML document safely into a mapping plus its positions. Every cap is
    archdsl's, whichever parser PyYAML has: a document libyaml refuses for its own
    nesting cap is read again by PyYAML's parser, which has none, so that archdsl's
    ``MAX_DEPTH`` (far lower) names the place, as it does with every other libyaml."""
    try:
        try:
            return _parse(text, shown, _new_parser(text))
        except yaml.YAMLError as exc:
            if not _libyaml_nesting_cap(exc):
                raise
            return _parse(text, shown, _new_parser(text, pure=True))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, shown) from None


def _parse(text: str, shown: str, parser: yaml.SafeLoader) -> tuple[dict[str, Any], Positions]:
    """``parse_yaml`` with one parser; its YAML errors are left to the caller."""
    reader = _Reader(shown, parser)
    try:
        parser.get_event()  # stream start
        if parser.check_event(yaml.StreamEndEvent):
            raise SpecError("the file is empty; a spec is a mapping with at least name, "
                            "stem and stages", location=Location(shown, 1, 1))
        parser.get_event()  # document start
        first = parser.peek_event()
        if not isinstance(first, yaml.MappingStartEvent):
            kind = "list" if isinstance(first, yaml.SequenceStartEvent) else "scalar"
            raise SpecError("the top level must be a mapping (key: value lines), not a "
                            f"{kind}", location=_mark(shown, first.start_mark))
        data = reader.value((), 0)
        parser.get_event()  # document end
        if not parser.check_event(yaml.StreamEndEvent):
            extra = parser.get_event()
            raise SpecError("a spec file holds one YAML document; a second one starts here",
                            location=_mark(shown, extra.start_mark))
        return data, reader.pos
    finally:
        parser.dispose()
