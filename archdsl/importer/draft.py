"""A spec read back from a network, with what the reading could not tell.

An importer fills a ``Draft``: the spec mapping, and for each field it had to pick without
evidence the reason it could not be told (``Draft.assume``; ``FIELDS`` says where the
field sits, where its comment goes and the flag that sets it). Reading a module settles
assumptions from its attributes; flags settle them by hand. What is left is written as a
comment on the field it concerns (archdsl.importer.write). Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..spec.errors import SpecError

Spec = dict[str, Any]


def refuse(source: str, where: str, what: str) -> SpecError:
    """The one-line refusal ``SOURCE: WHERE: WHAT`` (exit status 2)."""
    return SpecError(what, file=source, field=where or None)


def _stages(spec: Spec, blocks: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [s for s in spec["stages"] if not blocks or s["block"] in blocks]


def _set_strides(spec: Spec, v: list[int]) -> None:
    if len(v) != len(spec["stages"]):
        raise ValueError(f"{len(v)} strides for {len(spec['stages'])} stages; allowed: one "
                         "a stage")
    for stage, s in zip(spec["stages"], v, strict=True):
        stage["stride"] = s


def _set_each(key: str, *blocks: str) -> Callable[[Spec, Any], None]:
    def setter(spec: Spec, v: Any) -> None:
        for stage in _stages(spec, blocks):
            stage[key] = v
    return setter


def _set_in(section: str, key: str) -> Callable[[Spec, Any], None]:
    def setter(spec: Spec, v: Any) -> None:
        spec.setdefault(section, {})[key] = v
    return setter


def _set_antialias(spec: Spec, v: Any) -> None:
    spec["antialias"] = v


def _set_form(spec: Spec, v: dict[str, Any]) -> None:
    spec["shortcut"].update(v)


def _set_se(spec: Spec, v: dict[str, Any]) -> None:
    for stage in spec["stages"]:
        if stage.get("se") is not None:
            stage["se"] = dict(v)


def _set_act(spec: Spec, v: str) -> None:
    """The network's activation; a RegNet's SE (sized from its input) takes it too, as
    pycls's, timm's and torchvision's do."""
    spec["act"] = {"kind": v}
    for stage in spec["stages"]:
        if isinstance(stage.get("se"), dict) and stage["se"].get("of") == "input":
            stage["se"]["act"] = v


def _set_group_size(spec: Spec, v: int) -> None:
    """Channels a group instead of a group count (timm's GroupNormAct(group_size=...))."""
    spec["norm"].pop("groups", None)
    spec["norm"]["group_size"] = v


_AVD = {"after": {"avd": True, "avd_first": False}, "before": {"avd": True, "avd_first": True},
        "none": {"avd": False, "avd_first": False}}


def _set_avd(spec: Spec, v: str) -> None:
    """ResNeSt's avd pool: after the split-attention conv, before it, or none."""
    for stage in _stages(spec, ("resnest",)):
        stage.update(_AVD[v])


def _set_sk_dilations(spec: Spec, v: list[int]) -> None:
    for stage in _stages(spec, ("sk_basic", "sk_bottleneck")):
        stage["sk"] = {**stage.get("sk", {}), "dilations": list(v)}


@dataclass(frozen=True)
class Field:
    """An assumable field: how it is set in the spec, where its comment goes (``stages``
    fields are commented where ``defaults`` holds them, else on ``stages``), and the
    command-line flag that sets it."""

    set: Callable[[Spec, Any], None]
    comment_at: tuple[str, ...]
    flag: str


BOTTLENECKS = ("bottleneck", "preact_bottleneck")

FIELDS: dict[str, Field] = {
    "input_size": Field(_set_in("input", "size"), ("input", "size"), "--input-size"),
    "strides": Field(_set_strides, ("stages",), "--strides"),
    "stride_on": Field(_set_each("stride_on", *BOTTLENECKS), ("defaults", "stride_on"),
                       "--stride-on"),
    "stem_pool": Field(_set_in("stem", "pool"), ("stem", "pool"), "--stem-pool"),
    "antialias": Field(_set_antialias, ("antialias",), "--anti-alias"),
    "downsample": Field(_set_in("shortcut", "downsample"), ("shortcut", "downsample"),
                        "--downsample"),
    "conv": Field(_set_in("conv", "kind"), ("conv", "kind"), "--conv"),
    "conv_eps": Field(_set_in("conv", "eps"), ("conv", "eps"), "--conv-eps"),
    "norm_groups": Field(_set_in("norm", "groups"), ("norm", "groups"), "--norm-groups"),
    "norm_group_size": Field(_set_group_size, ("norm", "group_size"), "--norm-group-size"),
    "norm_eps": Field(_set_in("norm", "eps"), ("norm", "eps"), "--norm-eps"),
    "se": Field(_set_se, ("defaults", "se"), "--se-rounding"),
    "placement": Field(_set_each("placement"), ("defaults", "placement"), "--placement"),
    "shortcut_form": Field(_set_form, ("shortcut", "form"), "--shortcut-form"),
    "dropout": Field(_set_in("head", "dropout"), ("head", "dropout"), "--dropout"),
    "act": Field(_set_act, ("act", "kind"), "--act"),
    "head_act": Field(_set_in("head", "act"), ("head", "act"), "--head-act"),
    "avd": Field(_set_avd, ("defaults", "avd"), "--avd"),
    "sk_dilations": Field(_set_sk_dilations, ("defaults", "sk"), "--sk-dilations"),
}


@dataclass
class Draft:
    """A spec mapping being read, its open assumptions, and notes for the header."""

    spec: Spec
    assumed: dict[str, str] = field(default_factory=dict)  # field: why it is assumed
    notes: list[str] = field(default_factory=list)
    # the values a source may take for an assumption, where not every value fits: the
    # SE fields that go with each rounding
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def assume(self, key: str, value: Any, why: str) -> None:
        """Pick ``value`` for ``key`` without evidence: set it and say why."""
        FIELDS[key].set(self.spec, value)
        self.assumed[key] = why

    def settle(self, key: str, value: Any) -> None:
        """Set ``key`` from evidence (a module's attribute, a flag): no comment."""
        if key == "se" and key not in self.choices:
            raise ValueError("this network has no SE")
        if key in self.choices:
            if value not in self.choices[key]:
                allowed = ", ".join(map(str, self.choices[key]))
                raise ValueError(f"{value!r} does not fit this network; allowed: {allowed}")
            value = self.choices[key][value]
        FIELDS[key].set(self.spec, value)
        self.assumed.pop(key, None)
