"""Design-space tools: ResNeXt Table 2 by the counter, solved spec fields, sweeps."""

from __future__ import annotations

import json

import pytest
from helpers import SPECS, assert_same_function, state_shapes
from torchvision.models.resnet import Bottleneck, ResNet

import archdsl
from archdsl.cli.main import main
from archdsl.design import match_block
from archdsl.load import load_solved, load_spec

TABLE2 = {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}  # Xie et al. 2017, Table 2


@pytest.mark.parametrize("with_bn", [False, True])
def test_resnext_table2(with_bn):
    rows = match_block(load_spec(SPECS / "resnet50.yaml"), "layer1.1", list(TABLE2),
                       with_bn=with_bn)
    assert {r.cardinality: r.width for r in rows} == TABLE2
    if not with_bn:  # the paper's formula C·(256·d + 3·3·d·d + d·256), about 70k
        assert [r.params for r in rows] == [c * (256 * d + 9 * d * d + d * 256)
                                            for c, d in TABLE2.items()]


@pytest.mark.parametrize("card,d", TABLE2.items())
def test_table2_models_match_torchvision(card, d, tmp_path):
    spec = tmp_path / "v.yaml"
    spec.write_text(f"extends: {SPECS / 'resnet50.yaml'}\nname: resnext50_{card}x{d}d\n"
                    f"defaults: {{cardinality: {card}, base_width: {d}}}\n")
    ours = archdsl.build_model(spec)
    ref = ResNet(Bottleneck, [3, 4, 6, 3], groups=card, width_per_group=d)
    assert state_shapes(ours) == state_shapes(ref)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    assert_same_function(ours, ref, (3, 64, 64))


def test_spec_field_solved_by_match(tmp_path, capsys):
    spec = tmp_path / "m.yaml"
    quoted = {n: json.dumps(str(SPECS / f"{n}.yaml")) for n in ("resnext50_32x4d", "resnet50")}
    spec.write_text(f"extends: {quoted['resnext50_32x4d']}\nname: matched\ndefaults:\n"
                    f"  base_width: {{match: {quoted['resnet50']}, by: macs}}\n")
    s, _, solved = load_solved(spec)
    assert [x.value for x in solved] == [4] and s.stages[2].base_width == 4
    assert solved[0].target == 4_089_184_256 and solved[0].achieved == 4_230_479_872
    assert main(["build", str(spec), "-o", str(tmp_path / "b")]) == 0
    assert "solved stages[0,1,2,3].base_width = 4: macs 4,230,479,872 = 1.0346 x target" \
        in capsys.readouterr().out
    assert "base_width: 4" in (tmp_path / "b" / "spec.yaml").read_text()


def test_explicit_number_and_single_stage(tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text(f"extends: {SPECS / 'resnet50.yaml'}\nname: deep3\nstages:\n"
                    "  - {depth: 3, width: 256}\n  - {depth: 4, width: 512, stride: 2}\n"
                    "  - {depth: {match: 30000000, by: params}, width: 1024, stride: 2}\n"
                    "  - {depth: 3, width: 2048, stride: 2}\n")
    s, graph, solved = load_solved(spec)
    assert solved[0].field == "stages[2].depth" and abs(solved[0].ratio - 1) < 0.05
    assert s.stages[2].depth == solved[0].value


def solve_error(spec, depth):
    """The error of solving a resnet18 whose first stage's depth is ``depth``."""
    spec.write_text(f"extends: {SPECS / 'resnet18.yaml'}\nname: tiny\n"
                    f"stages:\n  - {{depth: {depth}, width: 64}}\n")
    with pytest.raises(archdsl.SpecError) as info:
        load_solved(spec)
    return str(info.value)


def test_unsolvable_target_says_the_closest(tmp_path):
    spec = tmp_path / "m.yaml"
    assert solve_error(spec, "{match: 1000, by: params}") == (
        f"{spec}:4:13: stages[0].depth: cannot meet params 1,000 within 5%; closest "
        "achievable: depth 1 gives 148,520 (148.520x)")


def test_unreadable_match_target_is_reported_at_the_match(tmp_path):
    """A target spec that can't be read at all is named at the match's line; a problem
    inside a readable target stays at its own line in that file."""
    spec = tmp_path / "m.yaml"
    assert solve_error(spec, "{match: nope.yaml, by: params}") == (
        f"{spec}:4:13: stages[0].depth: match: cannot read 'nope.yaml': no such file")
    (tmp_path / "bad.yaml").write_text("name: bad\nstagez: []\n")
    assert solve_error(spec, "{match: bad.yaml, by: params}").startswith(
        f"{tmp_path / 'bad.yaml'}:2:1: stagez: unknown key")


def test_sweep_cli(tmp_path, capsys):
    base = str(SPECS / "resnext50_32x4d.yaml")
    assert main(["sweep", base, "--grid", "cardinality=1,2,4,8,32", "--grid",
                 "se.ratio=8,16", "--format", "json", "--quiet",
                 "--write", str(tmp_path / "pts")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10 and all(r["error"] is None for r in rows)
    written = sorted(tmp_path.joinpath("pts").glob("*.yaml"))
    assert len(written) == 10
    one = load_spec(tmp_path / "pts" / "cardinality-32_se.ratio-16.yaml")
    assert one.stages[0].cardinality == 32 and one.stages[0].se.ratio == 16
    assert main(["sweep", base, "--grid", "cardinality=1,32", "--max-macs", "3e9",
                 "--format", "csv", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cardinality,params,macs,activations,error" and len(lines) == 2
    assert main(["sweep", base, "--grid", "block=basic", "--quiet"]) == 0
    assert "invalid: " in capsys.readouterr().out


def test_sweep_counts_equal_direct_counts(tmp_path):
    from archdsl.analysis.counts import count
    from archdsl.design import sweep
    from archdsl.spec.loader import load_document

    path = str(SPECS / "resnet50.yaml")
    data, pos = load_document(path, shown=path)
    points = list(sweep(data, pos, path, {"input.size": [160, 224]}))
    assert points[1].macs == count(archdsl.lower(load_spec(path))).total.macs
    assert points[0].macs < points[1].macs


def test_match_cycles_are_spec_errors(tmp_path):
    """A match naming its own file, or a file that matches back, as extends: a cycle at
    the match (it was a RecursionError traceback)."""
    spec = tmp_path / "m.yaml"
    assert solve_error(spec, "{match: m.yaml, by: params}") == (
        f"{spec}:4:13: stages[0].depth: match cycle: m.yaml -> m.yaml")
    (tmp_path / "o.yaml").write_text(f"extends: {SPECS / 'resnet18.yaml'}\nname: o\n"
                                     "stages:\n  - {depth: {match: m.yaml}, width: 64}\n")
    assert solve_error(spec, "{match: o.yaml, by: macs}") == (
        f"{tmp_path / 'o.yaml'}:4:13: stages[0].depth: match cycle: m.yaml -> o.yaml -> m.yaml")
