"""The tree stays clean: ruff passes on the whole project."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT, ruff_bin


def test_ruff_clean():
    ruff = ruff_bin()
    if ruff is None:
        pytest.fail("ruff is part of the test extra; install it with pip install -e '.[test]'")
    out = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_python_m_archdsl_help():
    out = subprocess.run([sys.executable, "-m", "archdsl", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "validate" in out.stdout and "build" in out.stdout


def _imports(path, package):
    """archdsl modules that ``path`` imports, at any depth of the file, except under
    ``if TYPE_CHECKING:``."""
    import ast

    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", None) == "TYPE_CHECKING"
            for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level - 1
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
            elif (node.module or "").split(".")[0] == "archdsl":
                base = []
            else:
                continue
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names]
            out |= {n for n in names if n in MODULES} or {target}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("archdsl")}
    return out & set(MODULES)


MODULES = {}
for _p in sorted((ROOT / "archdsl").rglob("*.py")):
    _parts = _p.relative_to(ROOT).with_suffix("").parts
    MODULES[".".join(_parts[:-1] if _parts[-1] == "__init__" else _parts)] = _p


def test_no_import_cycles():
    """No archdsl module imports itself through others (function-level imports count:
    they only hide a cycle until the function runs)."""
    graph = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        # importing a.b.c runs a and a.b first: a package's own __init__ is no edge
        graph[name] = {m for m in _imports(path, package) if not name.startswith(m + ".")}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
