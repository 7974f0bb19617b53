"""Fused kernels (loop IR) as loop-level MLIR: `func.func` over memrefs, `scf.for`, `arith`/`math`.

This mirrors codegen statement for statement, so the text is what LLVM gets:
buffers are flat memrefs indexed by the kernel's linear index expressions
(bools stored as bytes), run-time scalars are read from the `%params` slots
(doubles bit-cast from i64), reduction accumulators are one-element
`memref.alloca`s loaded and stored around each update, and a value computed
in an outer loop is reused, never recomputed, in the loops inside it.

    func.func @fused_add_mul_sum_div_2x2(%in0: memref<4xf32>, ..., %params: memref<5xi64>) {
      %c0 = arith.constant 0 : index
      ...
      scf.for %i0 = %c0 to %c2 step %c1 {  // reduce
        %v0 = arith.muli %i0, %c2 : index
        %v2 = memref.load %in0[%v1] : memref<4xf32>

mlir-opt 19 verifies it (no unregistered dialects).
"""

from __future__ import annotations

from . import loopir as L
from .dtypes import bool_, float64, int64
from .gemm import MR, MicroKernel, Pack
from .index import FloorDiv, Sym, Var
from .mlir_scalar import ScalarBuilder, in_window, mlir_type
from .scalar import REDUCTIONS


def memref_type(buf: L.Buf) -> str:
    n = 1
    for d in buf.shape:
        n *= d
    elem = "i8" if buf.dtype is bool_ else mlir_type(buf.dtype)
    return f"memref<{n}x{elem}>"


def _params_type(k: L.Kernel) -> str:
    return f"memref<{k.params}xi64>"


