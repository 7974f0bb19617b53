"""Realization: compute pending values with one compiled program.

What a realization computes is the rule of runtime/pending.py: the values asked for and
every pending value a live tensor holds, i.e. this thread's whole pending segment. The
segment's key (built while ops were recorded) finds its program in one dictionary lookup.
On a miss, the canonical graph of the outputs is the key: in the in-memory cache, else in
the disk cache (object code loaded, nothing compiled), else the graph is scheduled,
lowered and compiled by LLVM, and the result stored on disk. The in-memory cache keeps the
LLGRAD_MAX_PROGRAMS (default 256) most recently used programs; a dropped program frees its
code.

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
from . import backend, compile_log, config, diskcache, dump, forking, kernels, pending
from . import program as _program

_programs: OrderedDict = OrderedDict()  # canonical key -> Program, least recently used first
_building: dict = {}  # canonical key -> Event set when the thread building it is done
_lock = threading.RLock()
_stats = {"compiles": 0, "disk_loads": 0, "cache_hits": 0, "evictions": 0, "runs": 0,
          "compile_seconds": 0.0, "load_seconds": 0.0, "compiled_nodes": 0}
_last: list = [None]  # the program that ran most recently (for debugging tools)


def stats() -> dict:
    """Counters of this process.

    compiles: programs compiled by LLVM (compile_seconds in total; compiled_nodes: the graph
    nodes of those programs); disk_loads: programs loaded from the disk cache instead
    (load_seconds); cache_hits: graphs whose program was already in memory; evictions:
    programs dropped from memory by the LRU bound; cached_programs: programs in memory now;
    kernels: distinct kernels compiled, loaded from disk, and shared (runtime/kernels.py).
    """
    with _lock:
        return dict(_stats, cached_programs=len(_programs), compile_reasons=compile_log.counts(),
                    kernels=kernels.stats())


def reset_stats() -> None:
    with _lock:
        for k in _stats:
            _stats[k] = 0.0 if isinstance(_stats[k], float) else 0
    compile_log.reset()


def clear_memory_cache() -> None:
    """Drop every program held in memory (their code is freed once no run uses them)."""
    kernels.clear()
    with _lock:
        dropped = list(_programs.values())
        _programs.clear()
        _bindings.clear()
        _last[0] = None
    del dropped  # outside the lock: freeing code takes LLVM's lock


def max_programs() -> int:
    return config.get("LLGRAD_MAX_PROGRAMS")


def _key(outputs: list[Node]) -> tuple:
    """(cache key, inputs, params): the canonical graph of `outputs`."""
    key, inputs, params = canonicalize(outputs)
    return backend.tag(key), inputs, params  # the two backends' programs never mix


def lookup(targets: list[Node]):
    """(program, inputs, params, outputs): the program that would compute `targets` now
    (with every pending value a live tensor holds, as a realization would), not run."""
    seg = pending.current()
    with _lock:
        outputs = [seg.node(p) for p in seg.outputs(targets)]
    return _lookup(outputs)[:4]


def _lookup(outputs: list[Node]):
    """(program, inputs, params, outputs, required) computing `outputs`, by canonical graph."""
    registered: list = []  # (key, event) of a build this thread registered
    try:
        return _lookup_or_build(outputs, registered)
    except BaseException:  # (a Ctrl-C anywhere): a registration left behind would be waited on forever
        for key, done in registered:
            with _lock:
                if _building.get(key) is done:
                    del _building[key]
            done.set()
        raise


def _lookup_or_build(outputs: list[Node], registered: list):
    required = len(outputs)
    while True:
        with _lock:
            key, inputs, params = _key(outputs)
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
        prog = backend.current().build(sched, _symbol(key), outputs, inputs, params)
        if disk is not None:
            disk.put(text, prog.plan, prog.object_code)
    finally:
        with _lock:
            if prog is not None:
                _stats["compiles"] += 1
                _stats["compile_seconds"] += prog.compile_seconds
                _stats["compiled_nodes"] += _nodes(key)
                evicted = _remember(key, prog)
            del _building[key]
        done.set()
    del evicted
    compile_log.on_program(key, prog, outputs, inputs, params, required)  # LLGRAD_LOG/DUMP, reasons
    return prog, inputs, params, outputs, required


def _nodes(key) -> int:
    """Graph nodes of a canonical key (backend.tag wraps the other backend's keys)."""
    graph = key if backend.get_backend() == "llgrad" else key[0]
    return len(graph[0])


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
    if evicted:  # segment keys bound to a dropped program go with it (its code is freed)
        gone = {id(p) for p in evicted}
        for k in [k for k, b in _bindings.items() if id(b.prog) in gone]:
            del _bindings[k]
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


def deferring() -> bool:
    """Whether this thread's realizations are being collected (llgrad.compile is tracing)."""
    return getattr(_deferral, "collect", None) is not None


def realize(nodes: list[Node]) -> None:
    """Compute `nodes`, and every pending value a live tensor holds, in one program."""
    collect = getattr(_deferral, "collect", None)
    if collect is not None:
        targets = [n for n in nodes if n.buffer is None]
        if targets:
            collect(list(dict.fromkeys(targets)))
        return
    run_targets(nodes)


def realize_pending() -> None:
    """Compute every pending value a live tensor of this thread holds (the pending bound)."""
    if getattr(_deferral, "collect", None) is None:
        run_targets([])


class _Binding:
    """A segment key's program, and where its inputs and params sit in the segment."""

    __slots__ = ("prog", "inputs", "params")

    def __init__(self, prog, inputs: tuple, params: tuple) -> None:
        self.prog, self.inputs, self.params = prog, inputs, params


# SegmentKey -> _Binding, oldest first (first in, first out: a dropped binding costs one canonical
# lookup to make again, and a hit then costs one dictionary lookup, without reordering)
_bindings: dict = {}


def run_targets(targets: list[Node]):
    """Realize this thread's pending segment: `targets` and every value a live holder holds.

    Returns (program, inputs, params, outputs) of the program that ran (None if nothing was
    pending). The segment's own key finds the program without walking the graph; on a miss
    the canonical graph of the outputs is looked up (memory, disk) or compiled.

    If it fails (a value too large to allocate, an interrupt), the segment is dropped: its
    values stay pending, and only a later request that needs the failing one fails again.
    """
    seg = pending.current()
    try:
        return _run_segment(seg, targets)
    except BaseException:
        if pending.current() is seg:
            pending.take().close()
        raise


def _run_segment(seg: pending.Segment, targets: list[Node]):
    with _lock:
        outs = seg.outputs(targets)
        if not outs:  # nothing live is pending: what the segment recorded is dead
            pending.take().close()
            return None
        key = pending.SegmentKey(seg, outs, backend.get_backend())
        bound = _bindings.get(key)
        if bound is not None:
            _stats["cache_hits"] += 1
    node = seg.node
    outputs = [node(p) for p in outs]
    if bound is None:
        prog, inputs, params, _, _ = _lookup(outputs)
        index = seg.index
        bound = _Binding(prog, tuple(index[n.id] for n in inputs), tuple(index[n.id] for n in params))
        entries = seg.entries
        if all(entries[p][0] == "in" for p in bound.inputs):  # else another thread computed a
            with _lock:                                        # value this key records as an op
                _bindings[key.frozen()] = bound
                while len(_bindings) > max_programs():
                    del _bindings[next(iter(_bindings))]
    prog = bound.prog
    inputs = [node(p) for p in bound.inputs]
    params = [node(p) for p in bound.params]
    if dump.observing():  # llgrad.debug.dump/explain of a function: sees each program it runs
        dump.on_run(prog, outputs, inputs, params, len(outputs))
    results = prog.run([n.buffer for n in inputs], [p.value for p in params])
    with _lock:
        _stats["runs"] += 1
        _last[0] = prog
        for n, buf in zip(outputs, results):
            n.buffer = buf
            n.srcs = ()  # computed: later graphs read the buffer, and the history can be freed
    pending.take().close()
    return prog, inputs, params, outputs


def run_program(prog, inputs: list, params: list) -> list:
    """Run a program on buffers (a compiled step's replay), counted like any run."""
    results = prog.run(inputs, params)
    with _lock:
        _stats["runs"] += 1
        _last[0] = prog
    return results


def last_program():
    """The compiled program that ran most recently in this process."""
    return _last[0]


def _after_fork_in_child() -> None:
    """The threads that were building programs in the parent are gone: build them again here."""
    _building.clear()


# Held across a fork (no thread is halfway through the cache then), before LLVM's lock.
forking.hold_across_fork(_lock)
os.register_at_fork(after_in_child=_after_fork_in_child)
