"""torch.erf / torch.special.erf (an op-table entry: compiler/ops/special.py)."""

from __future__ import annotations

from .dispatch import apply
from .tensor import Tensor


def erf(input: Tensor) -> Tensor:
    return apply("erf", input)


def erf_(self: Tensor) -> Tensor:
    from .views import check_inplace, commit, snapshot

    check_inplace(self)
    return commit(self, erf(snapshot(self)))


Tensor.erf = erf
Tensor.erf_ = erf_

__all__ = ["erf"]
