"""Loop IR -> LLVM IR (llvmlite.ir): one module per program.

Each kernel becomes a function over `noalias` buffer pointers (so loops
vectorize without run-time overlap checks) and the program's entry point
`void entry(ptr buffers, ptr params)` calls them in order. Indices are i64.
Reduction adds carry `reassoc` (allowing vectorized, reordered sums: results
differ from a sequential sum by rounding only); elementwise math is exact
IEEE except where mathlib documents its polynomial error.
"""

from __future__ import annotations

import math

from llvmlite import ir

from . import loopir as L
from . import mathlib
from .dtypes import DType, bool_, float32, float64, int64
from .gemm import MicroKernel, Pack
from .gemm_llvm import micro_kernel, pack
from .index import FloorDiv, Mod, Sym, Var
from .scalar import REDUCTIONS, Scalar

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()

_REG = {"bool": I1, "int32": I32, "int64": I64, "float32": F32, "float64": F64}
_MEM = {"bool": I8, "int32": I32, "int64": I64, "float32": F32, "float64": F64}
_SUFFIX = {"float32": "f32", "float64": "f64"}


_LIBM_ONLY = {"log1p", "expm1", "erf"}  # no LLVM intrinsic: the C library's


def lltype(dt: DType) -> ir.Type:
    return _REG[dt.name]


class ScalarCodegen(Scalar):
    """The scalar builder (compiler/scalar.py) over LLVM IR: what the op table's rules run on."""

    def __init__(self, builder: ir.IRBuilder, module: ir.Module) -> None:
        self.b = builder
        self.module = module

    def lltype(self, dt: DType) -> ir.Type:
        return lltype(dt)

    def const(self, value, dt: DType) -> ir.Constant:
        if dt.is_floating_point:
            return ir.Constant(lltype(dt), float(value))
        if dt is bool_:
            return ir.Constant(I1, int(bool(value)))
        value = int(value)
        bits = dt.itemsize * 8
        if value >= 1 << (bits - 1):  # an unsigned bit pattern (hash constants): as signed
            value -= 1 << bits
        return ir.Constant(lltype(dt), value)

    def declare(self, name: str, ret: ir.Type, args: list) -> ir.Function:
        fn = self.module.globals.get(name)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ret, args), name)
        return fn

    def intrinsic(self, name: str, args: list, dt: DType) -> ir.Value:
        ty = lltype(dt)
        fn = self.declare(f"{name}.{_SUFFIX[dt.name]}", ty, [ty] * len(args))
        return self.b.call(fn, args)

    def convert(self, v: ir.Value, src: DType, dst: DType) -> ir.Value:
        if src is dst:
            return v
        b, to = self.b, lltype(dst)
        if dst is bool_:
            if src.is_floating_point:
                return b.fcmp_unordered("!=", v, ir.Constant(lltype(src), 0.0))
            return b.icmp_unsigned("!=", v, ir.Constant(lltype(src), 0))
        if src.is_floating_point and dst.is_floating_point:
            return b.fpext(v, to) if dst.itemsize > src.itemsize else b.fptrunc(v, to)
        if src.is_floating_point:
            return b.fptosi(v, to)
        if dst.is_floating_point:
            return b.uitofp(v, to) if src is bool_ else b.sitofp(v, to)
        if dst.itemsize > src.itemsize or src is bool_:
            return b.zext(v, to) if src is bool_ else b.sext(v, to)
        return b.trunc(v, to)

    cast = convert

    def unsigned_to_float(self, v, src: DType, dst: DType) -> ir.Value:
        return self.b.uitofp(v, lltype(dst))

    def binary(self, op: str, a, c, dt: DType) -> ir.Value:
        b = self.b
        if op in ("max", "min"):
            if dt.is_floating_point:  # llvm.maximum/minimum propagate NaN, like torch.maximum
                return self.intrinsic("llvm.maximum" if op == "max" else "llvm.minimum", [a, c], dt)
            return b.select(self.compare(">" if op == "max" else "<", a, c, dt), a, c)
        if dt.is_floating_point:
            return getattr(b, _FLOAT_OPS[op])(a, c)
        return getattr(b, _INT_OPS[op])(a, c)

    def reassociable(self, op: str, a, c, dt: DType) -> ir.Value:
        return getattr(self.b, _FLOAT_OPS[op])(a, c, flags=["reassoc", "contract"])

    def compare(self, pred: str, a, c, dt: DType) -> ir.Value:
        # Ordered float compares except `!=`, so NaN compares like IEEE and PyTorch.
        if dt.is_floating_point:
            return self.b.fcmp_unordered(pred, a, c) if pred == "!=" else self.b.fcmp_ordered(pred, a, c)
        if dt is bool_:
            return self.b.icmp_unsigned(pred, a, c)
        return self.b.icmp_signed(pred, a, c)

    def select(self, cond, a, c, dt: DType) -> ir.Value:
        return self.b.select(cond, a, c)

    def neg(self, x, dt: DType) -> ir.Value:
        return self.b.fneg(x) if dt.is_floating_point else self.b.neg(x)

    def not_(self, x) -> ir.Value:
        return self.b.not_(x)

    def fma(self, a, b, c, dt: DType) -> ir.Value:
        if dt.is_floating_point:
            return self.intrinsic("llvm.fmuladd", [a, b, c], dt)
        if dt is bool_:
            return self.b.or_(self.b.and_(a, b), c)
        return self.b.add(self.b.mul(a, b), c)

    def math(self, name: str, x: ir.Value, dt: DType) -> ir.Value:
        if dt is float32 and mathlib.has_f32(name):
            return self.b.call(mathlib.f32_function(self.module, name), [x])
        if name in _LIBM_ONLY:  # no LLVM intrinsic: call the C library (resolved by the JIT)
            ty = lltype(dt)
            return self.b.call(self.declare(name + ("f" if dt is float32 else ""), ty, [ty]), [x])
        if name == "sigmoid":
            return self.sigmoid(x, dt)
        return self.intrinsic(f"llvm.{name}", [x], dt)

    def pow(self, x, y, dt: DType) -> ir.Value:
        if dt.is_floating_point:
            return self.intrinsic("llvm.pow", [x, y], dt)
        # Integer powers through double: exact while results fit in 53 bits.
        xd, yd = self.convert(x, dt, float64), self.convert(y, dt, float64)
        return self.convert(self.intrinsic("llvm.pow", [xd, yd], float64), float64, dt)


