"""The generated matrix multiply: packed, cache-blocked, register-tiled, FMA.

C[b] = A[b] @ B[b] (M x K @ K x N) is computed in column blocks of NC: the
outer loop runs over (batch, column block) pairs, which threads share. For
each KC-deep slice of K, the block of B is packed once into per-thread
scratch laid out the way the micro-kernel reads it (zero-padded at the
edges); then for each MC-high row block, the block of A is packed and the
micro-kernel runs over its MR x NR sub-tiles: MR rows of accumulators of NR
lanes (two vectors) held in registers across the k loop, one broadcast of A
and two FMAs per row per k.

Packing reads the operands through the scheduler's value builder, so
transposed or broadcast operands (the backward matmuls read `B^T`) and
elementwise producers are index arithmetic here too, never copies.
"""

from __future__ import annotations

import math

from llvmlite import ir

from . import loopir as L
from .dtypes import DType, bool_, float32, float64
from .graph import Node
from .index import Sym, Var

KC = 256  # depth of a packed slice: an A micro-panel (8 x 256) and a B micro-panel (256 x 32) fit L1
MC = 128  # rows per tile: the packed A block (128 x 256 floats, 128 KiB) stays in L2
NC = 256  # columns per tile: the packed B block (256 x 256 floats)
MR = 8  # micro-tile rows: MR x 2 accumulator vectors
MIN_WORK = 32 * 32 * 32  # below this the simple loop kernel is as fast


def vector_lanes(dtype: DType) -> int:
    return 64 // dtype.itemsize  # one 512-bit register


def applicable(m: Node) -> bool:
    return m.dtype in (float32, float64) and math.prod(m.shape) * m.srcs[0].shape[-1] >= MIN_WORK


class MicroKernel:
    """Loop-IR statement: multiply the packed blocks of one tile into C (codegen emits vector IR).

    C[batch, row0 + i, col0 + j] (+)= sum_k Ap[i, k] * Bp[k, j] for the valid (i, j) of the
    MC x NC tile; `first` (an index that is 0 on the first K slice) says whether to store or add.
    """

    def __init__(self, a: L.Buf, b: L.Buf, c: L.Buf, dtype: DType, m: int, n: int,
                 batch: Sym, row0: Sym, col0: Sym, first: Sym) -> None:
        self.a, self.b, self.c, self.dtype = a, b, c, dtype
        self.m, self.n = m, n
        self.batch, self.row0, self.col0, self.first = batch, row0, col0, first
        self.lanes = vector_lanes(dtype)
        self.nr = 2 * self.lanes


