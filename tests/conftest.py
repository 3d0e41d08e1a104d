import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The quick tier (`pytest -m quick`): one path through every capability, in about a
# minute and a half. Entries are test ids under tests/, whole functions or single
# parameters; an entry that no longer names a test is an error, not a silent gap.
QUICK = (
    # spec language, errors, extends
    "test_spec_errors.py::test_error_message",
    "test_spec_errors.py::test_reader_gives_what_safe_load_gives",
    "test_spec_errors.py::test_undefined_and_recursive_aliases",
    "test_extends.py",
    "test_cli.py::test_validate_ok",
    "test_cli.py::test_validate_misspelt_key_one_line_exit_2",
    "test_cli.py::test_build_bad_spec_fails_before_torch",
    # hostile input: a sample of the corpus
    "test_hostile.py::test_bad_spec[alias_bomb.yaml]",
    "test_hostile.py::test_bad_spec[wide_flow.yaml]",
    "test_hostile.py::test_bad_spec[yaml_tab.yaml]",
    "test_hostile.py::test_bad_spec[unknown_top_key.yaml]",
    "test_hostile.py::test_safe_yaml_runs_nothing",
    # lowering and counting
    "test_lower.py::test_resnet50_stage_shapes_224",
    "test_lower.py::test_resnet50_node_counts",
    "test_lower.py::test_core_never_imports_torch",
    "test_counts.py::test_counts_equal_torch[resnet50-spec-input]",
    "test_counts.py::test_reference_macs",
    "test_counts.py::test_all_convention_totals_equal_torchvisions_own_work",
    "test_counts.py::test_count_json_cli",
    "test_counters.py::test_every_tool_on_every_twin[seresnet18]",
    "test_counters.py::test_vs_cli_formats",
    # diagrams
    "test_diagram.py::test_every_spec_renders_every_level[resnet50]",
    "test_diagram.py::test_layer_level_is_the_ir",
    "test_diagram.py::test_diagram_cli_formats",
    # plans: every profile on one spec
    "test_fusion_plan.py::test_shipped_profiles",
    "test_fusion_plan.py::test_every_profile_plans_every_spec[resnet50]",
    "test_fusion_plan.py::test_plan_cli",
    "test_int8_plan.py::test_int8_plan_names_each_kernels_precision_and_every_conversion",
    "test_int8_plan.py::test_onnxruntime_int8_plan_is_what_ort_runs[seresnet18]",
    "test_int8_plan.py::test_openvino_int8_plan_is_what_openvino_runs[seresnet18]",
    # build with parity: torchvision and timm
    "test_cli.py::test_build_writes_bundle",
    "test_parity_torchvision.py::test_torchvision_parity[resnet18]",
    "test_parity_timm.py::test_timm_parity[seresnet18]",
    "test_parity_timm.py::test_timm_parity[resnest14d]",
    # import
    "test_import.py::test_done_when",
    "test_import.py::test_checkpoint_without_a_name[resnet50]",
    "test_import.py::test_refused_by_name[leaky-relu]",
    # fuse
    "test_fusion_exec.py::test_fused_module_is_equivalent[resnet18]",
    "test_fusion_exec.py::test_fused_macs_equal_the_plan[resnet50_msra]",
    # exports
    "test_exports.py::test_onnx_round_trip[resnet18]",
    "test_exports.py::test_torchscript_round_trip[resnet18]",
    "test_exports.py::test_generated_python_reads_like_torchvision",
    "test_exports.py::test_exported_python_needs_only_torch",
    "test_exports.py::test_exact_checkpoint_loads_strictly",
    # report and schema
    "test_report.py::test_self_contained",
    "test_serve.py::test_render_gives_counts_or_the_clis_error",
    "test_serve.py::test_live_page_in_chromium",
    "test_docs.py::test_committed_schemas_are_current",
    "test_docs.py::test_shipped_spec_against_schemas[resnet50]",
    "test_docs.py::test_generated_docs_are_current",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "quick: the quick tier, one path through every "
                                       "capability (pytest -m quick)")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)  # one worker per core; two threads each would contend


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ids = {item: item.nodeid.split("tests/", 1)[-1] for item in items}
    used = set()
    for item, nodeid in ids.items():
        for entry in QUICK:
            if nodeid == entry or nodeid.split("[")[0] == entry or \
                    nodeid.split("::")[0] == entry:
                item.add_marker(pytest.mark.quick)
                used.add(entry)
    # only a whole-file (or whole-suite) collection can tell a stale entry from a
    # narrowed selection (node ids, -k, -m, --lf)
    narrowed = (any("::" in a for a in config.args) or config.getoption("keyword")
                or config.getoption("markexpr") or config.getoption("lf", False))
    files = {nodeid.split("::")[0] for nodeid in ids.values()}
    stale = [] if narrowed else [e for e in QUICK
                                 if e.split("::")[0] in files and e not in used]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py QUICK names no test: {', '.join(stale)}")
