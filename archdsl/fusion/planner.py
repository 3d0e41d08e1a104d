"""The fusion planner: run a device profile's rules over the IR and report, per device,
which IR nodes become which kernels, and why each refused candidate was refused."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from ..ir.graph import Graph
from .isa import detect_isa, has_vnni
from .precision import Int8Plan, Int8Profile, int8_plan
from .profiles import Profile, load_profile
from .rules import RULES, bytes_internal
from .state import Group, Refusal, State


@dataclass(frozen=True)
class FusionPlan:
    """What a device runs: its kernels, the groups that made them, the refusals."""

    device: str
    model: str
    kernels_before: int
    kernels_after: int
    kernel_counts: dict[str, int]
    macs_saved: int
    activation_bytes_saved: int
    groups: tuple[Group, ...]
    refused: tuple[Refusal, ...]
    profile: Profile = field(repr=False)  # the device's, as loaded (from a file, maybe)
    verified_with: dict[str, Any] | None = None
    modelled_from: str = ""
    isa: str | None = None
    precision: str = "fp32"
    int8: Int8Plan | None = None  # each kernel's precision, and the conversions
    notes: tuple[str, ...] = ()  # what the plan warns of (int8 that should lose)
    vnni: bool | None = None  # an int8 plan's: for a CPU with an int8 dot product, or not

    @property
    def hardware(self) -> tuple[str, ...]:
        """Where the device's engine runs."""
        return self.profile.hardware

    @property
    def executes(self) -> tuple[str, ...]:
        """The rules archdsl.fuse() carries out itself."""
        return self.profile.executes

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device, "model": self.model, "hardware": list(self.hardware),
            **({"isa": self.isa} if self.isa else {}), "precision": self.precision,
            "verified_with": self.verified_with, "modelled_from": self.modelled_from or None,
            "kernels_before": self.kernels_before, "kernels_after": self.kernels_after,
            "kernel_counts": self.kernel_counts, "macs_saved": self.macs_saved,
            "activation_bytes_saved": self.activation_bytes_saved,
            "groups": [{"rule": g.rule, "rules": list(g.rules or (g.rule,)),
                        "nodes": list(g.nodes), "kernel": g.kernel,
                        **({"macs_saved": g.macs_saved} if g.macs_saved else {})}
                       for g in self.groups],
            "refused": [{"rule": r.rule, "nodes": list(r.nodes), "reason": r.reason}
                        for r in self.refused],
            **({"int8": {**self.int8.to_json(), "vnni": self.vnni}, "notes": list(self.notes)}
               if self.int8 else {}),
        }

    def overlay(self) -> list[tuple[str, tuple[str, ...]]]:
        """The merged kernels as (rules, nodes), for drawing them as clusters."""
        return [("+".join(g.rules), g.nodes) for g in self.groups if g.rules]

    def rule_groups(self, rule: str) -> list[Group]:
        return [g for g in self.groups if g.rule == rule or rule in g.rules]

    def rule_refusals(self, rule: str) -> list[Refusal]:
        return [r for r in self.refused if r.rule == rule]


def provenance(profile: Profile, isa: str | None = None) -> tuple[dict[str, Any] | None, str,
                                                                    str | None]:
    """(verified_with, modelled_from, isa): the engine a test holds ``profile`` to, if any,
    and the instruction set planned for, where the engine's kernels depend on it (this
    machine's unless given). Planned for an instruction set the profile was not checked
    on, the plan is modelled, and says from what."""
    eng = profile.engine
    if not eng or eng.get("modelled"):
        return None, profile.modelled_from or profile.models, None
    checked = eng.get("verified_isa")
    isa = (isa or detect_isa()) if checked else None
    if checked and isa not in checked:
        return None, (f"{eng['name']} {eng['version']} as checked on {', '.join(checked)}; "
                      f"on {isa} its layout kernels may differ"), isa
    settings = {**eng.get("settings", {}), **({"isa": isa} if isa else {})}
    return ({"engine": eng["name"], "version": eng["version"], "settings": settings},
            profile.modelled_from, isa)


PRECISIONS = ("fp32", "int8")


