"""Block and stem kinds: each is one schema class plus one lowering function,
keyed by the literal of the schema's discriminator field."""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Kind:
    schema: type[BaseModel]
    lower: Callable[..., Any]


BLOCKS: dict[str, Kind] = {}
STEMS: dict[str, Kind] = {}


def _literal(schema: type[BaseModel], field: str) -> str:
    (value,) = typing.get_args(schema.model_fields[field].annotation)
    return str(value)


def register(table: dict[str, Kind], schema: type[BaseModel],
             discriminator: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: file ``lower`` under the schema's discriminator literal."""

    def deco(lower: Callable[..., Any]) -> Callable[..., Any]:
        key = _literal(schema, discriminator)
        if key in table:
            raise ValueError(f"kind {key!r} is registered twice")
        table[key] = Kind(schema, lower)
        return lower

    return deco


def block(schema: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a residual block kind (discriminator ``block``)."""
    return register(BLOCKS, schema, "block")


def stem(schema: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a stem kind (discriminator ``kind``)."""
    return register(STEMS, schema, "kind")
