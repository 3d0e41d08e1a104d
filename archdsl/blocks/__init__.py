"""Block and stem kinds; importing this package registers them all."""

from . import basic, bottleneck, stems  # noqa: F401  (registration side effect)
from .registry import BLOCKS, STEMS

__all__ = ["BLOCKS", "STEMS"]
