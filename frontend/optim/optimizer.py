"""The Optimizer base class: parameter groups, per-parameter state, zero_grad, state dicts.

An update is written with in-place tensor ops under no_grad (p.add_, buf.mul_):
recorded into the IR like any op, with Python-number hyperparameters as
run-time scalars, so changing the learning rate (or Adam's bias correction,
which changes every step) never recompiles. By default the new parameter
values and state are computed at the end of step(), together in one program
cached after the first step; with `defer_update` they stay pending and fuse
into the next program that reads the parameters (inside a traced whole-step
program the same ops simply join that program).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable

from llgrad.runtime import realize

from .. import trace_state
from ..autograd import grad_mode
from ..compile import LiveGroup
from ..compile_guards import OptimizerGuard, optimizer_made
from ..tensor import Tensor


def as_float(value):
    """An int hyperparameter as a float, so that lr=1 then lr=0.5 are one graph (an int would be an
    int64 scalar). Floats pass as they are (a compiled step's live numbers stay live)."""
    return float(value) if type(value) is int else value


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    # False: step() computes the new values at once, in a small update program of its own (cheap
    # to compile; the next forward+backward program reads stored parameters). True: the update
    # stays pending and is computed inside the next program that reads the parameters, fused
    # with it (one program per training step; the first step's program differs from the rest).
    defer_update: bool = False

    def __init__(self, params: Iterable, defaults: dict) -> None:
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or "
                            f"dicts, but got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        optimizer_made(self, [p for g in self.param_groups for p in g["params"]])

    def add_param_group(self, param_group: dict) -> None:
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter "
                                 f"{name}")
            group.setdefault(name, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:  # (also when None already: a compiled step then sets it in every case)
                    p.grad = None
                elif p.grad is not None:
                    with grad_mode.no_grad():
                        p.grad.zero_()

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient; returns closure() when given."""
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        tracing = trace_state.active() is not None
        if tracing:  # llgrad.compile: its parameters and state, as found now, are guarded at replay
            trace_state.active().observe(self, OptimizerGuard)
        with grad_mode.no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    # In a compiled step, hyperparameters are re-read at every replay.
                    self._update_group(LiveGroup(group) if tracing else group, params)
        if not self.defer_update:
            self._materialize()
        return loss

    def _update_group(self, group: dict, params: list[Tensor]) -> None:
        raise NotImplementedError

    def _materialize(self) -> None:
        """Compute the new parameters and state now, in one program, so the next step's graph
        starts from stored values (pending updates would otherwise chain up step after step)."""
        nodes = []
        for group in self.param_groups:
            for p in group["params"]:
                nodes.append(p._node)
                for value in self.state.get(p, {}).values():
                    if isinstance(value, Tensor):
                        nodes.append(value._node)
        realize([n for n in nodes if n.buffer is None])

    # -- state dicts ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: state}, 'param_groups': [...]} with parameters numbered in group order."""
        index: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = copy.copy(state_dict)
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        by_index = {i: p for g, s in zip(self.param_groups, saved_groups)
                    for i, p in zip(s["params"], g["params"])}
        self.state = defaultdict(dict)
        for key, values in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                continue
            self.state[p] = {k: _cast_like(v, p, k) for k, v in values.items()}
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self._materialize()  # converted state is computed now, not inside the next step's program

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}"
            for key in sorted(k for k in group if k != "params"):
                text += f"\n    {key}: {group[key]}"
        return text + "\n)"


def _cast_like(value, param: Tensor, key: str):
    """State tensors take the parameter's floating dtype (a step counter stays as it is). A new
    tensor on the same value: buffers are immutable, and in-place updates rebind only this one."""
    if not isinstance(value, Tensor):
        return value
    if key != "step" and value.dtype.is_floating_point and value.dtype is not param.dtype:
        value = value.to(param.dtype)
    return Tensor._from_node(value.detach()._node)
