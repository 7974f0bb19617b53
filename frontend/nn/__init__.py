"""llgrad.nn: layers, parameters, initializations and losses with PyTorch's API.

    import llgrad.nn as nn, llgrad.nn.functional as F
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = F.cross_entropy(model(x), y)
"""

from . import functional, init
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from .container import ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten, Unflatten
from .linear import Identity, Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter
from .pooling import MaxPool2d
from .sparse import Embedding

__all__ = [
    "functional", "init", "Module", "Parameter", "Sequential", "ModuleList", "Identity", "Linear", "ReLU",
    "LeakyReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softmax", "LogSoftmax", "LayerNorm", "Embedding",
    "Conv2d", "MaxPool2d", "Flatten", "Unflatten", "Dropout", "CrossEntropyLoss", "NLLLoss", "MSELoss",
    "L1Loss", "BCEWithLogitsLoss", "BCELoss",
]
