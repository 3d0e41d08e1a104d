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
