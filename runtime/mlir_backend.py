"""An optional second backend: MLIR's own pipeline lowers llgrad's tensor-level IR.

    LLGRAD_BACKEND=mlir      or      llgrad.runtime.set_backend("mlir")   (runtime/backend.py)

The optimized graph is printed as tensor-level MLIR (compiler/printer.py) in
destination-passing style: outputs come in as tensor arguments and the
results are copied into them. `mlir-opt-19` bufferizes and lowers it to the
LLVM dialect (the pipeline below: FACTS.md's, plus dropping the results that
bufferization made equal to arguments and freeing temporaries),
`mlir-translate-19` emits LLVM IR, and llvmlite compiles that with the same
O3 pipeline and JIT as llgrad's own code.

An adapter gives the program llgrad's entry point `void <name>(ptr buffers,
ptr params)`: it loads each buffer's address by slot and each scalar from its
8-byte slot and calls the lowered function with MLIR's memref calling
convention (allocated pointer, aligned pointer, offset, sizes, strides). So a
program of either backend is run, cached and stored on disk the same way.

This backend is a cross-check of llgrad's lowering (no fusion, no
vectorizable math library): tests run graphs through both and compare.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time

from . import config

PIPELINE = ",".join([
    "one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map}",
    "drop-equivalent-buffer-results",
    "buffer-deallocation-pipeline",
    "convert-bufferization-to-memref",
    "convert-linalg-to-loops",
    "expand-strided-metadata",
    "lower-affine",
    "convert-scf-to-cf",
    "convert-math-to-llvm",
    "convert-math-to-libm",
    "convert-arith-to-llvm",
    "convert-cf-to-llvm",
    "finalize-memref-to-llvm",
    "convert-func-to-llvm",
    "reconcile-unrealized-casts",
])

class MlirUnavailable(RuntimeError):
    """The MLIR tools are not installed (or the graph has an op they cannot express)."""


def tools() -> tuple[str, str] | None:
    """Paths of (mlir-opt, mlir-translate), version 19 preferred; None when missing."""
    opt = _find("LLGRAD_MLIR_OPT", "mlir-opt")
    translate = _find("LLGRAD_MLIR_TRANSLATE", "mlir-translate")
    if not opt or not translate:
        return None
    return opt, translate


def _find(variable: str, tool: str) -> str | None:
    chosen = config.get(variable)
    if chosen:
        return shutil.which(chosen)
    return shutil.which(f"{tool}-19") or shutil.which(tool)


def require_tools() -> tuple[str, str]:
    found = tools()
    if found is None:
        raise MlirUnavailable(
            "the mlir backend needs mlir-opt-19 and mlir-translate-19 on PATH "
            "(Debian/Ubuntu: apt-get install mlir-19-tools; or set LLGRAD_MLIR_OPT and "
            "LLGRAD_MLIR_TRANSLATE); use set_backend('llgrad') for llgrad's own lowering")
    return found


class MlirBackend:
    """The backend (runtime/backend.py) lowering with MLIR's own pipeline."""

    name = "mlir"

    def build(self, schedule, symbol: str, outputs: list, inputs: list, params: list):
        return build_mlir(schedule, symbol, outputs, inputs, params)


# -- the MLIR path ------------------------------------------------------------------------------------

def module_text(schedule, name: str, outputs: list, inputs: list, params: list) -> tuple[str, list]:
    """(tensor-level module in destination-passing style, its argument keys in order)."""
    from llgrad.compiler.printer import FunctionPrinter, MlirModule, leaf_args
    from llgrad.compiler.simplify import simplify

    roots = simplify(outputs)
    dests = []
    for k, buf in enumerate(schedule.outputs):
        dests.append(None if buf is None or buf.role == "in" else f"%out{k}")
    module = MlirModule()
    printer = FunctionPrinter(module, f"{name}_mlir", roots, leaf_args(inputs, params), destinations=dests)
    printer.build()
    keys = [key for key, _ in printer.signature]
    return module.text(f"llgrad program {name}: input of the mlir backend"), keys


def lower(text: str) -> str:
    """Tensor-level MLIR -> LLVM IR text, through mlir-opt and mlir-translate."""
    opt, translate = require_tools()
    lowered = _run([opt, f"--pass-pipeline=builtin.module({PIPELINE})", "-"], text, "mlir-opt")
    return _run([translate, "--mlir-to-llvmir", "-"], lowered, "mlir-translate")


