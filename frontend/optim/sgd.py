"""optim.SGD: PyTorch's update with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .optimizer import Optimizer, as_float


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False, foreach=None,
                 differentiable: bool = False, fused=None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if differentiable:
            raise NotImplementedError("SGD(differentiable=True) is not supported")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)

    def _update_group(self, group: dict, params: list[Tensor]) -> None:
        lr, momentum = as_float(group["lr"]), as_float(group["momentum"])
        dampening, weight_decay = as_float(group["dampening"]), as_float(group["weight_decay"])
        nesterov = group["nesterov"]
        for p in params:
            d_p = F.neg(p.grad) if group["maximize"] else p.grad
            if weight_decay != 0:
                d_p = F.add(d_p, p, alpha=weight_decay)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = F.clone(d_p).detach()
                else:
                    buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                d_p = F.add(d_p, buf, alpha=momentum) if nesterov else buf
            p.add_(d_p, alpha=-lr)
