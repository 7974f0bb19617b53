"""The pieces every workload and the runner share: a timed side, the workload base class,
the correctness check, and the interleaved timing loop."""

from __future__ import annotations

import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

# Sides in the order the table lists them. "numpy" is the reference every side is checked against.
SIDE_ORDER = ("llgrad", "llgrad.compile", "native-C", "numpy", "torch", "torch.compile", "jax.jit")
PEERS = ("native-C", "torch", "torch.compile", "jax.jit")  # sides that --skip may drop


@dataclass
class Side:
    """One implementation of a workload: `step` runs one timed step and returns its results."""

    step: Callable[[], object]
    # step result -> the arrays compared with the reference (default: the result itself, as a tuple)
    outputs: Callable[[object], Sequence] | None = None
    note: str = ""  # how this side computes, when that is not obvious (printed under the table)


class Workload:
    """A benchmark: data of a given size and one `Side` per implementation.

    Subclasses set the class attributes and implement `numpy` (the reference) and `llgrad`.
    A peer method returns a Side, None where the peer does not apply, or a string saying why
    it cannot run here (e.g. no gcc for the native kernel).
    """

    name: str = ""
    summary: str = ""  # a template filled from the instance's attributes (sizes), see describe()
    tolerance: float = 1e-4  # max |side - reference| / max |reference|, per output
    # Per-step budget multiplier: tiny steps take microseconds, so they get many more repetitions.
    reps_scale: int = 1

    def __init__(self, quick: bool) -> None:
        self.quick = quick

    def describe(self) -> str:
        return self.summary.format(**vars(self))

    def bytes_moved(self) -> int | None:
        """Compulsory DRAM traffic of one step (read inputs once, write outputs once), for
        memory-bound workloads; None where bandwidth is not the limit."""
        return None

    def flops(self) -> float | None:
        """Floating-point operations of one step, for compute-bound workloads."""
        return None

    def numpy(self) -> Side:
        raise NotImplementedError

    def llgrad(self) -> Side:
        raise NotImplementedError

    def torch(self, torch, compiled: bool) -> Side | str | None:
        return None

    def jax(self, jax) -> Side | str | None:
        return None

    def native(self) -> Side | str | None:
        return None

    def llgrad_compiled(self) -> Side | str | None:
        """The llgrad step traced once by llgrad.compile and replayed as one native call."""
        import llgrad

        side = self.llgrad()
        return replace(side, step=llgrad.compile(side.step),
                       note="llgrad.compile of the step above (traced once, replayed natively)")


def to_numpy(value) -> np.ndarray:
    """An llgrad/torch/jax/numpy array or Python number as a NumPy array."""
    if hasattr(value, "detach"):  # llgrad and torch tensors (they may require grad)
        value = value.detach()
        value = value.cpu().numpy() if hasattr(value, "cpu") else value.numpy()
    return np.asarray(value)


def result_arrays(side: Side, result) -> list[np.ndarray]:
    values = side.outputs(result) if side.outputs else result
    if not isinstance(values, (tuple, list)):
        values = (values,)
    return [to_numpy(v).astype(np.float64) for v in values]


