"""Each kind of spec error gives its exact one-line message, placed in the file."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from helpers import all_specs

from archdsl.ir.graph import GraphBuilder
from archdsl.ir.ops import ShapeError
from archdsl.load import load_spec, load_spec_with_graph
from archdsl.spec.errors import SpecError
from archdsl.spec.loader import parse_yaml

sys.path.insert(0, str(Path(__file__).parent / "bad_specs"))
from generated import write_cases  # noqa: E402

GOOD_STAGE = "{depth: 2, width: 64, block: basic}"

CASES = [
    ("misspelt key",
     f"name: x\nstagez:\n  - {GOOD_STAGE}\n",
     "2:1: stagez: unknown key; did you mean 'stages'? allowed: act, antialias, conv, "
     "features, head, input, layout, name, norm, output_stride, regnet, shortcut, stages, "
     "stem"),
    ("output stride not a power the stages reach",
     f"name: x\noutput_stride: 12\nstages:\n  - {GOOD_STAGE}\n",
     "2:16: output_stride: input should be 8, 16 or 32, got 12"),
    ("misspelt stage field",
     "name: x\nstages:\n  - {depht: 2, width: 64, block: basic}\n",
     "3:6: stages[0].depht: unknown key; did you mean 'depth'? allowed: base_width, block, "
     "cardinality, depth, eca, placement, se, stride, width"),
    ("missing field",
     "name: x\nstages:\n  - {width: 64, block: basic}\n",
     "3:5: stages[0].depth: required field is missing"),
    ("zero depth",
     "name: x\nstages:\n  - {depth: 0, width: 64, block: basic}\n",
     "3:13: stages[0].depth: input should be greater than or equal to 1, got 0"),
    ("non-integer width",
     "name: x\nstages:\n  - {depth: 2, width: 6.5, block: basic}\n",
     "3:23: stages[0].width: input should be a valid integer, got 6.5"),
    ("string depth",
     "name: x\nstages:\n  - {depth: '2', width: 64, block: basic}\n",
     "3:13: stages[0].depth: input should be a valid integer, got '2'"),
    ("stride 3",
     "name: x\nstages:\n  - {depth: 2, width: 64, block: basic, stride: 3}\n",
     "3:49: stages[0].stride: a stride of 3 is not supported; allowed: 1 or 2"),
    ("basic with cardinality",
     "name: x\nstages:\n  - {depth: 2, width: 64, block: basic, cardinality: 32}\n",
     "3:54: stages[0].cardinality: a basic block has no groups, got 32; allowed: 1 "
     "(use block: bottleneck for ResNeXt)"),
    ("cardinality inherited from defaults",
     "name: x\ndefaults: {block: basic, cardinality: 32}\nstages:\n  - {depth: 2, width: 64}\n",
     "2:39: stages[0].cardinality (from defaults.cardinality): a basic block has no groups, "
     "got 32; allowed: 1 (use block: bottleneck for ResNeXt)"),
    ("inner width not divisible by groups",
     "name: x\nstages:\n  - {depth: 1, width: 256, block: bottleneck, cardinality: 32, "
     "inner_width: 100}\n",
     "3:77: stages[0].inner_width: 100 is not divisible by the cardinality 32; allowed: "
     "multiples of 32"),
    ("width not divisible by expansion",
     "name: x\nstages:\n  - {depth: 1, width: 250, block: bottleneck}\n",
     "3:23: stages[0].width: 250 is not divisible by the expansion 4; allowed: multiples of 4"),
    ("unknown block kind",
     "name: x\nstages:\n  - {depth: 2, width: 64, block: basik}\n",
     "3:34: stages[0].block: unknown kind 'basik'; did you mean 'basic'? allowed: basic, "
     "preact_basic, bottleneck, preact_bottleneck, regnet, preact_regnet, res2net, resnest, "
     "sk_basic, sk_bottleneck"),
    ("no block kind",
     "name: x\nstages:\n  - {depth: 2, width: 64}\n",
     "3:5: stages[0].block: required; allowed: basic, preact_basic, bottleneck, "
     "preact_bottleneck, regnet, preact_regnet, res2net, resnest, sk_basic, sk_bottleneck"),
    ("unknown defaults field",
     "name: x\ndefaults: {blok: basic}\nstages:\n  - {depth: 2, width: 64}\n",
     "2:12: defaults.blok: unknown stage field; did you mean 'block'? allowed: "
     "attn_divisor, attn_min, attn_ratio, avd, avd_first, base_width, block, "
     "bottleneck_ratio, cardinality, depth, eca, expansion, group_width, inner_width, "
     "inner_widths, placement, radix, reduce_first, scale, se, sk, stride, stride_on, width"),
    ("3x3 projection without one",
     "name: x\nstages:\n  - {depth: 1, width: 64, block: basic}\nshortcut: {kind: A, kernel: 3}\n",
     "4:29: shortcut.kernel: a 3x3 projection, but kind A has none; allowed: kernel 3 with "
     "kind B or C"),
    ("inner_widths with reduce_first",
     "name: x\nstages:\n  - {depth: 1, width: 256, block: bottleneck, reduce_first: 2, "
     "inner_widths: [[32, 64]]}\n",
     "3:78: stages[0].inner_widths: given with reduce_first, which it overrides; allowed: one "
     "of inner_widths and reduce_first"),
    ("inner_widths a pair short",
     "name: x\nstages:\n  - {depth: 2, width: 256, block: bottleneck, inner_widths: "
     "[[32, 64]]}\n",
     "3:61: stages[0].inner_widths: 1 pairs for 2 blocks; allowed: one [1x1, 3x3] pair a "
     "block"),
    ("groups on a norm without",
     "name: x\nstages:\n  - {depth: 1, width: 64, block: basic}\nnorm: {kind: frn, groups: 48}\n",
     "4:27: norm.groups: frn has no channel groups; allowed: groups with kind group or "
     "evonorm_s0"),
    ("eps of plain convs",
     "name: x\nstages:\n  - {depth: 1, width: 64, block: basic}\nconv: {eps: 1.0e-8}\n",
     "4:13: conv.eps: plain convs have no weight standardisation; allowed: eps with kind "
     "standardized"),
    ("eca kernel even",
     "name: x\nstages:\n  - {depth: 1, width: 64, block: basic, eca: {kernel: 4}}\n",
     "3:55: stages[0].eca.kernel: a kernel of 4 taps; allowed: an odd number from 1 to 255 "
     "(the conv pads (k − 1) / 2 each side)"),
    ("eca kernel word",
     "name: x\nstages:\n  - {depth: 1, width: 64, block: basic, eca: {kernel: three}}\n",
     "3:55: stages[0].eca.kernel: expected an odd number of taps or 'auto', got 'three'"),
    ("se and eca",
     "name: x\nstages:\n  - {depth: 1, width: 64, block: basic, se: {ratio: 16}, eca: {}}\n",
     "3:63: stages[0].eca: a block has one channel attention; allowed: se or eca, not both"),
    ("duplicate key",
     f"name: x\nname: y\nstages:\n  - {GOOD_STAGE}\n",
     "2:1: name: duplicate key 'name' (first given at line 1); each key may appear once"),
    ("bad name",
     f"name: ../../etc\nstages:\n  - {GOOD_STAGE}\n",
     "1:7: name: string should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$', "
     "got '../../etc'"),
    ("stride_on value",
     "name: x\nstages:\n  - {depth: 1, width: 256, block: bottleneck, stride_on: 2x2}\n",
     "3:58: stages[0].stride_on: input should be '1x1' or '3x3', got '2x2'"),
    ("python tag",
     "name: x\nstages: !!python/object/apply:os.system ['true']\n",
     "2:9: stages: tag '!!python/object/apply:os.system' is not allowed; specs hold plain "
     "strings, numbers, booleans, null, mappings and lists"),
    ("tab indentation",
     "name: x\nstages:\n\t- 1\n",
     "3:1: invalid YAML: while scanning for the next token, found character '\\t' that "
     "cannot start any token"),
    ("empty file", "", "1:1: the file is empty; a spec is a mapping with at least name, "
                       "stem and stages"),
    ("top-level list", "- 1\n- 2\n",
     "1:1: the top level must be a mapping (key: value lines), not a list"),
    ("stem kind", f"name: x\nstem: {{kind: classik}}\nstages:\n  - {GOOD_STAGE}\n",
     "2:14: stem.kind: unknown kind 'classik'; did you mean 'classic'? allowed: classic, "
     "cifar, deep, regnet"),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_message(tmp_path, text, expected):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:{expected}"


def test_not_utf8(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_bytes(b"name: x\nstages: [\xff]\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:2:10: byte 0xff is not UTF-8; spec files are UTF-8 text"


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_oversized_file_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: x\n" + "#" * (1 << 20))
    with pytest.raises(SpecError, match="spec files are limited to 1048576 bytes"):
        load_spec(path)


def test_alias_bomb_is_cheap(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
              f"*a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match="expands to more than 10000 values"):
        load_spec(path)


def test_tiny_input_keeps_every_map_alive(tmp_path):
    """Every shipped kernel pads, and ResNet-D's pool rounds up, so even a 1x1 input
    lowers; the shape rules agree with torch there (the torch emitter checks it)."""
    path = tmp_path / "x.yaml"
    path.write_text(textwrap.dedent("""\
        name: x
        input: {size: 1}
        stages:
          - {depth: 1, width: 64, block: basic, stride: 2}
        shortcut: {kind: B, downsample: avgpool}
        """))
    spec, graph = load_spec_with_graph(path)
    assert graph["layer1.0.downsample.0"].shape == (64, 1, 1)


def test_vanishing_map_is_a_shape_error():
    """An unpadded window larger than its input leaves nothing: the builder says where."""
    b = GraphBuilder("t", (3, 4, 4))
    with pytest.raises(ShapeError, match=r"^c \(conv2d\): 7x7/2 window on a 4x4 map leaves "
                                         "nothing$"):
        b.conv("x", "c", 8, 7, stride=2, padding=0)


# --- the event reader against PyYAML's own loader, with and without libyaml -----------

READER_DOCS = [p.read_text() for p in all_specs()] + [
    "a: &x {b: [1, 2.5, null, true, 'q']}\nc: *x\nd: [*x, *x]\ne: !!str 12\n",
    "a: &k key\n*k : 3\nlist: &l [1, [2, [3]]]\nagain: *l\n",
    "m: {x: 1, y: [a, b]}\nempty: {}\nnone: []\nq: \"two\\nlines\"\nf: 1e3\nh: 0x1f\n",
]


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_reader_gives_what_safe_load_gives(monkeypatch, libyaml):
    monkeypatch.setattr(yaml, "__with_libyaml__", libyaml and yaml.__with_libyaml__)
    for text in READER_DOCS:
        data, pos = parse_yaml(text, "doc.yaml")
        assert data == yaml.safe_load(text)
        values, keys = composed_marks(yaml.compose(text, Loader=yaml.SafeLoader))
        assert {p: (loc.line, loc.col) for p, loc in pos.values.items()} == values
        assert {p: (loc.line, loc.col) for p, loc in pos.keys.items()} == keys


def composed_marks(node, path=(), values=None, keys=None):
    """Where PyYAML's own composer says each value and key starts, by path (1-based)."""
    values = {} if values is None else values
    keys = {} if keys is None else keys
    values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            keys[path + (k.value,)] = (k.start_mark.line + 1, k.start_mark.column + 1)
            composed_marks(v, path + (k.value,), values, keys)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            composed_marks(v, path + (i,), values, keys)
    return values, keys


