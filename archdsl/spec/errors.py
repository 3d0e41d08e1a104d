"""Spec errors: one line that says where the problem is and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A 1-based position in a spec file."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SpecError(Exception):
    """A spec that can't be used, with the place to fix it.

    ``str(err)`` is ``file:line:col: field: message`` (the field is omitted for
    file-level problems such as unreadable bytes).
    """

    def __init__(self, message: str, *, location: Location | None = None,
                 field: str | None = None, file: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.field = field
        self.file = file if file is not None else (location.file if location else None)

    def __str__(self) -> str:
        where = str(self.location) if self.location else (self.file or "<spec>")
        return one_line(": ".join(filter(None, (where, self.field, self.message))))


def one_line(text: str) -> str:
    """``text`` with every unprintable character (newlines, tabs, U+2028 …) escaped as
    Python writes it, so an error stays one line whatever a key, value or path holds."""
    return text if text.isprintable() else "".join(
        c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_path(path: tuple[str | int, ...]) -> str:
    """Render a field path the way users write it: ``stages[2].depth``; a key with
    characters a plain YAML key would not hold is quoted: ``head.'cl\\nasses'``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = part if part.isprintable() else repr(part)
            out += f".{part}" if out else part
    return out or "<root>"


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """A ``did you mean 'x'?`` hint, or an empty string when nothing is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""
