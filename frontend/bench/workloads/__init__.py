"""The benchmark workloads, by name, in the order the table lists them."""

from ..core import Workload
from .chain import Chain
from .layernorm import LayerNorm
from .matmul import Matmul
from .mlp import Mlp
from .softmax_xent import SoftmaxXent
from .tiny import Tiny

WORKLOADS: dict[str, type[Workload]] = {w.name: w for w in (Chain, SoftmaxXent, Mlp, Matmul, Tiny, LayerNorm)}

__all__ = ["WORKLOADS"]
