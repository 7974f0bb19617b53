"""Running the suite: find the peers, build each workload's sides, check them against NumPy,
time them interleaved, and derive ratios, GB/s and GFLOP/s."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

import llgrad

from . import machine
from .core import PEERS, SIDE_ORDER, Budget, Side, SideResult, Workload, first_call, time_rounds, warm_up_all
from .workloads import WORKLOADS

FULL = Budget(warmup=3, warmup_seconds=1.0, min_reps=5, max_reps=300, seconds=2.0, block_seconds=0.25,
              settle_seconds=0.1, cap_seconds=120.0)
QUICK = Budget(warmup=2, warmup_seconds=0.1, min_reps=3, max_reps=20, seconds=0.1, block_seconds=0.05,
               settle_seconds=0.02, cap_seconds=3.0)


@dataclass
class Peers:
    """The optional libraries of this run: a module, or the reason it takes no part."""

    torch: object | str
    jax: object | str
    skip: frozenset[str]

    def reason_skipped(self, side: str) -> str | None:
        if side in self.skip:
            return "skipped (--skip)"
        if side in ("torch", "torch.compile") and isinstance(self.torch, str):
            return self.torch
        if side == "jax.jit" and isinstance(self.jax, str):
            return self.jax
        return None


def _optional_import(name: str) -> object | str:
    try:
        return importlib.import_module(name)
    except ImportError:
        return "not installed"
    except Exception as exc:  # a broken install is reported, not fatal
        return f"import failed: {type(exc).__name__}: {exc}"


def find_peers(skip: set[str]) -> Peers:
    """Import the peers that are wanted (imports are slow: torch ~1 s, jax ~1 s)."""
    torch = "skipped (--skip)" if {"torch", "torch.compile"} <= skip else _optional_import("torch")
    jax = "skipped (--skip)" if "jax.jit" in skip else _optional_import("jax")
    return Peers(torch, jax, frozenset(skip))


def build_sides(workload: Workload, peers: Peers) -> tuple[dict[str, Side], dict[str, SideResult], dict]:
    """Each side of the workload that applies, the sides whose construction failed, and the
    reasons others were left out."""
    makers = {
        "llgrad": workload.llgrad,
        "llgrad.compile": workload.llgrad_compiled,
        "native-C": workload.native,
        "numpy": workload.numpy,
        "torch": lambda: workload.torch(peers.torch, compiled=False),
        "torch.compile": lambda: workload.torch(peers.torch, compiled=True),
        "jax.jit": lambda: workload.jax(peers.jax),
    }
    sides, failed, skipped = {}, {}, {}
    for name in SIDE_ORDER:
        reason = peers.reason_skipped(name)
        if reason:
            skipped[name] = reason
            continue
        try:
            side = makers[name]()
        except Exception as exc:  # e.g. an op llgrad does not have: report it, go on
            failed[name] = SideResult(check="error", error=f"{type(exc).__name__}: {exc}"[:300])
            continue
        if isinstance(side, str):
            skipped[name] = side
        elif side is not None:
            sides[name] = side
    return sides, failed, skipped


def run_workload(workload: Workload, peers: Peers, budget: Budget, floor_gbs: float | None) -> dict:
    sides, results, skipped = build_sides(workload, peers)
    reference = sides.pop("numpy")
    ref_result, want = first_call(reference, None, workload.tolerance)
    if ref_result.check != "ok":
        raise RuntimeError(f"{workload.name}: the NumPy reference failed: {ref_result.error}")
    timed = {"numpy": reference}
    results["numpy"] = ref_result
    for name, side in sides.items():
        before = _llgrad_programs()
        results[name], _ = first_call(side, want, workload.tolerance)
        if name.startswith("llgrad"):
            results[name].llgrad_compiles, results[name].llgrad_compile_s = _since(before)
        if results[name].check == "ok":  # a wrong or crashing side is reported, not timed
            timed[name] = side
    del want
    budget = budget.scaled(workload.reps_scale)
    warm_up_all(timed, budget)
    before = _llgrad_programs()
    time_rounds(timed, results, budget)
    if "llgrad" in timed:  # a steady loop compiles nothing once warm
        results["llgrad"].llgrad_programs_while_timed = _since(before)[0]
    notes = {name: side.note for name, side in [("numpy", reference), *sides.items()] if side.note}
    return _summarize(workload, results, skipped, notes, floor_gbs)


def _llgrad_programs() -> tuple[int, float]:
    """Programs llgrad has built so far (compiled, or loaded from its disk cache) and the seconds
    spent compiling them."""
    stats = llgrad.runtime.stats()
    return stats.get("compiles", 0) + stats.get("disk_loads", 0), stats.get("compile_seconds", 0.0)


def _since(before: tuple[int, float]) -> tuple[int, float]:
    now = _llgrad_programs()
    return now[0] - before[0], now[1] - before[1]


def _summarize(workload: Workload, results: dict[str, SideResult], skipped: dict, notes: dict,
               floor_gbs: float | None) -> dict:
    row = {"workload": workload.name, "summary": workload.describe(), "tolerance": workload.tolerance,
           "bytes_moved": workload.bytes_moved(), "flops": workload.flops(), "skipped": skipped,
           "notes": notes, "sides": {}}
    if row["bytes_moved"] and floor_gbs:
        row["floor_ms"] = row["bytes_moved"] / floor_gbs / 1e6
    for name in SIDE_ORDER:
        if name in results:
            row["sides"][name] = results[name].summary()
    timed = {n: s for n, s in row["sides"].items() if "median_ms" in s}
    row["reference"] = "torch" if "torch" in timed else "numpy"
    for side in timed.values():
        seconds = side["median_ms"] / 1e3
        side["speedup_vs_reference"] = timed[row["reference"]]["median_ms"] / side["median_ms"]
        if row["bytes_moved"]:
            side["gbs"] = row["bytes_moved"] / seconds / 1e9
            if floor_gbs:
                side["bandwidth_fraction"] = side["gbs"] / floor_gbs
        if row["flops"]:
            side["gflops"] = row["flops"] / seconds / 1e9
    return row


# Where the JITs keep compiled code across processes. torch.compile reads its setting when torch is
# imported, so it can only be moved when the suite imports torch itself.
CACHE_VARIABLES = {"llgrad": "LLGRAD_CACHE_DIR", "torch.compile": "TORCHINDUCTOR_CACHE_DIR"}


@contextlib.contextmanager
def _fresh_caches():
    """Empty compile caches in a temporary directory for this run, so that first calls show cold
    compile times rather than loads of what an earlier run left, and the user's caches are not
    filled with benchmark programs. Yields what each cache is."""
    saved = {var: os.environ.get(var) for var in CACHE_VARIABLES.values()}
    root = tempfile.mkdtemp(prefix="llgrad-bench-cache-")
    state = {}
    for who, var in CACHE_VARIABLES.items():
        if who == "torch.compile" and "torch" in sys.modules:
            state[who] = "as configured (torch was imported before the suite)"
            continue
        os.environ[var] = os.path.join(root, who)
        state[who] = "fresh, empty"
    try:
        yield state
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def run_suite(names: list[str], quick: bool, skip: set[str], budget: Budget | None = None,
              progress=None, warm_cache: bool = False) -> dict:
    """Run the named workloads; the returned dict is what --json writes. llgrad and torch.compile
    start from empty compile caches unless `warm_cache` (then first calls may load, not compile)."""
    if warm_cache:
        run = _run(names, quick, skip, budget or (QUICK if quick else FULL), progress)
        run["config"]["compile_caches"] = dict.fromkeys(CACHE_VARIABLES, "as configured (--warm-cache)")
        return run
    with _fresh_caches() as caches:
        run = _run(names, quick, skip, budget or (QUICK if quick else FULL), progress)
    run["config"]["compile_caches"] = caches
    return run


def _run(names: list[str], quick: bool, skip: set[str], budget: Budget, progress) -> dict:
    peers = find_peers(skip)
    load = machine.LoadMeter()
    bandwidth = machine.copy_bandwidth(32 if quick else 256, 3 if quick else 10)
    started = time.perf_counter()
    rows = []
    for name in names:
        if progress:
            progress(f"{name} ...")
        workload_started = time.perf_counter()
        rows.append(run_workload(WORKLOADS[name](quick), peers, budget, bandwidth["floor_gbs"]))
        rows[-1]["seconds"] = time.perf_counter() - workload_started
        gc.collect()  # free this workload's buffers before the next one is timed
    return {
        "machine": machine.machine_info(),
        "versions": machine.versions(),
        "bandwidth": bandwidth,
        "config": {"quick": quick, "skip": sorted(skip), "budget": vars(budget),
                   "peers": {n: peers.reason_skipped(n) or "yes" for n in PEERS if n != "native-C"}},
        "results": rows,
        "seconds": time.perf_counter() - started,
        "load": load.result(),
    }
