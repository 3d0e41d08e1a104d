"""`archdsl sample`: design-space sampling. Each sample is the network its values make
(counted again the ordinary way, and by torch for a few), the same seed gives the same
samples on one process or several, a MACs band holds, and a bad space file is one
located line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, all_specs, spec_id

from archdsl import build_model
from archdsl.analysis.counts import count, pycls_activations, total
from archdsl.load import load_spec_with_graph
from archdsl.lower import lower
from archdsl.sampling import Tally, load_space, sample
from archdsl.spec.loader import Positions
from archdsl.spec.validate import validate

SPACES = ROOT / "spaces"


@pytest.mark.parametrize("space", ["regnetx", "anynetx"])
def test_samples_are_the_networks_their_values_make(space: str) -> None:
    sp = load_space(SPACES / f"{space}.yaml")
    samples = list(sample(sp, 12, seed=3))
    assert [s.index for s in samples] == list(range(1, 13))
    for s in samples:
        spec = validate(sp.spec_data(s.values), Positions(), sp.base_file)
        graph = lower(spec)  # with the layout's names, as every other command
        t = count(graph).total
        assert (s.params, s.macs, s.activations) == (t.params, t.macs, t.activations)
        assert s.pycls_activations == pycls_activations(graph)
    for s in samples[:3]:  # and torch's own count of the built module's parameters
        with torch.device("meta"):
            model = build_model(lower(validate(sp.spec_data(s.values), Positions(),
                                               sp.base_file)))
        assert sum(p.numel() for p in model.parameters()) == s.params


def test_one_seed_one_sample_set_on_any_number_of_processes() -> None:
    sp = load_space(SPACES / "regnetx.yaml")
    one = list(sample(sp, 40, seed=7, jobs=1))
    assert list(sample(sp, 40, seed=7, jobs=2)) == one
    assert list(sample(sp, 40, seed=8)) != one


def test_a_macs_band_holds() -> None:
    sp = load_space(SPACES / "regnetx.yaml")
    tally = Tally()
    got = list(sample(sp, 20, seed=1, macs=(360e6, 400e6), tally=tally))
    assert len(got) == 20 and all(360e6 <= s.macs <= 400e6 for s in got)
    assert tally.outside > 0  # the band rejected draws: it was applied


def test_an_unsatisfiable_band_stops_with_the_tally() -> None:
    sp = load_space(SPACES / "regnetx.yaml")
    with pytest.raises(ValueError, match="draws gave 0 of 3 samples"):
        list(sample(sp, 3, seed=1, macs=(1.0, 2.0), tries=20))


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_total_is_counts_total(path: Path) -> None:
    graph = load_spec_with_graph(path)[1]
    assert total(graph) == count(graph).total


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archdsl", "sample", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_json_and_summary() -> None:
    out = run(str(SPACES / "regnetx.yaml"), "-n", "5", "--seed", "2", "--format", "json",
              "--jobs", "1")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["sample"] for r in rows] == [1, 2, 3, 4, 5]
    assert {"regnet.w0", "params", "macs", "activations", "pycls_activations"} <= set(rows[0])
    assert "RegNetX: 5 samples (seed 2)" in out.stderr and "median" in out.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("base: ../specs/regnetx_002.yaml\ndraw: {regnet.w0: {int: [8]}}\n",
     "2:25: draw.regnet.w0.int: expected [lo, hi]"),
    ("base: ../specs/regnetx_002.yaml\ndraw: {regnet.w0: {log: [0, 8]}}\n",
     "2:25: draw.regnet.w0.log: [0, 8] is not a range; allowed: lo ≤ hi, lo > 0"),
    ("base: ../specs/regnetx_002.yaml\ndraw:\n  stages[*].width: {int: [8, 64]}\n",
     "3:3: draw.stages[*].width: a per-stage field needs stages: N"),
    ("base: nowhere.yaml\ndraw: {regnet.w0: 8}\n",
     "1:7: base: no such spec 'nowhere.yaml'"),
    ("base: ../specs/regnetx_002.yaml\ndraws: {}\n", "2:1: draws: unknown key"),
    ("base: ../specs/regnetx_002.yaml\ndraw: {regnet.w0: {int: [8, 64], q: 8}}\n",
     "2:19: draw.regnet.w0: a distribution is one of int, uniform, log, choice"),
])
def test_bad_space_files(text: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "spaces").mkdir()
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "regnetx_002.yaml").write_text(
        (ROOT / "specs" / "regnetx_002.yaml").read_text())
    space = tmp_path / "spaces" / "bad.yaml"
    space.write_text(text)
    out = run(str(space), "-n", "2")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"{space}:{message}"), out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
