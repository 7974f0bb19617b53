"""optim.Adam and optim.AdamW: PyTorch's single-tensor update, formula for formula.

    m = m + (1 - beta1) (g - m)            (lerp)
    v = beta2 v + (1 - beta2) g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

Adam adds weight_decay * p to g; AdamW instead multiplies p by (1 - lr * weight_decay)
before the update (decoupled decay). amsgrad uses the running max of v.
"""

from __future__ import annotations

from .. import functional as F
from .. import trace_state
from ..tensor import Tensor
from ..trace_state import LiveScalar
from .optimizer import Optimizer, as_float


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused=None) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise NotImplementedError(f"{type(self).__name__}(differentiable=True) is not supported")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _update_group(self, group: dict, params: list[Tensor]) -> None:
        lr, eps, weight_decay = as_float(group["lr"]), as_float(group["eps"]), as_float(group["weight_decay"])
        amsgrad = group["amsgrad"]
        beta1, beta2 = (as_float(b) for b in group["betas"])
        for p in params:
            grad = F.neg(p.grad) if group["maximize"] else p.grad
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = _zeros_like(p)
                state["exp_avg_sq"] = _zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = _zeros_like(p)
            state["step"] = step = state["step"] + 1
            step = _live_step(state, step)
            if weight_decay != 0:
                if self._decoupled:
                    p.mul_(1 - lr * weight_decay)
                else:
                    grad = F.add(grad, p, alpha=weight_decay)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.add_(F.mul(F.sub(grad, exp_avg), 1 - beta1))
            exp_avg_sq.mul_(beta2).add_(F.mul(F.mul(grad, grad), 1 - beta2))
            bias_correction1 = 1 - beta1**step
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            second = exp_avg_sq
            if amsgrad:
                state["max_exp_avg_sq"].copy_(F.maximum(state["max_exp_avg_sq"], exp_avg_sq))
                second = state["max_exp_avg_sq"]
            denom = F.add(F.div(F.sqrt(second), bias_correction2_sqrt), eps)
            p.add_(F.div(F.mul(exp_avg, -lr / bias_correction1), denom))


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2)."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, **kwargs) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kwargs)


def _zeros_like(p: Tensor) -> Tensor:
    from ..creation import zeros

    return zeros(tuple(p.shape), dtype=p.dtype)


def _live_step(state: dict, step: int):
    """The step count; while llgrad.compile traces, one that every replay advances (the bias
    corrections computed from it are then re-read at each replay, not frozen at the trace's)."""
    tracer = trace_state.active()
    if tracer is None:
        return step
    tracer.replay_hooks.append(lambda: state.__setitem__("step", state["step"] + 1))
    return LiveScalar(float(step), lambda: state["step"])
