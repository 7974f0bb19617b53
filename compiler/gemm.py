"""The generated matrix multiply: packed, cache-blocked, register-tiled, FMA.

C[b] = A[b] @ B[b] (M x K @ K x N) is computed in column blocks of NC: the
outer loop runs over (batch, column block) pairs, which threads share. For
each KC-deep slice of K, the block of B is packed once into per-thread
scratch laid out the way the micro-kernel reads it (zero-padded at the
edges); then for each MC-high row block, the block of A is packed and the
micro-kernel runs over its MR x NR sub-tiles: MR rows of accumulators of NR
lanes (two vectors; one for a product one vector wide) held in registers
across the k loop, one broadcast of A and one FMA per vector per row per k.

Packing reads the operands through the scheduler's value builder, so
transposed or broadcast operands (the backward matmuls read `B^T`) and
elementwise producers are index arithmetic here too, never copies.

This module is the GEMM's loop IR: its tile sizes, its statements (MicroKernel, Pack) and
the scheduling of a matmul group into them. Their LLVM code (the micro-kernel and packing
functions of the shared library) is compiler/gemm_llvm.py.
"""

from __future__ import annotations

import math

from . import loopir as L
from .dtypes import DType, bool_, float32, float64
from .graph import Node
from .index import Sym, Var
from .ops import OPS

KC = 256  # depth of a packed slice: an A micro-panel (8 x 256) and a B micro-panel (256 x 32) fit L1
MC = 128  # rows per tile: the packed A block (128 x 256 floats, 128 KiB) stays in L2
NC = 256  # columns per tile: the packed B block (256 x 256 floats)
MR = 8  # micro-tile rows: MR x 2 accumulator vectors
MIN_WORK = 32 * 32 * 32  # below this the simple loop kernel is as fast


def vector_lanes(dtype: DType) -> int:
    return 64 // dtype.itemsize  # one 512-bit register


def tile_vectors(n: int, dtype: DType) -> int:
    """Vectors across a micro-tile: two, or one where the product is at most one vector wide
    (a 10-class output layer pads its 10 columns to 16, not 32)."""
    return 1 if n <= vector_lanes(dtype) else 2


def applicable(m: Node) -> bool:
    return m.dtype in (float32, float64) and math.prod(m.shape) * m.srcs[0].shape[-1] >= MIN_WORK


class MicroKernel:
    """Loop-IR statement: multiply the packed blocks of one tile into C (codegen emits vector IR).

    C[batch, row0 + i, col0 + j] (+)= sum_k Ap[i, k] * Bp[k, j] for the valid (i, j) of the
    MC x NC tile; `first` (an index that is 0 on the first K slice) says whether to store or add.
    """

    visit = "micro_kernel"  # the StatementVisitor method that emits it (loopir)

    def __init__(self, a: L.Buf, b: L.Buf, c: L.Buf, dtype: DType, m: int, n: int,
                 batch: Sym, row0: Sym, col0: Sym, first: Sym) -> None:
        self.a, self.b, self.c, self.dtype = a, b, c, dtype
        self.m, self.n = m, n
        self.batch, self.row0, self.col0, self.first = batch, row0, col0, first
        self.vectors = tile_vectors(n, dtype)
        self.nr = self.vectors * vector_lanes(dtype)  # columns of a register tile

    @property
    def work(self) -> int:
        """Multiply-adds of one tile, in the units of `loopir.iterations` (it decides threading)."""
        return self.mc * self.nc * self.kc


class Pack:
    """Loop-IR statement: copy a block of a strided operand into packed scratch (codegen calls a
    shared function). which="a": MR-row strips of dst[strip][k][r] = src[row0 + r, k0 + k];
    which="b": NR-column strips of dst[strip][k][c] = src[k0 + k, col0 + c]. Outside the
    matrix (rows x cols) the packed value is zero."""

    visit = "pack"  # the StatementVisitor method that emits it (loopir)

    def __init__(self, which: str, src: L.Buf, base: Sym, stride_row: int, stride_col: int, dst: L.Buf,
                 row0: Sym, col0: Sym, rows: int, cols: int, extent_row: int, extent_col: int,
                 dtype: DType) -> None:
        self.which, self.src, self.base, self.dst = which, src, base, dst
        self.stride_row, self.stride_col = stride_row, stride_col
        self.row0, self.col0, self.rows, self.cols = row0, col0, rows, cols
        self.extent_row, self.extent_col, self.dtype = extent_row, extent_col, dtype
        self.work = extent_row * extent_col  # values copied, for `loopir.iterations`
        # Vectors of a B strip: the micro-kernel's tile width; A strips are MR rows (its packing
        # function is the one for two vectors). Codegen and the printers both read these.
        self.vectors = 2 if which == "a" else tile_vectors(cols, dtype)
        self.strip = MR if which == "a" else self.vectors * vector_lanes(dtype)


