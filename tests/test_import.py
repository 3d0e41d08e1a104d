"""``archdsl import``: specs read back from torchvision's models, from checkpoints with no
name, and the refusals. (All 110 timm architectures imported by name are held to timm in
tests/test_timm_family.py.)

- by name: every torchvision ResNet-family model imports with nothing assumed, to a spec
  whose module has torchvision's keys, shapes and parameters, and computes its function;
- from a state_dict alone: every shipped spec's module (ablations too) imports to the
  shipped spec, given the fields a checkpoint cannot tell; without them, every field
  that differs carries its assumption comment;
- from checkpoint files saved from torchvision and timm models (wrapped, prefixed,
  safetensors), with the flags a construct needs: the same function, loaded strictly;
- refusals: one line, exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
import torchvision
from helpers import (
    SPECS,
    TORCHVISION_TWINS,
    all_specs,
    assert_close,
    make_twin,
    outputs,
    randomised,
    spec_id,
    state_shapes,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl import build_model, import_spec
from archdsl.cli.main import main
from archdsl.importer.infer import WHY
from archdsl.load import load_solved, load_spec
from archdsl.spec.errors import SpecError
from archdsl.spec.schema import Spec

INPUT = (3, 64, 64)


def read_back(text: str) -> Spec:
    return load_solved(Path("imported.yaml"), text=text)[0]


def meta_state(spec: Spec) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_model(spec).state_dict()


def truth(spec: Spec) -> dict[str, Any]:
    """Every field a checkpoint cannot tell, as ``spec`` has it (import_spec's overrides)."""
    stages = spec.stages
    bottlenecks = [s for s in stages if s.block in ("bottleneck", "preact_bottleneck")]
    se = next((s.se for s in stages if s.se is not None), None)
    out: dict[str, Any] = {
        "input_size": list(spec.input.size) if isinstance(spec.input.size, tuple)
        else spec.input.size,
        "strides": [s.stride for s in stages],
        "antialias": spec.antialias.model_dump() if spec.antialias else None,
        "downsample": spec.shortcut.downsample, "conv": spec.conv.kind,
        "conv_eps": spec.conv.eps, "norm_groups": spec.norm.groups, "norm_eps": spec.norm.eps,
        "placement": stages[0].placement, "dropout": spec.head.dropout,
        "act": spec.act.kind, "head_act": spec.head.act,
        "shortcut_form": spec.shortcut.model_dump(include={"form", "scale", "dropout"}),
        "name": spec.name}
    if bottlenecks:
        out["stride_on"] = bottlenecks[0].stride_on
    if getattr(spec.stem, "pool", "conv") != "conv":
        out["stem_pool"] = spec.stem.pool
    if se is not None:
        out["se"] = se.rounding
    resnest = [s for s in stages if s.block == "resnest"]
    if resnest:
        out["avd"] = "before" if resnest[0].avd_first else "after" if resnest[0].avd else "none"
    sk = [s for s in stages if s.block in ("sk_basic", "sk_bottleneck")]
    if sk:
        out["sk_dilations"] = list(sk[0].sk.dilations)
    if spec.norm.group_size is not None:
        del out["norm_groups"]
        out["norm_group_size"] = spec.norm.group_size
    return out


OVERRIDE = {"antialias_kind": "antialias", "gate_form": "shortcut_form", "linear_out": "placement"}


def assumed_keys(text: str) -> set[str]:
    """The assumptions whose comments ``text`` carries; the header counts them all."""
    keys = {k for k, why in WHY.items() if f"assumed: {why}" in text}
    header = " ".join(line for line in text.splitlines() if line.startswith("#"))
    said = int(header.split(" field(s) it cannot tell")[0].rsplit(" ", 1)[-1]) \
        if "field(s) it cannot tell" in header else 0
    assert said == text.count("assumed: ") == len(keys), (said, keys)
    return keys


@pytest.mark.parametrize("name", TORCHVISION_TWINS)
def test_torchvision_by_name(name: str) -> None:
    text = import_spec(f"torchvision:{name}")
    assert "# assumed:" not in text and text == import_spec(f"torchvision:{name}")
    spec = read_back(text)
    with torch.device("meta"):
        ref = make_twin(name)
        ours = build_model(spec)
    assert state_shapes(ours) == state_shapes(ref)
    assert spec == load_spec(SPECS / f"{name}.yaml").model_copy(update={"name": name})


def test_torchvision_outputs() -> None:
    ref = torchvision.models.resnext50_32x4d()
    ours = build_model(read_back(import_spec(ref)))
    randomised(ref, INPUT)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), 1e-4)


