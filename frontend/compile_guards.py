"""What a traced step read besides its arguments, and how a replay checks it is unchanged.

A trace captures objects, not names: the tensors a global held, the Parameters a module
had, the optimizer a dict entry pointed to, whether a module was in training mode. Each
guard remembers one such thing as the trace saw it and says, at replay, whether it changed
(a sentence for the retrace's logged reason) or not (None). As torch.compile does:

- names the function reads from its globals and closures (and those of the Python
  functions they name, and the forward() of every module it called): the same objects
  (numbers and strings: the same values);
- every module it called: its training flag and the identity of its parameters, buffers
  and submodules;
- every optimizer it stepped: its parameter groups and state tensors, and that no newer
  optimizer was made over the same parameters (one replacing it, wherever it is kept);
- arguments that are tensors the step itself reads or updates (aliasing).
"""

from __future__ import annotations

import itertools
import operator
import types
import weakref

_MISSING = object()
_BY_VALUE = (int, float, complex, str, bytes, bool, type(None))


def _same(a, b) -> bool:
    if type(a) in _BY_VALUE:  # a number read by the trace is baked into it: compare values
        return type(a) is type(b) and (a == b or (a != a and b != b))
    return a is b


def _all_same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(map(operator.is_, a, b))


class NameGuard:
    """A global or closure variable the function reads."""

    __slots__ = ("where", "name", "kind", "value")

    def __init__(self, where, name: str, kind: str, value) -> None:
        self.where, self.name, self.kind, self.value = where, name, kind, value

    def current(self):
        if self.kind == "global":
            return self.where.get(self.name, _MISSING)
        try:
            return self.where.cell_contents
        except ValueError:
            return _MISSING

    def check(self) -> str | None:
        now = self.current()
        if _same(self.value, now):
            return None
        what = "global" if self.kind == "global" else "closure variable"
        if type(self.value) in _BY_VALUE and type(now) in _BY_VALUE:
            return f"{what} '{self.name}' changed: {self.value!r} -> {now!r}"
        return f"{what} '{self.name}' was rebound ({_kind(self.value)} -> {_kind(now)})"


def _kind(value) -> str:
    return "deleted" if value is _MISSING else f"a new {type(value).__name__}"


class ModuleGuard:
    """A module the step called: its mode and what it holds."""

    __slots__ = ("module", "training", "parameters", "buffers", "modules")

    def __init__(self, module) -> None:
        self.module = module
        self.training = module.training
        self.parameters, self.buffers, self.modules = self._holdings()

    def _holdings(self) -> tuple:
        m = self.module
        return (tuple(m._parameters.items()), tuple(m._buffers.items()), tuple(m._modules.items()))

    def check(self) -> str | None:
        m = self.module
        name = type(m).__name__
        if m.training is not self.training:
            return f"{name}.training changed: {self.training} -> {m.training} (train()/eval())"
        for what, old, new in zip(("parameter", "buffer", "submodule"),
                                  (self.parameters, self.buffers, self.modules), self._holdings()):
            if not _all_same(tuple(v for _, v in old), tuple(v for _, v in new)) or \
                    [k for k, _ in old] != [k for k, _ in new]:
                changed = sorted({k for k, v in old} ^ {k for k, v in new}
                                 | {k for (k, a), (_, b) in zip(old, new) if a is not b})
                return f"a {what} of {name} was replaced or removed ({', '.join(map(repr, changed))})"
        return None


_optimizers_made = itertools.count(1)
# id(parameter) -> (weak reference to it, serial of the newest optimizer over it). Not a
# WeakKeyDictionary: that compares keys with ==, which for tensors is elementwise.
_newest_over: dict[int, tuple] = {}
_made = [0]  # optimizers made so far


def optimizer_made(optimizer, params) -> None:
    """Called by every new Optimizer: it is now the newest over these parameters."""
    serial = next(_optimizers_made)
    optimizer._guard_serial = serial
    for p in params:
        key = id(p)
        entry = _newest_over.get(key)
        ref = entry[0] if entry is not None and entry[0]() is p else weakref.ref(p, _forget(key))
        _newest_over[key] = (ref, serial)
    _made[0] = serial


def _forget(key: int):
    def gone(ref) -> None:
        entry = _newest_over.get(key)
        if entry is not None and entry[0] is ref:
            del _newest_over[key]

    return gone


def _newest_serial(p) -> int:
    entry = _newest_over.get(id(p))
    return entry[1] if entry is not None and entry[0]() is p else 0


