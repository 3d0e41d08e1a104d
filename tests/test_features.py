"""Built modules as backbones, held to timm's ``features_only`` and classifier interface:

- for every timm twin (tests/timm_family.py), the feature maps' channels, reductions and
  (stages; the stem where the layout is timm's) module names equal ``feature_info``'s of
  timm's ``create_model(name, features_only=True)``;
- for a sample of every construct, the maps themselves (randomised weights, 64x64, deep
  nets two blocks a stage), at timm's default and at chosen ``out_indices``;
- both again at ``output_stride`` 16 and 8 for every twin that takes it (all but
  senet.py's): the later stages dilated, not strided;
- a dilated network's counts equal torch's counter on timm's (a sample at 8);
- ``num_classes=0``, ``forward_features``, ``forward_head`` and ``reset_classifier`` as
  timm's; the spec's ``features`` and ``head.classes: 0`` say the same in a file.
"""

from __future__ import annotations

import pytest
import timm
import timm_family as tf
import torch
from helpers import PARITY_RTOL, SPECS, assert_close, outputs, randomised
from test_timm_family import SAMPLE, reduced
from torch.utils.flop_counter import FlopCounterMode

import archdsl
from archdsl.analysis.counts import count
from archdsl.ir.features import backbone, feature_info
from archdsl.load import respec
from archdsl.lower import lower

RTOL = PARITY_RTOL  # float error grows with depth: 1.1e-5 by BiT-50's last stage
INPUT = (3, 64, 64)


def timm_features(name: str, layers: tuple[int, ...] | None = None, **kw: object
                  ) -> torch.nn.Module:
    depth = {} if layers is None else {"layers": list(layers)}
    return timm.create_model(name, pretrained=False, features_only=True, **depth, **kw)


DILATED = [n for n in tf.all_names() if n not in tf.model_names("senet")]
STRIDES = [(n, None) for n in tf.all_names()] + [(n, s) for s in (16, 8) for n in DILATED]


@pytest.mark.parametrize("name,stride", STRIDES)
def test_feature_info(name: str, stride: int | None) -> None:
    spec = tf.load(tf.spec_for(name))[0]
    kw = {} if stride is None else {"output_stride": stride}
    with torch.device("meta"):
        ref = timm_features(name, **kw).feature_info
    graph = lower(respec(spec, output_stride=stride))
    ours = feature_info(backbone(graph, tuple(range(len(spec.stages) + 1))))
    assert ours.channels() == ref.channels()
    assert ours.reduction() == ref.reduction()
    # torchvision's layout (timm's resnet.py but for the names of activations) calls the
    # stem's activation relu where timm calls it act1
    assert [{"relu": "act1"}.get(m, m) for m in ours.module_name()] == ref.module_name()


def _twins(name: str, layers: tuple[int, ...] | None, **kw: object
           ) -> tuple[torch.nn.Module, torch.nn.Module]:
    """timm's features_only module and archdsl's, carrying the same randomised weights
    (timm's full model's: the backbone's state is the start of it, in order)."""
    full = randomised(timm.create_model(name, pretrained=False, **(
        {} if layers is None else {"layers": list(layers)})), INPUT)
    ref = timm_features(name, layers, **kw).eval()
    values = list(full.state_dict().values())
    keys = list(ref.state_dict())
    ref.load_state_dict(dict(zip(keys, values[:len(keys)], strict=True)), strict=True)
    spec = tf.load(tf.spec_for(name, layers))[0]
    ours = archdsl.build_model(spec, features_only=True, out_indices=kw.get("out_indices"),
                               output_stride=kw.get("output_stride"))
    missing, unexpected = ours.load_state_dict(full.state_dict(), strict=False)
    assert not missing and all(k not in ours.state_dict() for k in unexpected)
    return ours.eval(), ref


@pytest.mark.parametrize("name,stride", [(n, None) for n in SAMPLE] + [
    (n, s) for s in (16, 8) for n in SAMPLE if n in DILATED])