@pytest.mark.parametrize("path", all_specs(), ids=spec_id)
def test_shipped_spec_from_its_state_dict(path: Path) -> None:
    """A state_dict alone gives the shipped spec, given what it cannot tell; without
    that, it differs only in fields that carry an assumption comment."""
    shipped = load_spec(path)
    state = meta_state(shipped)
    told = truth(shipped)
    assert read_back(import_spec(state, told)) == shipped
    bare = import_spec(state)
    commented = assumed_keys(bare)
    assert "input_size" in commented  # what a state_dict never holds
    # the overrides that the comments name (an assumed plain conv also leaves its ε)
    named = {OVERRIDE.get(k, k) for k in commented} | {"name"}
    named |= {"conv_eps"} if "conv" in commented else set()
    partly = read_back(import_spec(state, {k: v for k, v in told.items() if k in named}))
    assert partly == shipped


def test_minimal_and_deterministic() -> None:
    text = import_spec(meta_state(load_spec(SPECS / "seresnext50_32x4d.yaml")),
                       {"name": "x"})
    assert text == import_spec(meta_state(load_spec(SPECS / "seresnext50_32x4d.yaml")),
                               {"name": "x"})
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body[:3] == ["name: x", "input:", "  size: 224  # assumed: " + WHY["input_size"]]
    assert "defaults:" in body and "  cardinality: 32" in body and "  base_width: 4" in body
    assert "  - {depth: 3, width: 256}" in body  # depths and widths stay with their stages
    assert not any("expansion" in line or "reduce_first" in line for line in body)


# ------------------------------------------------------------ checkpoint files, no names

# (model, flags for what its checkpoint cannot tell, how it is saved)
CHECKPOINTS = [
    ("torchvision:resnet50", [], "plain"),
    ("torchvision:wide_resnet50_2", [], "state_dict"),
    ("timm:seresnext26d_32x4d", [], "module"),
    ("timm:ecaresnet26t", [], "safetensors"),
    ("timm:resnet26t", [], "model"),
    ("timm:resnetrs50", ["--input-size", "160"], "plain"),
    ("timm:resnet50_gn", [], "plain"),
    ("timm:resnetblur18", ["--anti-alias", "blur"], "plain"),
    ("timm:resnetaa34d", ["--anti-alias", "avg"], "model_state"),
    ("timm:legacy_seresnet50", [], "plain"),
    ("timm:legacy_seresnet18", [], "plain"),
    ("timm:legacy_senet154", [], "plain"),
    ("timm:resnetv2_50d", ["--downsample", "avgpool"], "backbone"),
    ("timm:resnetv2_50x1_bit", ["--conv", "standardized", "--conv-eps", "1e-8",
                                "--stem-pool", "zero_pad_max"], "plain"),
    ("timm:resnetv2_50d_evos", ["--downsample", "avgpool"], "plain"),
    ("timm:resnetv2_50d_frn", ["--downsample", "avgpool"], "plain"),
    ("timm:resnetv2_18d", ["--downsample", "avgpool"], "plain"),
    ("timm:ecaresnet50d_pruned", [], "plain"),
    # timm's training checkpoint: its options (an argparse.Namespace) beside the weights
    ("timm:resnet18d", [], "timm_train"),
    # an older checkpoint, without the BN counters
    ("torchvision:resnet34", [], "no_counters"),
]
DEEP = {"timm:legacy_senet154": [1, 2, 2, 1]}  # blocks a stage, to keep the test short