def relative_error(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> float:
    """Largest max|got - want| / max|want| over the outputs; inf on a shape mismatch or NaN."""
    if len(got) != len(want):
        return float("inf")
    worst = 0.0
    for g, w in zip(got, want):
        if g.shape != w.shape or not np.all(np.isfinite(g)):
            return float("inf")
        scale = max(float(np.max(np.abs(w))), 1e-30) if w.size else 1.0
        err = float(np.max(np.abs(g - w))) / scale if w.size else 0.0
        worst = max(worst, err)
    return worst


@dataclass
class Budget:
    """How long to time each side: warm-up steps, then rounds of timed blocks until both the
    repetition floor and the time budget are met (or the repetition cap is hit)."""

    warmup: int  # steps after the first call; fewer where they exceed warmup_seconds
    warmup_seconds: float
    min_reps: int
    max_reps: int
    seconds: float  # per side, summed over its timed steps
    block_seconds: float  # one side's timed steps in a row before the next side's turn
    settle_seconds: float  # pause between sides, see time_rounds
    cap_seconds: float  # a side slower than this in total stops even below min_reps

    def scaled(self, factor: int) -> Budget:
        return replace(self, warmup=self.warmup * factor, max_reps=self.max_reps * factor)


@dataclass
class SideResult:
    first_call_s: float | None = None
    check: str = "not run"  # "ok", "FAIL", "error", "not run"
    max_rel_err: float | None = None
    error: str | None = None
    times_s: list[float] = field(default_factory=list)
    llgrad_compiles: int | None = None  # programs llgrad built (compiled or loaded) in its first call
    llgrad_compile_s: float | None = None  # seconds of it spent compiling
    llgrad_programs_while_timed: int | None = None  # programs built after warm-up (should be 0)

    def summary(self) -> dict:
        out = {"first_call_s": self.first_call_s, "check": self.check, "max_rel_err": self.max_rel_err}
        for key in ("error", "llgrad_compiles", "llgrad_compile_s", "llgrad_programs_while_timed"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.times_s:
            ts = self.times_s
            out.update(median_ms=statistics.median(ts) * 1e3, min_ms=min(ts) * 1e3, max_ms=max(ts) * 1e3,
                       reps=len(ts))
        return out


def _error_text(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}"[:300] + where


def first_call(side: Side, want: list[np.ndarray] | None, tolerance: float) -> tuple[SideResult, list]:
    """Run the side's first step (this includes any JIT compile) and check it against `want`."""
    res = SideResult()
    try:
        start = time.perf_counter()
        value = side.step()
        res.first_call_s = time.perf_counter() - start
        got = result_arrays(side, value)
    except Exception as exc:  # a missing op or a crash in one side must not stop the suite
        res.check, res.error = "error", _error_text(exc)
        return res, []
    if want is not None:
        res.max_rel_err = relative_error(got, want)
        res.check = "ok" if res.max_rel_err <= tolerance else "FAIL"
    else:
        res.check, res.max_rel_err = "ok", 0.0  # the reference itself
    return res, got


def warm_up_all(sides: dict[str, Side], budget: Budget) -> None:
    """Warm every side up, one after the other (see _warm_up)."""
    for side in sides.values():
        time.sleep(budget.settle_seconds)
        _warm_up(side, budget)


def time_rounds(sides: dict[str, Side], results: dict[str, SideResult], budget: Budget) -> None:
    """Time the sides in rounds, a block of steps each, rotating the order so that
    load changes on a shared machine hit every side alike.

    Blocks rather than single steps, with a pause before each: after a step, NumPy's OpenBLAS and
    PyTorch's OpenMP workers spin for tens of milliseconds before they sleep, and on two cores a
    spinning pool slows the next library down several times over. A side stops once it has
    `min_reps` samples and has spent `seconds`, at `max_reps`, or past `cap_seconds` (a side that
    takes seconds per step); the others go on.
    """
    active = list(sides)
    spent = dict.fromkeys(active, 0.0)
    round_no = 0
    while active:
        shift = round_no % len(active)
        for name in active[shift:] + active[:shift]:
            spent[name] += _timed_block(sides[name], results[name].times_s, budget)
        active = [n for n in active if not _done(len(results[n].times_s), spent[n], budget)]
        round_no += 1


def _timed_block(side: Side, times: list[float], budget: Budget) -> float:
    """Time steps of one side for about `block_seconds`; returns the seconds they took."""
    time.sleep(budget.settle_seconds)
    if not times or times[-1] < budget.block_seconds / 4:
        side.step()  # untimed: bring this side's code and data back into the caches
    spent = 0.0
    while True:
        start = time.perf_counter()
        side.step()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
        if spent >= budget.block_seconds or len(times) >= budget.max_reps:
            return spent


def _warm_up(side: Side, budget: Budget) -> None:
    """Steps past the first call (caches, page faults, a second compile when a lazy update changes
    the graph): at least `warmup`, while cheap; then on while a step is far slower than the
    fastest so far (it was still compiling), up to 10 more."""
    start, fastest, last = time.perf_counter(), float("inf"), 0.0
    for i in range(max(1, budget.warmup) + 10):
        t0 = time.perf_counter()
        side.step()
        last = time.perf_counter() - t0
        fastest = min(fastest, last)
        elapsed = time.perf_counter() - start
        warm = (i + 1 >= budget.warmup or elapsed > budget.warmup_seconds) and last <= 3 * fastest
        if warm or elapsed > budget.cap_seconds:
            return


def _done(reps: int, spent: float, budget: Budget) -> bool:
    enough = reps >= budget.min_reps and spent >= budget.seconds
    return enough or reps >= budget.max_reps or spent >= budget.cap_seconds