def test_feature_maps(name: str, stride: int | None) -> None:
    ours, ref = _twins(name, reduced(name), **({} if stride is None else {
        "output_stride": stride}))
    got, want = outputs(ours, INPUT), outputs(ref, INPUT)
    assert len(got) == len(want) == len(ref.feature_info)
    for a, b in zip(got, want, strict=True):
        assert_close(a, b, RTOL)
    assert ours.feature_info.channels() == ref.feature_info.channels()


@pytest.mark.parametrize("name,indices", [("resnet18d", (1, 2, 3, 4)), ("regnetx_002", (0, 2)),
                                          ("resnetv2_50x1_bit", (3,))])
def test_out_indices(name: str, indices: tuple[int, ...]) -> None:
    ours, ref = _twins(name, reduced(name), out_indices=indices)
    got, want = outputs(ours, INPUT), outputs(ref, INPUT)
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want]
    for a, b in zip(got, want, strict=True):
        assert_close(a, b, RTOL)
    assert [f.index for f in ours.feature_info] == list(indices)


@pytest.mark.parametrize("name", ["resnet50", "resnetv2_50", "regnetz_005"])
def test_classifier_interface(name: str) -> None:
    ref = randomised(timm.create_model(name, pretrained=False), INPUT)
    ours = archdsl.build_model(SPECS / f"{name}.yaml").eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn((2, *INPUT), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        f = ref.forward_features(x)
        assert_close(ours.forward_features(x), f, RTOL)
        assert_close(ours.forward_head(f), ref.forward_head(f), RTOL)
        assert_close(ours.forward_head(f, pre_logits=True), ref.forward_head(f, True), RTOL)
        ref.reset_classifier(0)
        ours.reset_classifier(0)
        assert_close(ours(x), ref(x), RTOL)
    ours.reset_classifier(7)
    assert ours(x).shape == (2, 7)
    assert archdsl.analysis.counts.count(ours.archdsl_graph).total.params == \
        sum(p.numel() for p in ours.parameters())


def test_num_classes_zero_is_timms_pooled_features() -> None:
    ref = randomised(timm.create_model("resnet18", pretrained=False, num_classes=0), INPUT)
    ours = archdsl.build_model(SPECS / "resnet18.yaml", num_classes=0).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), RTOL)


def test_spec_fields_say_the_same(tmp_path) -> None:
    path = tmp_path / "r18_backbone.yaml"
    path.write_text(f"extends: {SPECS / 'resnet18.yaml'}\nname: r18_backbone\n"
                    "features: [2, 4]\n")
    spec, graph = archdsl.load.load_spec_with_graph(path)
    built = archdsl.build_model(path)
    assert [tuple(t.shape) for t in built(torch.zeros(1, 3, 224, 224))] == \
        [(1, 128, 28, 28), (1, 512, 7, 7)]
    assert graph.output.name == "layer4.1.relu2"  # a backbone's graph ends at its last map
    assert "fc.weight" not in built.state_dict()
    path.write_text(f"extends: {SPECS / 'resnet18.yaml'}\nname: r18_backbone\n"
                    "features: [2, 7]\n")
    with pytest.raises(archdsl.SpecError, match="feature 7 of a network of 4 stages"):
        archdsl.load_spec(path)


@pytest.mark.parametrize("name", [n for n in SAMPLE if n in DILATED])
def test_dilated_counts_equal_timms(name: str) -> None:
    """A dilated network's analytic counts (the full classifier at 224x224) equal torch's
    own counter on timm's dilated model: dilation keeps the weights and the maps grow."""
    graph = lower(respec(tf.load(tf.spec_for(name))[0], output_stride=8))
    with torch.device("meta"):
        ref = timm.create_model(name, pretrained=False, output_stride=8).eval()
        x = torch.empty((1, *graph.input.shape))
    with FlopCounterMode(display=False) as fc:
        ref(x)
    c = count(graph)
    assert (c.total.params, c.total.macs) == (
        sum(p.numel() for p in ref.parameters()), fc.get_total_flops() // 2)
