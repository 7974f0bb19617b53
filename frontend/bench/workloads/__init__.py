"""The benchmark workloads, by name, in the order the table lists them."""

from ..core import Workload
from .chain import Chain
from .layernorm import LayerNorm
from .matmul import Matmul
from .mlp import Mlp
from .record import Record
from .softmax_xent import SoftmaxXent
from .tiny import Tiny
from .train_rebind import TrainRebind

WORKLOADS: dict[str, type[Workload]] = {
    w.name: w for w in (Chain, SoftmaxXent, Mlp, TrainRebind, Matmul, Tiny, Record, LayerNorm)}

__all__ = ["WORKLOADS"]
