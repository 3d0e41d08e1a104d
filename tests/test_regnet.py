"""The RegNet family against what we did not write: the rule's stages against timm's and
torchvision's own width code for every model they ship, both roundings, pycls's published
counts, every torchvision RegNet by name (timm's 36 are tests/test_timm_family.py's), and
the rule's refusals as one located line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from helpers import SPECS, state_shapes, torchvision_block_args, torchvision_regnet
from timm.models import regnet as timm_regnet
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import regnet as tv_regnet

from archdsl import build_model, import_spec
from archdsl.analysis.counts import count, pycls_activations
from archdsl.blocks.regnet import RegNetRule
from archdsl.load import load_solved, load_spec, load_spec_with_graph

TV_NAMES = [n for n in torchvision.models.list_models(module=torchvision.models)
            if n.startswith("regnet")]


def timm_stages(cfg: timm_regnet.RegNetCfg) -> list[tuple[int, int, int]]:
    """(width, depth, group width) of each stage, from timm's own functions."""
    widths, _, groups = timm_regnet.generate_regnet(cfg.wa, cfg.w0, cfg.wm, cfg.depth,
                                                    cfg.group_size)
    stage_w = sorted(set(widths))
    depths = [widths.count(w) for w in stage_w]
    ratios = [cfg.bottle_ratio] * len(stage_w)
    stage_w, groups = timm_regnet.adjust_widths_groups_comp(stage_w, ratios, groups,
                                                            cfg.group_min_ratio)
    return list(zip(stage_w, depths, groups, strict=True))


def ours(rule: RegNetRule) -> list[tuple[int, int, int]]:
    return [(s["width"], s["depth"], s["group_width"]) for s in rule.stages()]


@pytest.mark.parametrize("name", sorted(timm_regnet.model_cfgs))
def test_rule_gives_timms_stages(name: str) -> None:
    cfg = timm_regnet.model_cfgs[name]
    rule = RegNetRule(w0=cfg.w0, wa=cfg.wa, wm=cfg.wm, depth=cfg.depth,
                      group_width=cfg.group_size, bottleneck_ratio=cfg.bottle_ratio,
                      rounding="torchvision" if cfg.group_min_ratio else "pycls")
    assert ours(rule) == timm_stages(cfg)


@pytest.mark.parametrize("name", TV_NAMES)
def test_rule_gives_torchvisions_stages(name: str) -> None:
    kw = torchvision_block_args(name)
    params = tv_regnet.BlockParams.from_init_params(**kw)
    rule = RegNetRule(w0=kw["w_0"], wa=kw["w_a"], wm=kw["w_m"], depth=kw["depth"],
                      group_width=kw["group_width"], rounding="torchvision")
    assert ours(rule) == list(zip(params.widths, params.depths, params.group_widths,
                                  strict=True))


def test_the_two_roundings() -> None:
    """regnetx_004 and regnetx_004_tv: the same rule parameters, pycls's and torchvision's
    roundings: the last stage's 392 becomes 384 (timm's regnetx_004) and 400 (torchvision's
    regnet_x_400mf)."""
    pycls, tv = load_spec(SPECS / "regnetx_004.yaml"), load_spec(SPECS / "regnetx_004_tv.yaml")
    assert pycls.stages[-1].width == 384 and tv.stages[-1].width == 400
    with torch.device("meta"):
        refs = timm.create_model("regnetx_004"), torchvision_regnet("regnet_x_400mf")
    for name, ref, n in (("regnetx_004", refs[0], 5_157_512),
                         ("regnetx_004_tv", refs[1], 5_495_976)):
        graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
        assert count(graph).total.params == sum(p.numel() for p in ref.parameters()) == n


# pycls's model zoo (MODEL_ZOO.md): parameters, "flops" (MACs) and activations, to its
# one decimal
PYCLS = {"regnetx_002": (2.7e6, 0.2e9, 2.2e6), "regnetx_040": (22.1e6, 4.0e9, 12.2e6),
         "regnety_040": (20.6e6, 4.0e9, 12.3e6)}


@pytest.mark.parametrize("name", PYCLS)
def test_pycls_published_counts(name: str) -> None:
    graph = load_spec_with_graph(SPECS / f"{name}.yaml")[1]
    t = count(graph).total
    params, macs, acts = PYCLS[name]
    assert round(t.params / 1e5) == round(params / 1e5)
    assert round(t.macs / 1e8) == round(macs / 1e8)
    assert round(pycls_activations(graph) / 1e5) == round(acts / 1e5)


@pytest.mark.parametrize("name", TV_NAMES)
def test_every_torchvision_regnet_by_name(name: str) -> None:
    """Nothing assumed; the same keys and shapes as RegNet(block_params, …) on the meta
    device; parameters = torchvision's = archdsl's count; MACs = FlopCounterMode's."""
    text = import_spec(f"torchvision:{name}")
    assert "# assumed:" not in text
    spec, graph, _ = load_solved(Path("x.yaml"), text=text)
    with torch.device("meta"):
        ref, built = torchvision_regnet(name).eval(), build_model(graph)
    assert state_shapes(built) == state_shapes(ref)
    assert sum(p.numel() for p in ref.parameters()) == count(graph).total.params
    with FlopCounterMode(display=False) as fc:  # at its weights' crop (384 for 128gf)
        ref(torch.empty(1, *graph.input.shape, device="meta"))
    assert count(graph).total.macs == fc.get_total_flops() // 2


