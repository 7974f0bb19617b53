"""Compiling LLVM IR to object code, in this process or in a helper process.

Every optimization run leaves about 70 KB in the process that nothing frees
(llvmlite's pass builder allocates instrumentation callbacks it never
deletes; FACTS.md). A process that compiles a few programs does not notice;
one that compiles thousands of distinct graphs (fuzzing, ever-changing
shapes) would grow without bound. So after the first LLGRAD_INPROCESS_COMPILES
(default 64) programs, compiles go to a helper process running this file,
with the same target machine and pipeline (runtime/jit.py), which is replaced
after every LLGRAD_WORKER_COMPILES (default 256) programs, taking what LLVM
kept with it. LLGRAD_COMPILE_WORKER=0 keeps every compile in this process,
=1 sends every one to the helper. If the helper cannot start or fails,
compiling falls back to this process.

Protocol over the helper's stdin/stdout: the helper first writes a JSON line
with its target (cpu, features, triple), which must equal ours. Then each
request is a u64 request id, a u64 length and IR text; each reply the
request's id, a status byte (0: object code, 1: error text), a u64 length
and the payload. A reply to another request than the one asked is refused.
A request cut short by an exception (a Ctrl-C while waiting) leaves the
pipes out of step: that helper is killed, and the next compile starts a
fresh one.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import struct
import subprocess
import sys
import threading
import warnings
from pathlib import Path

_REQUEST = struct.Struct("<QQB")  # request id, IR length, whether to optimize
_REPLY = struct.Struct("<QBQ")  # request id, status, payload length


# -- the helper process (run as a script: it imports nothing of llgrad but jit.py) ------------

def _load_jit_module():
    path = Path(__file__).with_name("jit.py")
    spec = importlib.util.spec_from_file_location("llgrad_compile_worker_jit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _serve() -> None:
    engine = _load_jit_module()._JIT()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    hello = {"cpu": engine.cpu, "features": engine.features, "triple": engine.triple}
    stdout.write(json.dumps(hello).encode() + b"\n")
    stdout.flush()
    while True:
        head = stdin.read(_REQUEST.size)
        if len(head) < _REQUEST.size:
            return  # the parent closed the pipe: done
        request, length, optimize = _REQUEST.unpack(head)
        text = stdin.read(length).decode()
        try:
            status, payload = 0, engine.emit_object(engine.optimize(text) if optimize else engine.parse(text))
        except Exception as e:  # reported to the parent, which raises it there
            status, payload = 1, f"{type(e).__name__}: {e}".encode()
        stdout.write(_REPLY.pack(request, status, len(payload)) + payload)
        stdout.flush()


# -- the parent side ----------------------------------------------------------------------------

class WorkerError(RuntimeError):
    """The helper process could not be used (it is then not used again)."""


class CompileError(RuntimeError):
    """LLVM refused the program (a whole reply: the helper is still in step)."""


class _Worker:
    def __init__(self, target: dict) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__))], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        try:
            hello = self.proc.stdout.readline()
        except BaseException:  # interrupted while it starts: not left running
            self.kill()
            raise
        try:
            theirs = json.loads(hello)
        except ValueError:
            self.close()
            raise WorkerError("the compile helper did not start") from None
        if theirs != target:
            self.close()
            raise WorkerError(f"the compile helper targets {theirs}, not {target}")
        self.compiles = 0
        self.requests = 0
        self.pid = os.getpid()  # a forked child must not talk on its parent's pipes

    def compile(self, ir_text: str, optimize: bool = True) -> bytes:
        data = ir_text.encode()
        self.requests += 1
        request = self.requests
        try:
            self.proc.stdin.write(_REQUEST.pack(request, len(data), optimize) + data)
            self.proc.stdin.flush()
            head = self.proc.stdout.read(_REPLY.size)
            if len(head) < _REPLY.size:
                raise WorkerError("the compile helper died")
            answer, status, length = _REPLY.unpack(head)
            payload = self.proc.stdout.read(length)
        except OSError as e:
            raise WorkerError(f"the compile helper died: {e}") from None
        if answer != request or len(payload) != length:
            raise WorkerError(f"the compile helper answered request {answer} to request {request}")
        self.compiles += 1
        if status != 0:
            raise CompileError(f"llgrad: LLVM failed to compile a program: {payload.decode()}")
        return payload

    def kill(self) -> None:
        """End it now: a request cut short leaves its pipes out of step."""
        self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass  # (a half-written request cannot be flushed into a dead pipe)
        self.proc.wait()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


_lock = threading.Lock()
_worker: _Worker | None = None
_broken = False  # the helper failed once: compile here from then on
_in_process = 0
_counts = {"in_process": 0, "in_helper": 0, "helpers_started": 0}


def counts() -> dict:
    """How many programs were compiled here and in helper processes, and helpers started."""
    with _lock:
        return dict(_counts)


def _use_helper() -> bool:
    from . import config  # (not at the top: the helper runs this file as a script)

    mode = config.get("LLGRAD_COMPILE_WORKER")
    if _broken or mode == "never":
        return False
    if mode == "always":
        return True
    return _in_process >= config.get("LLGRAD_INPROCESS_COMPILES")


def compile_object(ir_text: str, optimize: bool = True) -> bytes:
    """Object code for this CPU from LLVM IR (text), optimized by the O3 pipeline first unless
    `optimize` is False (glue code such as a program's entry, which only calls its kernels)."""
    from .jit import jit

    if _use_helper():
        try:
            return _compile_in_helper(ir_text, jit(), optimize)
        except WorkerError as e:
            _give_up(e)
    return _compile_here(ir_text, jit(), optimize)


def compile_objects(texts: list[str]) -> list[bytes]:
    """Object code for several independent modules (a program's new kernels), on both cores:
    a thread hands the helper process every other module, largest first, while this process
    compiles the rest (LLVM takes one lock per process, so two processes are two compilers).
    Sequential where that cannot be: one module, one core, this process out of its quota of
    compiles (they then all go to the helper), or the helper failed before."""
    from . import config, threads
    from .jit import jit

    parallel = (len(texts) >= 2 and threads.thread_count() >= 2 and not _broken and not _use_helper()
                and config.get("LLGRAD_COMPILE_WORKER") != "never")
    if not parallel:
        return [compile_object(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    theirs = order[1::2]
    results: list = [None] * len(texts)
    engine = jit()

    def helper() -> None:
        for i in theirs:
            try:
                results[i] = _compile_in_helper(texts[i], engine)
            except Exception:  # the helper failed: this process compiles what is left
                return

    thread = threading.Thread(target=helper, name="llgrad-compile", daemon=True)
    thread.start()
    for i in order[0::2]:
        results[i] = _compile_here(texts[i], engine, True)
    thread.join()
    for i in theirs:
        if results[i] is None:
            results[i] = _compile_here(texts[i], engine, True)
    return results


def _compile_here(ir_text: str, engine, optimize: bool) -> bytes:
    global _in_process
    obj = engine.emit_object(engine.optimize(ir_text) if optimize else engine.parse(ir_text))
    with _lock:
        _in_process += 1
        _counts["in_process"] += 1
    return obj


def _compile_in_helper(ir_text: str, engine, optimize: bool = True) -> bytes:
    global _worker
    with _lock:  # one request at a time on the pipe; LLVM would serialize them anyway
        if _worker is not None and _worker.pid != os.getpid():
            _worker = None  # inherited through fork(): the parent's, left alone
        if _worker is None:
            _worker = _Worker({"cpu": engine.cpu, "features": engine.features, "triple": engine.triple})
            _counts["helpers_started"] += 1
        try:
            obj = _worker.compile(ir_text, optimize)
        except WorkerError:
            broken, _worker = _worker, None
            broken.close()
            raise
        except CompileError:
            raise
        except BaseException:  # a Ctrl-C (or any error) mid-request: its reply may still come
            cut_short, _worker = _worker, None
            cut_short.kill()
            raise
        _counts["in_helper"] += 1
        if _worker.compiles >= _compiles_per_helper():
            retired, _worker = _worker, None
            retired.close()  # and what LLVM kept in it
        return obj


def _compiles_per_helper() -> int:
    from . import config

    return config.get("LLGRAD_WORKER_COMPILES")


def _give_up(error: Exception) -> None:
    global _broken
    _broken = True
    warnings.warn(f"llgrad: compiling in this process from now on ({error})", RuntimeWarning, stacklevel=3)


def _after_fork_in_child() -> None:
    """The parent's helper is the parent's: this process starts its own if it needs one.

    The inherited pipe ends are pointed at /dev/null (not closed through their file objects,
    which would flush a request another parent thread had half written into the parent's
    helper), so the helper sees its stdin close when the parent closes it.
    """
    global _worker
    _lock._at_fork_reinit()
    if _worker is not None:
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (_worker.proc.stdin, _worker.proc.stdout):
            try:
                os.dup2(null, stream.fileno())
            except (OSError, ValueError):
                pass  # already closed
        os.close(null)
        _inherited.append(_worker)  # never closed nor waited for here
        _worker = None


_inherited: list = []
os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _shutdown() -> None:
    global _worker
    with _lock:
        if _worker is not None and _worker.pid == os.getpid():
            _worker.close()
        _worker = None


if __name__ == "__main__":
    _serve()
