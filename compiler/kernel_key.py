"""The canonical structure of one loop-IR kernel: what decides its machine code.

Two kernels with the same key compile to the same code, whatever program or layer they
come from: a program's buffers are numbered by their place in the kernel's own argument
list, its run-time scalars by the order the kernel first reads them (the caller passes
them in that order), and names that only label (the kernel's, the buffers') are left
out. Everything else is in the key, found by a generic walk over the statement and
value objects (so a field a later change adds to a statement is keyed without anyone
remembering to). The walk is iterative: a fused chain of 10,000 ops is one deep value.
"""

from __future__ import annotations

import dataclasses
import hashlib

from . import loopir as L
from .dtypes import DType
from .graph import OpDef
from .index import Sym, Var

# Fields that label without changing the code: the kernel's and buffers' names, a buffer's
# slot in its program, how many scalars the whole program has.
_SKIP = {"name", "slot", "params"}


class KernelKey:
    """The key of a kernel, the program scalars it reads (in its local order), the constant
    element offset the caller adds to each buffer argument, the symbol its function is
    compiled under, and whether it calls the GEMM library."""

    __slots__ = ("key", "params", "offsets", "symbol", "uses_gemm")

    def __init__(self, key: tuple, params: tuple, offsets: tuple, uses_gemm: bool) -> None:
        self.key = key
        self.params = params
        self.offsets = offsets
        self.uses_gemm = uses_gemm
        self.symbol = "llk_" + hashlib.sha1(repr(key).encode()).hexdigest()[:20]


def kernel_key(kernel: L.Kernel) -> KernelKey:
    """The kernel's key. A buffer read and written only at plain indices (no guard, no
    run-time index) is keyed by its indices less their smallest constant, which the caller
    adds to the buffer's address instead: `x[:, t]` of an unrolled loop, read at i * 17 + t,
    is one kernel for every t."""
    numbers: dict[int, int] = {}  # id(shared object) -> its number (first-seen order)
    args = list(kernel.bufs) + list(kernel.scratch)
    bufs = {id(b): i for i, b in enumerate(args)}
    params: dict[int, int] = {}  # program scalar slot -> local index
    consts: list[list[int]] = [[] for _ in args]  # per buffer: the constants of its plain indices
    pinned = {i for i, b in enumerate(args) if b.role == "stack"}  # read otherwise: no offset
    # The arguments' shapes, dtypes and roles; in the walk below a buffer is its position.
    tokens: list = [(tuple(b.shape), b.dtype.name, b.role) for b in args]
    addresses: list[int] = []  # positions in `tokens` of plain indices, fixed up at the end
    uses_gemm = False
    stack: list = []
    for name, value in reversed(_fields(kernel)):
        if name not in ("bufs", "scratch"):  # (the arguments: the header above)
            stack.append(("value", value))
            stack.append(("token", name))
    while stack:
        kind, obj = stack.pop()
        if kind == "token":
            tokens.append(obj)
            continue
        if kind == "access":  # a Load or Store: its buffer, its index
            buf, index, plain = obj
            i = bufs[id(buf)]
            tokens.append(("buf", i))
            if plain:
                consts[i].append(index.const)
                addresses.append(len(tokens))
                tokens.append((i, index))
            else:
                pinned.add(i)
                stack.append(("value", index))
            continue
        if kind == "fields":  # the object's own fields, in order
            for name, value in reversed(_fields(obj)):
                stack.append(("value", value))
                stack.append(("token", name))
            continue
        x = obj
        if x is None or isinstance(x, (bool, int, str)):
            tokens.append(x)
        elif isinstance(x, float):
            tokens.append(("f", repr(x)))
        elif isinstance(x, (list, tuple)):
            tokens.append(("seq", len(x)))
            stack.extend(("value", item) for item in reversed(x))
        elif isinstance(x, dict):
            tokens.append(("map", len(x)))
            for k, v in reversed(sorted(x.items())):
                stack.append(("value", v))
                stack.append(("token", k))
        elif isinstance(x, DType):
            tokens.append(("dtype", x.name))
        elif isinstance(x, OpDef) or (hasattr(x, "lower") and hasattr(x, "name")):
            tokens.append(("op", type(x).__name__, x.name))
        elif isinstance(x, Sym):
            tokens.append(("sym", x.key))
        elif isinstance(x, Var):
            tokens.append(("var", x.name, x.extent))
        elif isinstance(x, L.Buf):  # read by something else than a plain Load or Store
            pinned.add(bufs[id(x)])
            tokens.append(("buf", bufs[id(x)]))
        elif isinstance(x, L.Param):
            local = params.setdefault(x.slot, len(params))
            tokens.append(("param", local, x.dtype.name))
        elif id(x) in numbers:  # a value or statement seen before: shared, not repeated
            tokens.append(("ref", numbers[id(x)]))
        else:
            numbers[id(x)] = len(numbers)
            if type(x).__module__.endswith("gemm"):
                uses_gemm = True
            tokens.append(("obj", type(x).__name__))
            if isinstance(x, (L.Load, L.Store)):
                rest = [(n, v) for n, v in _fields(x) if n not in ("buf", "index")]
                for name, value in reversed(rest):
                    stack.append(("value", value))
                    stack.append(("token", name))
                plain = isinstance(x.index, Sym) and getattr(x, "guard", None) is None
                stack.append(("access", (x.buf, x.index, plain)))
            else:
                stack.append(("fields", x))
    offsets = tuple(0 if i in pinned or not c else min(c) for i, c in enumerate(consts))
    for at in addresses:
        i, index = tokens[at]
        tokens[at] = ("sym", (index + -offsets[i]).key)
    return KernelKey(tuple(tokens), tuple(params), offsets[:len(kernel.bufs)], uses_gemm)


_FIELDS: dict[type, tuple] = {}


def _fields(obj) -> list:
    """(name, value) of each field of a loop-IR object that can change its code."""
    names = _FIELDS.get(type(obj))
    if names is None:
        if dataclasses.is_dataclass(obj):
            names = tuple(f.name for f in dataclasses.fields(obj))
        elif hasattr(obj, "__dict__"):
            names = None  # per instance (attributes set after construction)
        else:
            names = tuple(s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())
                          if s != "__weakref__")
        if names is not None:
            _FIELDS[type(obj)] = names = tuple(n for n in names if n not in _SKIP)
    if names is None:
        return [(n, v) for n, v in sorted(vars(obj).items()) if n not in _SKIP]
    return [(n, getattr(obj, n)) for n in names]
