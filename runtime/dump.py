"""Dumps: the text of every compiler stage of a program, printed or written to files.

    LLGRAD_DUMP=forward,backward,optimized,kernels,llvm,llvm-opt,asm   (or all)
    LLGRAD_DUMP_DIR=path        one file per stage per program instead of stderr

Stages: `forward` and `backward` are the graph as recorded, split where autodiff
took over (tensor-level MLIR); `optimized` is the graph the scheduler fuses
(after simplification); `kernels` the fused loop nests (loop-level MLIR); `llvm`
the LLVM IR llgrad generates, `llvm-opt` after LLVM's O3 pipeline, `asm` the
host assembly. Each is headed by the program's signature hash, its shapes and
its compile time; files are named `<hash>.<stage suffix>` (`<hash>.forward.mlir`,
`<hash>.llvm.ll`, `<hash>.s`, ...).

The same from Python: `llgrad.debug.dump(...)` and `llgrad.debug.dumping(...)`.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

from . import config as environment

STAGES = ("forward", "backward", "optimized", "kernels", "llvm", "llvm-opt", "asm")
SUFFIX = {"forward": "forward.mlir", "backward": "backward.mlir", "optimized": "optimized.mlir",
          "kernels": "kernels.mlir", "llvm": "llvm.ll", "llvm-opt": "llvm-opt.ll", "asm": "s"}
_COMMENT = {"llvm": ";", "llvm-opt": ";", "asm": "#"}


def parse_stages(spec) -> tuple[str, ...]:
    """`"all"`, `"kernels,asm"` or a sequence of stage names -> stage names in pipeline order."""
    names = spec.replace(" ", "").split(",") if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if "all" in names:
        return STAGES
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ValueError(f"unknown dump stage {unknown[0]!r}: choose from {', '.join(STAGES)} or all")
    return tuple(s for s in STAGES if s in names)


@dataclass
class Config:
    stages: tuple
    dir: str | None = None
    stream: object = None  # where printed dumps go (default: sys.stderr)


_overrides: list = []  # configs pushed by `dumping()`, innermost last
_observers: list = []  # callables(program, outputs, inputs, params, required) for every run
_lock = threading.Lock()
os.register_at_fork(after_in_child=_lock._at_fork_reinit)  # a thread that held it is gone


def current() -> Config | None:
    if _overrides:
        return _overrides[-1]
    spec, folder = environment.get("LLGRAD_DUMP"), environment.get("LLGRAD_DUMP_DIR")
    if not spec and not folder:
        return None
    return Config(parse_stages(spec or "all"), folder or None)


def active() -> bool:
    return bool(_overrides) or bool(environment.get("LLGRAD_DUMP") or environment.get("LLGRAD_DUMP_DIR"))


def push(config: Config) -> None:
    with _lock:
        _overrides.append(config)


def pop(config: Config) -> None:
    with _lock:
        _overrides.remove(config)


def observe(fn) -> None:
    with _lock:
        _observers.append(fn)


def unobserve(fn) -> None:
    with _lock:
        _observers.remove(fn)


def observing() -> bool:
    return bool(_observers)


def on_run(prog, outputs: list, inputs: list, params: list, required: int) -> None:
    """Called before each program run (graph still intact) while someone observes runs."""
    for fn in list(_observers):
        fn(prog, outputs, inputs, params, required)


# -- rendering ------------------------------------------------------------------------------

def program_hash(prog) -> str:
    name = prog.name
    return name[len("llgrad_"):] if name.startswith("llgrad_") else name


def _shape(shape: tuple, dtype) -> str:
    from llgrad.compiler.mlir_scalar import mlir_type

    return "x".join([str(n) for n in shape] + [mlir_type(dtype)])


def header(prog, stage: str, outputs: list, inputs: list, params: list, note: str = "") -> str:
    """The comment block a dump starts with: hash, stage, shapes, compile time, why."""
    from llgrad.compiler.mlir_scalar import param_type

    mark = _COMMENT.get(stage, "//")
    ins = ", ".join(f"in{k} {_shape(n.shape, n.dtype)}" for k, n in enumerate(inputs)) or "none"
    scalars = ", ".join(f"p{k} {param_type(p.dtype)}" for k, p in enumerate(params)) or "none"
    outs = ", ".join(_shape(n.shape, n.dtype) for n in outputs) or "none"
    origin = getattr(prog, "origin", "compiled")
    if origin == "compiled":
        timing = f"compiled in {prog.compile_seconds * 1e3:.1f} ms"
    else:
        timing = f"loaded from the disk cache in {getattr(prog, 'load_seconds', 0.0) * 1e3:.1f} ms"
    backend = getattr(prog, "backend", "llgrad")
    lines = [f"llgrad program {program_hash(prog)} ({prog.name}) · stage {stage}"
             + (f" · backend {backend}" if backend != "llgrad" else ""),
             f"inputs: {ins} · scalars: {scalars}",
             f"outputs: {outs}",
             timing + (f": {note}" if note else "")]
    return "\n".join(f"{mark} {line}" for line in lines) + "\n"


class _Renderer:
    """Renders the stages of one program, sharing work between them (split graph, optimized LLVM).

    A program loaded from the disk cache keeps neither its loop IR nor its LLVM IR: they are
    made again from the graph (scheduling and codegen are deterministic), without compiling.
    """

    def __init__(self, prog, outputs: list, inputs: list, params: list, required: int | None = None) -> None:
        self.prog, self.outputs, self.inputs, self.params = prog, outputs, inputs, params
        self.required = required
        self._split = None
        self._sched = None
        self._ir = None
        self._optimized = None

    def traced(self):
        """The graph scheduled again with its decisions recorded (deterministic: same kernels)."""
        if self._sched is None:
            from llgrad.compiler.schedule import schedule

            self._sched = schedule(self.outputs, self.inputs, self.params, required=self.required, trace=True)
        return self._sched

    def schedule(self):
        kernels = self.prog.schedule.kernels
        if kernels and all(k.body for k in kernels):
            return self.prog.schedule
        return self.traced()

    def llvm_ir(self) -> str | None:
        if self.prog.llvm_ir is not None:
            return self.prog.llvm_ir
        if getattr(self.prog, "backend", "llgrad") != "llgrad":
            return None
        if self._ir is None:
            from .program import program_ir

            self._ir = str(program_ir(self.schedule(), self.prog.name))
        return self._ir

    def body(self, stage: str) -> str | None:
        """The stage's text without header, or None when the program has no such part."""
        from llgrad.compiler import mlir_loops, printer

        from .jit import jit

        if stage in ("forward", "backward"):
            if self._split is None:
                self._split = printer.format_split(self.outputs, self.inputs, self.params)
            return self._split[0 if stage == "forward" else 1]
        if stage == "optimized":  # exactly the graph the scheduler fused
            roots = self.traced().trace.roots
            return printer.format_function_module(roots, self.prog.name, self.inputs, self.params)
        if stage == "kernels":
            extra = getattr(self.prog, "stages", {}).get("kernels_module")
            if extra is not None:
                return extra
            sched = self.schedule()
            return mlir_loops.format_program(sched.kernels, sched.bufs, self.prog.name)
        ir = self.llvm_ir()
        if ir is None:
            return None
        if stage == "llvm":
            return ir
        if self._optimized is None:
            if self.prog.llvm_ir is not None:  # one module (the MLIR backend's)
                self._optimized = jit().optimize(ir)
            else:  # each module optimized apart, as compiled
                from .program import program_ir

                self._optimized = program_ir(self.schedule(), self.prog.name, optimized=True)
        if stage == "llvm-opt":
            return str(self._optimized)
        if stage == "asm":
            return jit().emit_assembly(self._optimized)
        raise ValueError(stage)

    def text(self, stage: str, note: str = "") -> str | None:
        body = self.body(stage)
        if body is None:
            return None
        return header(self.prog, stage, self.outputs, self.inputs, self.params, note) + body