_FLOAT_OPS = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv"}
_INT_OPS = {"add": "add", "sub": "sub", "mul": "mul", "div": "sdiv", "and": "and_", "or": "or_",
            "xor": "xor", "shr": "lshr"}


class _Scope:
    """Values emitted in one block scope: reusable by nested scopes, not by outer ones."""

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.values: dict = {}

    def get(self, key):
        s = self
        while s is not None:
            v = s.values.get(key)
            if v is not None:
                return v
            s = s.parent
        return None


class _KernelCodegen(L.StatementVisitor):
    def __init__(self, module: ir.Module, kernel: L.Kernel, name: str, params: tuple | None = None) -> None:
        """`params`: the program scalar slots the kernel reads, in the order of its own params
        array (a kernel compiled on its own, kernel_key.KernelKey); None: the program's array."""
        self.module = module
        self.kernel = kernel
        self.param_index = None if params is None else {slot: i for i, slot in enumerate(params)}
        self.offsets = {}  # id(buf) -> the constant its caller already added to its address
        self.fn = ir.Function(module, _KERNEL_TYPE(len(kernel.bufs)), name)
        if params is None:
            self.fn.linkage = "internal"
        self.fn.attributes.add("nounwind")
        for a in self.fn.args[:len(kernel.bufs)]:
            a.add_attribute("noalias")
        self.ptr = {id(bf): arg for bf, arg in zip(kernel.bufs, self.fn.args)}
        self.params, self.tid, self.nthreads = self.fn.args[len(kernel.bufs):]
        entry = self.fn.append_basic_block("entry")
        self.alloca_builder = ir.IRBuilder(entry)
        body = self.fn.append_basic_block("body")
        self.b = ir.IRBuilder(body)
        self.cg = ScalarCodegen(self.b, module)
        self.scope = _Scope(None)
        self.loop_vars: dict[Var, ir.Value] = {}
        self.accs: dict[int, tuple] = {}
        for buf in kernel.scratch:  # per-thread scratch: every thread has its own stack
            slot = self.alloca_builder.alloca(ir.ArrayType(_MEM[buf.dtype.name], math.prod(buf.shape)),
                                              name=buf.name)
            slot.align = 64
            # An opaque pointer like the arguments' (llvmlite types allocas; LLVM folds the round trip).
            self.ptr[id(buf)] = self.alloca_builder.inttoptr(self.alloca_builder.ptrtoint(slot, I64), PTR)

    def build(self) -> ir.Function:
        body = self.kernel.body
        if len(body) == 1 and isinstance(body[0], L.Loop) and body[0].role == "parallel":
            self.loop(body[0], split=True)  # each thread takes a contiguous share of the outer loop
        else:
            # Anything else runs on thread 0 alone; the others go straight to the barrier.
            run = self.fn.append_basic_block("thread0")
            done = self.fn.append_basic_block("done")
            self.b.cbranch(self.b.icmp_signed("==", self.tid, ir.Constant(I64, 0)), run, done)
            self.b.position_at_end(run)
            self.block(body)
            self.b.branch(done)
            self.b.position_at_end(done)
        self.b.ret_void()
        self.alloca_builder.branch(self.fn.blocks[1])
        return self.fn

    # -- statements (StatementVisitor: block() calls these by statement kind) -----------------
    def micro_kernel(self, s: MicroKernel) -> None:
        micro_kernel(self, s)

    def pack(self, s: Pack) -> None:
        pack(self, s)


    def loop(self, s: L.Loop, split: bool = False) -> None:
        if s.var.extent <= 0:  # the loop below tests at the bottom: empty loops must not be entered
            return
        b = self.b
        extent = ir.Constant(I64, s.var.extent)
        lo, hi = ir.Constant(I64, 0), extent
        header = self.fn.append_basic_block(f"{s.var.name}.loop")
        exit_ = self.fn.append_basic_block(f"{s.var.name}.exit")
        if split:  # [extent*tid/n, extent*(tid+1)/n)
            lo = b.udiv(b.mul(extent, self.tid), self.nthreads)
            hi = b.udiv(b.mul(extent, b.add(self.tid, ir.Constant(I64, 1))), self.nthreads)
            b.cbranch(b.icmp_signed("<", lo, hi), header, exit_)
        else:
            b.branch(header)
        pre = b.block
        b.position_at_end(header)
        i = b.phi(I64, name=s.var.name)
        i.add_incoming(lo, pre)
        self.loop_vars[s.var] = i
        self.scope = _Scope(self.scope)
        self.block(s.body)
        self.scope = self.scope.parent
        nxt = b.add(i, ir.Constant(I64, 1), flags=["nuw", "nsw"])
        i.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, hi), header, exit_)
        b.position_at_end(exit_)
        del self.loop_vars[s.var]

    def address(self, buf: L.Buf, index, guard) -> ir.Value:
        if isinstance(index, L.DynIndex):
            flat = self.index(index.sym)
            for value, stride in index.terms:
                term = self.cg.cast(self.value(value), value.dtype, int64)
                if stride != 1:
                    term = self.b.mul(term, ir.Constant(I64, stride))
                flat = self.b.add(flat, term)
        else:
            shift = self.offsets.get(id(buf))
            flat = self.index(index if not shift else index + -shift)
        if guard is not None:
            flat = self.b.select(self.value(guard), flat, ir.Constant(I64, 0))
        return self.b.gep(self.ptr[id(buf)], [flat], inbounds=True, source_etype=_MEM[buf.dtype.name])

    def store(self, s: L.Store) -> None:
        v = self.value(s.value)
        if s.buf.dtype is bool_:
            v = self.b.zext(v, I8)
        self.b.store(v, self.address(s.buf, s.index, None))

    def acc_init(self, s: L.AccInit) -> None:
        acc = s.acc
        ty = lltype(acc.dtype)
        slot = self.alloca_builder.alloca(ty, name=acc.name)
        self.b.store(self._identity(acc), slot)
        pos = None
        if acc.kind.startswith("arg"):
            pos = self.alloca_builder.alloca(I64, name=acc.name + ".pos")
            self.b.store(ir.Constant(I64, 0), pos)
        self.accs[id(acc)] = (slot, pos)

    def _identity(self, acc: L.Acc) -> ir.Constant:
        return self.cg.const(REDUCTIONS[acc.kind].identity(acc.dtype), acc.dtype)

    def acc_update(self, s: L.AccUpdate) -> None:
        acc, b, cg = s.acc, self.b, self.cg
        reduction = REDUCTIONS[acc.kind]
        slot, pos = self.accs[id(acc)]
        v = self.value(s.value)
        if s.value.dtype is not acc.dtype:
            v = cg.convert(v, s.value.dtype, acc.dtype)
        cur = b.load(slot, typ=lltype(acc.dtype))
        if not reduction.is_arg:
            b.store(reduction.combine(cg, cur, v, acc.dtype), slot)
            return
        better = reduction.better(cg, v, cur, acc.dtype)
        b.store(b.select(better, v, cur), slot)
        old = b.load(pos, typ=I64)
        b.store(b.select(better, self.index(s.index), old), pos)

    # -- values ------------------------------------------------------------------
    def index(self, sym: Sym) -> ir.Value:
        key = ("idx", sym)
        got = self.scope.get(key)
        if got is not None:
            return got
        b = self.b
        total = None
        for atom, coeff in sym.terms:
            if isinstance(atom, Var):
                term = self.loop_vars[atom]
            else:
                inner = self.index(atom.expr)
                d = ir.Constant(I64, atom.divisor)
                if atom.expr.bounds()[0] < 0:  # floor semantics (flips give negative strides)
                    rem = b.srem(inner, d)
                    negative = b.icmp_signed("<", rem, ir.Constant(I64, 0))
                    if isinstance(atom, FloorDiv):
                        term = b.sub(b.sdiv(inner, d), b.zext(negative, I64))
                    else:
                        term = b.select(negative, b.add(rem, d), rem)
                elif isinstance(atom, FloorDiv):
                    term = b.udiv(inner, d)
                else:
                    assert isinstance(atom, Mod)
                    term = b.urem(inner, d)
            if coeff != 1:
                term = b.mul(term, ir.Constant(I64, coeff), flags=["nsw"])
            total = term if total is None else b.add(total, term, flags=["nsw"])
        if total is None:
            total = ir.Constant(I64, sym.const)
        elif sym.const:
            total = b.add(total, ir.Constant(I64, sym.const), flags=["nsw"])
        self.scope.values[key] = total
        return total

    def value(self, v: L.Value) -> ir.Value:
        got = self.scope.get(id(v))
        if got is not None:
            return got
        for u in L.postorder(v, lambda u: self.scope.get(id(u)) is not None):
            self.scope.values[id(u)] = self._value(u)  # its operands are in scope by now
        return self.scope.values[id(v)]

    def _value(self, v: L.Value) -> ir.Value:
        b, cg = self.b, self.cg
        if isinstance(v, L.Load):
            x = b.load(self.address(v.buf, v.index, v.guard), typ=_MEM[v.buf.dtype.name])
            return b.trunc(x, I1) if v.dtype is bool_ else x
        if isinstance(v, L.Const):
            return cg.const(v.value, v.dtype)
        if isinstance(v, L.Param):
            at = v.slot if self.param_index is None else self.param_index[v.slot]
            slot = b.gep(self.params, [ir.Constant(I64, at)], inbounds=True, source_etype=I64)
            raw = b.load(slot, typ=I64)
            if v.dtype is float64:
                return b.bitcast(raw, F64)
            return b.trunc(raw, I1) if v.dtype is bool_ else raw
        if isinstance(v, L.Apply):
            args = [self.value(a) for a in v.args]
            return v.op.scalar(cg, args, v.compute, v.attrs)
        if isinstance(v, L.Cast):
            return cg.cast(self.value(v.arg), v.arg.dtype, v.dtype)
        if isinstance(v, L.AccValue):
            slot, _ = self.accs[id(v.acc)]
            if v.acc.kind.startswith("arg"):
                _, pos = self.accs[id(v.acc)]
                return b.load(pos, typ=I64)
            val = b.load(slot, typ=lltype(v.acc.dtype))
            return cg.cast(val, v.acc.dtype, v.acc.result_dtype)
        if isinstance(v, L.IndexValue):
            return cg.cast(self.index(v.index), int64, v.dtype)
        if isinstance(v, L.InWindow):
            d = b.sub(self.index(v.index), ir.Constant(I64, v.start))
            ok = b.and_(b.icmp_signed(">=", d, ir.Constant(I64, 0)),
                        b.icmp_signed("<", d, ir.Constant(I64, v.count * v.step)))
            if v.step != 1:
                ok = b.and_(ok, b.icmp_signed("==", b.srem(d, ir.Constant(I64, v.step)), ir.Constant(I64, 0)))
            return ok
        if isinstance(v, L.Select):
            return b.select(self.value(v.cond), self.value(v.a), self.value(v.b))
        if isinstance(v, L.Guarded):
            return b.select(self.value(v.cond), self.value(v.value), cg.const(0, v.dtype))
        raise TypeError(v)  # pragma: no cover


