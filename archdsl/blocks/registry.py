"""Block and stem kinds, keyed by the literal of the schema's discriminator field: each
is a schema class and its lowering and, for a block kind, the class generated Python
gives it; each block family (a module of archdsl.blocks) also registers the reader that
tells its stages in a state_dict (archdsl import)."""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class PyClass:
    """How generated Python names and documents a block kind's class; ``inner``: the
    branch's convs but the last have a width of their own (the class's ``inner``
    argument, a bottleneck's), else the block's output width."""

    name: str
    doc: str
    inner: bool = False


@dataclass(frozen=True)
class Kind:
    schema: type[BaseModel]
    lower: Callable[..., Any]
    python: PyClass | None = None


@dataclass(frozen=True)
class Reader:
    """A block family's reader: ``read(keys, blocks, preact, source)`` gives the
    stage mapping of the canonically named ``blocks`` of one stage (``layer2.0``…), or
    None where they are not this family's; ``first`` is the local name of a block's first
    parameter-holding node, whose key shows that the block exists (a reader is asked only
    where the stage's first block has it)."""

    read: Callable[..., dict[str, Any] | None]
    first: str
    family: str | None = None  # the layouts it reads: those of this family (Layout.family)
    # the local name of a node only this family's blocks have (ResNeSt's conv2.fc1): a
    # reader with one is asked only where it shows, and before those without
    shows: str | None = None
    # the family's reading of the whole network: called once with every stage it read
    # (what one stage cannot tell alone, such as a ratio every stage shares)
    finish: Callable[[list[dict[str, Any]]], None] | None = None


BLOCKS: dict[str, Kind] = {}
STEMS: dict[str, Kind] = {}
READERS: list[Reader] = []
# stage rules: a spec file's top-level key whose section (a model with ``stages()``)
# stands for its ``stages`` list, expanded before validation (the RegNet rule)
STAGE_RULES: dict[str, type[BaseModel]] = {}


def _literal(schema: type[BaseModel], field: str) -> str:
    (value,) = typing.get_args(schema.model_fields[field].annotation)
    return str(value)


def register(table: dict[str, Kind], schema: type[BaseModel], discriminator: str,
             python: PyClass | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: file ``lower`` under the schema's discriminator literal."""

    def deco(lower: Callable[..., Any]) -> Callable[..., Any]:
        key = _literal(schema, discriminator)
        if key in table:
            raise ValueError(f"kind {key!r} is registered twice")
        table[key] = Kind(schema, lower, python)
        return lower

    return deco


def block(schema: type[BaseModel],
          python: PyClass) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a residual block kind (discriminator ``block``) and its generated class."""
    return register(BLOCKS, schema, "block", python)


def reader(first: str, family: str | None = None, shows: str | None = None,
           finish: Callable[[list[dict[str, Any]]], None] | None = None
           ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a block family's state_dict reader for the layouts of ``family``
    (``Layout.family``; None: the ResNet layouts): those whose ``shows`` key the block
    has first, then those without one, each in registration order; ``finish``: see
    Reader."""

    def deco(read: Callable[..., Any]) -> Callable[..., Any]:
        READERS.append(Reader(read, first, family, shows, finish))
        return read

    return deco


def stage_rule(key: str, schema: type[BaseModel]) -> None:
    """Register a rule that gives a spec's stages: the top-level ``key`` whose section
    validates as ``schema`` (a model with ``stages() -> list[dict]``)."""
    if key in STAGE_RULES:
        raise ValueError(f"stage rule {key!r} is registered twice")
    STAGE_RULES[key] = schema


def stem(schema: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a stem kind (discriminator ``kind``)."""
    return register(STEMS, schema, "kind")