def _missing(prog, stage: str) -> str:
    if stage in ("forward", "backward"):
        return f"(this program has no {stage} ops)"
    return "(not available for this program)"


def render(stage: str, prog, outputs: list, inputs: list, params: list, note: str = "",
           required: int | None = None) -> str:
    """One stage of a program as text (with its header), or a one-line note when it has none."""
    got = _Renderer(prog, outputs, inputs, params, required).text(stage, note)
    if got is None:
        return header(prog, stage, outputs, inputs, params, note) + _COMMENT.get(stage, "//") + \
            " " + _missing(prog, stage) + "\n"
    return got


def on_program(prog, outputs: list, inputs: list, params: list, note: str,
               required: int | None = None) -> None:
    """Dump the configured stages of a program just compiled (or loaded)."""
    config = current()
    if config is None:
        return
    renderer = _Renderer(prog, outputs, inputs, params, required)
    for stage in config.stages:
        try:
            text = renderer.text(stage, note)
        except Exception as e:  # a dump must never break the program it describes
            text = f"// llgrad: could not dump stage {stage} of {prog.name}: {type(e).__name__}: {e}\n"
        if config.dir is not None:
            if text is None:
                continue
            os.makedirs(config.dir, exist_ok=True)
            path = os.path.join(config.dir, f"{program_hash(prog)}.{SUFFIX[stage]}")
            with open(path, "w") as f:
                f.write(text)
        else:
            stream = config.stream or sys.stderr
            if text is None:
                text = header(prog, stage, outputs, inputs, params, note) + \
                    _COMMENT.get(stage, "//") + " " + _missing(prog, stage) + "\n"
            print(text, file=stream)
