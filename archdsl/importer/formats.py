"""Checkpoints of other libraries' naming read as archdsl's (torch-free): the foreign
namings of ``layouts.FOREIGN`` renamed by their tables, a wrapping module's attribute
(Lightning's ``net.``, ``backbone_model.``) removed where what is left is a ResNet, and
the Hugging Face ``config.json`` fields the keys cannot tell. weights.unwrap asks this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..layouts import FOREIGN, Foreign
from .draft import Draft, refuse
from .infer import recognises

T = TypeVar("T")
MAX_PREFIXES = 4  # attributes of wrapping modules removed (model.net.backbone_model.…)


@dataclass
class Canonical:
    """A state_dict by archdsl's names, with what was done to get it."""

    state: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    foreign: Foreign | None = None


def _renamed(key: str, foreign: Foreign) -> str | None:
    for pattern, template in foreign.rename:
        m = re.match(pattern, key)
        if m:
            groups = {k: v for k, v in m.groupdict().items() if v is not None}
            ones = {f"{k}1": int(v) + 1 for k, v in groups.items()}
            return template.format(**groups, **ones) + key[m.end():]
    return None


def _rename(state: Mapping[str, T], foreign: Foreign, path: str) -> Canonical:
    """``state`` renamed by ``foreign``'s table, its set-aside keys left out; a key the
    table neither renames nor sets aside is refused."""
    out: dict[str, T] = {}
    aside: dict[str, int] = {}
    for key, value in state.items():
        pattern = next((p for p in foreign.aside if re.match(p, key)), None)
        if pattern is not None:
            part = pattern.strip("^").replace("\\.", ".")
            aside[part] = aside.get(part, 0) + 1
            continue
        new = _renamed(key, foreign)
        if new is None:
            raise refuse(path, key, f"not a key of {foreign.what}'s naming; allowed: "
                         f"{foreign.keys}")
        out[new] = value
    notes = [f"read {foreign.what}'s naming, renamed to archdsl's"]
    if aside:
        notes.append("set aside what is not the ResNet: " + ", ".join(
            f"{part}* ({n} keys)" for part, n in aside.items()))
    return Canonical(out, notes, foreign)


def _common(state: Mapping[str, Any]) -> str | None:
    """The attribute every key starts with (``net.`` of ``net.conv1.weight``), if any."""
    firsts = {k.partition(".")[0] + "." for k in state if "." in k}
    if len(firsts) != 1 or any("." not in k for k in state):
        return None
    return firsts.pop()


def canonical(state: Mapping[str, T], path: str) -> Canonical:
    """``state`` by archdsl's names: a foreign naming's keys renamed by its table, or
    the attribute of a wrapping module every key has removed where what is left is a
    ResNet's (up to MAX_PREFIXES deep); else as it is (the importer says what is wrong)."""
    stripped, notes = dict(state), []
    for _ in range(MAX_PREFIXES + 1):
        if recognises({k: () for k in stripped}):  # archdsl's own layouts first
            return Canonical(stripped, notes)
        foreign = next((f for f in FOREIGN.values()
                        if any(re.match(f.shows, k) for k in stripped)), None)
        if foreign is not None:
            done = _rename(stripped, foreign, path)
            done.notes[:0] = notes
            return done
        prefix = _common(stripped)
        if prefix is None:
            break
        stripped = {k.removeprefix(prefix): v for k, v in stripped.items()}
        notes.append(f"removed the key prefix {prefix!r} (a wrapping module's attribute)")
    return Canonical(dict(state))


def _config(folder: Path, foreign: Foreign, path: str) -> dict[str, Any] | None:
    """The ``config.json`` beside the weights, checked to be of ``foreign``'s model."""
    file = folder / "config.json"
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise refuse(path, str(file), f"not a readable config.json ({exc}); allowed: "
                     "the JSON transformers' save_pretrained writes") from None
    if not isinstance(config, dict) or config.get("model_type") != foreign.config:
        got = config.get("model_type") if isinstance(config, dict) else None
        raise refuse(path, str(file), f"a config of model_type {got!r} beside "
                     f"{foreign.what}'s weights; allowed: model_type {foreign.config!r}")
    return config


def settle_config(foreign: Foreign, folder: Path, draft: Draft, path: str) -> None:
    """Settle, from the Hugging Face ``config.json`` in ``folder``, what the keys cannot
    tell: ``hidden_act``, ``downsample_in_bottleneck`` (the first 1x1 strides, else the
    3x3) and ``downsample_in_first_stage`` (the first stage strides)."""
    config = _config(folder, foreign, path)
    if config is None:
        draft.notes.append(f"no config.json beside the weights: {foreign.what}'s defaults "
                           "are assumed where the keys cannot tell")
        return
    act = config.get("hidden_act", "relu")
    if act != "relu":
        raise refuse(path, "config.json: hidden_act", f"{act!r}; allowed: 'relu' (the "
                     f"activation archdsl's {foreign.config} blocks have)")
    draft.assumed.pop("act", None)
    if "downsample_in_bottleneck" in config:
        draft.settle("stride_on", "1x1" if config["downsample_in_bottleneck"] else "3x3")
    first = config.get("downsample_in_first_stage", foreign.config == "regnet")
    draft.settle("strides", [2 if first else 1] + [2] * (len(draft.spec["stages"]) - 1))
    draft.notes.append("read hidden_act, downsample_in_first_stage"
                       + (", downsample_in_bottleneck" if "downsample_in_bottleneck" in config
                          else "") + " from config.json")
