"""Bad specs too big to keep in the repository, written on demand with the line each
one must produce. Shared by tests/test_hostile.py and benchmarks/bad_specs.py."""

from __future__ import annotations

from pathlib import Path

_CAP = ("the document expands to more than 10000 values (anchors and aliases included); "
        "a spec is a few hundred at most")

# name -> (text, expected message after "name: ")
CASES: dict[str, tuple[str, str]] = {
    "over_1mib.yaml": (
        "name: x\n" + "# padding\n" * 110_000,
        "file is 1100008 bytes; spec files are limited to 1048576 bytes (1 MiB)"),
    "million_stages.yaml": (
        "name: x\nstages: [" + "{depth: 1, width: 8, block: basic}, " * 1_000_000 + "]\n",
        "file is 36000019 bytes; spec files are limited to 1048576 bytes (1 MiB)"),
    # 920 KB of flow-style stages: refused at the value cap, long before the end
    "wide_flow.yaml": (
        "name: x\nstages: [" + "{depth: 1, width: 64}, " * 40_000 + "]\n",
        f"2:76654: stages[3332].depth: {_CAP}"),
    "deep_brackets.yaml": (
        "name: x\nstages: " + "[" * 20_000 + "]" * 20_000 + "\n",
        "2:73: stages[0][0]...: nested deeper than 64 levels"),
    "deep_braces.yaml": (
        "name: x\nstages: " + "{a: " * 12_000 + "1" + "}" * 12_000 + "\n",
        "2:265: stages.a.a...: nested deeper than 64 levels"),
    "long_scalar.yaml": (
        "name: " + "x" * 1_000_000 + "\nstages: [{depth: 1, width: 8, block: basic}]\n",
        "1:7: name: string should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$', got "
        "'" + "x" * 49 + "... (1,000,000 characters)"),
    "long_key.yaml": (
        "name: x\n" + "k" * 1_000_000 + ": 1\n",
        "2:1000001: invalid YAML: while scanning a simple key, could not find expected ':'"),
    "many_keys.yaml": (
        "name: x\nx:\n" + "".join(f" k{i}: {i}\n" for i in range(70_000)),
        f"10000:9: x.k9997: {_CAP}"),
    "many_anchors.yaml": (
        "name: x\nx:\n" + "".join(f" a{i}: &a{i} {i}\n" for i in range(45_000)),
        f"10000:9: x.a9997: {_CAP}"),
    "huge_comment.yaml": (
        "#" + "x" * 1_040_000 + "\nname: x\n",
        "2:1: stages: required field is missing"),
}


def expected(name: str) -> str:
    """The exact line ``archdsl validate NAME`` must print for case ``name``."""
    message = CASES[name][1]
    return f"{name}{':' if message[0].isdigit() else ': '}{message}"


def write_cases(folder: Path) -> None:
    """Write every case into ``folder``."""
    for name, (text, _) in CASES.items():
        (folder / name).write_text(text)