SAME_CAPS = ["alias_bomb.yaml", "deep_nesting.yaml", "dup_nested_key.yaml",
             "yaml_merge_key.yaml", "wide_flow.yaml", "deep_brackets.yaml",
             "deep_braces.yaml", "many_anchors.yaml"]


@pytest.mark.parametrize("name", SAME_CAPS)
def test_pure_python_fallback_enforces_the_same_caps(tmp_path, monkeypatch, name):
    """Without libyaml the reader is slower but refuses the same input the same way."""
    bad = Path(__file__).parent / "bad_specs"
    write_cases(tmp_path)
    path = tmp_path / name if (tmp_path / name).exists() else bad / name
    with pytest.raises(SpecError) as with_c:
        parse_yaml(path.read_text(), name)
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    with pytest.raises(SpecError) as without:
        parse_yaml(path.read_text(), name)
    assert str(without.value) == str(with_c.value)
    assert "expands" in str(with_c.value) or "deeper" in str(with_c.value) or \
        "key" in str(with_c.value)


class _CappedLibyaml(yaml.SafeLoader):
    """What libyaml 0.2.5 (PyYAML 6.0.4's wheels) does on deep flow nesting: its scanner,
    looking ahead for a simple key, refuses a 1,000th level before any event of it."""

    def fetch_more_tokens(self):
        super().fetch_more_tokens()
        if self.flow_level >= 1000:
            raise yaml.scanner.ScannerError("while increasing flow level", self.get_mark(),
                                            "exceeded maximum nesting depth", self.get_mark())


