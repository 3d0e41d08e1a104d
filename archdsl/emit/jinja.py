"""The jinja2 environment of the templates shipped in ``archdsl/emit/templates``."""

from __future__ import annotations

from importlib import resources

import jinja2


def environment(*, html: bool) -> jinja2.Environment:
    """Strict (undefined names fail), whitespace-trimmed; autoescaped for HTML."""
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda t: (resources.files("archdsl.emit") / "templates" / t).read_text()),
        autoescape=html, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
