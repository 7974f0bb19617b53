"""llgrad: PyTorch's autograd API, traced to an IR and compiled to fused native loops.

    import llgrad as torch
    x = torch.ones(2, 2, requires_grad=True)
    out = ((x + 2) * (x + 2) * 3).mean()
    out.backward()          # forward + backward fused, JIT-compiled by LLVM, cached
    print(x.grad)
"""

from llgrad import runtime  # noqa: F401  (llgrad.runtime.stats())
from llgrad.compiler.dtypes import bool_ as bool  # noqa: A001  (torch.bool)
from llgrad.compiler.dtypes import float32, float64, int32, int64

from . import autograd, debug
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .compile import compile  # noqa: A004  (llgrad.compile, like torch.compile)
from .creation import (
    BoolTensor,
    DoubleTensor,
    FloatTensor,
    IntTensor,
    LongTensor,
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    seed,
    tensor,
    zeros,
    zeros_like,
)
from .functional import *  # the op functions: torch.add, torch.cat, torch.softmax, ...
from .functional import bind_methods as _bind_methods
from .printing import set_printoptions
from .tensor import Size, Tensor, is_tensor

_bind_methods()

# Training: layers, optimizers, checkpoints, the dropout stream (after the Tensor methods exist).
from . import nn, optim, random
from .serialization import load, save
from .special import erf

float = float32  # noqa: A001  (torch.float)
double = float64
long = int64
int = int32  # noqa: A001  (torch.int)
__version__ = "0.1.0"


def get_default_dtype():
    return float32


def is_floating_point(input: Tensor) -> bool:
    return input.dtype.is_floating_point


def numel(input: Tensor) -> int:
    return input.numel()


__all__ = [name for name in dir() if not name.startswith("_")]