class OptimizerGuard:
    """An optimizer the step stepped, as the step found it."""

    __slots__ = ("optimizer", "params", "state", "values", "made")

    def __init__(self, optimizer) -> None:
        self.optimizer = optimizer
        self.params = self._params()
        self.state = optimizer.state
        self.values = self._values()
        self.made = _made[0]

    def _params(self) -> tuple:
        return tuple(p for g in self.optimizer.param_groups for p in g["params"])

    def _values(self) -> tuple:
        state = self.optimizer.state
        return tuple(tuple(state[p].items()) if p in state else () for p in self.params)

    def check(self) -> str | None:
        opt = self.optimizer
        name = type(opt).__name__
        if not _all_same(self.params, self._params()):
            return f"the parameters of optimizer {name} changed"
        if opt.state is not self.state:
            return f"the state of optimizer {name} was replaced (load_state_dict?)"
        for old, new in zip(self.values, self._values()):
            # Tensors by identity; numbers (Adam's step count) are read live at every replay.
            if [k for k, _ in old] != [k for k, _ in new] or not all(
                    a is b for (_, a), (_, b) in zip(old, new) if type(a) not in _BY_VALUE):
                return f"the state of optimizer {name} changed (a buffer made, replaced or removed)"
        if _made[0] != self.made:
            newer = [p for p in self.params if _newest_serial(p) > opt._guard_serial]
            if newer:
                return (f"a new optimizer was made over the parameters optimizer {name} updates "
                        "(the step would now use it)")
            self.made = _made[0]  # unrelated optimizers: not checked again
        return None


class ArgumentAliasGuard:
    """Which tensor arguments are tensors the step itself reads or updates (by storage)."""

    __slots__ = ("captured", "aliased")

    def __init__(self, captured: dict, args: list) -> None:
        self.captured = captured  # id(storage) -> storage
        self.aliased = self._aliased(args)

    def _aliased(self, args: list) -> tuple:
        return tuple(self.captured.get(id(a._storage)) for a in args)

    def check_args(self, args: list) -> str | None:
        now = self._aliased(args)
        for i, (old, new) in enumerate(zip(self.aliased, now)):
            if old is not new:
                if new is None:
                    return f"argument {i} is no longer a tensor the step updates or reads itself (aliasing)"
                return f"argument {i} is a tensor the step updates or reads itself (aliasing)"
        return None


def captured_storages(guards: list) -> dict:
    """{id(storage): storage} of the tensors the step reaches other than through its arguments:
    module parameters and buffers, optimizer parameters and state, tensors globals and closure
    variables hold (directly or in a list, tuple or dict)."""
    from .tensor import Tensor

    found: list = []
    for g in guards:
        if isinstance(g, ModuleGuard):
            found.extend(v for _, v in g.parameters + g.buffers)
        elif isinstance(g, OptimizerGuard):
            found.extend(g.params)
            found.extend(v for values in g.values for _, v in values)
        elif isinstance(g, NameGuard):
            value = g.value
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) \
                else (value,)
            found.extend(items)
    return {id(t._storage): t._storage for t in found if isinstance(t, Tensor)}


# -- collecting the names a function reads --------------------------------------------------


def _names(code: types.CodeType) -> set:
    out, stack = set(), [code]
    while stack:
        c = stack.pop()
        out.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return out


def _own(fn) -> bool:
    return (getattr(fn, "__module__", None) or "").split(".")[0] == "llgrad"


def name_guards(roots: list) -> list:
    """Guards on every global and closure variable the functions in `roots` read, following
    the Python functions those name (llgrad's own functions excepted)."""
    guards, seen, stack = [], set(), list(roots)
    while stack:
        fn = stack.pop()
        fn = getattr(fn, "__func__", fn)  # a bound method: its function
        code = getattr(fn, "__code__", None)
        if not isinstance(code, types.CodeType) or id(code) in seen or _own(fn):
            continue
        seen.add(id(code))
        found = []
        namespace = fn.__globals__
        for name in sorted(_names(code)):
            value = namespace.get(name, _MISSING)
            if value is not _MISSING:
                found.append(NameGuard(namespace, name, "global", value))
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            guard = NameGuard(cell, name, "cell", None)
            guard.value = guard.current()
            found.append(guard)
        guards.extend(found)
        stack.extend(g.value for g in found if isinstance(g.value, (types.FunctionType, types.MethodType)))
    return guards
