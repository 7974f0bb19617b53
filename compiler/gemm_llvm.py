"""The GEMM's LLVM code: the micro-kernel and packing functions of the shared library.

The loop IR of a matrix multiply (compiler/gemm.py) is made of two statements beside ordinary
loops: MicroKernel and Pack. A kernel calls a library function for each; the library (one
module, compiled once per process and kept in the disk cache: runtime/gemm_library.py) defines
those functions with explicit vector IR: 512-bit register tiles of FMAs, 8x8 register
transposes for operands read transposed.
"""

from __future__ import annotations

from llvmlite import ir

from .dtypes import DType, float32, float64
from .gemm import MR, MicroKernel, Pack, vector_lanes

# -- codegen of the micro-kernel -------------------------------------------------------------
#
# The micro-kernel and the packing copies are functions of a small library (one per dtype),
# called for every tile of every matmul: optimizing their unrolled vector code costs LLVM far
# more than a whole program, so the library is compiled once per process (and kept in the
# disk cache, runtime/gemm_library.py) and linked into every program that calls it.



def library_module(define: bool = True) -> ir.Module:
    """The GEMM library: micro-kernels and packing functions for float32 and float64.

    define=False: only their declarations (the entry points programs call, cheaply).
    """
    module = ir.Module(name="llgrad_gemm_library")
    for dtype in (float32, float64):
        _pack_function(module, dtype, "a", 2, define=define)
        for vectors in (1, 2):
            _micro_function(module, dtype, vectors, define=define)
            _pack_function(module, dtype, "b", vectors, define=define)
    return module

_MICRO_ARGS = ("a", "b", "c", "c_base", "row0", "col0", "first", "m", "n", "mc", "nc", "kc")


def micro_kernel(kcg, s: MicroKernel) -> None:
    """Call the module's micro-kernel for this tile."""
    fn = _micro_function(kcg.module, s.dtype, s.vectors)
    i64 = ir.IntType(64)
    b = kcg.b
    c_base = b.mul(kcg.index(s.batch), ir.Constant(i64, s.m * s.n))
    sizes = [ir.Constant(i64, v) for v in (s.m, s.n, s.mc, s.nc, s.kc)]
    args = [kcg.ptr[id(s.a)], kcg.ptr[id(s.b)], kcg.ptr[id(s.c)], c_base, kcg.index(s.row0),
            kcg.index(s.col0), kcg.index(s.first)] + sizes
    b.call(fn, args)


_POINTER_ARGS = frozenset({"a", "b", "c", "src", "dst"})  # the buffers; every other argument is an i64


def _library_function(module, name: str, arg_names: tuple, define: bool,
                      attributes: tuple = ()) -> tuple[ir.Function, bool]:
    """The module's void function `name` and whether the caller must build its body: programs
    only declare library functions (they link the library, runtime/gemm_library.py); the
    library defines each once."""
    fn = module.globals.get(name)
    if fn is not None:
        return fn, False
    types = [ir.PointerType() if arg in _POINTER_ARGS else ir.IntType(64) for arg in arg_names]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), types), name)
    if not define:
        return fn, False
    for attribute in ("noinline", "nounwind", *attributes):
        fn.attributes.add(attribute)
    for arg, arg_name in zip(fn.args, arg_names):
        arg.name = arg_name
    return fn, True


def _micro_function(module, dtype: DType, vectors: int, define: bool = False) -> ir.Function:
    name = f"llgrad_gemm_micro{'' if vectors == 2 else vectors}_{_suffix_of(dtype)}"
    fn, build = _library_function(module, name, _MICRO_ARGS, define)
    if build:
        _MicroBuilder(module, fn, dtype, vectors).build()
    return fn


def pack(kcg, s: Pack) -> None:
    """Call the module's packing function for this block."""
    fn = _pack_function(kcg.module, s.dtype, s.which, s.vectors)
    i64 = ir.IntType(64)
    c = lambda v: ir.Constant(i64, v)  # noqa: E731
    kcg.b.call(fn, [kcg.ptr[id(s.src)], kcg.index(s.base), c(s.stride_row), c(s.stride_col),
                    kcg.ptr[id(s.dst)], kcg.index(s.row0), kcg.index(s.col0), c(s.rows), c(s.cols),
                    c(s.extent_row), c(s.extent_col)])


