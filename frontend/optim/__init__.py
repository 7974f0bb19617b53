"""llgrad.optim: SGD, Adam and AdamW with PyTorch's update formulas, recorded as lazy in-place ops."""

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
