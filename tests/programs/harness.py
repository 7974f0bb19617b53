"""What a program of tests/programs reports, the same code under PyTorch and under llgrad.

A program starts with

    if os.environ.get("PROGRAM_LIB") == "torch":
        import torch
    else:
        import llgrad as torch

and calls `report(name, value)` for the values the test compares between the two runs, and
`step()` at the end of each training step: under llgrad, step() records how many programs
the run has built so far (compiled or loaded), so the test can check that the steps stop
needing new ones. At exit the reports are written to $PROGRAM_OUT (an .npz file).
"""

from __future__ import annotations

import atexit
import os

import numpy as np

_values: dict[str, np.ndarray] = {}
_programs_after_step: list[int] = []


def report(name: str, value) -> None:
    """Keep `value` (a tensor, a number, or a nested list/tuple of them) under `name`."""
    if name in _values:
        raise ValueError(f"{name} reported twice")
    _values[name] = _array(value)


def _array(value) -> np.ndarray:
    if hasattr(value, "detach"):
        return np.asarray(value.detach().numpy(), dtype=np.float64)
    if isinstance(value, (list, tuple)):
        # (values of different shapes side by side, flattened)
        return np.concatenate([_array(v).reshape(-1) for v in value]) if value else np.zeros(0)
    return np.asarray(value, dtype=np.float64)


def step() -> None:
    if os.environ.get("PROGRAM_LIB") == "torch":
        return
    from llgrad.runtime import executor

    s = executor.stats()
    _programs_after_step.append(int(s["compiles"] + s["disk_loads"]))


@atexit.register
def _write() -> None:
    out = os.environ.get("PROGRAM_OUT")
    if out:
        np.savez(out, __programs_after_step=np.asarray(_programs_after_step, dtype=np.int64), **_values)