def plan(graph: Graph, profile: Profile, isa: str | None = None, precision: str = "fp32",
         vnni: bool | None = None) -> FusionPlan:
    """Apply ``profile``'s rules in its order; every IR node ends in exactly one kernel
    (or none, where the device drops it). ``isa``: the instruction set the plan is for,
    for a profile whose engine's layout kernels depend on it (default: this machine's);
    the kernels are those of the instruction sets the profile was checked on, and on
    another the plan says it is modelled. ``precision`` int8: the engine's int8 model
    (the profile's ``int8`` section; a ValueError for a profile without one), on a CPU
    with or without an int8 dot product (``vnni``; default: this machine's)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if precision == "int8" and profile.int8 is None:
        raise ValueError(f"profile {profile.name} has no int8 section; int8 plans: "
                         "onnxruntime-cpu, openvino-cpu")
    verified_with, modelled_from, isa = provenance(profile, isa)
    unmodelled = profile.layouts_unmodelled({n.op for n in graph})
    if unmodelled:
        checked = (f"{verified_with['engine']} {verified_with['version']} as checked, all "
                   f"but" if verified_with else f"{modelled_from}; and")
        verified_with, modelled_from = None, (
            f"{checked} its layout kernels around {', '.join(unmodelled)}, which are not "
            "modelled")
    int8 = profile.int8 if precision == "int8" else None
    st = State(graph)
    for use in profile.rules if int8 is None else int8.uses(profile.rules):
        RULES[use.id](st, use)
    roots: dict[str, list[str]] = {}
    for n in graph:
        if n.op != "input" and n.name not in st.elided:
            roots.setdefault(st.find(n.name), []).append(n.name)
    counts: Counter[str] = Counter(profile.ops.get("input", []))  # e.g. a layout transform
    counts.update(st.extra)
    merged = []
    saved_bytes = 0
    for root, names in roots.items():
        if len(names) > 1:
            rules = tuple(st.applied[root])
            merged.append(Group(rules[-1], tuple(names), st.label[root], rules))
            counts[st.label[root]] += 1
            saved_bytes += bytes_internal(st, names)
        else:
            counts.update(profile.kernel_types(graph[names[0]].op, graph[names[0]].attrs))
    q = int8_plan(graph, st, roots, int8) if int8 else None
    if int8 is not None and q is not None:  # the int8 kernels, an element one byte, not four
        verified_with, modelled_from, isa = _int8_provenance(profile, int8, q, isa)
        vnni = has_vnni() if vnni is None else vnni
        counts = q.counts
        formed = {k.nodes: " ".join(k.kernels) for k in q.kernels}
        merged = [replace(g, kernel=formed[g.nodes]) for g in merged]
        saved_bytes //= 4
    notes = tuple(st.notes)
    return FusionPlan(
        device=profile.name, model=graph.name,
        kernels_before=sum(1 for n in graph if n.op != "input"),
        kernels_after=sum(counts.values()),
        kernel_counts=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        macs_saved=sum(g.macs_saved for g in notes),
        activation_bytes_saved=saved_bytes,
        groups=tuple(merged) + notes, refused=tuple(st.refused), profile=profile,
        verified_with=verified_with, modelled_from=modelled_from, isa=isa,
        precision=precision, int8=q,
        notes=_int8_notes(int8, q, bool(vnni)) if int8 and q else (),
        vnni=vnni if q else None)


def _int8_provenance(profile: Profile, int8: Int8Profile, q: Int8Plan, isa: str | None
                     ) -> tuple[dict[str, Any] | None, str, str | None]:
    """An int8 plan's (verified_with, modelled_from, isa): the engine it is checked against
    with the quantizer's settings, or, on an instruction set its int8 kernels were not
    checked on or for a graph with an op whose int8 kernels are not modelled, what it is
    modelled from."""
    eng = profile.engine
    isa = (isa or detect_isa()) if int8.verified_isa else None
    if not eng or eng.get("modelled") or "version" not in eng:
        return None, profile.modelled_from or profile.models or "no engine checks it", isa
    settings = {**eng.get("settings", {}), "quantizer": int8.quantizer, "checked": int8.checked,
                **({"isa": isa} if isa else {})}
    if rough := q.unmodelled:
        return None, (f"{eng['name']} {eng['version']}'s int8 kernels as checked, all but "
                      f"these, which are not modelled: {'; '.join(rough)}"), isa
    if isa and isa not in int8.verified_isa:
        return None, (f"{eng['name']} {eng['version']}'s int8 kernels as checked on "
                      f"{', '.join(int8.verified_isa)}; on {isa} its layout and precision "
                      "choices may differ"), isa
    return {"engine": eng["name"], "version": eng["version"], "settings": settings}, "", isa


def _int8_notes(int8: Int8Profile, q: Int8Plan, vnni: bool) -> tuple[str, ...]:
    """What an int8 plan warns of: on a CPU without an int8 dot product, the profile's
    ``no_vnni`` text; kernels left in float, each between conversions."""
    notes = [] if vnni or not int8.no_vnni else [int8.no_vnni]
    floats = sum(k.precision == "float" for k in q.kernels)
    if floats:
        between = sum(c in (int8.quantize, int8.dequantize) for c, _, _ in q.conversions)
        notes.append(f"{floats} of {len(q.kernels)} kernels run in float, with {between} "
                     "conversions between float and int8, each a pass over its tensor: the "
                     "speed-up is smaller than an all-int8 net's")
    return tuple(notes)


def plan_for(graph: Graph, device: str | os.PathLike[str], isa: str | None = None,
             precision: str = "fp32") -> FusionPlan:
    """Plan ``graph`` for a shipped profile name or a profile file."""
    return plan(graph, load_profile(device), isa, precision)
