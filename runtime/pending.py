"""Pending graphs: what a thread recorded since its last realization, and when it is computed.

The rule (README, "When values are computed"):

1. A realization computes, in one program, the values asked for *and every pending value a
   live holder still holds*: a tensor's storage, a value saved for a backward pass. Those are
   the values PyTorch would have computed by now. After it, no live value is pending, so no
   later program contains an op recorded before it: a value updated every step
   (`w = (w - lr * g).detach()`, `total += loss.detach()`) is a buffer from one step to the next.
2. A thread's pending graph is bounded: once `MAX_PENDING` nodes are pending, the next recorded
   op realizes them (a value that is never read cannot grow a graph without limit).

Each thread records into its own `Segment`. Recording an op appends one *entry* to it (the op,
its attributes, its sources by position; buffers by shape and dtype, Python numbers by dtype),
and folds it into a running hash, so the segment is its own program cache key: realizing it
looks the program up without walking the graph. A pending node that was not recorded here
(a view built lazily, a value another thread recorded, a dead value revived by a backward
pass) is *imported* on first use: its pending ancestry is appended, walked iteratively.
"""

from __future__ import annotations

import threading
import weakref

from llgrad.compiler.graph import Node
from llgrad.compiler.ops import OPS
from llgrad.compiler.signature import entry_of
from llgrad.compiler.walk import postorder

# A bound on one pending graph (nodes, leaves included). Large enough that no ordinary training
# step is cut in two; small enough that a never-read chain compiles in bounded time.
MAX_PENDING = 10_000

_local = threading.local()
_PARAM = OPS["param"]


class Segment:
    """The nodes this thread recorded since its last realization, in order, with their key."""

    __slots__ = ("nodes", "entries", "index", "holders", "hash")

    def __init__(self) -> None:
        # position -> weakref to the node: a dropped pending graph is freed at once (what a
        # program needs is reachable from its outputs, which are alive)
        self.nodes: list = []
        self.entries: list[tuple] = []  # position -> key entry (signature.entry_of)
        self.index: dict[int, int] = {}  # node.id (never reused) -> position
        self.holders: list = []  # weakrefs to objects whose `.node` a live value holds
        self.hash = 0

    def __len__(self) -> int:
        return len(self.nodes)

    def _append(self, node: Node, entry: tuple) -> int:
        pos = len(self.nodes)
        self.nodes.append(weakref.ref(node))
        self.entries.append(entry)
        self.index[node.id] = pos
        self.hash = hash((self.hash, entry))
        return pos

    def record(self, node: Node) -> None:
        """Append a node just made by an op (its sources placed first where new)."""
        index = self.index
        refs = []
        for s in node.srcs:
            p = index.get(s.id)
            if p is None:
                # a buffer or a Python number: one entry; a pending value from elsewhere: imported
                if s.buffer is None and not s.srcs and s.op is _PARAM:
                    p = self._append(s, ("param", s.dtype.name))
                elif s.buffer is not None or not s.srcs:
                    p = self._append(s, entry_of(s, ()))
                else:
                    p = self.place(s)
            refs.append(p)
        attrs = node.attrs
        entry = ((node.op.name, tuple(attrs.items()) if attrs else (), tuple(refs)) if refs
                 else entry_of(node, ()))
        index[node.id] = len(self.nodes)
        self.nodes.append(weakref.ref(node))
        self.entries.append(entry)
        self.hash = hash((self.hash, entry))

    def place(self, node: Node) -> int:
        """The position of any node, appending it (and its pending ancestry) if new here."""
        index = self.index
        p = index.get(node.id)
        if p is not None:
            return p
        for n in postorder([node], stop=lambda n: n.id in index):
            if n.id not in index:
                refs = () if n.buffer is not None else tuple(index[s.id] for s in n.srcs)
                self._append(n, entry_of(n, refs))
        return index[node.id]

    def node(self, pos: int) -> Node:
        """The node at `pos` (alive: only positions reachable from live outputs are asked for)."""
        return self.nodes[pos]()

    def hold(self, holder) -> None:
        self.holders.append(weakref.ref(holder))

    def outputs(self, targets: list[Node]) -> tuple[int, ...]:
        """Positions to compute: the targets, then every pending value a live holder holds."""
        out: list[int] = []
        seen: set[int] = set()
        for n in targets:
            if n.buffer is None:
                p = self.place(n)
                if p not in seen:
                    seen.add(p)
                    out.append(p)
        for ref in self.holders:
            h = ref()
            if h is None:
                continue
            n = h.node
            if n.buffer is not None or not n.srcs:  # computed, or a leaf (a Python number)
                continue
            p = self.place(n)
            if p not in seen:
                seen.add(p)
                out.append(p)
        return tuple(out)

    def close(self) -> None:
        """Drop everything (nodes that stay pending are imported again where used)."""
        self.nodes, self.entries, self.index, self.holders = [], [], {}, []


class SegmentKey:
    """A segment's program cache key: its entries and which positions it stores.

    Hashing uses the running hash (no walk); equality compares the entries (one C-level
    comparison of two lists), so a hash collision can never pick a wrong program.
    """

    __slots__ = ("h", "entries", "outputs")

    def __init__(self, seg: Segment, outputs: tuple[int, ...], backend: str) -> None:
        self.outputs = (backend, outputs)
        self.h = hash((seg.hash, self.outputs))
        self.entries = seg.entries

    def frozen(self) -> SegmentKey:
        """A copy that owns its entries (the segment's list keeps growing)."""
        k = object.__new__(SegmentKey)
        k.h, k.entries, k.outputs = self.h, list(self.entries), self.outputs
        return k

    def __hash__(self) -> int:
        return self.h

    def __eq__(self, other) -> bool:
        return self.h == other.h and self.outputs == other.outputs and self.entries == other.entries


def current() -> Segment:
    """This thread's segment."""
    try:
        return _local.seg
    except AttributeError:
        seg = _local.seg = Segment()
        return seg


def take() -> Segment:
    """This thread's segment, replaced by a fresh one (after it was realized)."""
    seg = current()
    _local.seg = Segment()
    return seg


def hold(holder) -> None:
    """Register an object whose `.node` a live value holds (a storage, a saved value)."""
    current().holders.append(weakref.ref(holder))
