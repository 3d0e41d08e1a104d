"""Hostile checkpoints for `archdsl import` and `archdsl build --weights` (#32, cases 5-10).

Every file of the corpus (tests/bad_checkpoints.py) is refused in its own process under
a memory cap: one line on stderr naming what is refused, exit 2, nothing written, in
bounded time and memory whatever the file claims to hold (for `build --weights`, bounded
by the spec's own weights). Then the cases one by one, in this process: a refusal is raised
on purpose, so any other exception is a bug that surfaces; a path of any bytes imports.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from helpers import SPECS

from archdsl import build_model, import_spec
from archdsl.cli.main import main
from archdsl.importer import infer
from archdsl.load import load_solved
from archdsl.spec.errors import SpecError, one_line
from archdsl.weights import load_weights

sys.path.insert(0, str(Path(__file__).parent))
from bad_checkpoints import (  # noqa: E402
    BUILD,
    BUILD_ONLY,
    CASES,
    IMPORT_ONLY,
    TINY,
    light,
    resnet18,
    run,
    write,
)

PEAK_MIB = 1024  # each case; benchmarks/bad_checkpoints.py holds them to a valid import
SECONDS = 30  # loose: a shared machine; the benchmark compares with a valid import


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad_checkpoints")
    write(folder, {**CASES, **IMPORT_ONLY, **BUILD_ONLY})
    (folder / "tiny.yaml").write_text(TINY)
    return folder


def refused(corpus: Path, name: str, args: list[str], expected: str,
            tmp_path: Path) -> None:
    before = sorted(os.listdir(corpus))
    out = run(corpus, args, tmp_path / "report.json")
    assert out["rc"] == 2, out["stderr"][-3000:]
    assert out["stderr"].count("\n") == 1 and out["stderr"].startswith(f"{name}: {expected}"), \
        out["stderr"][-3000:]
    assert out["stdout"] == ""
    assert out["seconds"] < SECONDS and out["peak_mib"] < PEAK_MIB, out
    assert sorted(os.listdir(corpus)) == before  # nothing written, nothing left behind


@pytest.mark.parametrize("name", [*CASES, *IMPORT_ONLY])
def test_import_refuses(corpus: Path, name: str, tmp_path: Path) -> None:
    expected = {**CASES, **IMPORT_ONLY}[name][1]
    refused(corpus, name, ["import", name, "-o", "out.yaml"], expected, tmp_path)


@pytest.mark.parametrize("name", [*BUILD, *BUILD_ONLY])
def test_build_weights_refuses(corpus: Path, name: str, tmp_path: Path) -> None:
    expected = {**CASES, **BUILD_ONLY}[name][1]
    refused(corpus, name, ["build", "tiny.yaml", "--weights", name, "-o", "bundle"],
            expected, tmp_path)


def test_the_corpus_controls(corpus: Path, tmp_path: Path) -> None:
    """What the refusals are measured against: a checkpoint of the same making that is
    fine imports, and loads into the spec `build --weights` bounds by."""
    torch.save(resnet18(), tmp_path / "r18.pth")
    out = run(tmp_path, ["import", "r18.pth", "-o", "r18.yaml"], tmp_path / "1.json")
    assert out["rc"] == 0 and (tmp_path / "r18.yaml").is_file(), out["stderr"]
    with torch.device("meta"):
        tiny = build_model(load_solved(corpus / "tiny.yaml")[0])
    torch.save(light(tiny.state_dict()), tmp_path / "tiny.pth")
    (tmp_path / "tiny.yaml").write_text(TINY)
    out = run(tmp_path, ["build", "tiny.yaml", "--weights", "tiny.pth", "-o", "b"],
              tmp_path / "2.json")
    assert out["rc"] == 0 and "exact match (strict)" in out["stdout"], out["stderr"]


# ------------------------------------------------------------------- case by case


def test_5_unwrap_is_bounded_in_one_line() -> None:
    state: dict = dict(resnet18())
    for _ in range(1000):
        state = {"state_dict": state}
    with pytest.raises(SpecError) as info:
        import_spec(state)
    assert str(info.value) == ("<state_dict>: {'state_dict': …} wrappers more than 8 deep; "
                               "allowed: at most 8")


def test_6_a_bug_surfaces_and_refusals_are_on_purpose(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    deep = {k: v for k, v in resnet18().items() if k != "conv1.weight"}
    deep["conv1.3.weight"] = torch.zeros(()).expand(64, 32, 3, 3)  # a deep stem, cut
    with pytest.raises(SpecError, match=r"^<state_dict>: conv1\.0\.weight: is not in"):
        import_spec(deep)
    flat = {**resnet18(), "layer1.0.conv2.weight": torch.zeros(3)}
    with pytest.raises(SpecError, match=r"^<state_dict>: layer1\.0\.conv2\.weight: has "
                                        r"shape \[3\]; allowed: 4 dimensions"):
        import_spec(flat)

    def bug(*_: object) -> None:
        raise ZeroDivisionError("a bug of archdsl's")

    monkeypatch.setattr(infer, "_stages", bug)
    with pytest.raises(ZeroDivisionError):  # not "does not read as a ResNet"
        import_spec(resnet18())


def test_6_the_reader_is_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.pth").write_bytes(b"\x80\x02" + bytes(range(30, 230)))
    assert main(["import", str(tmp_path / "junk.pth")]) == 2
    assert capsys.readouterr().err == (f"{tmp_path / 'junk.pth'}: not a readable checkpoint "
                                       "(UnpicklingError: Unsupported operand 30); a "
                                       "truncated or damaged file?\n")


@pytest.mark.parametrize("odd", ["\udcff", "\u2028", "\x85", "\x1b", "\n", "\t#: x"],
                         ids=["not-utf8", "u2028", "nel", "esc", "newline", "tab-hash"])
def test_7_any_path_imports_escaped_in_the_header(odd: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"r18{odd}x.pth"
    with open(path, "wb") as f:  # torch.save takes a str path as UTF-8
        torch.save(resnet18(), f)
    assert main(["import", str(path)]) == 0
    text = capsys.readouterr().out
    assert load_solved(Path("imported.yaml"), text=text)[0].head.classes == 1000
    header = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert f"from {one_line(str(path))}," in header
    assert all(line.isprintable() for line in text.splitlines())
    out = tmp_path / "out.yaml"
    assert main(["import", str(path), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[1:] == text.splitlines()[1:]


def test_8_a_head_of_another_form_is_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(2048, 10))
    state = light(model.state_dict())
    torch.save(state, tmp_path / "tuned.pth")
    line = (f"{tmp_path / 'tuned.pth'}: fc.1.weight: a classifier archdsl has no form for "
            "(keys under fc. but no fc.weight)")
    for extra in ([], ["--classes", "10"], ["--classes", "7"]):
        assert main(["import", str(tmp_path / "tuned.pth"), *extra]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(line) and captured.err.count("\n") == 1
        assert captured.out == ""
    # renamed as the refusal says, it imports and loads strictly
    renamed = {k.replace("fc.1.", "fc."): v for k, v in state.items()}
    text = import_spec(renamed, {"dropout": 0.2})
    build_model(load_solved(Path("x.yaml"), text=text)[0]).load_state_dict(renamed, strict=True)


def test_8_a_headless_spec_holds_the_source_to_its_keys() -> None:
    """--classes adds the classifier the source lacks, and nothing else goes unchecked."""
    trunk = {k: v for k, v in resnet18().items() if not k.startswith("fc.")}
    assert "classes: 10" in import_spec(trunk, {"classes": 10})
    with pytest.raises(SpecError, match=r"^<state_dict>: fc\.weight_extra: a classifier"):
        import_spec({**trunk, "fc.weight_extra": torch.zeros(1)}, {"classes": 10})


def test_10_build_weights_loads_a_partly_fitting_head() -> None:
    """A classifier whose bias alone differs is reported, not a StopIteration."""
    model = build_model(SPECS / "resnet18.yaml")
    state = {**model.state_dict(), "fc.bias": torch.zeros(10)}
    report = load_weights(model, state)
    assert report.mismatched == [("fc.bias", (10,), (1000,))] and not report.reinitialised


def test_docs_list_what_is_refused(corpus: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """docs/import.md's refusals of checkpoint files, line for line, from the corpus."""
    lines = (SPECS.parent / "docs" / "import.md").read_text().splitlines()
    shown = {line.removeprefix("$ archdsl import "): lines[i + 1]
             for i, line in enumerate(lines) if line.startswith("$ archdsl import ")
             and ":" not in line and "-o" not in line and " --" not in line}
    assert len(shown) >= 8 and set(shown) <= {*CASES, *IMPORT_ONLY}
    monkeypatch.chdir(corpus)
    for name, line in shown.items():
        assert main(["import", name]) == 2
        assert capsys.readouterr().err == line + "\n"