_PACK_ARGS = ("src", "base", "s_row", "s_col", "dst", "row0", "col0", "rows", "cols", "ext_row", "ext_col")


def _pack_function(module, dtype: DType, which: str, vectors: int, define: bool = False) -> ir.Function:
    """Packing of A (strips of MR rows, one function for both micro-kernels: vectors=2) or of
    B (strips of `vectors` vectors' columns)."""
    name = f"llgrad_gemm_pack_{which}{'' if vectors == 2 else vectors}_{_suffix_of(dtype)}"
    fn, build = _library_function(module, name, _PACK_ARGS, define)
    if build:
        _PackBuilder(module, fn, dtype, which, vectors).build()
    return fn


class _PackBuilder:
    """The body of a packing function: dst[strip][k][lane] = src[lane, k] for each strip.

    Lanes are a strip's MR rows (which="a") or NR columns ("b"); k runs along the depth. A strip
    wholly inside the matrix is copied without bounds checks: whole vectors when its lanes are
    adjacent in memory (column-major A, row-major B), 8 x 8 register transposes when its depth is
    (row-major A, B read transposed as in `x @ w.T`), element by element otherwise. A strip at the
    matrix's edge is copied element by element with zeros outside.
    """

    def __init__(self, module, fn, dtype: DType, which: str, vectors: int) -> None:
        self.fn, self.i64 = fn, ir.IntType(64)
        self.elements = _element_copy_function(module, dtype)
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.elem = _element_type(dtype)
        self.elem_bytes = dtype.itemsize
        self.strip = MR if which == "a" else vectors * vector_lanes(dtype)
        a = self.a = dict(zip(_PACK_ARGS, fn.args))
        lanes, depth = ("row", "col") if which == "a" else ("col", "row")
        self.lane0, self.depth0 = a[lanes + "0"], a[depth + "0"]
        self.lane_bound, self.depth_bound = a[lanes + "s"], a[depth + "s"]
        self.lane_stride, self.depth_stride = a["s_" + lanes], a["s_" + depth]
        self.lane_ext, self.depth_ext = a["ext_" + lanes], a["ext_" + depth]

    def c(self, v: int) -> ir.Constant:
        return ir.Constant(self.i64, v)

    def build(self) -> None:
        b, c = self.b, self.c

        def one_strip(st):
            lane = b.add(self.lane0, b.mul(st, c(self.strip)))
            inside = b.and_(b.icmp_signed("<=", b.add(lane, c(self.strip)), self.lane_bound),
                            b.icmp_signed("<=", b.add(self.depth0, self.depth_ext), self.depth_bound))
            adjacent = b.icmp_signed("==", self.lane_stride, c(1))
            transposable = b.and_(b.icmp_signed("==", self.depth_stride, c(1)),
                                  b.icmp_signed("==", b.urem(self.depth_ext, c(8)), c(0)))
            with b.if_else(inside) as (whole, edge):
                with whole:
                    with b.if_else(adjacent) as (vectors, other):
                        with vectors:
                            self.copy_vectors(st, lane)
                        with other:
                            with b.if_else(transposable) as (transposes, elements):
                                with transposes:
                                    self.copy_transposed(st, lane)
                                with elements:
                                    self.copy_elements(st, lane)
                with edge:
                    self.copy_elements(st, lane)

        _counted(b, "strip", b.udiv(self.lane_ext, c(self.strip)), one_strip)
        b.ret_void()

    def src_at(self, lane, k):
        """Flat source index of element (lane, depth0 + k)."""
        b = self.b
        depth = b.add(self.depth0, k)
        return b.add(self.a["base"], b.add(b.mul(lane, self.lane_stride), b.mul(depth, self.depth_stride)))

    def dst_ptr(self, st, k, lane_in_strip):
        b = self.b
        at = b.add(b.mul(b.add(b.mul(st, self.depth_ext), k), self.c(self.strip)), lane_in_strip)
        return b.gep(self.a["dst"], [at], inbounds=True, source_etype=self.elem)

    def src_ptr(self, index):
        return self.b.gep(self.a["src"], [index], inbounds=True, source_etype=self.elem)

    def copy_vectors(self, st, lane) -> None:
        b, vec = self.b, ir.VectorType(self.elem, self.strip)

        def depth(k):
            value = b.load(self.src_ptr(self.src_at(lane, k)), typ=vec)
            value.align = self.elem_bytes
            b.store(value, self.dst_ptr(st, k, self.c(0))).align = self.elem_bytes

        _counted(b, "depth", self.depth_ext, depth)

    def copy_transposed(self, st, lane) -> None:
        b, c, vec = self.b, self.c, ir.VectorType(self.elem, 8)
        for group in range(self.strip // 8):
            def block(kb, group=group):
                k = b.mul(kb, c(8))
                rows = []
                for r in range(8):
                    row = b.load(self.src_ptr(self.src_at(b.add(lane, c(group * 8 + r)), k)), typ=vec)
                    row.align = self.elem_bytes
                    rows.append(row)
                for j, column in enumerate(_transpose8(b, rows)):
                    b.store(column, self.dst_ptr(st, b.add(k, c(j)), c(group * 8))).align = self.elem_bytes

            _counted(b, "depth8", b.udiv(self.depth_ext, c(8)), block)

    def copy_elements(self, st, lane) -> None:
        a = self.a
        dst_offset = self.b.mul(self.b.mul(st, self.depth_ext), self.c(self.strip))
        self.b.call(self.elements, [a["src"], a["base"], self.lane_stride, self.depth_stride, a["dst"],
                                    dst_offset, lane, self.depth0, self.lane_bound, self.depth_bound,
                                    self.c(self.strip), self.depth_ext])


_ELEMENT_ARGS = ("src", "base", "lane_stride", "depth_stride", "dst", "dst_offset", "lane0", "depth0",
                 "lane_bound", "depth_bound", "strip", "depth_ext")


def _element_copy_function(module, dtype: DType) -> ir.Function:
    """dst[dst_offset + k * strip + r] = src[lane0 + r, depth0 + k], zero outside the bounds: the
    packing of edge strips and odd layouts, element by element. Compiled for size: vectorizing
    its unknown strides costs LLVM far more time than the few edge strips it copies take."""
    name = f"llgrad_gemm_pack_elements_{_suffix_of(dtype)}"
    fn, build = _library_function(module, name, _ELEMENT_ARGS, True, ("minsize", "optsize"))
    if not build:
        return fn
    a = dict(zip(_ELEMENT_ARGS, fn.args))
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    elem = _element_type(dtype)

    def depth(k):
        def one(r):
            lane, at_depth = b.add(a["lane0"], r), b.add(a["depth0"], k)
            inside = b.and_(b.icmp_signed("<", lane, a["lane_bound"]),
                            b.icmp_signed("<", at_depth, a["depth_bound"]))
            flat = b.add(a["base"], b.add(b.mul(lane, a["lane_stride"]), b.mul(at_depth, a["depth_stride"])))
            where = b.select(inside, flat, a["base"])
            value = b.load(b.gep(a["src"], [where], inbounds=True, source_etype=elem), typ=elem)
            value = b.select(inside, value, ir.Constant(elem, 0.0))
            at = b.add(a["dst_offset"], b.add(b.mul(k, a["strip"]), r))
            b.store(value, b.gep(a["dst"], [at], inbounds=True, source_etype=elem))

        _counted(b, "lane", a["strip"], one)

    _counted(b, "depth", a["depth_ext"], depth)
    b.ret_void()
    return fn


def _transpose8(b, rows: list) -> list:
    """Transpose 8 vectors of 8 lanes: three rounds, each swapping the off-diagonal blocks of
    width 4, 2, 1 between pairs of vectors with one two-input shuffle per vector."""
    mask = lambda lanes: ir.Constant(ir.VectorType(ir.IntType(32), 8), lanes)  # noqa: E731
    for bit in (4, 2, 1):
        low = mask([j if not j & bit else 8 + j - bit for j in range(8)])
        high = mask([j + bit if not j & bit else 8 + j for j in range(8)])
        new = list(rows)
        for i in range(8):
            if not i & bit:
                new[i] = b.shuffle_vector(rows[i], rows[i + bit], low)
                new[i + bit] = b.shuffle_vector(rows[i], rows[i + bit], high)
        rows = new
    return rows


def _suffix_of(dtype: DType) -> str:
    return "f32" if dtype is float32 else "f64"


def _element_type(dtype: DType) -> ir.Type:
    return ir.FloatType() if dtype is float32 else ir.DoubleType()


def _counted(b: ir.IRBuilder, name: str, extent, body) -> None:
    """for v in range(extent): body(v) at the builder's position (extent an i64 value, at least 1)."""
    i64 = ir.IntType(64)
    pre = b.block
    head = b.function.append_basic_block(name)
    done = b.function.append_basic_block(name + ".done")
    b.branch(head)
    b.position_at_end(head)
    v = b.phi(i64)
    v.add_incoming(ir.Constant(i64, 0), pre)
    body(v)
    nxt = b.add(v, ir.Constant(i64, 1))
    v.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, extent), head, done)
    b.position_at_end(done)


