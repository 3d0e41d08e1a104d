"""``python -m archdsl``."""

from .cli.main import entry

entry()
