"""The JSON Schemas and the docs cannot drift from the code: committed copies equal what
the code generates, every spec validates, and the tutorial runs as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import jsonschema
import pytest
import yaml
from helpers import COUNTED_TWINS, ROOT, SPECS, all_specs, spec_id

from archdsl.analysis.counting_doc import generated
from archdsl.build import normalized_yaml
from archdsl.cli.main import main
from archdsl.cli.reference import cli_reference
from archdsl.emit.render import cache_dir
from archdsl.jsonschema import dumps, file_schema, resolved_schema, spec_reference
from archdsl.load import load_spec

FILE = json.loads((ROOT / "schema" / "archdsl.schema.json").read_text())
RESOLVED = json.loads((ROOT / "schema" / "archdsl.resolved.schema.json").read_text())


def test_committed_schemas_are_current(capsys):
    assert (ROOT / "schema" / "archdsl.schema.json").read_text() == dumps(file_schema())
    assert (ROOT / "schema" / "archdsl.resolved.schema.json").read_text() == \
        dumps(resolved_schema())
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == dumps(file_schema())
    jsonschema.Draft202012Validator.check_schema(FILE)
    jsonschema.Draft202012Validator.check_schema(RESOLVED)


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_shipped_spec_against_schemas(path):
    text = path.read_text()
    depth = len(path.relative_to(SPECS).parts)
    assert text.splitlines()[0] == ("# yaml-language-server: $schema="
                                    + "../" * depth + "schema/archdsl.schema.json")
    jsonschema.validate(yaml.safe_load(text), FILE)
    normalized = yaml.safe_load(normalized_yaml(load_spec(path), str(path)))
    jsonschema.validate(normalized, RESOLVED)


def test_schema_rejects_what_the_loader_rejects():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "stagez": []}, FILE)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "stages": [{"block": "basik"}]}, FILE)
    jsonschema.validate({"name": "x", "extends": "resnet50.yaml"}, FILE)  # an overlay
    jsonschema.validate({"name": "x", "extends": "a.yaml",
                         "defaults": {"base_width": {"match": "b.yaml", "by": "macs"}}}, FILE)


def test_built_bundle_spec_validates_against_resolved(tmp_path):
    assert main(["build", str(SPECS / "seresnext50_32x4d.yaml"), "-o", str(tmp_path / "b")]) == 0
    jsonschema.validate(yaml.safe_load((tmp_path / "b" / "spec.yaml").read_text()), RESOLVED)


def test_generated_docs_are_current(monkeypatch):
    assert (ROOT / "docs" / "spec-reference.md").read_text() == spec_reference()
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal changes neither the page...
    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference()
    assert os.environ["COLUMNS"] == "40"  # ...nor is left changed by it


def test_counting_page_is_current():
    """docs/counting.md's table and per-tool sections are what the counters' rules give
    for every twin spec (benchmarks/counters.py --write checked them against the tools),
    and its --vs example is the command's output."""
    page = (ROOT / "docs" / "counting.md").read_text()
    specs = [SPECS / f"{n}.yaml" for n in COUNTED_TWINS]
    assert generated(specs) in page
    cmd = "archdsl count specs/resnet50.yaml --convention fvcore --vs thop"
    out = subprocess.run([sys.executable, "-m", "archdsl", *cmd.split()[1:]], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert f"$ {cmd}\n{out}```" in page


def _blocks(text, lang):
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_tutorial_runs_as_written(tmp_path):
    """Every command of docs/tutorial.md, in order, in a copy of the repository's specs."""
    shutil.copytree(SPECS, tmp_path / "specs")
    text = (ROOT / "docs" / "tutorial.md").read_text()
    for block in _blocks(text, "yaml"):
        first, _, body = block.partition("\n")
        if first.startswith("# file: "):
            (tmp_path / first[len("# file: "):]).write_text(body)
    commands = [line[2:] for block in _blocks(text, "console")
                for line in block.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 10
    for cmd in commands:
        cmd = cmd.replace("archdsl ", f"{sys.executable} -m archdsl ", 1) \
            if cmd.startswith("archdsl ") else cmd.replace("python ", f"{sys.executable} ", 1)
        out = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                               "HOME": str(tmp_path),
                                               "ARCHDSL_CACHE_DIR": str(cache_dir())})
        assert out.returncode == 0, (cmd, out.stderr[-2000:])
    assert (tmp_path / "archdsl-out" / "my_net" / "model.py").is_file()
