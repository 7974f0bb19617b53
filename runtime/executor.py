"""Realization: compute the values of some graph nodes with one compiled program.

The program for a graph is found by the graph's canonical signature: in the
in-memory cache, else in the disk cache (object code loaded, nothing
compiled), else the graph is scheduled, lowered and compiled by LLVM, and the
result stored on disk. The in-memory cache keeps the LLGRAD_MAX_PROGRAMS
(default 256) most recently used programs; a dropped program frees its code.
Values that live tensors still hold inside the graph are computed in the same
program, so a graph is never run twice for them and graphs do not grow across
steps.

Threads: one lock guards the caches, the counters, and every read or write of
graph structure (canonicalize, schedule, storing results), so no thread sees
another's half-stored results. LLVM compiles (which llvmlite serializes
anyway) and native runs happen outside it, and a program one thread is
building is waited for by the others, not built twice.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

from llgrad.compiler.graph import Node
from llgrad.compiler.schedule import schedule
from llgrad.compiler.signature import canonicalize

# (issue 5: debugging hooks, MLIR backend)
from . import compile_log, config, diskcache, dump, forking, mlir_backend
from . import program as _program

_programs: OrderedDict = OrderedDict()  # canonical key -> Program, least recently used first
_building: dict = {}  # canonical key -> Event set when the thread building it is done
_lock = threading.RLock()
_stats = {"compiles": 0, "disk_loads": 0, "cache_hits": 0, "evictions": 0, "runs": 0,
          "compile_seconds": 0.0, "load_seconds": 0.0}
_last: list = [None]  # the program that ran most recently (for debugging tools)


def stats() -> dict:
    """Counters of this process.

    compiles: programs compiled by LLVM (compile_seconds in total); disk_loads:
    programs loaded from the disk cache instead (load_seconds); cache_hits:
    graphs whose program was already in memory; evictions: programs dropped
    from memory by the LRU bound; cached_programs: programs in memory now.
    """
    with _lock:
        return dict(_stats, cached_programs=len(_programs), compile_reasons=compile_log.counts())


def reset_stats() -> None:
    with _lock:
        for k in _stats:
            _stats[k] = 0.0 if isinstance(_stats[k], float) else 0
    compile_log.reset()


def clear_memory_cache() -> None:
    """Drop every program held in memory (their code is freed once no run uses them)."""
    with _lock:
        dropped = list(_programs.values())
        _programs.clear()
        _last[0] = None
    del dropped  # outside the lock: freeing code takes LLVM's lock


def max_programs() -> int:
    return config.get("LLGRAD_MAX_PROGRAMS")


def _live_intermediates(targets: list[Node]) -> list[Node]:
    """Computed nodes of the graph that a live tensor still holds."""
    found, seen = [], {t.id for t in targets}
    stack = [s for t in targets for s in t.srcs]
    while stack:
        n = stack.pop()
        if n.id in seen or n.buffer is not None:
            continue
        seen.add(n.id)
        owner = n.owner
        if owner is not None and owner() is not None and n.op.kind not in ("movement", "leaf"):
            found.append(n)
        stack.extend(n.srcs)
    return found


def _outputs(targets: list[Node]) -> tuple[list[Node], int]:
    """(outputs, how many of them must be stored): the targets, then live intermediates.

    A live intermediate one op away from buffers is optional (stored only where a kernel
    computes it anyway): recomputing it later is cheap. Any other is stored, else a value
    updated every step (w -= lr * w.grad, read only inside fused loops) would stay pending
    and its graph would grow by one update per step, compiling a new program each time.
    """
    live = _live_intermediates(targets)
    kept = [n for n in live if not _near_buffers(n)]
    outputs = targets + kept + [n for n in live if _near_buffers(n)]
    return outputs, len(targets) + len(kept)


def _near_buffers(n: Node) -> bool:
    """Whether every source of `n` is a buffer (maybe through views) or a scalar leaf."""
    for s in n.srcs:
        while s.buffer is None and s.op.kind == "movement":
            s = s.srcs[0]
        if s.buffer is None and s.op.kind != "leaf":
            return False
    return True


def _key(outputs: list[Node], required: int) -> tuple:
    """(cache key, inputs, params): the canonical graph, and which outputs are optional."""
    (parts, ids), inputs, params = canonicalize(outputs)
    ids = ids[:required] + tuple(("optional", i) for i in ids[required:])
    return mlir_backend.tag((parts, ids)), inputs, params  # the two backends' programs never mix


def lookup(targets: list[Node]):
    """(program, inputs, params, outputs) computing `targets` (plus live intermediates)."""
    return _lookup(targets)[:4]


def _lookup(targets: list[Node]):
    """lookup(), and how many of the outputs the program must store."""
    registered: list = []  # (key, event) of a build this thread registered
    try:
        return _lookup_or_build(targets, registered)
    except BaseException:  # (a Ctrl-C anywhere): a registration left behind would be waited on forever
        for key, done in registered:
            with _lock:
                if _building.get(key) is done:
                    del _building[key]
            done.set()
        raise


def _lookup_or_build(targets: list[Node], registered: list):
    while True:
        with _lock:
            outputs, required = _outputs(targets)
            key, inputs, params = _key(outputs, required)
            prog = _programs.get(key)
            if prog is not None:
                _programs.move_to_end(key)
                _stats["cache_hits"] += 1
                return prog, inputs, params, outputs, required
            waiting = _building.get(key)
            if waiting is None:
                disk, text = _disk_for(key)
                if disk is not None:
                    prog = _from_disk(disk, text, inputs, params, outputs)
                    if prog is not None:
                        _stats["disk_loads"] += 1
                        _stats["load_seconds"] += prog.load_seconds
                        evicted = _remember(key, prog)
                        break
                sched = schedule(outputs, inputs, params, required=required)
                done = threading.Event()
                registered.append((key, done))
                _building[key] = done
                prog = None
                break
        waiting.wait()  # another thread builds this program: use theirs
    if prog is not None:
        del evicted  # outside the lock: freeing code takes LLVM's lock
        compile_log.on_program(key, prog, outputs, inputs, params, required)  # LLGRAD_LOG, LLGRAD_DUMP
        return prog, inputs, params, outputs, required
    evicted = []
    try:
        prog = mlir_backend.build(sched, _symbol(key), outputs, inputs, params)
        if disk is not None:
            disk.put(text, prog.plan, prog.object_code)
    finally:
        with _lock:
            if prog is not None:
                _stats["compiles"] += 1
                _stats["compile_seconds"] += prog.compile_seconds
                evicted = _remember(key, prog)
            del _building[key]
        done.set()
    del evicted
    compile_log.on_program(key, prog, outputs, inputs, params, required)  # LLGRAD_LOG/DUMP, reasons
    return prog, inputs, params, outputs, required


def _symbol(key) -> str:
    return "llgrad_" + hashlib.sha1(repr(key).encode()).hexdigest()[:16]


def _remember(key, prog) -> list:
    """Cache a program; return the least recently used ones it pushes out."""
    _programs[key] = prog
    evicted = []
    limit = max_programs()
    while len(_programs) > limit:
        evicted.append(_programs.popitem(last=False)[1])
        _stats["evictions"] += 1
    return evicted


def _disk_for(key) -> tuple:
    """(disk cache, key text) when this graph can use the disk cache, else (None, None)."""
    disk = diskcache.current()
    if disk is None:
        return None, None
    text = diskcache.key_text(key)
    return (disk, text) if text is not None else (None, None)


def _from_disk(disk, text: str, inputs: list[Node], params: list[Node], outputs: list[Node]):
    found = disk.get(text)
    if found is None:
        return None
    plan, obj = found
    problem = _mismatch(plan, inputs, params, outputs)
    if problem is None:
        try:
            return _program.load(plan, obj)
        except RuntimeError as e:  # LLJIT refuses the object (a missing symbol, say)
            problem = f"its object code does not link: {e}"
    disk.discard(text, problem)
    return None


def _mismatch(plan, inputs: list[Node], params: list[Node], outputs: list[Node]) -> str | None:
    """Why a plan read from disk cannot be the program of this graph, or None."""
    bufs = plan.bufs
    if len(bufs) < len(inputs) or len(plan.outputs) != len(outputs):
        return "its buffer table does not fit the graph"
    for b, n in zip(bufs, inputs):
        if b.role != "in" or b.shape != n.shape or b.dtype != n.dtype.name:
            return f"input slot {b.slot} does not fit the graph"
    for slot, n in zip(plan.outputs, outputs):
        if slot >= 0 and (bufs[slot].shape != n.shape or bufs[slot].dtype != n.dtype.name):
            return f"output slot {slot} does not fit the graph"
    if list(plan.param_floats) != [p.dtype.is_floating_point for p in params]:
        return "its scalar parameters do not fit the graph"
    return None


# While llgrad.compile traces a step: collects instead of computing. Per thread: another
# thread's values are still computed while one thread traces.
_deferral = threading.local()


def set_deferral(collect) -> None:
    """Route this thread's realize() requests to `collect(nodes)` (None: compute them again)."""
    _deferral.collect = collect