class _KernelPrinter(L.StatementVisitor):
    def __init__(self, kernel: L.Kernel, decls: dict) -> None:
        self.k = kernel
        self.lines: list[str] = []
        self.prologue: list[str] = []  # hoisted constants and accumulator slots
        self.b = ScalarBuilder(self.lines, "    ", "v", "", decls, const_lines=self.prologue)
        self.scopes: list[dict] = [{}]
        self.loop_vars: dict[Var, str] = {}
        self.accs: dict[int, tuple] = {}
        self.buf_names = {id(b): f"%{b.name}" for b in kernel.bufs}
        for buf in kernel.scratch:  # per-thread scratch on the stack
            self.buf_names[id(buf)] = f"%{buf.name}"
            self.prologue.append(f"    %{buf.name} = memref.alloca() : {memref_type(buf)}")

    def text(self, private: bool = True) -> str:
        self.block(self.k.body)
        args = [f"{self.buf_names[id(b)]}: {memref_type(b)}" for b in self.k.bufs]
        args.append(f"%params: {_params_type(self.k)}")
        vis = "private " if private else ""
        return "\n".join([f"  func.func {vis}@{self.k.name}({', '.join(args)}) {{", *self.prologue,
                          *self.lines, "    return", "  }"])

    # -- scopes: a value is reused inside the loop it was computed in, not outside it --------
    def cached(self, key):
        for scope in reversed(self.scopes):
            got = scope.get(key)
            if got is not None:
                return got
        return None

    # -- statements ----------------------------------------------------------------------------

    def _packed_offset(self, i: str, strip: int, depth: int) -> str:
        """Offset of element (i, k=0) in a block packed as strips of `strip` (i // strip, k, i % strip)."""
        b, c = self.b, self.b.index_const
        strip_no = b.op(f"arith.divui {i}, {c(strip)} : index")
        start = b.op(f"arith.muli {strip_no}, {c(depth * strip)} : index")
        return b.op(f"arith.addi {start}, {b.op(f'arith.remui {i}, {c(strip)} : index')} : index")

    def pack(self, s: Pack) -> None:
        """The packing copy codegen calls a shared function for, as scalar loops: zero outside
        the matrix, else the operand read at base + row * stride_row + col * stride_col."""
        b, ind = self.b, self.b.indent
        c = lambda n: b.index_const(n)  # noqa: E731
        t = mlir_type(s.dtype)
        strip = s.strip  # the statement's own: what codegen packs
        major, minor = (s.extent_row, s.extent_col) if s.which == "a" else (s.extent_col, s.extent_row)
        self.lines.append(f"{ind}// pack {s.which.upper()} block: strips of {strip}")
        base, row0, col0 = self.index(s.base), self.index(s.row0), self.index(s.col0)
        self.lines.append(f"{ind}scf.for %pm = {c(0)} to {c(major)} step {c(1)} {{")
        self.lines.append(f"{ind}  scf.for %pk = {c(0)} to {c(minor)} step {c(1)} {{")
        b.indent = ind + "    "
        row = b.op(f"arith.addi {row0}, {'%pm' if s.which == 'a' else '%pk'} : index")
        col = b.op(f"arith.addi {col0}, {'%pk' if s.which == 'a' else '%pm'} : index")
        row_ok = b.op(f"arith.cmpi ult, {row}, {c(s.rows)} : index")
        col_ok = b.op(f"arith.cmpi ult, {col}, {c(s.cols)} : index")
        inside = b.op(f"arith.andi {row_ok}, {col_ok} : i1")
        at_row = b.op(f"arith.muli {row}, {c(s.stride_row)} : index")
        at_col = b.op(f"arith.muli {col}, {c(s.stride_col)} : index")
        where = b.op(f"arith.addi {base}, {b.op(f'arith.addi {at_row}, {at_col} : index')} : index")
        where = b.op(f"arith.select {inside}, {where}, {base} : index")
        value = b.op(f"memref.load {self.buf_names[id(s.src)]}[{where}] : {memref_type(s.src)}")
        value = b.op(f"arith.select {inside}, {value}, {b.const(0, s.dtype)} : {t}")
        dst = self._packed_offset("%pm", strip, minor)
        dst = b.op(f"arith.addi {dst}, {b.op(f'arith.muli %pk, {c(strip)} : index')} : index")
        self.lines.append(f"{b.indent}memref.store {value}, {self.buf_names[id(s.dst)]}[{dst}] : "
                          f"{memref_type(s.dst)}")
        b.indent = ind
        self.lines.append(f"{ind}  }}")
        self.lines.append(f"{ind}}}")

    def micro_kernel(self, s: MicroKernel) -> None:
        """The same arithmetic as codegen's register-tiled vector micro-kernel, written as scalar
        loops: C[row, col] (+)= sum_k packed_a[row, k] * packed_b[k, col] over the tile."""
        b, ind = self.b, self.b.indent
        t = mlir_type(s.dtype)
        c = lambda n: b.index_const(n)  # noqa: E731
        self.lines.append(f"{ind}// micro-kernel: tile += packed A x packed B ({MR}x{s.nr} register tiles)")
        row0, col0, first = self.index(s.row0), self.index(s.col0), self.index(s.first)
        base = b.op(f"arith.muli {self.index(s.batch)}, {c(s.m * s.n)} : index")
        acc = f"%micro_acc{len(self.prologue)}"
        self.prologue.append(f"    {acc} = memref.alloca() : memref<{t}>")
        self.lines.append(f"{ind}scf.for %mi = {c(0)} to {c(s.mc)} step {c(1)} {{")
        self.lines.append(f"{ind}  scf.for %mj = {c(0)} to {c(s.nc)} step {c(1)} {{")
        b.indent = ind + "    "
        row = b.op(f"arith.addi {row0}, %mi : index")
        col = b.op(f"arith.addi {col0}, %mj : index")
        row_ok = b.op(f"arith.cmpi ult, {row}, {c(s.m)} : index")
        col_ok = b.op(f"arith.cmpi ult, {col}, {c(s.n)} : index")
        inside = b.op(f"arith.andi {row_ok}, {col_ok} : i1")
        self.lines.append(f"{b.indent}scf.if {inside} {{")
        b.indent += "  "
        row_start = b.op(f"arith.muli {row}, {c(s.n)} : index")
        flat = b.op(f"arith.addi {base}, {b.op(f'arith.addi {row_start}, {col} : index')} : index")
        cbuf, ctype = self.buf_names[id(s.c)], memref_type(s.c)
        old = b.op(f"memref.load {cbuf}[{flat}] : {ctype}")
        is_first = b.op(f"arith.cmpi eq, {first}, {c(0)} : index")
        start = b.op(f"arith.select {is_first}, {b.const(0, s.dtype)}, {old} : {t}")
        self.lines.append(f"{b.indent}memref.store {start}, {acc}[] : memref<{t}>")
        a_row = self._packed_offset("%mi", MR, s.kc)
        b_col = self._packed_offset("%mj", s.nr, s.kc)
        self.lines.append(f"{b.indent}scf.for %mk = {c(0)} to {c(s.kc)} step {c(1)} {{")
        b.indent += "  "
        ai = b.op(f"arith.addi {a_row}, {b.op(f'arith.muli %mk, {c(MR)} : index')} : index")
        bi = b.op(f"arith.addi {b_col}, {b.op(f'arith.muli %mk, {c(s.nr)} : index')} : index")
        av = b.op(f"memref.load {self.buf_names[id(s.a)]}[{ai}] : {memref_type(s.a)}")
        bv = b.op(f"memref.load {self.buf_names[id(s.b)]}[{bi}] : {memref_type(s.b)}")
        cur = b.op(f"memref.load {acc}[] : memref<{t}>")
        new = b.op(f"math.fma {av}, {bv}, {cur} : {t}")
        self.lines.append(f"{b.indent}memref.store {new}, {acc}[] : memref<{t}>")
        b.indent = b.indent[:-2]
        self.lines.append(f"{b.indent}}}")
        total = b.op(f"memref.load {acc}[] : memref<{t}>")
        self.lines.append(f"{b.indent}memref.store {total}, {cbuf}[{flat}] : {ctype}")
        b.indent = b.indent[:-2]
        self.lines.append(f"{b.indent}}}")
        b.indent = ind
        self.lines.append(f"{ind}  }}")
        self.lines.append(f"{ind}}}")

    def loop(self, s: L.Loop) -> None:
        if s.var.extent <= 0:  # codegen never enters an empty loop
            return
        name = f"%{s.var.name}"
        taken = set(self.loop_vars.values())
        while name in taken:
            name += "_"
        b = self.b
        lo, hi, one = b.index_const(0), b.index_const(s.var.extent), b.index_const(1)
        self.lines.append(f"{b.indent}scf.for {name} = {lo} to {hi} step {one} {{  // {s.role}")
        self.loop_vars[s.var] = name
        self.scopes.append({})
        b.indent += "  "
        self.block(s.body)
        b.indent = b.indent[:-2]
        self.scopes.pop()
        del self.loop_vars[s.var]
        self.lines.append(f"{b.indent}}}")

    def store(self, s: L.Store) -> None:
        v = self.value(s.value)
        if s.buf.dtype is bool_:
            v = self.b.op(f"arith.extui {v} : i1 to i8")
        where = self.address(s.index, None)
        self.lines.append(f"{self.b.indent}memref.store {v}, {self.buf_names[id(s.buf)]}[{where}] : "
                          f"{memref_type(s.buf)}")

    def acc_init(self, s: L.AccInit) -> None:
        acc = s.acc
        slot = f"%{acc.name}"
        self.prologue.append(f"    {slot} = memref.alloca() : memref<{mlir_type(acc.dtype)}>")
        init = self.b.const(REDUCTIONS[acc.kind].identity(acc.dtype), acc.dtype)
        self.lines.append(f"{self.b.indent}memref.store {init}, {slot}[] : memref<{mlir_type(acc.dtype)}>")
        pos = None
        if acc.kind.startswith("arg"):
            pos = f"%{acc.name}_pos"
            self.prologue.append(f"    {pos} = memref.alloca() : memref<i64>")
            self.lines.append(f"{self.b.indent}memref.store {self.b.const(0, int64)}, {pos}[] : memref<i64>")
        self.accs[id(acc)] = (slot, pos)

    def acc_update(self, s: L.AccUpdate) -> None:
        acc, b = s.acc, self.b
        slot, pos = self.accs[id(acc)]
        t = mlir_type(acc.dtype)
        v = self.value(s.value)
        if s.value.dtype is not acc.dtype:
            v = b.convert(v, s.value.dtype, acc.dtype)
        cur = b.op(f"memref.load {slot}[] : memref<{t}>")
        if not acc.kind.startswith("arg"):
            new = REDUCTIONS[acc.kind].combine(b, cur, v, acc.dtype)
            self.lines.append(f"{b.indent}memref.store {new}, {slot}[] : memref<{t}>")
            return
        better = REDUCTIONS[acc.kind].better(b, v, cur, acc.dtype)
        best = b.select(better, v, cur, acc.dtype)
        self.lines.append(f"{b.indent}memref.store {best}, {slot}[] : memref<{t}>")
        old = b.op(f"memref.load {pos}[] : memref<i64>")
        here = b.op(f"arith.index_cast {self.index(s.index)} : index to i64")
        at = b.select(better, here, old, int64)
        self.lines.append(f"{b.indent}memref.store {at}, {pos}[] : memref<i64>")

    # -- indices ---------------------------------------------------------------------------------
    def index(self, sym: Sym) -> str:
        key = ("idx", sym)
        got = self.cached(key)
        if got is not None:
            return got
        b = self.b
        total = None
        for atom, coeff in sym.terms:
            if isinstance(atom, Var):
                term = self.loop_vars[atom]
            else:
                inner = self.index(atom.expr)
                d = b.index_const(atom.divisor)
                if atom.expr.bounds()[0] >= 0:
                    op = "divui" if isinstance(atom, FloorDiv) else "remui"
                    term = b.op(f"arith.{op} {inner}, {d} : index")
                elif isinstance(atom, FloorDiv):  # floor semantics (flips give negative strides)
                    term = b.op(f"arith.floordivsi {inner}, {d} : index")
                else:
                    rem = b.op(f"arith.remsi {inner}, {d} : index")
                    negative = b.op(f"arith.cmpi slt, {rem}, {b.index_const(0)} : index")
                    wrapped = b.op(f"arith.addi {rem}, {d} : index")
                    term = b.op(f"arith.select {negative}, {wrapped}, {rem} : index")
            if coeff != 1:
                term = b.op(f"arith.muli {term}, {b.index_const(coeff)} : index")
            total = term if total is None else b.op(f"arith.addi {total}, {term} : index")
        if total is None:
            total = b.index_const(sym.const)
        elif sym.const:
            total = b.op(f"arith.addi {total}, {b.index_const(sym.const)} : index")
        self.scopes[-1][key] = total
        return total

    def address(self, index, guard) -> str:
        b = self.b
        if isinstance(index, L.DynIndex):
            flat = self.index(index.sym)
            for value, stride in index.terms:
                term = b.convert(self.value(value), value.dtype, int64)
                term = b.op(f"arith.index_cast {term} : i64 to index")
                if stride != 1:
                    term = b.op(f"arith.muli {term}, {b.index_const(stride)} : index")
                flat = b.op(f"arith.addi {flat}, {term} : index")
        else:
            flat = self.index(index)
        if guard is not None:
            flat = b.op(f"arith.select {self.value(guard)}, {flat}, {b.index_const(0)} : index")
        return flat

    # -- values ---------------------------------------------------------------------------------------
    def value(self, v: L.Value) -> str:
        got = self.cached(id(v))
        if got is not None:
            return got
        for u in L.postorder(v, lambda u: self.cached(id(u)) is not None):
            self.scopes[-1][id(u)] = self._value(u)  # its operands are in scope by now
        return self.scopes[-1][id(v)]

    def _value(self, v: L.Value) -> str:
        b = self.b
        if isinstance(v, L.Load):
            where = self.address(v.index, v.guard)
            x = b.op(f"memref.load {self.buf_names[id(v.buf)]}[{where}] : {memref_type(v.buf)}")
            return b.op(f"arith.trunci {x} : i8 to i1") if v.dtype is bool_ else x
        if isinstance(v, L.Const):
            return b.const(v.value, v.dtype)
        if isinstance(v, L.Param):
            raw = b.op(f"memref.load %params[{b.index_const(v.slot)}] : {_params_type(self.k)}")
            if v.dtype is float64:
                return b.op(f"arith.bitcast {raw} : i64 to f64")
            return b.op(f"arith.trunci {raw} : i64 to i1") if v.dtype is bool_ else raw
        if isinstance(v, L.Apply):
            args = [self.value(a) for a in v.args]
            return v.op.scalar(b, args, v.compute, v.attrs)
        if isinstance(v, L.Cast):
            return b.convert(self.value(v.arg), _value_dtype(v.arg), v.dtype)
        if isinstance(v, L.AccValue):
            slot, pos = self.accs[id(v.acc)]
            if v.acc.kind.startswith("arg"):
                return b.op(f"memref.load {pos}[] : memref<i64>")
            x = b.op(f"memref.load {slot}[] : memref<{mlir_type(v.acc.dtype)}>")
            return b.convert(x, v.acc.dtype, v.acc.result_dtype)
        if isinstance(v, L.IndexValue):
            i = b.op(f"arith.index_cast {self.index(v.index)} : index to i64")
            return b.convert(i, int64, v.dtype)
        if isinstance(v, L.InWindow):
            return in_window(b, self.index(v.index), v.start, v.count, v.step)
        if isinstance(v, L.Guarded):
            return b.select(self.value(v.cond), self.value(v.value), b.const(0, v.dtype), v.dtype)
        if isinstance(v, L.Select):
            return b.select(self.value(v.cond), self.value(v.a), self.value(v.b), v.dtype)
        raise TypeError(v)  # pragma: no cover


