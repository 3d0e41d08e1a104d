"""``extends:``: mappings merge recursively, lists replace, cycles and missing files fail."""

from __future__ import annotations

import pytest

from archdsl.load import load_spec
from archdsl.spec.errors import SpecError

BASE = """\
name: base
input: {channels: 3, size: 224}
defaults: {block: bottleneck, cardinality: 1}
stages:
  - {depth: 3, width: 256}
  - {depth: 4, width: 512, stride: 2}
head: {classes: 1000, dropout: 0.2}
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_mappings_merge_and_lists_replace(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    over = write(tmp_path, "sub/over.yaml",
                 "extends: ../base.yaml\nname: over\nhead: {classes: 10}\n"
                 "defaults: {cardinality: 32, base_width: 4}\n"
                 "stages:\n  - {depth: 1, width: 128}\n")
    spec = load_spec(over)
    assert spec.name == "over"
    assert spec.head.classes == 10 and spec.head.dropout == 0.2  # merged mapping
    assert len(spec.stages) == 1 and spec.stages[0].width == 128  # list replaced
    assert spec.stages[0].block == "bottleneck"  # from the base's defaults
    assert (spec.stages[0].cardinality, spec.stages[0].base_width) == (32, 4)


def test_chained_extends(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "mid.yaml", "extends: base.yaml\nname: mid\ninput: {size: 160}\n")
    top = write(tmp_path, "top.yaml", "extends: mid.yaml\nname: top\n")
    spec = load_spec(top)
    assert (spec.name, spec.input.size, spec.input.channels) == ("top", 160, 3)


def test_error_in_base_points_into_base(tmp_path):
    write(tmp_path, "base.yaml", BASE.replace("depth: 4", "depth: -4"))
    over = write(tmp_path, "over.yaml", "extends: base.yaml\nname: over\n")
    with pytest.raises(SpecError) as info:
        load_spec(over)
    assert str(info.value) == (f"{tmp_path}/base.yaml:6:13: stages[1].depth: input should be "
                               "greater than or equal to 1, got -4")


def test_overlay_value_error_points_into_overlay(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    over = write(tmp_path, "over.yaml", "extends: base.yaml\nname: over\nhead: {classes: -1}\n")
    with pytest.raises(SpecError) as info:
        load_spec(over)
    assert str(info.value) == (f"{over}:3:17: head.classes: input should be greater than or "
                               "equal to 0, got -1")


def test_self_cycle(tmp_path):
    path = write(tmp_path, "a.yaml", "extends: a.yaml\nname: a\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:1:10: extends: extends cycle: a.yaml -> a.yaml"


def test_cycle(tmp_path):
    a = write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\nname: b\n")
    with pytest.raises(SpecError) as info:
        load_spec(a)
    assert str(info.value) == (f"{tmp_path}/b.yaml:1:10: extends: extends cycle: a.yaml -> "
                               "b.yaml -> a.yaml")


def test_missing_base(tmp_path):
    path = write(tmp_path, "a.yaml", "extends: nope.yaml\nname: a\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (f"{path}:1:10: extends: cannot extend 'nope.yaml': no such file "
                               "(paths are relative to this file)")


def test_overlay_must_name_itself(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    path = write(tmp_path, "a.yaml", "extends: base.yaml\nhead: {classes: 10}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:1:1: name: a spec that extends another must set its own name"


def test_overlay_of_another_kind_replaces_the_mapping(tmp_path):
    """resnet50d swaps the classic stem for the deep one: the base's ``width`` belongs
    to the classic kind and must not leak into the deep stem."""
    write(tmp_path, "base.yaml", BASE + "stem: {kind: classic, width: 64}\n")
    over = write(tmp_path, "over.yaml",
                 "extends: base.yaml\nname: over\nstem: {kind: deep}\n")
    assert load_spec(over).stem.widths == (32, 32, 64)
    same = write(tmp_path, "same.yaml",
                 "extends: base.yaml\nname: same\nstem: {width: 32}\n")
    assert load_spec(same).stem.width == 32