def realize(nodes: list[Node]) -> None:
    """Compute every node of `nodes` that has no buffer yet, in one program."""
    targets, seen = [], set()
    for n in nodes:
        if n.buffer is None and n.id not in seen:
            seen.add(n.id)
            targets.append(n)
    if not targets:
        return
    collect = getattr(_deferral, "collect", None)
    if collect is not None:
        collect(targets)
        return
    run_targets(targets)


def run_program(prog, inputs: list, params: list) -> list:
    """Run a program on buffers (a compiled step's replay), counted like any run."""
    results = prog.run(inputs, params)
    with _lock:
        _stats["runs"] += 1
        _last[0] = prog
    return results


def run_targets(targets: list[Node]):
    """Compute `targets` (uncomputed, distinct); return (program, inputs, params, outputs)."""
    prog, inputs, params, outputs, required = _lookup(targets)
    if dump.observing():  # llgrad.debug.dump/explain of a function: sees each program it runs
        dump.on_run(prog, outputs, inputs, params, required)
    results = prog.run([n.buffer for n in inputs], [p.value for p in params])
    with _lock:
        _stats["runs"] += 1
        _last[0] = prog
        for node, buf in zip(outputs, results):
            if buf is not None:  # None: an optional output the program does not store
                node.buffer = buf
                node.srcs = ()  # computed: later graphs read the buffer, and the history can be freed
    return prog, inputs, params, outputs


def last_program():
    """The compiled program that ran most recently in this process."""
    return _last[0]


def _after_fork_in_child() -> None:
    """The threads that were building programs in the parent are gone: build them again here."""
    _building.clear()


# Held across a fork (no thread is halfway through the cache then), before LLVM's lock.
forking.hold_across_fork(_lock)
os.register_at_fork(after_in_child=_after_fork_in_child)