@pytest.mark.parametrize("name", ["deep_brackets.yaml", "deep_braces.yaml"])
def test_libyaml_own_nesting_cap_never_decides(tmp_path, monkeypatch, name):
    """The line is archdsl's whichever PyYAML is installed: 6.0.3's libyaml reads on to
    archdsl's cap, 6.0.4's stops at its own, the pure-Python parser has none."""
    write_cases(tmp_path)
    text = (tmp_path / name).read_text()
    with pytest.raises(SpecError) as installed:
        parse_yaml(text, name)
    monkeypatch.setattr(yaml, "__with_libyaml__", True)
    monkeypatch.setattr(yaml, "CSafeLoader", _CappedLibyaml)
    with pytest.raises(yaml.scanner.ScannerError, match="maximum nesting depth"):
        list(yaml.parse("x: " + "[" * 1000, Loader=_CappedLibyaml))
    with pytest.raises(SpecError) as capped:
        parse_yaml(text, name)
    assert str(capped.value) == str(installed.value)
    assert "nested deeper than 64 levels" in str(capped.value)


def test_duplicate_anchor_is_refused_as_pyyaml_does():
    text = "a: &x 1\nb: &x 2\nc: *x\n"
    with pytest.raises(yaml.composer.ComposerError, match="duplicate anchor"):
        yaml.safe_load(text)
    with pytest.raises(SpecError, match=r"^d\.yaml:2:4: b: duplicate anchor &x \(first set "
                                        r"at line 1\); each anchor may be set once$"):
        parse_yaml(text, "d.yaml")


def test_undefined_and_recursive_aliases(tmp_path):
    with pytest.raises(SpecError, match=r"^d\.yaml:1:4: a: alias \*nope names no anchor"):
        parse_yaml("a: *nope\n", "d.yaml")
    with pytest.raises(SpecError, match=r"^d\.yaml:1:9: a\[0\]: alias \*x refers to the "
                                        "value that contains it"):
        parse_yaml("a: &x [ *x ]\n", "d.yaml")