def reference(source: str) -> torch.nn.Module:
    library, _, name = source.partition(":")
    if library == "torchvision":
        return torchvision.models.get_model(name)
    layers = DEEP.get(source)
    return timm.create_model(name, **({"layers": layers} if layers else {}))


def save(state: dict[str, torch.Tensor], how: str, folder: Path) -> Path:
    if how == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(folder / "ckpt.safetensors"))
        return folder / "ckpt.safetensors"
    wrapped: Any = {
        "plain": state, "state_dict": {"state_dict": state, "epoch": 90},
        "module": {f"module.{k}": v for k, v in state.items()},
        "model": {"model": state, "optimizer": {"lr": 0.1}},
        "model_state": {"model_state": {f"module.{k}": v for k, v in state.items()}},
        "backbone": {f"backbone.{k}": v for k, v in state.items()},
        "timm_train": {"epoch": 3, "arch": "resnet18d", "state_dict": state,
                       "args": argparse.Namespace(lr=0.1, model="resnet18d"),
                       "state_dict_ema": state},
        "no_counters": {k: v for k, v in state.items()
                        if not k.endswith("num_batches_tracked")}}[how]
    torch.save(wrapped, folder / "ckpt.pth")
    return folder / "ckpt.pth"


@pytest.mark.parametrize(("source", "flags", "how"), CHECKPOINTS,
                         ids=[c[0].split(":")[1] for c in CHECKPOINTS])
def test_checkpoint_without_a_name(source: str, flags: list[str], how: str,
                                   tmp_path: Path) -> None:
    ref = randomised(reference(source), INPUT)
    ckpt = save(ref.state_dict(), how, tmp_path)
    out = tmp_path / "spec.yaml"
    assert main(["import", str(ckpt), "-o", str(out), *flags]) == 0
    text = out.read_text()
    assert "input_size" in assumed_keys(text) or "--input-size" in flags
    if how not in ("plain", "safetensors", "no_counters"):
        assert "Unwrapped" in text or "Removed the key prefix" in text
    ours = build_model(out)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_close(outputs(ours, INPUT), outputs(ref, INPUT), 1e-4)
    if flags:  # the flags' fields no longer carry their assumption comments
        bare = import_spec(ckpt)
        assert len(assumed_keys(text)) < len(assumed_keys(bare))
        assert read_back(bare) != read_back(text)


def test_msra_stride_flag_and_comment() -> None:
    state = meta_state(load_spec(SPECS / "resnet50_msra.yaml"))
    bare = import_spec(state)
    assert f"  stride_on: 3x3  # assumed: {WHY['stride_on']}" in bare.splitlines()
    told = read_back(import_spec(state, {"stride_on": "1x1"}))
    assert {s.stride_on for s in told.stages} == {"1x1"}


def test_headless_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = {k: v for k, v in torchvision.models.resnet18().state_dict().items()
             if not k.startswith("fc.")}
    torch.save(state, tmp_path / "trunk.pth")
    assert main(["import", str(tmp_path / "trunk.pth")]) == 2
    assert capsys.readouterr().err.strip().endswith("fc.weight: no classifier (a head-less "
                                                    "model or checkpoint); give the classes "
                                                    "it should have (--classes N)")
    assert main(["import", str(tmp_path / "trunk.pth"), "--classes", "10"]) == 0
    text = capsys.readouterr().out
    assert read_back(text).head.classes == 10 and "--classes" in text


# -------------------------------------------------------------------------- refusals


