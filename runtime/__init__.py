"""llgrad.runtime: compiles graphs to native programs, caches them, and runs them."""

from . import config
from .backend import get_backend, set_backend
from .executor import realize, reset_stats, stats

config.check_environment()  # once, at import: misspelt names and bad values are reported now

__all__ = ["realize", "stats", "reset_stats", "set_backend", "get_backend"]
