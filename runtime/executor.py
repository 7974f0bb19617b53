"""Realization: compute the values of some graph nodes with one compiled program.

The program for a graph is looked up by the graph's canonical signature; on a
miss the graph is scheduled, lowered and JIT-compiled. Values that live
tensors still hold inside the graph are computed in the same program, so a
graph is never run twice for them and graphs do not grow across steps.
"""

from __future__ import annotations

import hashlib
import threading

from llgrad.compiler.graph import Node
from llgrad.compiler.schedule import schedule
from llgrad.compiler.signature import canonicalize

from . import program as _program

_cache: dict = {}
_lock = threading.RLock()
_stats = {"compiles": 0, "cache_hits": 0, "compile_seconds": 0.0, "runs": 0}
_last: list = [None]  # the program that ran most recently (for debugging tools)


def stats() -> dict:
    """Counters of this process: programs compiled by LLVM, cache hits, seconds compiling."""
    return dict(_stats, cached_programs=len(_cache))


def reset_stats() -> None:
    for k in _stats:
        _stats[k] = 0.0 if isinstance(_stats[k], float) else 0


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


def lookup(targets: list[Node]):
    """(program, inputs, params, outputs) computing `targets` (plus live intermediates)."""
    outputs = targets + _live_intermediates(targets)
    key, inputs, params = canonicalize(outputs)
    prog = _cache.get(key)
    if prog is None:
        with _lock:
            prog = _cache.get(key)
            if prog is None:
                name = "llgrad_" + hashlib.sha1(repr(key).encode()).hexdigest()[:16]
                sched = schedule(outputs, inputs, params)
                prog = _program.build(sched, name)
                _cache[key] = prog
                _stats["compiles"] += 1
                _stats["compile_seconds"] += prog.compile_seconds
                return prog, inputs, params, outputs
    _stats["cache_hits"] += 1
    return prog, inputs, params, outputs


def realize(nodes: list[Node]) -> None:
    """Compute every node of `nodes` that has no buffer yet, in one program."""
    targets, seen = [], set()
    for n in nodes:
        if n.buffer is None and n.id not in seen:
            seen.add(n.id)
            targets.append(n)
    if not targets:
        return
    prog, inputs, params, outputs = lookup(targets)
    results = prog.run([n.buffer for n in inputs], [p.value for p in params])
    _stats["runs"] += 1
    _last[0] = prog
    for node, buf in zip(outputs, results):
        node.buffer = buf
        node.srcs = ()  # computed: later graphs read the buffer, and the history can be freed


def last_program():
    """The compiled program that ran most recently in this process."""
    return _last[0]
