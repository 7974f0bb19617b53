"""The plan of a compiled program: everything `run` needs besides the native code.

The buffer table (slot, shape, dtype, role), which slots are the outputs, the
kind of each run-time scalar, the entry symbol, the kernel names, and what the
entry links against. It is derived from the schedule, holds no graph
nodes (a cached program must not keep a user's tensors alive), and is stored
as JSON next to the object code in the disk cache, so that a process loading
a program from disk needs neither the scheduler nor LLVM's optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from llgrad.compiler import dtypes
from llgrad.compiler import loopir as L
from llgrad.compiler.schedule import Schedule

_ROLES = ("in", "out", "tmp")


@dataclass(frozen=True)
class BufSpec:
    slot: int
    shape: tuple[int, ...]
    dtype: str  # a dtypes name: "float32", "int64", "bool"...
    role: str  # "in", "out" or "tmp"


@dataclass(frozen=True)
class Plan:
    symbol: str
    bufs: tuple[BufSpec, ...]
    outputs: tuple[int, ...]  # slot of each requested output, in order; -1: not stored (optional)
    param_floats: tuple[bool, ...]  # per run-time scalar: passed as a double (else int64)
    kernels: tuple[str, ...] = ()
    # Whether `<symbol>_mt` (the multithreaded entry) exists, and the program's loop
    # iterations, which decide whether a run is worth splitting across threads.
    threaded: bool = False
    work: int = 0
    # What the entry's object code links against: the kernels' own objects (by symbol, in the
    # kernel cache, runtime/kernels.py) and whether the GEMM library is needed.
    kernel_objects: tuple[str, ...] = ()
    gemm: bool = False

    @classmethod
    def from_schedule(cls, schedule: Schedule, symbol: str, kernel_objects: tuple = (),
                      gemm: bool = False) -> Plan:
        return cls(
            symbol=symbol,
            bufs=tuple(BufSpec(b.slot, tuple(b.shape), b.dtype.name, b.role) for b in schedule.bufs),
            outputs=tuple(-1 if b is None else b.slot for b in schedule.outputs),
            param_floats=tuple(p.dtype.is_floating_point for p in schedule.params),
            kernels=tuple(k.name for k in schedule.kernels),
            threaded=True,
            work=sum(L.iterations(k) for k in schedule.kernels),
            kernel_objects=tuple(kernel_objects),
            gemm=gemm,
        )

    def to_json(self) -> dict:
        return {
            "symbol": self.symbol,
            "bufs": [[b.slot, list(b.shape), b.dtype, b.role] for b in self.bufs],
            "outputs": list(self.outputs),
            "param_floats": list(self.param_floats),
            "kernels": list(self.kernels),
            "threaded": self.threaded,
            "work": self.work,
            "kernel_objects": list(self.kernel_objects),
            "gemm": self.gemm,
        }

    @classmethod
    def from_json(cls, data) -> Plan:
        """The plan a JSON object describes; ValueError unless it is exactly well formed.

        The native code writes to the buffers this table sizes, so nothing loose passes.
        """
        try:
            bufs = []
            for i, (slot, shape, dtype, role) in enumerate(data["bufs"]):
                if slot != i or role not in _ROLES or dtype not in dtypes._BY_NAME:
                    raise ValueError(f"bad buffer entry {i}")
                if not all(_is_int(n) and n >= 0 for n in shape):
                    raise ValueError(f"bad shape of buffer {i}")
                bufs.append(BufSpec(slot, tuple(shape), dtype, role))
            outputs = tuple(data["outputs"])
            if not all(_is_int(s) and -1 <= s < len(bufs) for s in outputs):
                raise ValueError("bad output slot")
            floats = tuple(data["param_floats"])
            if not all(isinstance(f, bool) for f in floats):
                raise ValueError("bad param kinds")
            kernels = tuple(data["kernels"])
            if not all(isinstance(k, str) for k in kernels):
                raise ValueError("bad kernel names")
            symbol = data["symbol"]
            if not isinstance(symbol, str) or not symbol.isidentifier():
                raise ValueError("bad symbol")
            threaded, work = data.get("threaded", False), data.get("work", 0)
            if not isinstance(threaded, bool) or not _is_int(work) or work < 0:
                raise ValueError("bad threading info")
            linked, gemm = tuple(data.get("kernel_objects", ())), data.get("gemm", False)
            if not all(isinstance(k, str) and k.isidentifier() for k in linked) or not isinstance(gemm, bool):
                raise ValueError("bad link list")
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed plan: {e!r}") from None
        return cls(symbol, tuple(bufs), outputs, floats, kernels, threaded, work, linked, gemm)

    def schedule(self) -> Schedule:
        """A schedule holding this plan's buffer table; kernels appear by name only.

        For programs loaded from disk, whose loop IR was never built in this process.
        """
        table = [L.Buf(b.slot, f"{b.role}{b.slot}", b.shape, dtypes._BY_NAME[b.dtype], b.role)
                 for b in self.bufs]
        kernels = [L.Kernel(name, [], []) for name in self.kernels]
        return Schedule(kernels, table, [], [], [table[s] if s >= 0 else None for s in self.outputs])


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
