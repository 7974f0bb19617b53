"""llgrad.runtime: compiles graphs to native programs, caches them, and runs them."""

from .executor import realize, reset_stats, stats

__all__ = ["realize", "stats", "reset_stats"]
