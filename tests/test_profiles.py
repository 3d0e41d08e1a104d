"""Device profiles of one's own: checked as specs are (one line, ``file:line:col: field:
what is wrong``, naming the unknown or misspelled key; every IR op but ``input`` given its
kernels), refused with exit status 2 by every command that takes ``--device FILE``, and,
once valid, usable wherever a shipped profile is."""

from __future__ import annotations

import inspect
import re

import pytest
from helpers import ROOT, SPECS

from archdsl.cli.main import main
from archdsl.fusion.planner import plan_for
from archdsl.fusion.profiles import builtin_names, load_profile
from archdsl.fusion.report import render_plan
from archdsl.fusion.rules import OPTIONS, RULES
from archdsl.load import load_spec_with_graph
from archdsl.spec.errors import SpecError

SHIPPED = ROOT / "archdsl" / "fusion" / "profiles"
SPEC = str(SPECS / "resnet10t.yaml")


def edited(tmp_path, base, old, new, name="mine.yaml"):
    """A copy of a shipped profile with ``old`` replaced by ``new`` (once)."""
    text = (SHIPPED / f"{base}.yaml").read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {base}.yaml"
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


# (shipped profile, text in it, what replaces it, the error after the file's path)
BAD = [
    ("openvino-cpu", "act_one_reader: true", "act_one_readr: true",
     ":44:5: rules[6].act_one_readr: unknown key; did you mean 'act_one_reader'? allowed: "
     "id, kernel, source, norms, act_one_reader, per_op"),
    ("openvino-cpu", "act_one_reader: true", 'act_one_reader: "yes"',
     ":44:21: rules[6].act_one_reader: expected true or false, got 'yes'"),
    ("openvino-cpu", "norms: [group_norm]", "norms: [group_nrom]",
     ":43:13: rules[6].norms[0]: 'group_nrom' is not an IR op or op family; did you mean "
     "'group_norm'? allowed: input, conv2d, channel_conv, linear, batch_norm, group_norm, "
     "evonorm_s0, frn, relu, silu, sigmoid, add, mul, one_minus, scale, max_pool, avg_pool, "
     "blur_pool, global_avg_pool, flatten, dropout, pad, pad_channels, slice, concat, "
     "split_sum, split_softmax, radix_softmax, conv, norm, activation, elementwise, pool, "
     "reduce, view"),
    ("openvino-cpu", "    ops: [group_norm]\n", "",
     ":47:5: rules[7].ops: required field is missing"),
    ("openvino-cpu", "layouts_unmodelled: [", "layout_unmodelled: [",
     ":18:3: engine.layout_unmodelled: unknown key; did you mean 'layouts_unmodelled'? "
     "allowed: name, version, modelled, count, settings, labels, verified_isa, "
     "isa_dependent, layouts_unmodelled"),
    ("openvino-cpu", '  version: "2026.4.0"\n', "",
     ":10:3: engine.version: required field is missing (or modelled: true)"),
    ("x86-onednn", 'version: "2.14.1"', "version: 2.14",
     ":9:12: engine.version: expected a string, got 2.14"),
    ("eager", "\nrules:", "\nrule_order: [bn_fold]\nrules:",
     ":7:1: rule_order: unknown key; allowed: name, description, models, modelled_from, "
     "hardware, executes, engine, rules, ops, int8"),
    ("eager", "  - id: bn_fold\n    kernel", "  - kernel",
     ":8:5: rules[0].id: required field is missing"),
    ("eager", "  - id: bn_fold\n", "  - id: bn_folding\n",
     ":8:9: rules[0].id: 'bn_folding' is not a fusion rule; did you mean 'bn_fold'? "
     f"allowed: {', '.join(RULES)}"),
    ("eager", "  - id: bn_fold\n", "  - id: bn_fold\n    activations: [relu]\n",
     ":9:5: rules[0].activations: unknown key; allowed: id, kernel, source, before"),
    ("eager", "  dropout: [dropout]\n", "",
     ":34:3: ops: no kernels for dropout; every IR op but input needs its list of kernels "
     "([] for one the device drops), its own or its family's (families: conv, linear, norm, "
     "activation, elementwise, pool, reduce, view)"),
    ("eager", "  conv2d: [conv2d]", "  conv3d: [conv2d]",
     ":34:3: ops.conv3d: unknown key; did you mean 'conv2d'? allowed: input, conv2d, "
     "channel_conv, linear, batch_norm, group_norm, evonorm_s0, frn, relu, silu, sigmoid, add, "
     "mul, one_minus, scale, max_pool, avg_pool, blur_pool, global_avg_pool, flatten, "
     "dropout, pad, pad_channels, slice, concat, split_sum, split_softmax, radix_softmax, "
     "conv, norm, activation, elementwise, pool, reduce, view, avg_pool.same"),
    ("eager", "  avg_pool.same: [pad, avg_pool2d]", "  max_pool.same: [pad, max_pool2d]",
     ":45:3: ops.max_pool.same: unknown key; did you mean 'avg_pool.same'? allowed: input, "
     "conv2d, channel_conv, linear, batch_norm, group_norm, evonorm_s0, frn, relu, silu, "
     "sigmoid, add, mul, one_minus, scale, max_pool, avg_pool, blur_pool, global_avg_pool, "
     "flatten, dropout, pad, pad_channels, slice, concat, split_sum, split_softmax, "
     "radix_softmax, conv, norm, activation, elementwise, pool, reduce, view, avg_pool.same"),
    ("eager", "  relu: [relu]", "  relu: relu",
     ":40:9: ops.relu: expected a list, got 'relu'"),
    ("eager", "hardware: [cpu, cuda]", "hardware: [cpu, tpu]",
     ":5:17: hardware[1]: 'tpu' is not hardware archdsl runs on; did you mean 'cpu'? allowed: "
     "cpu, cuda"),
    ("eager", "name: eager\n", "",
     ":2:1: name: required field is missing"),
    ("eager", "name: eager\n", "name: eager\nname: again\n",
     ":3:1: name: duplicate key 'name' (first given at line 2); each key may appear once"),
    ("eager-cuda", "executes: [", "executes: [conv_relu, ",
     ":8:12: executes[0]: 'conv_relu' is not a rule archdsl.fuse() carries out; "
     "allowed: bn_fold, bn_fold_forward, scale_fold, horizontal_merge, sum_merge, "
     "se_axpy, kernel1_pool, dropout_elim, conv_act, conv_add_act"),
    ("eager-cuda", "cudnn_conv_relu\n    activations: [relu]",
     "cudnn_conv_relu\n    activations: [relu, sigmoid]",
     ":23:18: rules[3].activations: archdsl.fuse() runs this rule as cuDNN's conv+ReLU "
     "kernel: it needs activations: [relu]"),
]