def _value_dtype(v: L.Value):
    """The dtype a value really has in code: an argmax/argmin accumulator reads as its int64
    position (its `dtype` is that of the compared values; codegen's cast of it is a no-op)."""
    if isinstance(v, L.AccValue) and v.acc.kind.startswith("arg"):
        return int64
    return v.dtype


def format_kernel(kernel: L.Kernel) -> str:
    """One kernel as a `func.func` (valid MLIR on its own; private functions it calls are declared)."""
    decls: dict = {}
    fn = _KernelPrinter(kernel, decls).text(private=False)
    return "\n".join([*decls.values(), _dedent(fn)])


def _dedent(text: str) -> str:
    return "\n".join(line[2:] if line.startswith("  ") else line for line in text.splitlines())


def format_program(kernels: list, bufs: list, name: str, title: str = "") -> str:
    """All kernels of a program as one module, with an entry function that calls them in order."""
    decls: dict = {}
    fns = [_KernelPrinter(k, decls).text() for k in kernels]
    n_params = max((k.params for k in kernels), default=0)
    args = [f"%{b.name}: {memref_type(b)}" for b in bufs] + [f"%params: memref<{n_params}xi64>"]
    entry = [f"  func.func @{name}({', '.join(args)}) {{"]
    for k in kernels:
        operands = [f"%{b.name}" for b in k.bufs] + ["%params"]
        types = [memref_type(b) for b in k.bufs] + [f"memref<{k.params}xi64>"]
        entry.append(f"    func.call @{k.name}({', '.join(operands)}) : ({', '.join(types)}) -> ()")
    entry += ["    return", "  }"]
    lines = [f"// {line}" for line in title.splitlines()]
    lines += ["module {", *(f"  {d}" for d in decls.values()), *fns, *entry, "}"]
    return "\n".join(lines) + "\n"