def test_deprecated_timm_alias() -> None:
    text = import_spec("timm:regnetz_040h")
    assert "deprecated name regnetz_040h stands for regnetz_040_h" in text
    with torch.device("meta"):
        ref = timm.create_model("regnetz_040_h")
        ours_ = build_model(load_solved(Path("x.yaml"), text=text)[1])
    assert state_shapes(ours_) == state_shapes(ref)


BASE = "name: r\nlayout: timm_regnet\nstem: {kind: regnet}\ndefaults: {block: regnet}\n"
RULE = "regnet: {w0: 24, wa: 24.48, wm: 2.54, depth: 22, group_width: 16"


@pytest.mark.parametrize(("rule", "message"), [
    ("regnet: {w0: 24, wa: 24.48, wm: 1.0, depth: 22, group_width: 16}",
     "5:33: regnet.wm: input should be greater than 1, got 1.0"),
    ("regnet: {w0: 20, wa: 24.48, wm: 2.54, depth: 22, group_width: 16}",
     "5:14: regnet.w0: 20 is not a multiple of q = 8; allowed: multiples of 8"),
    ("regnet: {w0: 24, wa: -1, wm: 2.54, depth: 22, group_width: 16}",
     "5:22: regnet.wa: input should be greater than or equal to 0, got -1"),
    ("regnet: {w0: 24, wa: 24.48, wm: 2.54, depth: 22}",
     "5:9: regnet.group_width: required field is missing"),
    ("regnet: {w0: 24, wa: 8, wm: 2.54, depth: 4, group_width: 16}",
     "5:9: stages: 2 stages; layout timm_regnet holds 4 (its library's network has 4)"),
    (RULE + "}\nstages: [{depth: 1, width: 8}]",
     "5:1: regnet: given with stages, which it gives; allowed: one of regnet and stages"),
])
def test_rule_refusals(rule: str, message: str, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(BASE + rule + "\n")
    out = subprocess.run([sys.executable, "-m", "archdsl", "validate", str(spec)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"{spec}:{message}"), out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_validate_prints_the_stages_the_rule_gives() -> None:
    out = subprocess.run([sys.executable, "-m", "archdsl", "validate",
                          str(SPECS / "regnetx_002.yaml")], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out[1] == ("  regnet: 4 stages: depth 1, width 24, group_width 8, bottleneck_ratio "
                      "1.0, stride 2; depth 1, width 56, group_width 8, bottleneck_ratio 1.0, "
                      "stride 2; depth 4, width 152, group_width 8, bottleneck_ratio 1.0, "
                      "stride 2; depth 7, width 368, group_width 8, bottleneck_ratio 1.0, "
                      "stride 2")


def test_hand_edited_stages_keep_the_family() -> None:
    """The stages a rule gives, written out by hand and changed, are a spec too (the
    per-stage fields stay), and a group width that does not divide is one located line."""
    text = (BASE + "stages:\n  - {depth: 1, width: 24, group_width: 8, stride: 2}\n"
            "  - {depth: 1, width: 56, group_width: 8, stride: 2}\n"
            "  - {depth: 4, width: 152, group_width: 8, stride: 2}\n"
            "  - {depth: 7, width: 368, group_width: 12, stride: 2}\n")
    with pytest.raises(Exception, match=r"9:41: stages\[3\]\.group_width: the bottleneck "
                                        r"width int\(round\(368 × 1\)\) = 368 is not"):
        load_solved(Path("x.yaml"), text=text)
    ok = load_solved(Path("x.yaml"), text=text.replace("group_width: 12", "group_width: 16"))
    assert ok[0].stages[3].group_width == 16


def test_family_page_lists_torchvisions_regnets() -> None:
    """docs/family.md's torchvision table is what benchmarks/family.py --write makes."""
    import timm_family as tf

    page = (SPECS.parent / "docs" / "family.md").read_text()
    assert tf.torchvision_table(tf.shipped_specs()) in page


ALL_TWINS = [f"timm:{n}" for n in timm.list_models(module="regnet")] + \
    [f"torchvision:{n}" for n in TV_NAMES]


@pytest.mark.parametrize("source", ALL_TWINS)
def test_every_regnet_from_a_bare_checkpoint(source: str) -> None:
    """Its state_dict alone imports (import_spec holds the spec's module to every key and
    shape), and with the activation, placement and final activation it cannot tell given,
    it is the spec read from the module."""
    library, _, name = source.partition(":")
    with torch.device("meta"):
        twin = timm.create_model(name) if library == "timm" else torchvision_regnet(name)
    from_module = load_solved(Path("x.yaml"), text=import_spec(source))[0]
    bare = import_spec(twin.state_dict(), {"name": from_module.name})
    assert "# assumed:" in bare
    told = {"input_size": from_module.input.size, "act": from_module.act.kind,
            "placement": from_module.stages[0].placement, "head_act": from_module.head.act}
    if from_module.head.conv or from_module.stages[0].block == "preact_regnet":
        del told["head_act"]  # a final conv's keys, or the RegNetV layout, tell it
    if from_module.stages[0].block == "preact_regnet":
        del told["placement"]  # the layout tells it
    if from_module.norm.group_size:
        told["norm_group_size"] = from_module.norm.group_size
    spec = load_solved(Path("x.yaml"), text=import_spec(
        twin.state_dict(), {"name": from_module.name, **told}))[0]
    assert spec == from_module