def _barrier(module: ir.Module) -> ir.Function:
    """A sense-reversing spin barrier: state = [arrived count, release flag] (two i64)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, I64, PTR]), "llgrad_barrier")
    fn.linkage = "internal"
    state, n, sense_slot = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    sense = b.xor(b.load(sense_slot, typ=I64), ir.Constant(I64, 1))
    b.store(sense, sense_slot)
    flag = b.gep(state, [ir.Constant(I64, 1)], source_etype=I64)
    arrived = b.atomic_rmw("add", state, ir.Constant(I64, 1), "acq_rel")
    release, wait, done = (fn.append_basic_block(x) for x in ("release", "wait", "done"))
    entry = b.block
    b.cbranch(b.icmp_signed("==", arrived, b.sub(n, ir.Constant(I64, 1))), release, wait)
    b.position_at_end(release)
    # (atomic exchanges: llvmlite's store_atomic cannot take opaque pointers)
    b.atomic_rmw("xchg", state, ir.Constant(I64, 0), "monotonic")
    b.atomic_rmw("xchg", flag, sense, "release")
    b.branch(done)
    b.position_at_end(wait)
    spins = b.phi(I64)
    spins.add_incoming(ir.Constant(I64, 0), entry)
    seen = b.load_atomic(flag, "acquire", 8, typ=I64)
    spin = fn.append_basic_block("spin")
    b.cbranch(b.icmp_signed("==", seen, sense), done, spin)
    b.position_at_end(spin)
    # Spin briefly, then give the core away: on a busy machine the thread we wait for may not be
    # running, and spinning on its core would only delay it.
    pause = fn.append_basic_block("yield")
    again = fn.append_basic_block("again")
    b.cbranch(b.icmp_signed(">", spins, ir.Constant(I64, 2000)), pause, again)
    b.position_at_end(pause)
    sched_yield = module.globals.get("sched_yield") or ir.Function(
        module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
    b.call(sched_yield, [])
    b.branch(again)
    b.position_at_end(again)
    spins.add_incoming(b.add(spins, ir.Constant(I64, 1)), again)
    b.branch(wait)
    b.position_at_end(done)
    b.ret_void()
    return fn


def _KERNEL_TYPE(n_bufs: int) -> ir.FunctionType:
    """void body(ptr noalias buffers..., ptr params, i64 thread id, i64 thread count)"""
    return ir.FunctionType(ir.VoidType(), [PTR] * (n_bufs + 1) + [I64, I64])


# What a program's entry calls: void kernel(ptr buffer pointers, ptr params, i64 tid, i64 threads)
_CALLED = ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64])


def build_kernel_module(kernel: L.Kernel, key) -> ir.Module:
    """A module defining one kernel as the external function `key.symbol`, compiled once per
    distinct kernel (kernel_key.KernelKey) and linked into every program that calls it.

    Its body takes each buffer as a `noalias` argument (what lets its loops vectorize without
    overlap checks); `key.symbol` takes them as an array, so that every kernel is called alike
    from a program's table (build_entry_module), and the body is inlined into it (LLVM keeps
    the no-alias facts as scopes)."""
    module = ir.Module(name=key.symbol)
    kcg = _KernelCodegen(module, kernel, key.symbol + ".body", key.params)
    kcg.offsets = {id(b): c for b, c in zip(kernel.bufs, key.offsets) if c}
    body = kcg.build()
    body.linkage = "internal"
    fn = ir.Function(module, _CALLED, key.symbol)
    fn.attributes.add("nounwind")
    args, params, tid, nthreads = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ptrs = [b.load(b.gep(args, [ir.Constant(I64, i)], inbounds=True, source_etype=PTR), typ=PTR)
            for i in range(len(kernel.bufs))]
    b.call(body, ptrs + [params, tid, nthreads])
    b.ret_void()
    return module


def build_entry_module(kernels: list, keys: list, name: str) -> ir.Module:
    """The entry points of a program, which call its kernels (each compiled apart:
    `build_kernel_module`) in order from a table:

    `void <name>_mt(ptr bufs, ptr params, i64 tid, i64 nthreads, ptr barrier)`, run by every
    thread with its id (kernels split their outer loops; a barrier separates kernels), and
    `void <name>(ptr bufs, ptr params)`, the same on one thread.

    The table is constant data: per call the kernel's address, for each of its buffers the
    program slot and a constant byte offset (kernel_key), and the program scalars it reads in
    its own order. The code is one loop, the same size for 3 kernels or 3,000: a deep net's
    entry compiles in milliseconds."""
    module = ir.Module(name=name)
    distinct: dict[str, int] = {}  # kernel symbol -> its number among the program's distinct kernels
    which, arg_slots, arg_bytes, par_slots, arg_start, par_start = [], [], [], [], [0], [0]
    for k, key in zip(kernels, keys):
        which.append(distinct.setdefault(key.symbol, len(distinct)))
        for buf, shift in zip(k.bufs, key.offsets):
            arg_slots.append(buf.slot)
            arg_bytes.append(shift * buf.dtype.itemsize)
        arg_start.append(len(arg_slots))
        par_slots.extend(key.params)
        par_start.append(len(par_slots))

    def table(name_: str, values: list, etype) -> ir.GlobalVariable:
        ty = ir.ArrayType(etype, max(len(values), 1))
        g = ir.GlobalVariable(module, ty, f"{name}.{name_}")
        g.initializer = ir.Constant(ty, list(values) or [ir.Constant(etype, None if etype is PTR else 0)])
        g.global_constant = True
        g.linkage = "internal"
        return g

    t_fn, t_slot, t_byte = (table("which", which, I64), table("slots", arg_slots, I64),
                            table("bytes", arg_bytes, I64))
    fns = [ir.Function(module, _CALLED, symbol) for symbol in distinct]
    t_par, t_astart, t_pstart = table("params", par_slots, I64), table("args", arg_start, I64), \
        table("pars", par_start, I64)
    most_args = max([len(k.bufs) for k in kernels], default=0)
    most_pars = max([len(key.params) for key in keys], default=0)

    barrier = _barrier(module)
    mt = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64, PTR]), name + "_mt")
    mt.attributes.add("nounwind")
    bufs, program_params, tid, nthreads, state = mt.args
    b = ir.IRBuilder(mt.append_basic_block("entry"))
    sense = b.alloca(I64, name="sense")
    b.store(ir.Constant(I64, 0), sense)
    args = b.inttoptr(b.ptrtoint(b.alloca(ir.ArrayType(PTR, max(most_args, 1))), I64), PTR)
    pars = b.inttoptr(b.ptrtoint(b.alloca(ir.ArrayType(I64, max(most_pars, 1))), I64), PTR)

    def at(g, index, etype=I64):
        where = b.gep(g, [ir.Constant(I64, 0), index], inbounds=True, source_etype=g.value_type)
        return b.load(where, typ=etype)

    def counted(lo, hi, body) -> None:
        """for (j = lo; j < hi; j++) body(j)"""
        head, loop, done = (mt.append_basic_block(x) for x in ("head", "loop", "done"))
        start = b.block
        b.branch(head)
        b.position_at_end(head)
        j = b.phi(I64)
        j.add_incoming(lo, start)
        b.cbranch(b.icmp_signed("<", j, hi), loop, done)
        b.position_at_end(loop)
        body(j)
        j.add_incoming(b.add(j, ir.Constant(I64, 1)), b.block)
        b.branch(head)
        b.position_at_end(done)

    def call(i) -> None:
        a0, a1 = at(t_astart, i), at(t_astart, b.add(i, ir.Constant(I64, 1)))

        def arg(j):
            buf = b.load(b.gep(bufs, [at(t_slot, j)], inbounds=True, source_etype=PTR), typ=PTR)
            shifted = b.gep(buf, [at(t_byte, j)], source_etype=ir.IntType(8))
            b.store(shifted, b.gep(args, [b.sub(j, a0)], inbounds=True, source_etype=PTR))

        counted(a0, a1, arg)
        p0, p1 = at(t_pstart, i), at(t_pstart, b.add(i, ir.Constant(I64, 1)))

        def par(j):
            value = b.load(b.gep(program_params, [at(t_par, j)], inbounds=True, source_etype=I64), typ=I64)
            b.store(value, b.gep(pars, [b.sub(j, p0)], inbounds=True, source_etype=I64))

        counted(p0, p1, par)
        # a direct call of the kernel this row names (a switch over the distinct kernels)
        after = mt.append_basic_block("called")
        cases = [mt.append_basic_block(f"call.{n}") for n in range(len(fns))]
        switch = b.switch(at(t_fn, i), after)
        for n, (case, fn) in enumerate(zip(cases, fns)):
            switch.add_case(ir.Constant(I64, n), case)
            b.position_at_end(case)
            b.call(fn, [args, pars, tid, nthreads])
            b.branch(after)
        b.position_at_end(after)
        last = b.icmp_signed("==", b.add(i, ir.Constant(I64, 1)), ir.Constant(I64, len(kernels)))
        # the next kernel may read what this one wrote
        with b.if_then(b.and_(b.icmp_signed(">", nthreads, ir.Constant(I64, 1)), b.not_(last))):
            b.call(barrier, [state, nthreads, sense])

    counted(ir.Constant(I64, 0), ir.Constant(I64, len(kernels)), call)
    b.ret_void()
    single = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR]), name)
    single.attributes.add("nounwind")
    b = ir.IRBuilder(single.append_basic_block("entry"))
    b.call(mt, [*single.args, ir.Constant(I64, 0), ir.Constant(I64, 1), ir.Constant(PTR, None)])
    b.ret_void()
    return module
