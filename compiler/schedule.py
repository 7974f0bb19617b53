"""Fusion: partition a graph into kernels and write each as a loop nest.

Which values get a buffer ("materialized"): the requested outputs, every
reduction and matmul, and matmul operands that are not views of a buffer.
Everything else (elementwise ops, broadcasts, views) is inlined into the
loops of the kernels that read it, as scalar code and index arithmetic.

A loop kernel iterates over a domain; its `axes` (possibly none) are reduced
in inner loops. Its work is a sequence of phases inside the outer loops:
each phase runs the inner loops once, storing full-domain values and updating
accumulators, then stores per-outer-point values ("post") that may read the
phase's results. So `x.exp().sum()` with `x.exp()` also kept is one loop, and
softmax over rows is one kernel whose phases reuse the row while it is in
cache. Nodes join the first kernel whose domain fits and that can run them
after everything they read (checked with symbolic indices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import gemm
from . import loopir as L
from .dtypes import bool_, float64, int64
from .fusion_trace import FusionTrace, group_nodes, kernel_name, unique_names
from .graph import Node
from .index import Sym, Var, delinearize, linearize
from .ops import OPS
from .ops.reduce import axes as reduce_axes
from .parallel import split_reductions
from .scalar import REDUCTIONS
from .simplify import simplify
from .walk import postorder


@dataclass(eq=False)
class Group:
    kind: str  # "loop" or "matmul"
    domain: tuple
    axes: tuple
    pos: int
    phases: list = field(default_factory=list)  # each: {"reduce": [], "store": [], "post": []}
    role: dict = field(default_factory=dict)  # node id -> (phase, role)
    node: Node | None = None  # the matmul node

    def __post_init__(self):
        self.set_domain(self.domain, self.axes)

    def set_domain(self, domain: tuple, axes: tuple) -> None:
        self.domain, self.axes = domain, axes
        self.vars = tuple(Var(f"i{a}", n) for a, n in enumerate(domain))
        self.full = tuple(Sym.var(v) for v in self.vars)
        # Elements of the whole domain and of one outer point: a node can only join a group
        # one of them fits (place() would refuse the others, at a cost: see _Scheduler.assign)
        self.numel = math.prod(domain)
        self.outer_numel = math.prod(n for a, n in enumerate(domain) if a not in axes) if axes else None

    def only_stores(self) -> bool:
        return not self.axes and all(not p["reduce"] and not p["post"] for p in self.phases)

    def index_of(self, shape: tuple) -> tuple | None:
        """Index of a value of `shape` at the current point of the whole domain: the domain's
        own, or the same elements in another shape when that needs no division (a flat view)."""
        if shape == self.domain:
            return self.full
        if math.prod(shape) != math.prod(self.domain):
            return None
        idx = delinearize(linearize(self.full, self.domain), shape)
        if any(not isinstance(atom, Var) for i in idx for atom, _ in i.terms):
            return None
        return idx

    def outer_index(self, shape: tuple) -> tuple | None:
        """Index of a value of `shape` at the current outer point, if it has an outer shape."""
        if len(shape) == len(self.domain):
            if all(shape[a] == (1 if a in self.axes else n) for a, n in enumerate(self.domain)):
                return tuple(Sym.of(0) if a in self.axes else i for a, i in enumerate(self.full))
            return None
        kept = tuple(n for a, n in enumerate(self.domain) if a not in self.axes)
        if shape == kept:
            return tuple(i for a, i in enumerate(self.full) if a not in self.axes)
        return None


@dataclass
class Schedule:
    kernels: list
    bufs: list  # every L.Buf, by slot
    inputs: list  # realized nodes read, by input slot
    params: list  # param nodes, by param slot
    outputs: list  # per target: its L.Buf (a fresh output, or an input it equals)
    trace: FusionTrace | None = None  # the decisions and their reasons, when asked for (debugging)


def bcast_index(idx: tuple, shape: tuple, src_shape: tuple) -> tuple:
    lead = len(shape) - len(src_shape)
    return tuple(Sym.of(0) if n == 1 else idx[lead + j] for j, n in enumerate(src_shape))


def src_indices(node: Node, idx: tuple) -> list:
    """(source, index, window) triples: where each source is read for `node` at `idx`.

    The index is None where it is only known at run time (the gathered source of `index`).
    """
    kind = node.op.kind
    if kind == "elementwise":
        return [(s, bcast_index(idx, node.shape, s.shape), None) for s in node.srcs]
    if kind == "movement":
        out = node.op.index(idx, node)
        if isinstance(out, list):
            return [(node.srcs[k], sidx, window) for k, sidx, window in out]
        return [(node.srcs[0], out, None)]
    if kind == "gather":
        return [(node.srcs[0], None, None)] + gather_index_reads(node, idx)
    raise AssertionError(f"{node.op.name} is not inlinable")


def gather_index_reads(node: Node, idx: tuple) -> list:
    """Where each index tensor of a gather/scatter is read for position `idx` of the indexed shape."""
    start = node.attrs["start"]
    idx_srcs = node.srcs[1:] if node.op.kind == "gather" or node.op.name == "scatter_add" else node.srcs[2:]
    bshape = _bshape(idx_srcs)
    pos = idx[start:start + len(bshape)]
    return [(t, bcast_index(pos, bshape, t.shape), None) for t in idx_srcs]


def _bshape(idx_srcs) -> tuple:
    from .ops.shapes import broadcast

    return broadcast(*(t.shape for t in idx_srcs)) if idx_srcs else ()


def view_root(node: Node) -> Node:
    """The node under a chain of single-source views (what a matmul operand really reads)."""
    while node.op.kind == "movement" and node.buffer is None and len(node.srcs) == 1:
        node = node.srcs[0]
    return node


class _Scheduler:
    def __init__(self, targets, inputs, params, required, trace: FusionTrace | None = None):
        self.roots = split_reductions(simplify(targets))
        self.inputs = inputs
        self.params = params
        self.order = postorder(self.roots)
        self.trace = trace  # when set, each decision below records its reason there
        self.optional: set[int] = set()  # stored only if a kernel computes them anyway
        self.mat = self._materialized(required)
        self.groups: list[Group] = []
        self.producer: dict[int, Group] = {}
        self.loaded: set[int] = set()  # materialized nodes some kernel reads from memory
        self._reads: dict = {}  # (node id, index) -> what reads() found

    # -- what gets a buffer ----------------------------------------------------
    def _materialized(self, required: int) -> set:
        mat = {r.id for r in self.roots[:required] if r.buffer is None}
        self._why([r for r in self.roots[:required] if r.buffer is None], "output")
        for n in self.order:
            kind = n.op.kind
            if kind in ("reduce", "matmul", "scatter", "scan"):
                mat.add(n.id)
                self._why([n], "reduction" if kind == "reduce" else kind)
            if kind == "matmul":  # operands are read many times: from memory (views are fine)
                for s in n.srcs:
                    root = view_root(s)
                    if root.buffer is None and root.op.kind != "leaf":
                        mat.add(root.id)
                        self._why([root], "matmul_operand")
            if kind == "gather" and n.buffer is None and n.srcs[0].buffer is None:  # read at run-time spots
                mat.add(n.srcs[0].id)
                self._why([n.srcs[0]], "gather_source")
        self.optional = {r.id for r in self.roots[required:] if r.buffer is None and r.id not in mat}
        self._why([r for r in self.roots[required:] if r.id in self.optional], "live")
        return mat | self.optional

    def _why(self, nodes: list, reason: str) -> None:
        if self.trace is not None:
            for n in nodes:
                self.trace.materialized(n, reason)

    def _refuse(self, m: Node, g: Group, reason: str, **details):
        """place() says no: record why (when tracing) and return None."""
        if self.trace is not None:
            self.trace.refused(m, g, reason, details)
        return None

    def is_boundary(self, n: Node) -> bool:
        return n.buffer is not None or n.id in self.mat

    def reads(self, node: Node, idx: tuple) -> list:
        """Materialized values (node, index) that computing `node` at `idx` reads (memoized:
        groups of one domain share their indices, and what is materialized is fixed by now)."""
        key = (node.id, idx)
        found = self._reads.get(key)
        if found is None:
            found = self._reads[key] = self._walk_reads(node, idx)
        return found

    def _walk_reads(self, node: Node, idx: tuple) -> list:
        out, seen = [], set()
        stack = [(s, i) for s, i, _ in src_indices_or_none(node, idx)]
        while stack:
            n, i = stack.pop()
            key = (n.id, i)
            if key in seen:
                continue
            seen.add(key)
            if self.is_boundary(n):
                out.append((n, i))
            elif n.op.kind not in ("leaf", "iota"):
                stack.extend((s, si) for s, si, _ in src_indices(n, i))
        return out

    def reads_own_loop(self, m: Node) -> list:
        """Reads of a node that runs its own loop nest (matmul, scatter, scan)."""
        if m.op.kind == "matmul":
            return self.reads_matmul(m)
        out = []
        for s in m.srcs:
            full = tuple(Sym.var(Var(f"j{k}", n)) for k, n in enumerate(s.shape))
            out += [(s, full)] if self.is_boundary(s) else self.reads(s, full)
        return out

    # -- grouping ----------------------------------------------------------------
    def run(self) -> None:
        for n in self.order:
            if n.id in self.mat and n.buffer is None:
                if n.id in self.optional:
                    self.assign_optional(n)
                else:
                    self.assign(n)

    def assign_optional(self, m: Node) -> None:
        """Store `m` as an extra output of a kernel that computes it anyway, or not at all."""
        for g in self.groups:
            if g.kind == "loop":
                placed = self.place(m, g)
                if placed is not None:
                    self._add(g, m, *placed)
                    return
        self.mat.discard(m.id)
        self._reads.clear()  # what is materialized changed
        if self.trace is not None:
            self.trace.dropped.append(m)

    def assign(self, m: Node) -> None:
        if m.op.kind in ("matmul", "scatter", "scan"):  # kernels with a loop nest of their own
            g = Group(m.op.kind, m.shape, (), len(self.groups), node=m)
            self._add(g, m, 0, "own", self.reads_own_loop(m))
            self.groups.append(g)
            return
        reduce = m.op.kind == "reduce"
        size = math.prod(m.srcs[0].shape if reduce else m.shape)
        tracing = self.trace is not None  # (then every refusal is recorded, with its reason)
        for g in self.groups:
            if g.kind != "loop":
                self._refuse(m, g, "own_loop", kind=g.kind)
                continue
            if not tracing and g.numel != size and (reduce or g.outer_numel != size):
                continue  # no domain of this group fits m: place() would refuse it
            placed = self.place(m, g)
            if placed is not None:
                self._add(g, m, *placed)
                return
        if m.op.kind == "reduce":
            g = Group("loop", m.srcs[0].shape, reduce_axes(m), len(self.groups))
        else:
            g = Group("loop", m.shape, (), len(self.groups))
        placed = self.place(m, g)
        assert placed is not None, f"cannot schedule {m}"
        self.groups.append(g)
        self._add(g, m, *placed)

    def reads_matmul(self, m: Node) -> list:
        a, b = m.srcs
        extents = (("i", a.shape[-2]), ("j", b.shape[-1]), ("k", a.shape[-1]))
        i, j, k = (Sym.var(Var(n, e)) for n, e in extents)
        batch = (Sym.var(Var("b", a.shape[0])),) if len(a.shape) == 3 else ()
        out = []
        for src, idx in ((a, batch + (i, k)), (b, batch + (k, j))):
            out += [(src, idx)] if self.is_boundary(src) else self.reads(src, idx)
        return out

    def _add(self, g: Group, m: Node, phase: int, role: str, reads: list) -> None:
        if role != "own":
            while len(g.phases) <= phase:
                g.phases.append({"reduce": [], "store": [], "post": []})
            g.phases[phase][role].append(m)
        g.role[m.id] = (phase, role)
        self.producer[m.id] = g
        self.loaded.update(d.id for d, _ in reads if self.producer.get(d.id) is not g)

    def _redomain(self, g: Group, domain: tuple) -> bool:
        """Let an elementwise group iterate `domain` instead (same elements, e.g. the (parts, n/parts)
        view a split reduction reads), if every value it stores still has a division-free index."""
        if not g.only_stores() or math.prod(domain) != math.prod(g.domain):
            return False
        old = g.domain
        g.set_domain(domain, ())
        if all(g.index_of(n.shape) is not None for p in g.phases for n in p["store"]):
            return True
        g.set_domain(old, ())
        return False

    def place(self, m: Node, g: Group):
        """(phase, role, reads) if `m` can join group `g`, else None."""
        if m.op.kind == "reduce":
            domain, ax = m.srcs[0].shape, reduce_axes(m)
            if domain != g.domain and not self._redomain(g, domain):
                return self._refuse(m, g, "domain", mine=domain, theirs=g.domain)
            if g.axes != ax:
                trailing = ax == tuple(range(len(domain) - len(ax), len(domain)))
                upgradable = not g.axes and all(not p["reduce"] and not p["post"] for p in g.phases)
                if not (trailing and upgradable and ax):
                    return self._refuse(m, g, "axes", mine=ax, theirs=g.axes)
                g.set_domain(g.domain, ax)  # only the loop order changes; its stores stay valid
                reads = self.reads(m, g.full)
                phase = self._phase_after(m, g, reads, post=False)
                if phase is None:
                    g.set_domain(g.domain, ())
                    return None
                return phase, "reduce", reads
            reads = self.reads(m, g.full)
            phase = self._phase_after(m, g, reads, post=False)
            return None if phase is None else (phase, "reduce", reads)
        full = g.index_of(m.shape)
        if full is not None:
            reads = self.reads(m, full)
            phase = self._phase_after(m, g, reads, post=False)
            if phase is not None and phase > 0 and not g.axes:
                return self._refuse(m, g, "no_reduction_loop")
            if phase is None:
                return None
            return phase, "store", reads
        outer = g.outer_index(m.shape) if g.axes else None
        if outer is None:
            return self._refuse(m, g, "shape", mine=m.shape, theirs=g.domain)
        reads = self.reads(m, outer)
        if not any(self.producer.get(d.id) is g for d, _ in reads):
            return self._refuse(m, g, "unrelated")
        phase = self._phase_after(m, g, reads, post=True)
        return None if phase is None else (phase, "post", reads)

    def _phase_after(self, m: Node, g: Group, reads: list, post: bool):
        """Earliest phase of `g` where everything `m` reads is available, or None."""
        phase = 0
        for d, idx in reads:
            owner = self.producer.get(d.id)
            if owner is None:
                continue
            if owner is not g:
                if owner.pos >= g.pos:
                    return self._refuse(m, g, "later", value=d, owner=f"k{owner.pos}")
                continue
            if idx is None:  # read at run-time positions: must be complete before this kernel
                return self._refuse(m, g, "dynamic", value=d)
            q, role = g.role[d.id]
            if role in ("reduce", "post"):
                if idx != g.outer_index(d.shape):
                    return self._refuse(m, g, "broadcast", value=d)
                phase = max(phase, q if post else q + 1)
            else:  # a full-domain store: readable at the same point
                if post:
                    return self._refuse(m, g, "post_reads_row", value=d)
                if idx != g.index_of(d.shape):
                    return self._refuse(m, g, "shifted", value=d)
                phase = max(phase, q)
        if post and phase >= len(g.phases):
            return self._refuse(m, g, "no_phase")
        return phase


def src_indices_or_none(node: Node, idx: tuple) -> list:
    if node.op.kind == "reduce":
        return [(node.srcs[0], idx, None)]
    if node.op.kind in ("leaf", "iota"):
        return []
    return src_indices(node, idx)


# -- emission ------------------------------------------------------------------------

class _Emitter:
    """Writes the loop IR of each group, building scalar values from graph nodes."""

    def __init__(self, sched: _Scheduler, bufs: dict, param_slot: dict):
        self.s = sched
        self.bufs = bufs  # node id -> L.Buf
        self.param_slot = param_slot
        self.accs: dict[int, L.Acc] = {}
        self.array_accs: dict[int, tuple] = {}  # column reductions: node id -> (scratch row, index)
        self.defining = None
        self.phase = 0
        self.memo: dict = {}
        self.used: list = []
        self.fused: list = []

    def buf(self, node: Node) -> L.Buf:
        b = self.bufs[node.id]
        if b not in self.used:
            self.used.append(b)
        return b

    def _inline(self, node: Node, idx: tuple) -> bool:
        """Whether a materialized node is computed here rather than loaded."""
        if node.id == self.defining:
            return True
        g = self.group
        if self.s.producer.get(node.id) is not g:
            return False
        phase, role = g.role[node.id]
        if role == "post":
            return True
        return role == "store" and phase == self.phase and idx == g.index_of(node.shape)

    def define(self, node: Node, idx: tuple) -> L.Value:
        """The value of a node this kernel stores (or accumulates)."""
        if node.id in self.accs:
            return L.AccValue(self.accs[node.id])
        self.defining = node.id
        try:
            return _convert(self.value(node, idx), node.dtype)  # a param travels as a 64-bit slot
        finally:
            self.defining = None

    def value(self, node: Node, idx: tuple, guard: L.Value | None = None) -> L.Value:
        """The scalar value of `node` at `idx` in the current kernel (built once, memoized)."""
        v = self._known(node, idx, guard)
        if v is None:
            v = self.memo[(node.id, idx, id(guard))] = self._drive(self._value(node, idx, guard))
        return v

    def _known(self, node: Node, idx: tuple, guard) -> L.Value | None:
        """The value if it is built already or needs no sources (an accumulator), else None."""
        key = (node.id, idx, id(guard))
        v = self.memo.get(key)
        if v is None and node.id in self.array_accs and self.s.producer[node.id] is self.group:
            row, at = self.array_accs[node.id]
            v = self.memo[key] = L.Load(row, at)
        if v is None:
            acc = self.accs.get(node.id)
            if acc is not None and self.s.producer[node.id] is self.group:
                v = self.memo[key] = L.AccValue(acc)
        return v

    def _drive(self, gen) -> L.Value:
        """Run a `_value` generator to its value. Each source value it yields for is built by a
        generator of its own on an explicit stack: a fused chain of 10,000 ops is no recursion."""
        stack = [(None, gen)]
        sent = None
        while True:
            key, g = stack[-1]
            try:
                node, idx, guard = g.send(sent)
            except StopIteration as done:
                stack.pop()
                if key is not None:
                    self.memo[key] = done.value
                if not stack:
                    return done.value
                sent = done.value
                continue
            sent = self._known(node, idx, guard)
            if sent is None:
                stack.append(((node.id, idx, id(guard)), self._value(node, idx, guard)))

    def _value(self, node: Node, idx: tuple, guard):
        """Generator: yields (source, index, guard) for each source value it needs, and is sent
        that value back; returns the node's value."""
        if node.buffer is not None:
            return L.Load(self.buf(node), linearize(idx, node.shape), guard)
        if node.id in self.s.mat and not self._inline(node, idx):
            return L.Load(self.buf(node), linearize(idx, node.shape), guard)
        op = node.op
        if op.name == "param":
            # Params travel as 64-bit slots: exact doubles and int64s.
            stored = float64 if node.dtype.is_floating_point else (bool_ if node.dtype is bool_ else int64)
            return L.Param(self.param_slot[node.id], stored)
        if op.name == "const":
            return L.Const(node.attrs["value"], node.dtype)
        if op.kind == "iota":
            return L.IndexValue(idx[node.attrs["dim"]], int64)
        if op.name not in self.fused:
            self.fused.append(op.name)
        if op.kind == "gather":
            x = node.srcs[0]
            where = yield from self._dynamic_index(node, x.shape, idx, node.srcs[1:], guard)
            return L.Load(self.buf(x), where, guard)
        srcs = src_indices(node, idx)
        if op.kind == "movement":
            if len(srcs) == 1 and srcs[0][2] is None:
                return (yield srcs[0][0], srcs[0][1], guard)
            # Pieces (cat, embed): each read only inside its window; zero outside all of them.
            result: L.Value = L.Const(0, node.dtype)
            for src, sidx, (at, start, count, step) in reversed(srcs):
                cond = L.InWindow(at, start, count, step, bool_)
                piece = yield src, sidx, cond
                result = L.Select(cond, _convert(piece, node.dtype), result)
            return result
        arg_dtypes, compute = op.compute(node)
        args = []
        for (src, sidx, _), dt in zip(srcs, arg_dtypes):
            args.append(_convert((yield src, sidx, guard), dt))
        return L.Apply(op, tuple(args), compute, node.attrs, node.dtype)

    def _dynamic(self, node: Node, shape: tuple, idx: tuple, idx_srcs, guard) -> L.DynIndex:
        """The flat offset in a buffer of `shape` of position `idx` of an indexed view of it."""
        return self._drive(self._dynamic_index(node, shape, idx, idx_srcs, guard))

    def _dynamic_index(self, node: Node, shape: tuple, idx: tuple, idx_srcs, guard):
        """Generator form of `_dynamic` (yields for the index values it reads)."""
        start, count = node.attrs["start"], node.attrs["count"]
        nb = len(_bshape(idx_srcs))
        static = idx[:start] + (Sym.of(0),) * count + idx[start + nb:]
        strides = [1] * len(shape)
        for k in range(len(shape) - 2, -1, -1):
            strides[k] = strides[k + 1] * shape[k + 1]
        terms = []
        for j, (t, tidx, _) in enumerate(gather_index_reads(node, idx)):
            v = _convert((yield t, tidx, guard), int64)
            n = shape[start + j]
            negative = L.Apply(OPS["lt"], (v, L.Const(0, int64)), int64, {}, bool_)
            wrapped = L.Apply(OPS["add"], (v, L.Const(n, int64)), int64, {}, int64)
            terms.append((L.Select(negative, wrapped, v), strides[start + j]))
        return L.DynIndex(linearize(static, shape), tuple(terms))

    # -- kernels ---------------------------------------------------------------
    def kernel(self, g: Group, number: int) -> L.Kernel:
        self.group, self.memo, self.used, self.fused, self.phase = g, {}, [], [], 0
        self.scratch = []
        body = {"matmul": self._matmul, "scatter": self._scatter, "scan": self._scan,
                "loop": self._loop}[g.kind](g)
        return L.Kernel(kernel_name(g, group_nodes(self.s, g)), list(self.used), body, list(self.fused),
                        len(self.s.params), scratch=self.scratch)

    def stack_buf(self, name: str, size: int, dtype) -> L.Buf:
        """A per-thread scratch buffer of the current kernel (on each thread's stack)."""
        buf = L.Buf(-1, name, (size,), dtype, "stack")
        self.scratch.append(buf)
        return buf

    def _loop(self, g: Group) -> list:
        block = _column_block(g)
        if block is not None:
            return self._loop_columns(g, block)
        outer_body: list = []
        for number, phase in enumerate(g.phases):
            self.phase = number
            inner: list = []
            for r in phase["reduce"]:
                acc = self._acc(r)
                outer_body.append(L.AccInit(acc))
                src = r.srcs[0]
                position = None
                if acc.kind.startswith("arg"):
                    position = linearize(tuple(g.full[a] for a in g.axes),
                                         tuple(g.domain[a] for a in g.axes))
                inner.append(L.AccUpdate(acc, self.value(src, g.full), position))
            for n in phase["store"]:
                idx = g.index_of(n.shape)
                inner.append(L.Store(self.buf(n), linearize(idx, n.shape), self.define(n, idx)))
            outer_body += _wrap(inner, [g.vars[a] for a in g.axes], "reduce" if g.axes else "parallel")
            for r in phase["reduce"]:
                if r.id in self.bufs:
                    flat = linearize(g.outer_index(r.shape), r.shape)
                    outer_body.append(L.Store(self.buf(r), flat, L.AccValue(self.accs[r.id])))
            for n in phase["post"]:
                idx = g.outer_index(n.shape)
                outer_body.append(L.Store(self.buf(n), linearize(idx, n.shape), self.define(n, idx)))
        outer = [g.vars[a] for a in range(len(g.domain)) if a not in g.axes]
        return _wrap(outer_body, outer, "parallel")

    def _loop_columns(self, g: Group, block: int) -> list:
        """A reduction over dims other than the innermost, in memory order: for each block of the
        innermost dim, a row of accumulators (per-thread scratch) updated across the reduced dims,
        so loads are contiguous and the update vectorizes across the block."""
        last = len(g.domain) - 1
        jb, jj = Var("jb", g.domain[last] // block), Var("jj", block)
        sjj = Sym.var(jj)
        original = g.full
        g.full = original[:-1] + (Sym.var(jb) * block + sjj,)
        body: list = []
        for number, phase in enumerate(g.phases):
            self.phase = number
            inner: list = []
            for r in phase["reduce"]:
                kind = r.op.reduce
                acc_dt = r.dtype if kind in ("sum", "prod") else r.srcs[0].dtype
                row = self.stack_buf(f"acc{len(self.array_accs)}", block, acc_dt)
                self.array_accs[r.id] = row, sjj
                reduction = REDUCTIONS[kind]
                start = L.Const(reduction.identity(acc_dt), acc_dt)
                body += _wrap([L.Store(row, sjj, start)], [jj], "serial")
                value = _convert(self.value(r.srcs[0], g.full), acc_dt)
                combined = L.Apply(OPS[reduction.op], (L.Load(row, sjj), value), acc_dt, {}, acc_dt)
                inner.append(L.Store(row, sjj, combined))
                if r.op.name not in self.fused:
                    self.fused.append(r.op.name)
            for n in phase["store"]:
                idx = g.index_of(n.shape)
                inner.append(L.Store(self.buf(n), linearize(idx, n.shape), self.define(n, idx)))
            inner = _wrap(inner, [jj], "serial")
            body += _wrap(inner, [g.vars[a] for a in g.axes], "reduce")
            post: list = []
            for r in phase["reduce"]:
                if r.id in self.bufs:
                    at = g.outer_index(r.shape)
                    total = _convert(self.value(r, at), r.dtype)
                    post.append(L.Store(self.buf(r), linearize(at, r.shape), total))
            for n in phase["post"]:
                idx = g.outer_index(n.shape)
                post.append(L.Store(self.buf(n), linearize(idx, n.shape), self.define(n, idx)))
            body += _wrap(post, [jj], "serial")
        g.full = original
        outer = [g.vars[a] for a in range(last) if a not in g.axes] + [jb]
        return _wrap(body, outer, "parallel")

    def _acc(self, r: Node) -> L.Acc:
        kind = r.op.reduce
        src_dt = r.srcs[0].dtype
        acc_dt = r.dtype if kind in ("sum", "prod") else src_dt  # int32 sums and products: int64
        acc = L.Acc(f"acc{len(self.accs)}", kind, acc_dt, r.dtype)
        self.accs[r.id] = acc
        if r.op.name not in self.fused:
            self.fused.append(r.op.name)
        return acc

    def _matmul(self, g: Group) -> list:
        m = g.node
        if gemm.applicable(m):
            return gemm.emit(self, g)
        a, b = m.srcs
        batch = [Var("b", a.shape[0])] if len(a.shape) == 3 else []
        bidx = tuple(Sym.var(v) for v in batch)
        i, j, k = Var("i", a.shape[-2]), Var("j", b.shape[-1]), Var("k", a.shape[-1])
        si, sj, sk = Sym.var(i), Sym.var(j), Sym.var(k)
        out = self.buf(m)
        cidx = linearize(bidx + (si, sj), m.shape)
        zero = _wrap([L.Store(out, cidx, L.Const(0, m.dtype))], [j], "parallel")
        av = self.value(a, bidx + (si, sk))
        bv = self.value(b, bidx + (sk, sj))
        acc = L.Apply(OPS["fma"], (av, bv, L.Load(out, cidx)), m.dtype, {}, m.dtype)
        update = _wrap([L.Store(out, cidx, acc)], [j], "parallel")
        self.fused.append("matmul")
        return _wrap(zero + _wrap(update, [k], "serial"), batch + [i], "parallel")

    def _scatter(self, g: Group) -> list:
        """Copy the base (or zeros) into the output, then write each update at its index."""
        m = g.node
        out = self.buf(m)
        ovars = [Var(f"o{k}", n) for k, n in enumerate(m.shape)]
        oidx = tuple(Sym.var(v) for v in ovars)
        if m.op.name == "scatter_add":
            init, src, idx_srcs, accumulate = L.Const(0, m.dtype), m.srcs[0], m.srcs[1:], True
        else:
            init = _convert(self.value(m.srcs[0], oidx), m.dtype)
            src, idx_srcs, accumulate = m.srcs[1], m.srcs[2:], m.attrs["accumulate"]
        body = _wrap([L.Store(out, linearize(oidx, m.shape), init)], ovars, "parallel")
        start, count = m.attrs["start"], m.attrs["count"]
        shape = m.shape[:start] + _bshape(idx_srcs) + m.shape[start + count:]
        uvars = [Var(f"u{k}", n) for k, n in enumerate(shape)]
        uidx = tuple(Sym.var(v) for v in uvars)
        value = _convert(self.value(src, bcast_index(uidx, shape, src.shape)), m.dtype)
        where = self._dynamic(m, m.shape, uidx, idx_srcs, None)
        if accumulate:
            value = L.Apply(OPS["add"], (L.Load(out, where), value), m.dtype, {}, m.dtype)
        self.fused.append(m.op.name)
        # Serial: repeated indices must see each other's writes.
        return body + _wrap([L.Store(out, where, value)], uvars, "serial")

    def _scan(self, g: Group) -> list:
        m = g.node
        d = m.attrs["dim"]
        out = self.buf(m)
        vars_ = [Var(f"i{k}", n) for k, n in enumerate(m.shape)]
        full = tuple(Sym.var(v) for v in vars_)
        acc = L.Acc(f"acc{len(self.accs)}", m.op.reduce, m.dtype, m.dtype)
        running = [L.AccUpdate(acc, self.value(m.srcs[0], full)),
                   L.Store(out, linearize(full, m.shape), L.AccValue(acc))]
        self.fused.append(m.op.name)
        body = [L.AccInit(acc)] + _wrap(running, [vars_[d]] if vars_ else [], "serial")
        return _wrap(body, [v for k, v in enumerate(vars_) if k != d], "parallel")


COLUMN_BLOCKS = (256, 128, 64, 32, 16, 8)


def _column_block(g: Group) -> int | None:
    """The block of the innermost dim for a memory-order reduction loop nest, if `g` reduces
    over other dims only (else its reductions run along rows, the innermost dim)."""
    last = len(g.domain) - 1
    if not g.axes or last in g.axes:
        return None
    if any(REDUCTIONS[r.op.reduce].is_arg for p in g.phases for r in p["reduce"]):
        return None
    n = g.domain[last]
    return next((b for b in COLUMN_BLOCKS if n % b == 0), n if n <= 1024 else None)


def _convert(v: L.Value, dt) -> L.Value:
    if v.dtype is dt:
        return v
    return L.Const(v.value, dt) if isinstance(v, L.Const) else L.Cast(v, dt)


def _wrap(body: list, loop_vars: list, role: str) -> list:
    for v in reversed(loop_vars):
        if v.extent != 1:
            body = [L.Loop(v, body, role)]
    return body


def schedule(targets: list[Node], inputs: list[Node], params: list[Node],
             required: int | None = None, trace: bool = False) -> Schedule:
    """Fuse the graph that computes `targets` into loop kernels.

    Targets after the first `required` are optional (values live tensors hold): they are
    stored only where a kernel computes them anyway, and their output is None otherwise.
    trace=True records each decision and its reason in `Schedule.trace` (debugging only:
    the trace holds graph nodes).
    """
    record = FusionTrace() if trace else None
    s = _Scheduler(targets, inputs, params, len(targets) if required is None else required, record)
    s.run()
    bufs: dict[int, L.Buf] = {}
    table: list[L.Buf] = []

    def new_buf(node: Node, role: str) -> L.Buf:
        b = L.Buf(len(table), f"{role}{len(table)}", node.shape, node.dtype, role)
        table.append(b)
        bufs[node.id] = b
        return b

    for n in inputs:
        new_buf(n, "in")
    outputs = []
    for r in s.roots:
        if r.id in bufs:
            outputs.append(bufs[r.id])
        elif r.buffer is not None:  # a target that is an input: shares its buffer
            outputs.append(new_buf(r, "in"))
        elif r.id in s.mat:
            outputs.append(new_buf(r, "out"))
        else:
            outputs.append(None)
    by_id = {n.id: n for n in s.order}
    for g in s.groups:
        for nid, (_, role) in g.role.items():
            if nid not in bufs and (role != "reduce" or nid in s.loaded):
                new_buf(by_id[nid], "tmp")
    param_slot = {p.id: i for i, p in enumerate(params)}
    em = _Emitter(s, bufs, param_slot)
    kernels = [em.kernel(g, i) for i, g in enumerate(s.groups)]
    unique_names(kernels)
    if record is not None:
        record.roots, record.order, record.groups = s.roots, s.order, s.groups
        record.mat, record.loaded, record.bufs = s.mat, s.loaded, bufs
    return Schedule(kernels, table, inputs, params, outputs, record)
