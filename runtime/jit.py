"""The process's one LLVM JIT: host CPU target, O3 new-pass-manager pipeline, object loading.

Programs are compiled to object code (which the disk cache can keep) and
linked into a single LLJIT instance; LLJIT reports unresolved symbols as
errors instead of crashing, and each program's code is freed with its
resource tracker.
"""

from __future__ import annotations

import itertools
import os
import threading

import llvmlite.binding as llvm

_lock = threading.RLock()
_jit: _JIT | None = None

# What `optimize` does to a module, as text: part of the disk cache key.
PIPELINE = "kernels apart: O3 loop-vectorize slp-vectorize; entry unoptimized"
LINKS_PER_JIT = 512  # programs linked into one LLJIT before a fresh one takes over


class _JIT:
    def __init__(self) -> None:
        # llvm.initialize() raises in llvmlite 0.50; these two are what is needed.
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        if "+avx512f" in self.features.split(","):
            # LLVM defaults to 256-bit vectors; zmm is ~1.5x faster on our fused loops (measured).
            self.features += ",-prefer-256-bit"
        target = llvm.Target.from_default_triple()
        self.tm = target.create_target_machine(cpu=self.cpu, features=self.features, opt=3, jit=True)
        self.triple = llvm.get_process_triple()
        self.lljit = self._new_lljit()
        self._links = 0
        self._names = itertools.count()

    def parse(self, ir_text: str) -> llvm.ModuleRef:
        mod = llvm.parse_assembly(ir_text)
        mod.verify()
        return mod

    def optimize(self, ir_text: str) -> llvm.ModuleRef:
        mod = self.parse(ir_text)
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True  # off by default
        pb = llvm.create_pass_builder(self.tm, pto)  # a fresh one per module (FACTS.md)
        pb.getModulePassManager().run(mod, pb)
        return mod

    def emit_object(self, mod: llvm.ModuleRef) -> bytes:
        return self.tm.emit_object(mod)

    def emit_assembly(self, mod: llvm.ModuleRef) -> str:
        return self.tm.emit_assembly(mod)

    def load_many(self, obj: bytes, symbols: list[str], libraries: list[bytes] = ()) -> tuple[dict, object]:
        """Link object code with the objects it calls (`libraries`: kernels, the GEMM library)
        into a JIT library of its own; ({exported symbol: address}, the tracker keeping it)."""
        builder = llvm.JITLibraryBuilder().add_object_img(obj).add_current_process()
        for lib in libraries:
            builder.add_object_img(lib)
        for s in symbols:
            builder.export_symbol(s)
        tracker = self._link(builder)
        addrs = {s: tracker[s] for s in symbols}
        missing = [s for s, a in addrs.items() if not a]
        if missing:
            raise RuntimeError(f"llgrad: compiled program has no symbol {missing[0]}")
        return addrs, tracker

    def undefined(self, obj: bytes, symbols: list[str]) -> list[str]:
        """Which of `symbols` the object code does not define (all of them if it does not link).

        Linked alone into a library of its own, dropped at once: a check, nothing kept.
        """
        builder = llvm.JITLibraryBuilder().add_object_img(obj).add_current_process()
        for s in symbols:
            builder.export_symbol(s)
        try:
            tracker = self._link(builder)
        except RuntimeError:
            return list(symbols)
        return [s for s in symbols if not tracker[s]]

    def _link(self, builder):
        """Link into the current LLJIT; after LINKS_PER_JIT libraries, into a fresh one.

        Each library leaves its (empty) JITDylib in its LLJIT until the LLJIT goes (names
        cannot be reused), ~10 KB. A retired LLJIT is freed with the last program in it.
        """
        with _lock:
            if self._links >= LINKS_PER_JIT:
                self.lljit, self._links = self._new_lljit(), 0
            lljit = self.lljit
            self._links += 1
        tracker = builder.link(lljit, f"llgrad_lib{next(self._names)}")
        # Kept by the tracker: its LLJIT is disposed only after the tracker freed its code.
        tracker._llgrad_jit = lljit
        return tracker

    def _new_lljit(self):
        target = llvm.Target.from_default_triple()
        return llvm.create_lljit_compiler(
            target.create_target_machine(cpu=self.cpu, features=self.features, opt=3, jit=True))


def jit() -> _JIT:
    global _jit
    if _jit is None:
        with _lock:
            if _jit is None:
                _jit = _JIT()
    return _jit


def llvm_version() -> str:
    return ".".join(map(str, llvm.llvm_version_info))


os.register_at_fork(after_in_child=_lock._at_fork_reinit)  # a thread that held it is gone (forking.py)