class _MicroBuilder:
    def __init__(self, module, fn, dtype: DType, vectors: int) -> None:
        self.module, self.fn, self.nv = module, fn, vectors
        self.elem = _element_type(dtype)
        self.w = vector_lanes(dtype)
        self.vec = ir.VectorType(self.elem, self.w)
        self.i64 = ir.IntType(64)
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.args = dict(zip(_MICRO_ARGS, fn.args))
        self.fma = _declare(module, f"llvm.fma.v{self.w}{_suffix(self.elem)}", self.vec, [self.vec] * 3)
        # Spill slot for the edge path (rows of a tile that leave the matrix).
        self.tile = self.b.alloca(ir.ArrayType(self.elem, MR * vectors * self.w), name="tile")

    def c(self, v: int) -> ir.Constant:
        return ir.Constant(self.i64, v)

    def counted(self, name: str, extent, body) -> None:
        _counted(self.b, name, extent, body)

    def guarded(self, cond, body) -> None:
        b = self.b
        go = self.fn.append_basic_block("go")
        skip = self.fn.append_basic_block("skip")
        b.cbranch(cond, go, skip)
        b.position_at_end(go)
        body()
        b.branch(skip)
        b.position_at_end(skip)

    def build(self) -> None:
        a, b = self.args, self.b
        nr = self.nv * self.w
        strips = b.udiv(a["nc"], self.c(nr))
        rows = b.udiv(a["mc"], self.c(MR))

        def strip(jb):
            col = b.add(a["col0"], b.mul(jb, self.c(nr)))

            def tile(ib):
                row = b.add(a["row0"], b.mul(ib, self.c(MR)))
                self.guarded(b.icmp_signed("<", row, a["m"]), lambda: self.one_tile(jb, ib, row, col))

            self.guarded(b.icmp_signed("<", col, a["n"]), lambda: self.counted("rows", rows, tile))

        self.counted("strips", strips, strip)
        b.ret_void()

    def one_tile(self, jb, ib, row, col) -> None:
        a, b = self.args, self.b
        nr = self.nv * self.w
        accs = self.k_loop(b.mul(jb, b.mul(a["kc"], self.c(nr))), b.mul(ib, b.mul(a["kc"], self.c(MR))))
        full = b.and_(b.icmp_signed("<=", b.add(row, self.c(MR)), a["m"]),
                      b.icmp_signed("<=", b.add(col, self.c(nr)), a["n"]))
        with b.if_else(full) as (inside, edge):
            with inside:
                self.store_full(accs, row, col)
            with edge:
                self.store_edge(accs, row, col)

    def k_loop(self, b_off, a_off) -> list:
        a, b = self.args, self.b
        nr, w = self.nv * self.w, self.w
        pre = b.block
        head = self.fn.append_basic_block("k")
        done = self.fn.append_basic_block("k.done")
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(self.i64)
        k.add_incoming(self.c(0), pre)
        zero = ir.Constant(self.vec, None)
        accs = [[b.phi(self.vec) for _ in range(self.nv)] for _ in range(MR)]
        for row in accs:
            for acc in row:
                acc.add_incoming(zero, pre)
        bk = b.add(b_off, b.mul(k, self.c(nr)))
        bv = [_load(b, a["b"], b.add(bk, self.c(c * w)), self.vec, self.elem) for c in range(self.nv)]
        ak = b.add(a_off, b.mul(k, self.c(MR)))
        new = []
        for r in range(MR):
            at = b.gep(a["a"], [b.add(ak, self.c(r))], inbounds=True, source_etype=self.elem)
            x = b.load(at, typ=self.elem)
            splat = _splat(b, x, self.vec)
            new.append([b.call(self.fma, [splat, bv[c], accs[r][c]]) for c in range(self.nv)])
        nxt = b.add(k, self.c(1))
        k.add_incoming(nxt, b.block)
        for r in range(MR):
            for c in range(self.nv):
                accs[r][c].add_incoming(new[r][c], b.block)
        b.cbranch(b.icmp_signed("<", nxt, a["kc"]), head, done)
        b.position_at_end(done)
        return new

    def address(self, row, r, col, lane0: int):
        a, b = self.args, self.b
        flat = b.add(a["c_base"], b.add(b.mul(b.add(row, r), a["n"]), b.add(col, self.c(lane0))))
        return b.gep(a["c"], [flat], inbounds=True, source_etype=self.elem)

    def store_full(self, accs, row, col) -> None:
        b, first = self.b, self.b.icmp_signed("==", self.args["first"], self.c(0))
        with b.if_else(first) as (overwrite, accumulate):
            for block, add in ((overwrite, False), (accumulate, True)):
                with block:
                    for r in range(MR):
                        for c in range(self.nv):
                            at = self.address(row, self.c(r), col, c * self.w)
                            value = accs[r][c]
                            if add:
                                old = b.load(at, typ=self.vec)
                                old.align = 4
                                value = b.fadd(value, old)
                            b.store(value, at).align = 4

    def store_edge(self, accs, row, col) -> None:
        """Spill the tile, then write its rows inside the matrix with lane masks."""
        a, b, w = self.args, self.b, self.w
        tile = b.inttoptr(b.ptrtoint(self.tile, self.i64), ir.PointerType())
        for r in range(MR):
            for c in range(self.nv):
                at = b.gep(tile, [self.c((r * self.nv + c) * w)], inbounds=True, source_etype=self.elem)
                b.store(accs[r][c], at).align = 4
        vmask = ir.VectorType(ir.IntType(1), w)
        masked_load = _declare(self.module, f"llvm.masked.load.v{w}{_suffix(self.elem)}.p0", self.vec,
                               [ir.PointerType(), ir.IntType(32), vmask, self.vec])
        masked_store = _declare(self.module, f"llvm.masked.store.v{w}{_suffix(self.elem)}.p0", ir.VoidType(),
                                [self.vec, ir.PointerType(), ir.IntType(32), vmask])
        lanes = ir.Constant(ir.VectorType(self.i64, w), list(range(w)))
        first = b.icmp_signed("==", a["first"], self.c(0))
        rows_left = b.sub(a["m"], row)
        count = b.select(b.icmp_signed("<", rows_left, self.c(MR)), rows_left, self.c(MR))

        def one_row(r):
            for c in range(self.nv):
                cols_left = b.sub(a["n"], b.add(col, self.c(c * w)))
                mask = b.icmp_signed("<", lanes, _splat(b, cols_left, ir.VectorType(self.i64, w)))
                src = b.gep(tile, [b.add(b.mul(r, self.c(self.nv * w)), self.c(c * w))], inbounds=True,
                            source_etype=self.elem)
                value = b.load(src, typ=self.vec)
                value.align = 4
                at = self.address(row, r, col, c * w)
                zero = ir.Constant(self.vec, None)
                old = b.call(masked_load, [at, ir.Constant(ir.IntType(32), 4), mask, zero])
                value = b.select(first, value, b.fadd(value, old))
                b.call(masked_store, [value, at, ir.Constant(ir.IntType(32), 4), mask])

        self.counted("edge_rows", count, one_row)


def _splat(b, scalar, vec):
    """The vector with `scalar` in every lane."""
    first = b.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(ir.IntType(64), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count)
    return b.shuffle_vector(first, ir.Constant(vec, ir.Undefined), zeros)


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
