"""Block families and stem kinds; importing this package registers them all, then the
modules ``ARCHDSL_PLUGINS`` names (comma-separated, importable module names): a block
family or op of your own, registered as the built-in ones are (docs/architecture.md)."""

import importlib
import os

from . import basic, bottleneck, regnet, res2net, resnest, sknet, stems  # noqa: F401  (registration side effect)
from .registry import BLOCKS, READERS, STAGE_RULES, STEMS

__all__ = ["BLOCKS", "READERS", "STAGE_RULES", "STEMS"]

for _name in filter(None, (n.strip() for n in os.environ.get("ARCHDSL_PLUGINS", "").split(","))):
    try:
        importlib.import_module(_name)
    except ImportError as _exc:
        raise ImportError(f"ARCHDSL_PLUGINS names {_name!r}, which cannot be imported: "
                          f"{_exc}") from _exc