@pytest.mark.parametrize("base, old, new, want", BAD, ids=[w.split(": ")[1] for *_, w in BAD])
def test_a_profile_that_cannot_be_used_is_one_line_at_its_place(tmp_path, base, old, new,
                                                                 want):
    path = edited(tmp_path, base, old, new)
    with pytest.raises(SpecError) as err:
        load_profile(path)
    assert str(err.value) == f"{path}{want}"


@pytest.mark.parametrize("text, want", [
    ("", ":1:1: the file is empty; a profile is a mapping with at least name and ops"),
    ("# nothing yet\n", ":1:1: the file is empty; a profile is a mapping with at least name "
                        "and ops"),
    ("- name: x\n", ":1:1: the top level must be a mapping (key: value lines), not a list"),
])
def test_a_profile_that_is_not_a_mapping_is_one_line(tmp_path, text, want):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_profile(path)
    assert str(err.value) == f"{path}{want}"


def test_every_option_a_rule_reads_is_in_the_schema():
    """The schema lists what each rule reads (rules.OPTIONS): an option a rule reads but
    the schema lacks would be refused in every profile; one the schema lists but no rule
    reads would be accepted and do nothing."""
    for rid, fn in RULES.items():
        read = set(re.findall(r'options(?:\.get\(|\[)"(\w+)"', inspect.getsource(fn)))
        assert read == set(OPTIONS[rid]), rid


def test_every_shipped_profile_passes_the_schema():
    for name in builtin_names():
        assert load_profile(name).name == name


# every command with --device, with what else it needs; none may write anything
DEVICE_COMMANDS = [["plan"], ["build", "-o", "{out}"], ["report", "-o", "{out}"],
                   ["diagram", "-o", "{out}"],
                   ["export", "--format", "onnx", "--fused", "-o", "{out}"], ["bench"]]


@pytest.mark.parametrize("command", DEVICE_COMMANDS, ids=lambda c: c[0])
def test_every_device_option_refuses_a_bad_profile_file_with_exit_2(tmp_path, command,
                                                                    capsys):
    path = edited(tmp_path, "openvino-cpu", "act_one_reader: true", "act_one_readr: true")
    out = tmp_path / "out"
    args = [a.replace("{out}", str(out)) for a in command]
    assert main([args[0], SPEC, *args[1:], "--device", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:44:5: rules[6].act_one_readr: unknown key; did you mean "
                          "'act_one_reader'?")
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("command", DEVICE_COMMANDS, ids=lambda c: c[0])
def test_every_device_option_refuses_an_unknown_name_with_exit_2(tmp_path, command, capsys):
    out = tmp_path / "out"
    args = [a.replace("{out}", str(out)) for a in command]
    assert main([args[0], SPEC, *args[1:], "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archdsl: --device: unknown device 'tpu'; shipped profiles: ")
    assert err.count("\n") == 1 and not out.exists()


def test_a_profile_of_ones_own_plans_in_every_format_and_builds(tmp_path, capsys):
    path = edited(tmp_path, "eager", "name: eager\n", "name: mydev\n", name="mydev.yaml")
    graph = load_spec_with_graph(SPEC)[1]
    p = plan_for(graph, path)
    assert p.device == "mydev" and p.profile == load_profile(path)
    assert render_plan(p, "text").startswith("resnet10t on mydev: PyTorch eager mode")
    for fmt, head in (("text", "resnet10t on mydev: "), ("markdown", "# Fusion plan: "
                                                         "resnet10t on `mydev`")):
        assert main(["plan", SPEC, "--device", str(path), "--format", fmt]) == 0
        assert capsys.readouterr().out.startswith(head)
    out = tmp_path / "bundle"
    assert main(["build", SPEC, "--device", str(path), "-o", str(out)]) == 0
    assert (out / "plan.md").read_text().startswith("# Fusion plan: resnet10t on `mydev`")


def test_the_documented_profile_loads(tmp_path):
    """docs/architecture.md's example of a profile of one's own passes the schema."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```yaml\n(# my-npu\.yaml\n.*?)```", text, re.S).group(1)
    path = tmp_path / "my-npu.yaml"
    path.write_text(block)
    assert [u.id for u in load_profile(path).rules] == ["bn_fold", "conv_act"]