def refusal(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["import", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize(("source", "line"), [
    ("timm:cspresnet50", "timm:cspresnet50: stem.conv1.bn.act: LeakyReLU has no spec form"),
    ("timm:gcresnet50t", "timm:gcresnet50t: stages.0.0.attn.mlp_add.norm: LayerNorm2d has no "
                         "spec form"),
    ("timm:vit_tiny_patch16_224", "timm:vit_tiny_patch16_224: VisionTransformer: not a "
                                  "ResNet-family network"),
    ("torchvision:mobilenet_v3_small", "torchvision:mobilenet_v3_small: MobileNetV3: not a "
                                       "ResNet-family network"),
    ("timm:resnet55", "timm:resnet55: timm has no model 'resnet55'; did you mean"),
    ("timm:resnet50.no_such_tag", "timm:resnet50.no_such_tag: timm's resnet50 has no tag "
                                  "'no_such_tag'; allowed: "),
    ("torchvision:fcn_resnet50", "torchvision:fcn_resnet50: torchvision has no "
                                 "classification model 'fcn_resnet50'"),
], ids=["leaky-relu", "global-context", "vit", "mobilenet", "unknown",
        "unknown-tag", "segmentation"])
def test_refused_by_name(source: str, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert refusal([source], capsys).startswith(line)


@pytest.mark.parametrize(("kwargs", "where", "what"), [
    ({"act_layer": "gelu"}, "act1", "GELU has no spec form"),
    ({"output_stride": 16}, "layer4.1.conv2", "a dilated conv"),
    ({"drop_path_rate": 0.1}, "layer1.1.drop_path", "stochastic depth (DropPath)"),
    ({"block_args": {"attn_layer": "cbam"}}, "layer1.0.se", "CbamModule has no spec form"),
    ({"global_pool": "max"}, "global_pool", "global max pooling has no spec form"),
    ({"norm_layer": timm.layers.LayerNorm2d}, "bn1", "LayerNorm2d has no spec form"),
], ids=["gelu", "dilation", "drop-path", "cbam", "max-pool-head", "layer-norm"])
def test_refused_module(kwargs: dict[str, Any], where: str, what: str) -> None:
    with torch.device("meta"):
        model = timm.create_model("resnet50", **kwargs)
    with pytest.raises(SpecError) as info:
        import_spec(model)
    assert str(info.value).startswith(f"<ResNet>: {where}: {what}")


def test_refused_what_only_a_forward_shows() -> None:
    """A stem without its max-pool (the CIFAR hack) has a ResNet's keys and shapes: the
    layers' output shapes tell it apart."""
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    model.maxpool = torch.nn.Identity()
    with pytest.raises(SpecError) as info:
        import_spec(model)
    assert str(info.value) == ("<ResNet>: layer1.0.conv1: outputs [64, 112, 112] at a 224x224 "
                               "input, the spec's layer [64, 56, 56]: a stride, pool or padding "
                               "archdsl does not read")


def test_refused_senet_kernel_5() -> None:
    with torch.device("meta"):
        model = timm.create_model("legacy_seresnet50", downsample_kernel_size=5,
                                  downsample_padding=2)
    with pytest.raises(SpecError, match=r"^<SENet>: shortcut.kernel: "):
        import_spec(model)


def test_refused_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, tmp_path / "r18.pth")
    data = (tmp_path / "r18.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    assert refusal([str(tmp_path / "cut.pth")], capsys).startswith(
        f"{tmp_path / 'cut.pth'}: not a readable checkpoint (")
    # a state_dict cut short: its last block lacks its second conv's norm
    partial = {k: v for k, v in state.items() if not k.startswith("layer4.1.bn2.")}
    torch.save(partial, tmp_path / "partial.pth")
    assert refusal([str(tmp_path / "partial.pth")], capsys) == (
        f"{tmp_path / 'partial.pth'}: layer4.1.bn2.bias: is not in the source: a truncated "
        "checkpoint, or a network archdsl reads differently")
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), tmp_path / "mb.pth")
    assert "not a ResNet-family state_dict" in refusal([str(tmp_path / "mb.pth")], capsys)
    torch.save(timm.create_model("cspresnet50").state_dict(), tmp_path / "csp.pth")
    assert "not a ResNet-family state_dict" in refusal([str(tmp_path / "csp.pth")], capsys)
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pth")
    assert refusal([str(tmp_path / "pickled.pth")], capsys).startswith(
        f"{tmp_path / 'pickled.pth'}: it pickles torch.nn.modules.linear.Linear, which safe "
        "loading (weights_only) will not run")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    assert refusal([str(tmp_path / "meta.pth")], capsys) == (
        f"{tmp_path / 'meta.pth'}: not a state_dict (it holds float, int)")
    assert "no such checkpoint file" in refusal([str(tmp_path / "none.pth")], capsys)