def affine_access(em, node: Node, idx: tuple):
    """(buffer, base offset, row stride, column stride) when node[idx] reads a buffer at an affine
    position of the last two index variables (a view of a buffer: transposes, slices, batches)."""
    from .index import linearize
    from .schedule import src_indices

    n, ix = node, idx
    while n.buffer is None and n.id not in em.s.mat:
        if n.op.kind != "movement":
            return None
        entries = src_indices(n, ix)
        if len(entries) != 1 or entries[0][2] is not None:
            return None
        n, ix = entries[0][0], entries[0][1]
    flat = linearize(ix, n.shape)
    if any(not isinstance(atom, Var) for atom, _ in flat.terms):
        return None
    row_var, col_var = (next(iter(i.vars())) if i.vars() else None for i in idx[-2:])
    strides = []
    for v in (row_var, col_var):
        strides.append(0 if v is None else flat.coefficient(v))
    base = Sym({a: c for a, c in flat.terms if a not in (row_var, col_var)}, flat.const)
    return em.buf(n), base, strides[0], strides[1]


def emit(em, g) -> list:
    """The loop IR of a matmul group (`em` is the scheduler's emitter)."""
    m_node: Node = g.node
    a, b = m_node.srcs
    dt = m_node.dtype
    batched = len(m_node.shape) == 3
    nbatch = m_node.shape[0] if batched else 1
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    nr = tile_vectors(N, dt) * vector_lanes(dt)
    mc, nc = min(MC, _round_up(M, MR)), _column_block(N, nbatch, nr)
    n_pc = -(-K // KC)
    # K in equal slices (784 = 4 x 200, not 3 x 256 + 16 padded to 256), whole 8-deep blocks
    kc = K if n_pc == 1 else _round_up(-(-K // n_pc), 8)
    n_ic, n_jc = -(-M // mc), -(-N // nc)

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
        windows = (L.InWindow(row, 0, rows, 1, bool_), L.InWindow(col, 0, cols, 1, bool_))
        inside = L.Apply(OPS["logical_and"], windows, bool_, {}, bool_)
        return L.Select(inside, _convert(em.value(node, batch + (row, col), inside), dt), L.Const(0, dt))

    row_var, col_var, k_var = Var("row", M), Var("col", N), Var("k", K)
    srow, scol, sk = Sym.var(row_var), Sym.var(col_var), Sym.var(k_var)
    fast_a = affine_access(em, a, batch + (srow, sk))
    fast_b = affine_access(em, b, batch + (sk, scol))
    # B block: for each NR-wide column strip, KC rows of NR contiguous values.
    jb, kk, jr = Var("jb", nc // nr), Var("kb", kc), Var("jr", nr)
    sjb, skk, sjr = Sym.var(jb), Sym.var(kk), Sym.var(jr)
    if fast_b is not None:
        buf, base, s_k, s_col = fast_b
        pack_b = [Pack("b", buf, base, s_k, s_col, bp, k0, col0, K, N, kc, nc, dt)]
    else:
        b_val = operand(b, k0 + skk, col0 + sjb * nr + sjr, K, N)
        pack_b = _nest([L.Store(bp, sjb * (kc * nr) + skk * nr + sjr, b_val)], [jb, kk, jr])
    # A block: for each MR-high row strip, KC columns of MR values.
    ib, ka, ir = Var("ib", mc // MR), Var("ka", kc), Var("ir", MR)
    sib, ska, sir = Sym.var(ib), Sym.var(ka), Sym.var(ir)
    if fast_a is not None:
        buf, base, s_row, s_k = fast_a
        pack_a = [Pack("a", buf, base, s_row, s_k, ap, row0, k0, M, K, mc, kc, dt)]
    else:
        a_val = operand(a, row0 + sib * MR + sir, k0 + ska, M, K)
        pack_a = _nest([L.Store(ap, sib * (kc * MR) + ska * MR + sir, a_val)], [ib, ka, ir])

    micro = MicroKernel(ap, bp, out, dt, M, N, bidx if batched else Sym.of(0), row0, col0, sp)
    micro.mc, micro.nc, micro.kc = mc, nc, kc
    em.fused.append("matmul")
    row_blocks = _nest(pack_a + [micro], [icv])
    slice_loop = L.Loop(pc, pack_b + row_blocks, "serial")
    return [L.Loop(tile, [slice_loop], "parallel")]


def _column_block(n: int, nbatch: int, nr: int) -> int:
    """Columns per tile: at most NC, in whole NR strips, and an even number of (batch, column)
    tiles where the columns allow, so the two cores of the target machine share them evenly."""
    strips = -(-n // nr)
    tiles = -(-n // NC)
    if nbatch * tiles % 2 and strips > tiles:
        tiles += 1
    return -(-strips // tiles) * nr


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
