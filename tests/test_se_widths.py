"""SE squeeze widths off the power-of-two grid, against timm's own SEModule and ResNet.

Every shipped SE spec has C/r in {4, 8, ..., 128}, where rounding to the nearest multiple
of 8 and truncating agree; C/r = 12 and 20 are where timm's ``make_divisible`` rounds up.
"""

from __future__ import annotations

from functools import partial

import pytest
from helpers import assert_same_function, state_shapes
from timm.layers import SEModule
from timm.models.resnet import BasicBlock, ResNet

import archdsl
from archdsl.load import load_spec_with_graph

INPUT = (3, 64, 64)


@pytest.mark.parametrize("width,ratio", [(192, 16), (320, 16), (48, 4), (80, 4), (100, 3)])
def test_divisor8_squeeze_is_timms(tmp_path, width, ratio):
    spec = tmp_path / "se.yaml"
    spec.write_text(f"name: se\ninput: {{size: 32}}\nstages:\n  - {{depth: 1, width: {width}, "
                    f"block: basic, se: {{ratio: {ratio}, rounding: divisor8}}}}\n")
    _, graph = load_spec_with_graph(spec)
    timm_se = SEModule(width, rd_ratio=1 / ratio)
    assert graph["layer1.0.se.fc1"].shape[0] == timm_se.fc1.out_channels


def test_seresnet_with_off_grid_squeezes_matches_timm(tmp_path):
    """C/r = 192/16 = 12, 320/16 = 20 and 448/16 = 28: timm squeezes to 16, 24 and 32
    (truncation would give 8, 16 and 24)."""
    spec = tmp_path / "se_off_grid.yaml"
    spec.write_text(
        "name: se_off_grid\ninput: {size: 64}\nstem: {kind: classic, width: 64}\n"
        "defaults: {block: basic, se: {ratio: 16, rounding: divisor8}}\n"
        "stages:\n  - {depth: 1, width: 64}\n  - {depth: 1, width: 192, stride: 2}\n"
        "  - {depth: 1, width: 320, stride: 2}\n  - {depth: 1, width: 448, stride: 2}\n"
        "shortcut: {kind: B}\nhead: {classes: 10}\n")
    ours = archdsl.build_model(spec)
    ref = ResNet(BasicBlock, (1, 1, 1, 1), num_classes=10, channels=(64, 192, 320, 448),
                 block_args=dict(attn_layer=partial(SEModule, rd_ratio=1 / 16)))
    squeezes = [getattr(ref, f"layer{i}")[0].se.fc1.out_channels for i in range(1, 5)]
    assert squeezes == [8, 16, 24, 32]
    assert state_shapes(ours) == state_shapes(ref)
    assert_same_function(ours, ref, INPUT)
