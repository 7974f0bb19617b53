"""llgrad.runtime: compiles graphs to native programs, caches them, and runs them."""

from . import config
from .executor import realize, reset_stats, stats
from .mlir_backend import get_backend, set_backend

config.check_environment()  # once, at import: misspelt names and bad values are reported now

__all__ = ["realize", "stats", "reset_stats", "set_backend", "get_backend"]
