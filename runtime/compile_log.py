"""Why each program was compiled: a new graph, or what changed from the nearest one seen before.

Every compile is classified against the signatures compiled earlier in this
process (compiler/signature.py: one part per graph node, inputs by shape and
dtype, Python scalars by dtype). The nearest earlier signature with the same
number of nodes is compared part by part, and the difference is named the
way a user would look for it: "shape of input 2 changed from (128, 784) to
(64, 784)". `LLGRAD_LOG=compile` prints one line per compile to stderr;
`llgrad.runtime.stats()["compile_reasons"]` counts them by kind.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter, deque

from . import config

# Kinds of reasons, in the order a reader should care about them.
KINDS = ("new_graph", "shape", "dtype", "constant", "attribute", "structure", "outputs", "evicted")

_PRECEDENCE = ("structure", "shape", "dtype", "attribute", "constant")  # which kind names a mix

_lock = threading.Lock()
os.register_at_fork(after_in_child=_lock._at_fork_reinit)  # a thread that held it is gone
_counts: Counter = Counter()
_recent: deque = deque(maxlen=256)  # (key, program name) of earlier compiles, oldest first
_log_to = None  # a stream to log to (tests), else LLGRAD_LOG decides


def counts() -> dict:
    with _lock:
        return {k: _counts[k] for k in KINDS if _counts[k]}


def reset() -> None:
    with _lock:
        _counts.clear()


def forget() -> None:
    """Forget earlier signatures (the next compile of any graph counts as new)."""
    with _lock:
        _recent.clear()


def logging_enabled() -> bool:
    return _log_to is not None or "compile" in config.get("LLGRAD_LOG")


def set_log_stream(stream) -> None:
    """Log compiles to `stream` regardless of LLGRAD_LOG (None: back to the environment)."""
    global _log_to
    _log_to = stream


def reason(key) -> tuple[str, str]:
    """(kind, sentence) for compiling `key` now, given the earlier compiles."""
    with _lock:
        recent = list(_recent)
    backend = ""
    if key[1][:1] == ("backend",):  # runtime/backend.py tags keys of other backends
        key, backend = key[0], key[1][1]
        recent = [(k[0], n) for k, n in recent if k[1][:1] == ("backend",) and k[1][1] == backend]
    else:
        recent = [(k, n) for k, n in recent if k[1][:1] != ("backend",)]
    parts, targets = key
    best = None
    for old_key, old_name in recent:
        if old_key == key:  # compiled before, then dropped from memory (LRU) or the cache cleared
            return "evicted", f"same graph as {old_name}, which was dropped from the cache"
        old_parts, old_targets = old_key
        if len(old_parts) != len(parts):
            continue
        diffs = [i for i, (a, b) in enumerate(zip(old_parts, parts)) if a != b]
        score = len(diffs) + (old_targets != targets)
        if best is None or score < best[0]:
            best = (score, diffs, old_key, old_name)
    if best is None:
        if not recent:
            return "new_graph", "new graph"
        return "new_graph", f"new graph (no earlier graph has {len(parts)} ops)"
    _, diffs, (old_parts, old_targets), old_name = best
    if not diffs:
        return "outputs", f"same ops as {old_name}, different outputs requested"
    if len(diffs) * 2 > len(parts):
        return "new_graph", (f"new graph ({len(diffs)} of its {len(parts)} ops differ from the nearest, "
                             f"{old_name})")
    described = [_describe(i, old_parts, parts) for i in diffs]
    kind = min((k for k, _ in described), key=_PRECEDENCE.index)
    shown = "; ".join(text for _, text in described[:3])
    more = f" (and {len(described) - 3} more differences)" if len(described) > 3 else ""
    return kind, f"{shown}{more} (nearest cached: {old_name})"


def _describe(i: int, old_parts: tuple, parts: tuple) -> tuple[str, str]:
    old, new = old_parts[i], parts[i]
    if old[0] == "in" and new[0] == "in":
        number = sum(1 for p in parts[:i] if p[0] == "in")
        if old[1] != new[1]:
            return "shape", f"shape of input {number} changed from {old[1]} to {new[1]}"
        return "dtype", f"dtype of input {number} changed from {old[2]} to {new[2]}"
    if old[0] == "param" and new[0] == "param":
        number = sum(1 for p in parts[:i] if p[0] == "param")
        return "dtype", f"Python scalar {number} changed type from {old[1]} to {new[1]}"
    if old[0] == "const" and new[0] == "const":
        if old[2] != new[2]:
            return "dtype", f"constant of op {i} changed dtype from {old[2]} to {new[2]}"
        return "constant", f"constant of op {i} changed from {old[1]} to {new[1]}"
    if old[0] != new[0] or len(old) != len(new):
        return "structure", f"op {i} is now {new[0]} (was {old[0]})"
    if len(new) == 3 and old[2] != new[2]:
        return "structure", f"op {i} ({new[0]}) reads other values"
    before, after = dict(old[1]), dict(new[1])
    changed = [k for k in after if before.get(k) != after[k]] or list(before)
    name = changed[0]
    return "attribute", f"{name} of op {i} ({new[0]}) changed from {before.get(name)} to {after.get(name)}"


def on_program(key, prog, outputs: list, inputs: list, params: list, required: int | None = None) -> None:
    """Called once per new program (compiled here or loaded from disk), while its graph is intact."""
    from . import dump

    origin = getattr(prog, "origin", "compiled")
    if origin == "compiled":
        kind, text = reason(key)
        with _lock:
            _counts[kind] += 1
            _recent.append((key, prog.name))
    else:
        kind, text = "disk", "loaded from the disk cache (compiled by an earlier process)"
    if logging_enabled():
        seconds = getattr(prog, "compile_seconds", 0.0) if origin == "compiled" else prog.load_seconds
        verb = "compiled" if origin == "compiled" else "loaded"
        stream = _log_to or sys.stderr
        print(f"llgrad: {verb} {prog.name} in {seconds * 1e3:.1f} ms: {text}", file=stream)
    if dump.active():
        dump.on_program(prog, outputs, inputs, params, text, required)
