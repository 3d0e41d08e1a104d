"""Every ResNet timm registers (resnet.py 81, resnetv2.py 20, senet.py 9), every
RegNet (regnet.py 36), ResNeSt (resnest.py 8), SKNet (sknet.py 5) and Res2Net
(res2net.py 9) as the spec
``archdsl import timm:NAME`` reads back from timm's module (tests/timm_family.py), held
to timm:

- on the meta device, the same state_dict keys and shapes, the same parameter count as
  timm's module, archdsl's module and archdsl's analytic count;
- archdsl's MACs equal FlopCounterMode's on timm's module, at timm's default input size;
- for a sample that covers every construct, the same function (randomised weights loaded
  strictly, at 64x64, deep ResNets cut to two blocks a stage on both sides; RegNets,
  whose depth is their rule's, whole).

Every one imports with nothing assumed; the importer's refusals and checkpoint reading
are tests/test_import.py's.
"""

from __future__ import annotations

import functools

import pytest
import timm
import timm_family as tf
import torch
from helpers import DEEP, SPECS, TIMM_TWINS, assert_same_function, state_shapes
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archdsl import build_model
from archdsl.analysis.counts import count
from archdsl.ir.graph import Graph
from archdsl.load import load_spec

NAMES = tf.all_names()
INPUT = (3, 64, 64)

# every construct at least once: basic/bottleneck/mixed stages, classic/deep/tiered
# stems, the conv stem pool, SE (divisor8, ratio 4, floor), ECA, blur and avg
# anti-aliasing, GroupNorm, ResNet-D shortcuts, 3x3 projections, reduce_first, the
# stride on the 1x1, ceil-mode and zero-pad stem pools, the four layouts, BiT's
# standardised convs, EvoNorm-S0 and FRN, the legacy SE basic block, pruned widths
SAMPLE = ["resnet18d", "resnet26d", "resnet14t", "seresnext26t_32x4d", "ecaresnetlight",
          "resnetblur18", "resnetaa34d", "resnetrs50", "resnet50_gn", "test_resnet",
          "senet154", "legacy_senet154", "legacy_seresnet50", "legacy_seresnet18",
          "legacy_seresnext26_32x4d", "resnetv2_18d", "resnetv2_50t", "resnetv2_50d_gn",
          "resnetv2_50x1_bit", "resnetv2_50d_evos", "resnetv2_50d_frn", "ecaresnet50d_pruned",
          # RegNet: X (pycls's and torchvision's roundings), Y's SE, GroupNorm by group
          # size with SiLU, V's pre-activation with an average-pool projection and a final
          # act, Z's 4x bottleneck without first shortcuts, linear out and final conv/act
          "regnetx_002", "regnetx_004_tv", "regnety_002", "regnety_040_sgn", "regnetv_064",
          "regnetz_005", "regnetz_040",
          # ResNeSt: radix 2 with the avd pool after, radix 4 in 2 groups before it, radix 1's
          # sigmoid; SKNet: split-input basic and bottleneck, the grouped unsplit paths;
          # Res2Net: 4 and 8 splits, grouped splits, the deep stem with a pooled projection
          "resnest14d", "resnest50d_4s2x40d", "resnest50d_1s4x24d", "skresnet18",
          "skresnet50d", "skresnext50_32x4d", "res2net50_14w_8s", "res2next50", "res2net50d"]


def graph_of(text: str) -> Graph:
    return tf.load(text)[1]


@functools.lru_cache(maxsize=2)
def timm_meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, pretrained=False).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shape_diff(ours: dict[str, tuple[int, ...]], ref: dict[str, tuple[int, ...]]) -> str:
    """A short account of how two state_dict shape tables differ."""
    missing = [k for k in ref if k not in ours]
    extra = [k for k in ours if k not in ref]
    shapes = [f"{k}: {ours[k]} vs timm {ref[k]}" for k in ref if k in ours and ours[k] != ref[k]]
    return (f"missing {len(missing)} {missing[:6]}; unexpected {len(extra)} {extra[:6]}; "
            f"shapes {len(shapes)} {shapes[:6]}")


def test_registry() -> None:
    assert {m: len(tf.model_names(m)) for m in tf.MODULES} == {
        "resnet": 81, "resnetv2": 20, "senet": 9, "regnet": 36, "resnest": 8, "sknet": 5,
        "res2net": 9}
    assert len(NAMES) == len(set(NAMES)) == 168
    assert set(SAMPLE) <= set(NAMES)


@pytest.mark.parametrize("name", TIMM_TWINS)
def test_generated_equals_shipped_spec(name: str) -> None:
    """Where a shipped spec is a timm twin, the generated one is the same network (the
    shipped specs are written at 224; timm's default input may differ)."""
    shipped = load_spec(SPECS / f"{name}.yaml")
    ours = tf.load(tf.spec_for(name))[0]
    assert ours.model_copy(update={"input": shipped.input}) == shipped


@pytest.mark.parametrize("name", NAMES)
def test_keys_shapes_params(name: str) -> None:
    text = tf.spec_for(name)
    assert "# assumed:" not in text  # a module tells everything
    graph = graph_of(text)
    ref = timm_meta(name)
    with torch.device("meta"):
        ours = build_model(graph)
    a, b = state_shapes(ours), state_shapes(ref)
    assert a == b, shape_diff(a, b)
    assert n_params(ours) == n_params(ref) == count(graph).total.params


@pytest.mark.parametrize("name", NAMES)
def test_macs(name: str) -> None:
    """archdsl's MACs are FlopCounterMode's on timm's module at timm's input size."""
    graph = graph_of(tf.spec_for(name))
    ref = timm_meta(name)
    assert tuple(graph.input.shape) == tuple(ref.pretrained_cfg["input_size"])
    x = torch.empty((1, *graph.input.shape), device="meta")
    with FlopCounterMode(display=False) as fc:
        ref(x)
    assert count(graph).total.macs == fc.get_total_flops() // 2


def reduced(name: str) -> tuple[int, ...] | None:
    """Two blocks a stage for a ResNet deeper than 50 layers (helpers.DEEP blocks); a
    RegNet whole (timm's RegNet takes no ``layers``)."""
    if name in tf.model_names("regnet"):
        return None
    layers = [s.depth for s in tf.load(tf.spec_for(name))[0].stages]
    return None if sum(layers) <= DEEP else tuple(min(d, 2) for d in layers)


@pytest.mark.parametrize("name", SAMPLE)
def test_outputs(name: str) -> None:
    layers = reduced(name)
    graph = graph_of(tf.spec_for(name, layers))
    ref = timm.create_model(name, pretrained=False, **({} if layers is None else
                                                       {"layers": list(layers)}))
    assert_same_function(build_model(graph), ref, INPUT)


def test_family_page_is_current() -> None:
    """docs/family.md's table is what benchmarks/family.py --write makes of the specs this
    file checks."""
    page = (SPECS.parent / "docs" / "family.md").read_text()
    assert tf.family_table(tf.shipped_specs()) in page