def emit(em, g) -> list:
    """The loop IR of a matmul group (`em` is the scheduler's emitter)."""
    m_node: Node = g.node
    a, b = m_node.srcs
    dt = m_node.dtype
    batched = len(m_node.shape) == 3
    nbatch = m_node.shape[0] if batched else 1
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    nr = 2 * vector_lanes(dt)
    mc, nc = min(MC, _round_up(M, MR)), min(NC, _round_up(N, nr))
    n_ic, n_jc, n_pc = -(-M // mc), -(-N // nc), -(-K // KC)
    kc = min(KC, K)

    out = em.buf(m_node)
    ap = em.stack_buf("packed_a", mc * kc, dt)
    bp = em.stack_buf("packed_b", kc * nc, dt)

    tile = Var("t", nbatch * n_jc)
    pc, icv = Var("p", n_pc), Var("ic", n_ic)
    st, sp, ic = Sym.var(tile), Sym.var(pc), Sym.var(icv)
    bidx = st.floordiv(n_jc)
    jc = st.mod(n_jc)
    row0, col0, k0 = ic * mc, jc * nc, sp * kc
    batch = (bidx,) if batched else ()

    def operand(node: Node, row: Sym, col: Sym, rows: int, cols: int) -> L.Value:
        """node[batch, row, col], zero outside the matrix (the padding of the packed blocks)."""
        inside = L.Apply(_AND, (L.InWindow(row, 0, rows, 1, bool_), L.InWindow(col, 0, cols, 1, bool_)),
                         bool_, {}, bool_)
        return L.Select(inside, _convert(em.value(node, batch + (row, col), inside), dt), L.Const(0, dt))

    # B block: for each NR-wide column strip, KC rows of NR contiguous values.
    jb, kk, jr = Var("jb", nc // nr), Var("kb", kc), Var("jr", nr)
    sjb, skk, sjr = Sym.var(jb), Sym.var(kk), Sym.var(jr)
    b_val = operand(b, k0 + skk, col0 + sjb * nr + sjr, K, N)
    pack_b = _nest([L.Store(bp, sjb * (kc * nr) + skk * nr + sjr, b_val)], [jb, kk, jr])
    # A block: for each MR-high row strip, KC columns of MR values.
    ib, ka, ir = Var("ib", mc // MR), Var("ka", kc), Var("ir", MR)
    sib, ska, sir = Sym.var(ib), Sym.var(ka), Sym.var(ir)
    a_val = operand(a, row0 + sib * MR + sir, k0 + ska, M, K)
    pack_a = _nest([L.Store(ap, sib * (kc * MR) + ska * MR + sir, a_val)], [ib, ka, ir])

    micro = MicroKernel(ap, bp, out, dt, M, N, bidx if batched else Sym.of(0), row0, col0, sp)
    micro.mc, micro.nc, micro.kc = mc, nc, kc
    em.fused.append("matmul")
    row_blocks = _nest(pack_a + [micro], [icv])
    slice_loop = L.Loop(pc, pack_b + row_blocks, "serial")
    return [L.Loop(tile, [slice_loop], "parallel")]


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def _nest(body: list, loop_vars: list) -> list:
    for v in reversed(loop_vars):
        if v.extent != 1:
            body = [L.Loop(v, body, "serial")]
    return body


def _convert(v: L.Value, dt: DType) -> L.Value:
    if v.dtype is dt:
        return v
    return L.Const(v.value, dt) if isinstance(v, L.Const) else L.Cast(v, dt)


class _AndOp:
    name = "logical_and"

    @staticmethod
    def lower(cg, args, dt, attrs):
        return cg.b.and_(*args)


_AND = _AndOp()


# -- codegen of the micro-kernel -------------------------------------------------------------

def micro_kernel(kcg, s: MicroKernel) -> None:
    """Emit the tile's micro-kernels into `kcg` (a kernel codegen: builder, pointers, indices)."""
    b = kcg.b
    elem = ir.FloatType() if s.dtype is float32 else ir.DoubleType()
    w = s.lanes
    vec = ir.VectorType(elem, w)
    i64 = ir.IntType(64)
    c64 = lambda v: ir.Constant(i64, v)  # noqa: E731
    fma = _declare(kcg.module, f"llvm.fma.v{w}{_suffix(elem)}", vec, [vec, vec, vec])
    a_ptr, b_ptr, c_ptr = kcg.ptr[id(s.a)], kcg.ptr[id(s.b)], kcg.ptr[id(s.c)]
    row0, col0 = kcg.index(s.row0), kcg.index(s.col0)
    first = b.icmp_signed("==", kcg.index(s.first), c64(0))
    c_base = b.mul(kcg.index(s.batch), c64(s.m * s.n))
    nr, kc = s.nr, s.kc

    def counted(name: str, extent: int, body) -> None:
        """for v in range(extent): body(v), as plain LLVM blocks."""
        pre = b.block
        head = kcg.fn.append_basic_block(name)
        done = kcg.fn.append_basic_block(name + ".done")
        b.branch(head)
        b.position_at_end(head)
        v = b.phi(i64)
        v.add_incoming(c64(0), pre)
        body(v)
        nxt = b.add(v, c64(1))
        v.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, c64(extent)), head, done)
        b.position_at_end(done)

    def column_strip(jb):
        col = b.add(col0, b.mul(jb, c64(nr)))
        go, skip = kcg.fn.append_basic_block("strip"), kcg.fn.append_basic_block("strip.skip")
        b.cbranch(b.icmp_signed("<", col, c64(s.n)), go, skip)
        b.position_at_end(go)
        counted("rows", s.mc // MR, lambda ib: tile(jb, ib, col))
        b.branch(skip)
        b.position_at_end(skip)

    def tile(jb, ib, col):
        row = b.add(row0, b.mul(ib, c64(MR)))
        go, skip = kcg.fn.append_basic_block("tile"), kcg.fn.append_basic_block("tile.skip")
        b.cbranch(b.icmp_signed("<", row, c64(s.m)), go, skip)
        b.position_at_end(go)
        accs = k_loop(b.mul(jb, c64(kc * nr)), b.mul(ib, c64(kc * MR)))
        store(accs, row, col)
        b.branch(skip)
        b.position_at_end(skip)

    def k_loop(b_off, a_off):
        pre = b.block
        head = kcg.fn.append_basic_block("k")
        done = kcg.fn.append_basic_block("k.done")
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(i64)
        k.add_incoming(c64(0), pre)
        zero = ir.Constant(vec, None)
        accs = [[b.phi(vec) for _ in range(2)] for _ in range(MR)]
        for row in accs:
            for acc in row:
                acc.add_incoming(zero, pre)
        bk = b.add(b_off, b.mul(k, c64(nr)))
        bv = [_load(b, b_ptr, b.add(bk, c64(c * w)), vec, elem) for c in range(2)]
        ak = b.add(a_off, b.mul(k, c64(MR)))
        new = []
        for r in range(MR):
            a = b.load(b.gep(a_ptr, [b.add(ak, c64(r))], inbounds=True, source_etype=elem), typ=elem)
            splat = _splat(b, a, vec)
            new.append([b.call(fma, [splat, bv[c], accs[r][c]]) for c in range(2)])
        nxt = b.add(k, c64(1))
        k.add_incoming(nxt, b.block)
        for r in range(MR):
            for c in range(2):
                accs[r][c].add_incoming(new[r][c], b.block)
        b.cbranch(b.icmp_signed("<", nxt, c64(kc)), head, done)
        b.position_at_end(done)
        return new

    def store(accs, row, col):
        full_rows = b.icmp_signed("<=", b.add(row, c64(MR)), c64(s.m))
        full_cols = b.icmp_signed("<=", b.add(col, c64(nr)), c64(s.n))
        fast, edge, done = (kcg.fn.append_basic_block(x) for x in ("store.full", "store.edge", "store.done"))
        b.cbranch(b.and_(full_rows, full_cols), fast, edge)
        b.position_at_end(fast)
        for r in range(MR):
            for c in range(2):
                at = _address(b, c_ptr, c_base, row, r, col, c * w, s.n, elem)
                value = accs[r][c]
                old = b.load(at, typ=vec)
                old.align = 4
                value = b.select(first, value, b.fadd(value, old))
                st = b.store(value, at)
                st.align = 4
        b.branch(done)
        b.position_at_end(edge)
        masked_load = _declare(kcg.module, f"llvm.masked.load.v{w}{_suffix(elem)}.p0", vec,
                               [ir.PointerType(), ir.IntType(32), ir.VectorType(ir.IntType(1), w), vec])
        masked_store = _declare(kcg.module, f"llvm.masked.store.v{w}{_suffix(elem)}.p0", ir.VoidType(),
                                [vec, ir.PointerType(), ir.IntType(32), ir.VectorType(ir.IntType(1), w)])
        lanes = ir.Constant(ir.VectorType(i64, w), list(range(w)))
        rows_left = b.sub(c64(s.m), row)
        for r in range(MR):
            row_ok = b.icmp_signed("<", c64(r), rows_left)
            for c in range(2):
                cols_left = b.sub(c64(s.n), b.add(col, c64(c * w)))
                mask = b.icmp_signed("<", lanes, _splat(b, cols_left, ir.VectorType(i64, w)))
                mask = b.and_(mask, b.select(row_ok, ir.Constant(mask.type, [1] * w),
                                             ir.Constant(mask.type, [0] * w)))
                at = _address(b, c_ptr, c_base, row, r, col, c * w, s.n, elem)
                zero = ir.Constant(vec, None)
                old = b.call(masked_load, [at, ir.Constant(ir.IntType(32), 4), mask, zero])
                value = b.select(first, accs[r][c], b.fadd(accs[r][c], old))
                b.call(masked_store, [value, at, ir.Constant(ir.IntType(32), 4), mask])
        b.branch(done)
        b.position_at_end(done)

    counted("strips", s.nc // nr, column_strip)


def _splat(b, scalar, vec):
    """The vector with `scalar` in every lane."""
    first = b.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(ir.IntType(64), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count)
    return b.shuffle_vector(first, ir.Constant(vec, ir.Undefined), zeros)


def _address(b, base, c_base, row, r, col, lane0: int, n: int, elem):
    i64 = ir.IntType(64)
    flat = b.add(c_base, b.add(b.mul(b.add(row, ir.Constant(i64, r)), ir.Constant(i64, n)),
                               b.add(col, ir.Constant(i64, lane0))))
    return b.gep(base, [flat], inbounds=True, source_etype=elem)


def _load(b, ptr, offset, vec, elem):
    value = b.load(b.gep(ptr, [offset], inbounds=True, source_etype=elem), typ=vec)
    value.align = 4
    return value


def _suffix(elem) -> str:
    return "f32" if isinstance(elem, ir.FloatType) else "f64"


def _declare(module, name: str, ret, args):
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name)
    return fn
