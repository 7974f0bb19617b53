"""llgrad.runtime: compiles graphs to native programs, caches them, and runs them."""

from .realize import realize, stats, reset_stats

__all__ = ["realize", "stats", "reset_stats"]
