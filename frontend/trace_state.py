"""Whether llgrad.compile is tracing a step in this thread, and what the step changes.

Kept apart (no imports) so that the tensor, in-place and autograd code can report
to the tracer without depending on the compile machinery.
"""

from __future__ import annotations

import os
import threading
import traceback

_active = threading.local()


class TraceError(RuntimeError):
    """A compiled function did something one program cannot capture."""


class Tracer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.storages: dict[int, tuple] = {}  # id -> (storage, its node before the step)
        self.grads: dict[int, tuple] = {}  # id(leaf) -> (leaf, first event: "set", "fresh", "inplace")

    def storage_changed(self, storage, old_node) -> None:
        self.storages.setdefault(id(storage), (storage, old_node))

    def grad_event(self, leaf, kind: str) -> None:
        self.grads.setdefault(id(leaf), (leaf, kind))


def active() -> Tracer | None:
    return getattr(_active, "tracer", None)


def set_active(t: Tracer | None) -> None:
    _active.tracer = t


def value_needed(what: str) -> None:
    """Called where a tensor's value is read (item, bool, repr...): an error inside a trace."""
    t = active()
    if t is None:
        return
    raise TraceError(
        f"llgrad.compile: {t.name} reads a tensor's value ({what}) at {_user_frame()}. A compiled "
        "function must not depend on tensor values (Python control flow on them cannot be captured "
        "into one program): move that code out of the function, or don't compile it."
    )


def _user_frame() -> str:
    import llgrad.compiler
    import llgrad.runtime

    own = tuple(os.path.dirname(m.__file__) + os.sep for m in (llgrad.compiler, llgrad.runtime)) + (
        os.path.dirname(__file__) + os.sep,)
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not frame.filename.startswith(own):
            return f'{frame.filename}:{frame.lineno}: "{frame.line}"'
    return "<unknown>"


class LiveScalar(float):
    """A Python number whose value is read again at every replay (optimizer hyperparameters).

    Arithmetic on it stays live; using it in Python control flow records a guard.
    """

    def __new__(cls, value: float, read):
        obj = super().__new__(cls, value)
        obj.read = read
        return obj

    def __float__(self) -> float:
        return float(self.read())

    def _derive(self, op, other, reflected=False):
        if isinstance(other, LiveScalar):
            a, b = (other, self) if reflected else (self, other)
            return LiveScalar(op(super(LiveScalar, a).__float__(), super(LiveScalar, b).__float__()),
                              lambda: op(float(a), float(b)))
        if not isinstance(other, (int, float)):
            return NotImplemented
        if reflected:
            return LiveScalar(op(other, float.__float__(self)), lambda: op(other, float(self)))
        return LiveScalar(op(float.__float__(self), other), lambda: op(float(self), other))

    def __add__(self, o):
        return self._derive(float.__add__, o)

    def __radd__(self, o):
        return self._derive(float.__add__, o, True)

    def __sub__(self, o):
        return self._derive(float.__sub__, o)

    def __rsub__(self, o):
        return self._derive(float.__sub__, o, True)

    def __mul__(self, o):
        return self._derive(float.__mul__, o)

    def __rmul__(self, o):
        return self._derive(float.__mul__, o, True)

    def __truediv__(self, o):
        return self._derive(float.__truediv__, o)

    def __rtruediv__(self, o):
        return self._derive(float.__truediv__, o, True)

    def __pow__(self, o):
        return self._derive(float.__pow__, o)

    def __rpow__(self, o):
        return self._derive(float.__pow__, o, True)

    def __neg__(self):
        return LiveScalar(-float.__float__(self), lambda: -float(self))
