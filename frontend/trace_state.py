"""Whether llgrad.compile is tracing a step in this thread, and what the step changes.

Kept apart (no imports) so that the tensor, in-place and autograd code can report
to the tracer without depending on the compile machinery.
"""

from __future__ import annotations

import operator
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
        self.scalar_guards: list = []  # (recompute, value at trace): Python decisions on live numbers
        self.replay_hooks: list = []  # run at the start of every replay (random streams advance)
        self.observed: dict[int, object] = {}  # id -> guard: modules called, optimizers stepped
        self.index_checks: list = []  # (least, greatest index node, indexing.IndexBounds)

    def storage_changed(self, storage, old_node) -> None:
        self.storages.setdefault(id(storage), (storage, old_node))

    def grad_event(self, leaf, kind: str) -> None:
        self.grads.setdefault(id(leaf), (leaf, kind))

    def observe(self, obj, guard) -> None:
        """The step uses `obj` (a module, an optimizer): guard(obj) remembers it as it is now."""
        if id(obj) not in self.observed:
            self.observed[id(obj)] = guard(obj)


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


class Live:
    """A Python number whose value is read again at every replay of a compiled step."""

    read = None

    def current(self):
        return type(self).__mro__[2](self.read())


class LiveScalar(Live, float):
    """A live float (an optimizer hyperparameter, say). Arithmetic on it stays live; comparing
    it (Python control flow) records a guard, so a change that alters the step retraces it."""

    def __new__(cls, value: float, read):
        obj = float.__new__(cls, value)
        obj.read = read
        return obj

    def current(self) -> float:
        return float(self.read())

    def _derive(self, op, other, reflected=False):
        if isinstance(other, LiveScalar):
            a, b = (other, self) if reflected else (self, other)
            return LiveScalar(op(float.__float__(a), float.__float__(b)),
                              lambda: op(a.current(), b.current()))
        if not isinstance(other, (int, float)):
            return NotImplemented
        if reflected:
            return LiveScalar(op(other, float.__float__(self)), lambda: op(other, self.current()))
        return LiveScalar(op(float.__float__(self), other), lambda: op(self.current(), other))

    def _compare(self, op, other):
        result = op(float.__float__(self), float(other))
        t = active()
        if t is not None:
            t.scalar_guards.append((lambda: op(self.current(), float(other)), result))
        return result

    def __add__(self, o):
        return self._derive(operator.add, o)

    def __radd__(self, o):
        return self._derive(operator.add, o, True)

    def __sub__(self, o):
        return self._derive(operator.sub, o)

    def __rsub__(self, o):
        return self._derive(operator.sub, o, True)

    def __mul__(self, o):
        return self._derive(operator.mul, o)

    def __rmul__(self, o):
        return self._derive(operator.mul, o, True)

    def __truediv__(self, o):
        return self._derive(operator.truediv, o)

    def __rtruediv__(self, o):
        return self._derive(operator.truediv, o, True)

    def __pow__(self, o):
        return self._derive(operator.pow, o)

    def __rpow__(self, o):
        return self._derive(operator.pow, o, True)

    def __neg__(self):
        return LiveScalar(-float.__float__(self), lambda: -self.current())

    def __eq__(self, o):
        return self._compare(operator.eq, o)

    def __ne__(self, o):
        return self._compare(operator.ne, o)

    def __lt__(self, o):
        return self._compare(operator.lt, o)

    def __le__(self, o):
        return self._compare(operator.le, o)

    def __gt__(self, o):
        return self._compare(operator.gt, o)

    def __ge__(self, o):
        return self._compare(operator.ge, o)

    def __bool__(self):
        return self._compare(operator.ne, 0.0)

    __hash__ = float.__hash__


class LiveInt(Live, int):
    """A live integer (a random stream's key and counter)."""

    def __new__(cls, value: int, read):
        obj = int.__new__(cls, value)
        obj.read = read
        return obj

    def current(self) -> int:
        return int(self.read())