def _run(cmd: list, text: str, what: str) -> str:
    done = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"llgrad mlir backend: {what} failed:\n{done.stderr.strip()[:4000]}")
    return done.stdout


def _adapter(name: str, fn: str, ret: str, keys: list, schedule, params: list) -> str:
    """`void <name>(ptr buffers, ptr params)` calling the lowered function with memref descriptors."""
    from llgrad.compiler.mlir_scalar import param_type

    body, args = [], []
    for key in keys:
        group, k = key
        if group == 1:  # a Python scalar: its 8-byte slot
            body.append(f"  %s{k}.at = getelementptr inbounds i64, ptr %params, i64 {k}")
            body.append(f"  %s{k}.raw = load i64, ptr %s{k}.at")
            ty = param_type(params[k].dtype)
            if ty == "f64":
                body.append(f"  %s{k} = bitcast i64 %s{k}.raw to double")
                args.append(f"double %s{k}")
            elif ty == "i1":
                body.append(f"  %s{k} = trunc i64 %s{k}.raw to i1")
                args.append(f"i1 %s{k}")
            else:
                args.append(f"i64 %s{k}.raw")
            continue
        buf = schedule.bufs[k] if group == 0 else schedule.outputs[k]
        reg = f"%b{group}_{k}"
        body.append(f"  {reg}.at = getelementptr inbounds ptr, ptr %buffers, i64 {buf.slot}")
        body.append(f"  {reg} = load ptr, ptr {reg}.at")
        shape = list(buf.shape)
        strides = [1] * len(shape)
        for i in range(len(shape) - 2, -1, -1):
            strides[i] = strides[i + 1] * shape[i + 1]
        args += [f"ptr {reg}", f"ptr {reg}", "i64 0"] + [f"i64 {n}" for n in shape + strides]
    return "\n".join([
        f"define void @{name}(ptr %buffers, ptr %params) {{",
        "entry:", *body,
        f"  call {ret} @{fn}({', '.join(args)})",
        "  ret void", "}", ""])


_tm: list = []


def _fast_target_machine():
    """The host target at -O0 (FastISel): code generation in milliseconds."""
    if not _tm:
        import llvmlite.binding as llvm

        from .jit import jit

        engine = jit()
        target = llvm.Target.from_default_triple()
        _tm.append(target.create_target_machine(cpu=engine.cpu, features=engine.features, opt=0, jit=True))
    return _tm[0]


def build_mlir(schedule, name: str, outputs: list, inputs: list, params: list):
    import llvmlite.binding as llvm

    from .jit import jit
    from .plan import Plan
    from .program import Program

    start = time.perf_counter()
    text, keys = module_text(schedule, name, outputs, inputs, params)
    opaque = sorted({line.split("@llgrad.")[1].split(".")[0] for line in text.splitlines()
                     if "func.func private @llgrad." in line})
    if opaque:
        raise MlirUnavailable(f"the mlir backend cannot lower op{'s' if len(opaque) > 1 else ''} "
                              f"{', '.join(opaque)}: no upstream MLIR form in llgrad's printer")
    ir = lower(text)
    fn = f"{name}_mlir"
    probe = llvm.parse_assembly(ir)
    ret = str(probe.get_function(fn).global_value_type).split(" (")[0]
    ir = ir.replace(f"define {ret} @{fn}(", f"define internal {ret} @{fn}(", 1)
    full = ir + "\n" + _adapter(name, fn, ret, keys, schedule, params)
    if "target triple" not in full:
        full = f'target triple = "{jit().triple}"\n' + full
    # Unoptimized, fast code generation: this backend checks llgrad's lowering, it does not race
    # it, and LLVM's optimizer spends seconds on the unfused loop nests MLIR emits.
    module = llvm.parse_assembly(full)
    module.verify()
    obj = _fast_target_machine().emit_object(module)
    seconds = time.perf_counter() - start
    plan = dataclasses.replace(Plan.from_schedule(schedule, name), threaded=False)  # one entry point
    kept = dataclasses.replace(schedule, inputs=[], params=[], trace=None)
    prog = Program(plan, obj, schedule=kept, llvm_ir=full, compile_seconds=seconds)
    prog.backend = "mlir"
    prog.stages["kernels_module"] = (
        "// mlir backend: llgrad's kernels are not used; mlir-opt lowers this module with\n"
        f"// --pass-pipeline='builtin.module({PIPELINE})'\n" + text)
    return prog
