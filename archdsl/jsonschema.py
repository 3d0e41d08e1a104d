"""JSON Schemas of the spec language, for editors (yaml-language-server) and tools, and
the spec reference generated from them.

``resolved_schema()`` describes complete specs (what ``build`` normalizes to);
``file_schema()`` describes spec files: ``extends:`` and ``defaults:`` allowed, a stage
may leave to ``defaults`` any field, ``match:`` may stand for a solvable field, and a
stage rule (``regnet:``) for the stages.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import __version__
from .blocks import BLOCKS, STAGE_RULES
from .design import SOLVABLE
from .spec.schema import Spec

SCHEMA_ID = "https://archdsl.dev/schema/{}.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def resolved_schema() -> dict[str, Any]:
    s = Spec.model_json_schema()
    return {"$schema": DRAFT, "$id": SCHEMA_ID.format("archdsl.resolved"),
            "title": f"archdsl resolved spec (archdsl {__version__})", **s}


MATCH = {
    "type": "object", "additionalProperties": False, "required": ["match"],
    "description": "solve this field so the model meets a target",
    "properties": {
        "match": {"description": "another spec's path (relative to this file) or a number",
                  "anyOf": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0}]},
        "by": {"enum": ["params", "macs"], "default": "params"},
        "tolerance": {"type": "number", "exclusiveMinimum": 0, "default": 0.05}},
    "examples": [{"match": "resnet50.yaml", "by": "params"}],
}


def _stage_fields(defs: dict[str, Any]) -> dict[str, Any]:
    """Every stage field of every block kind, ``block`` as the enum of kinds."""
    props: dict[str, Any] = {}
    for kind in BLOCKS.values():
        for name, prop in defs[kind.schema.__name__]["properties"].items():
            props.setdefault(name, copy.deepcopy(prop))
    props["block"] = {"enum": list(BLOCKS), "description": "block kind",
                      "examples": ["bottleneck"]}
    for name in SOLVABLE:
        props[name] = {"anyOf": [props[name], {"$ref": "#/$defs/Match"}],
                       "description": props[name].get("description", "")}
    return props


def file_schema() -> dict[str, Any]:
    s = resolved_schema()
    defs = s["$defs"]
    stage = {"type": "object", "additionalProperties": False,
             "description": "a stage; any field may come from defaults instead",
             "properties": _stage_fields(defs)}
    defs["Match"] = MATCH
    defs["StageFields"] = stage
    props = s["properties"]
    props["stages"] = {"type": "array", "minItems": 1, "maxItems": 64,
                       "items": {"$ref": "#/$defs/StageFields"},
                       "description": "the stages, in order; replaces an extended spec's"}
    props["defaults"] = {"$ref": "#/$defs/StageFields",
                         "description": "stage fields every stage inherits"}
    props["extends"] = {"type": "string", "examples": ["resnet50.yaml"],
                        "description": "a spec to build on, relative to this file: mappings "
                                       "merge, lists replace"}
    for key, (title, rule) in _rules().items():
        defs.update(rule.pop("$defs", {}))
        rule.pop("required", None)  # a spec that extends another may change one field
        defs[title] = rule
        props[key] = {"$ref": f"#/$defs/{title}",
                      "description": "a rule that gives the stages (instead of stages)"}
    s["$id"] = SCHEMA_ID.format("archdsl")
    s["title"] = f"archdsl spec file (archdsl {__version__})"
    s["required"] = ["name"]
    s["anyOf"] = [{"required": [k]} for k in ("extends", "stages", *STAGE_RULES)]
    return s


def _rules() -> dict[str, tuple[str, dict[str, Any]]]:
    """Each stage rule's key: its model's title and JSON Schema."""
    return {k: (m.__name__, m.model_json_schema()) for k, m in STAGE_RULES.items()}


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


# --- the generated reference ---------------------------------------------------------

def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[1]
    if "enum" in prop:
        return " or ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop or "oneOf" in prop:
        return " or ".join(_type(p) for p in prop.get("anyOf") or prop["oneOf"])
    if prop.get("type") == "array" and "items" in prop:
        return f"list of {_type(prop['items'])}"
    t = prop.get("type", "any")
    if t == "array" and "prefixItems" in prop:
        return "[" + ", ".join(_type(p) for p in prop["prefixItems"]) + "]"
    bounds = []
    if "minimum" in prop:
        bounds.append(f"≥ {prop['minimum']}")
    if "exclusiveMaximum" in prop:
        bounds.append(f"< {prop['exclusiveMaximum']}")
    return t + (f" ({', '.join(bounds)})" if bounds else "")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(title: str, schema: dict[str, Any], required: list[str]) -> list[str]:
    lines = [f"## {title}", ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    lines += ["| field | type | default | meaning | example |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        default = "required" if name in required else (
            f"`{json.dumps(prop['default'])}`" if "default" in prop else "")
        example = f"`{json.dumps(prop['examples'][0])}`" if prop.get("examples") else ""
        lines.append(f"| `{name}` | {_cell(_type(prop))} | {default} | "
                     f"{_cell(prop.get('description', ''))} | {example} |")
    return [*lines, ""]


def spec_reference() -> str:
    """docs/spec-reference.md: every field of the resolved schema, by section."""
    s = resolved_schema()
    defs = s["$defs"]
    out = ["# Spec reference", "",
           "Generated from the JSON Schema by `archdsl schema --reference`; do not edit by "
           "hand (a test fails when it is stale). The guide with worked examples is "
           "[spec-language.md](spec-language.md). Editors: the schema of spec files is "
           "`schema/archdsl.schema.json`; every shipped spec names it in a "
           "`yaml-language-server` modeline.", ""]
    out += _table("Top level", s, s.get("required", []))
    for key, (title, rule) in _rules().items():
        defs.update(rule.pop("$defs", {}))
        defs[title] = {**rule, "description": f"The file's `{key}:` section, which gives the "
                       f"stages. {rule.get('description', '')}"}
    for name in sorted(defs):
        out += _table(name, defs[name], defs[name].get("required", []))
    return "\n".join(out)