def test_bad_override(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    line = refusal([str(tmp_path / "r18.pth"), "--strides", "1,2"], capsys)
    assert line == (f"{tmp_path / 'r18.pth'}: --strides: 2 strides for 4 stages; allowed: one "
                    "a stage")
    line = refusal([str(tmp_path / "r18.pth"), "--se-rounding", "floor"], capsys)
    assert line == f"{tmp_path / 'r18.pth'}: --se-rounding: this network has no SE"
    line = refusal([str(tmp_path / "r18.pth"), "--name", "my model"], capsys)
    assert line.startswith(f"{tmp_path / 'r18.pth'}: --name: 'my model' is not a spec name")


# -------------------------------------------------------------------------- the CLI


def test_done_when(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`archdsl import timm:seresnext26d_32x4d -o s.yaml && archdsl build s.yaml`, and the
    model loads timm's state_dict strictly; without -o the same spec goes to stdout."""
    out = tmp_path / "s.yaml"
    assert main(["import", "timm:seresnext26d_32x4d", "-o", str(out)]) == 0
    assert "nothing assumed" in capsys.readouterr().err
    assert main(["build", str(out), "-o", str(tmp_path / "b")]) == 0
    assert "parameters   16,809,512" in capsys.readouterr().out  # timm's count
    ref = timm.create_model("seresnext26d_32x4d")
    build_model(out).load_state_dict(ref.state_dict(), strict=True)
    assert main(["import", "timm:seresnext26d_32x4d"]) == 0
    # the same spec, but for the modeline's path to the schema (relative to its folder)
    printed, written = capsys.readouterr().out.splitlines(), out.read_text().splitlines()
    assert printed[1:] == written[1:] and printed[0].startswith("# yaml-language-server: ")


def test_modeline_is_one_line_however_deep(tmp_path: Path) -> None:
    """The modeline is never wrapped (a wrapped one is no modeline): an output folder far
    from the checkout's schema (CI's clone sits where a long relative path results); a
    long checkpoint path in the header is wrapped around, never broken."""
    out = tmp_path.joinpath(*["a_rather_long_folder_name"] * 6) / "r18.yaml"
    out.parent.mkdir(parents=True)
    assert main(["import", "torchvision:resnet18", "-o", str(out)]) == 0
    first, second = out.read_text().splitlines()[:2]
    schema = (Path(__file__).resolve().parents[1] / "schema" / "archdsl.schema.json")
    assert len(first) > 88 and first.startswith("# yaml-language-server: $schema=")
    assert (out.parent / first.split("$schema=")[1]).resolve() == schema
    assert second.startswith("# resnet18: imported by archdsl")
    ckpt = out.parent / "resnet18-weights.pth"  # a path longer than a header line
    torch.save(torchvision.models.resnet18().state_dict(), ckpt)
    lines = import_spec(ckpt).splitlines()
    assert len(str(ckpt)) > 86 and any(str(ckpt) in line for line in lines)


def test_docs_refusals_are_what_the_cli_says(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/import.md's refusals by name, line for line."""
    lines = (SPECS.parent / "docs" / "import.md").read_text().splitlines()
    shown = {line.removeprefix("$ archdsl import "): lines[i + 1]
             for i, line in enumerate(lines) if line.startswith("$ archdsl import timm:")
             and "-o" not in line}
    assert len(shown) == 3
    for source, line in shown.items():
        assert refusal([source], capsys) == line


MUTATIONS = st.lists(st.tuples(
    st.sampled_from(("drop", "reshape", "add")), st.integers(0, 10_000),
    st.lists(st.integers(0, 70), max_size=5)), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MUTATIONS)
def test_mangled_state_dicts_never_traceback(mutations: list[Any]) -> None:
    """A state_dict with keys dropped, added or reshaped imports (its spec then holds
    exactly those keys) or is refused in one line; never a traceback."""
    state = {k: tuple(v.shape) for k, v in
             meta_state(load_spec(SPECS / "seresnet18.yaml")).items()}
    keys = list(state)
    for what, i, shape in mutations:
        key = keys[i % len(keys)]
        if what == "drop":
            state.pop(key, None)
        elif what == "reshape":
            state[key] = tuple(shape)
        else:
            state[f"{key}_extra"] = tuple(shape)
    tensors = {k: torch.empty(v, device="meta") for k, v in state.items()}
    try:
        text = import_spec(tensors)
    except SpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("<state_dict>: ")
        return
    ours = {k: v for k, v in state_shapes_meta(read_back(text)).items()
            if k in state or not k.endswith("num_batches_tracked")}
    assert ours == state


def state_shapes_meta(spec: Spec) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in meta_state(spec).items()}


def test_flags_settle_their_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    bare = import_spec(tmp_path / "r18.pth")
    flags = ["--anti-alias", "none", "--shortcut-scale", "0.5", "--input-size", "160x192",
             "--dropout", "0.2", "--placement", "relu_before_add", "--strides", "1,2,2,1"]
    assert main(["import", str(tmp_path / "r18.pth"), *flags]) == 0
    text = capsys.readouterr().out
    spec = read_back(text)
    assert spec.antialias is None and spec.input.size == (160, 192)
    assert (spec.shortcut.form, spec.shortcut.scale, spec.head.dropout) == ("scaling", 0.5, 0.2)
    assert [(s.placement, s.stride) for s in spec.stages] == [
        ("relu_before_add", 1), ("relu_before_add", 2), ("relu_before_add", 2),
        ("relu_before_add", 1)]
    settled = {"antialias", "shortcut_form", "input_size", "dropout", "placement", "strides"}
    assert settled <= assumed_keys(bare) and not settled & assumed_keys(text)
    assert assumed_keys(text) == assumed_keys(bare) - settled


def test_archdsl_module_reads_as_its_checkpoint() -> None:
    shipped = load_spec(SPECS / "resnet50d.yaml")
    with torch.device("meta"):
        model = build_model(shipped)
    text = import_spec(model, truth(shipped))
    assert "<archdsl module>" in text and read_back(text) == shipped


def test_a_timm_tag_names_its_config() -> None:
    text = import_spec("timm:resnetrs50.tf_in1k")
    assert "name: resnetrs50.tf_in1k" in text and "input: {size: 160}" in text


def test_override_errors_and_extras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = torchvision.models.resnet18().state_dict()
    torch.save({"model": {f"model.backbone.{k}": v for k, v in state.items()}},
               tmp_path / "nested.pth")
    assert main(["import", str(tmp_path / "nested.pth"), "--classes", "10"]) == 2
    assert capsys.readouterr().err == (
        f"{tmp_path / 'nested.pth'}: --classes: the source has a classifier (fc.weight) of "
        "1000 classes; allowed: --classes only for a head-less source\n")
    assert main(["import", str(tmp_path / "nested.pth")]) == 0
    out = capsys.readouterr().out
    assert "prefix 'model.'" in out and "prefix 'backbone.'" in out
    with pytest.raises(SpecError, match=r"^<state_dict>: not a state_dict \(it holds str\)$"):
        import_spec({"conv1.weight": "x"})


def test_assumed_conv_eps() -> None:
    state = meta_state(load_spec(SPECS / "resnetv2_50x1_bit.yaml"))
    text = import_spec(state, {"conv": "standardized"})
    assert "conv_eps" in assumed_keys(text) and "conv" not in assumed_keys(text)
    assert "conv_eps" not in assumed_keys(import_spec(state, {"conv": "standardized",
                                                              "conv_eps": 1e-8}))
