"""Which backend turns a scheduled graph into a program.

    LLGRAD_BACKEND=mlir      or      llgrad.runtime.set_backend("mlir")

"llgrad" (the default) is llgrad's own lowering: loop IR to LLVM IR, each kernel compiled once
(runtime/program.py). "mlir" lowers the tensor-level MLIR with MLIR's own pipeline (the MLIR
tools must be installed); its module, runtime/mlir_backend.py, is imported only when chosen.
Programs of the two never share a cache entry: a key is tagged with the backend that built it.
"""

from __future__ import annotations

from typing import Protocol

from . import config

BACKENDS = ("llgrad", "mlir")


class Backend(Protocol):
    name: str

    def build(self, schedule, symbol: str, outputs: list, inputs: list, params: list):
        """The program (runtime/program.Program) of a scheduled graph."""


class LlgradBackend:
    name = "llgrad"

    def build(self, schedule, symbol: str, outputs: list, inputs: list, params: list):
        from . import program

        return program.build(schedule, symbol)


_current: list = [None]


def current() -> Backend:
    backend = _current[0]
    if backend is None:
        set_backend(config.get("LLGRAD_BACKEND"))
        backend = _current[0]
    return backend


def set_backend(name: str) -> None:
    """Choose how programs are lowered: "llgrad" (default) or "mlir" (needs the MLIR tools)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose from {', '.join(BACKENDS)}")
    if name == "mlir":
        from . import mlir_backend

        mlir_backend.require_tools()
        _current[0] = mlir_backend.MlirBackend()
    else:
        _current[0] = LlgradBackend()


def get_backend() -> str:
    return current().name


def tag(key):
    """The cache key of a graph under the current backend (llgrad's keys are unchanged)."""
    name = current().name
    return key if name == "llgrad" else (key, ("backend", name))
