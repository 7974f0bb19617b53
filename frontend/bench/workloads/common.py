"""Helpers the workloads share: llgrad composites for ops llgrad does not have yet, the switch to
llgrad.nn.functional once it exists, and peer conveniences."""

from __future__ import annotations

import importlib

import llgrad
import numpy as np

F32 = np.float32
# --llgrad-composite sets this False to time the composites even when nn.functional has the op.
USE_FUNCTIONAL = True


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def llgrad_functional(name: str):
    """llgrad.nn.functional.<name> when llgrad has it (it is being added), else None."""
    if not USE_FUNCTIONAL:
        return None
    try:
        functional = importlib.import_module("llgrad.nn.functional")
    except ImportError:
        return None
    return getattr(functional, name, None)


def llgrad_optimizer(name: str):
    """llgrad.optim.<name> when llgrad has it, else None."""
    if not USE_FUNCTIONAL:
        return None
    try:
        optim = importlib.import_module("llgrad.optim")
    except ImportError:
        return None
    return getattr(optim, name, None)


def log_softmax_composite(x):
    """log-softmax over dim 1 from ops llgrad has today: x - max - log(sum(exp(x - max)))."""
    shifted = x - x.max(1, keepdim=True)[0]
    return shifted - shifted.exp().sum(1, keepdim=True).log()


def one_hot(targets: np.ndarray, classes: int) -> np.ndarray:
    mask = np.zeros((targets.size, classes), F32)
    mask[np.arange(targets.size), targets] = 1
    return mask


class LlgradCrossEntropy:
    """Mean cross-entropy of logits and integer targets: llgrad.nn.functional.cross_entropy when
    it exists, else log-softmax times a one-hot float mask (llgrad has no gather yet)."""

    def __init__(self, targets: np.ndarray, classes: int) -> None:
        self.fn = llgrad_functional("cross_entropy")
        self.count = targets.size
        if self.fn is not None:
            self.targets = llgrad.tensor(targets.astype(np.int64))
            self.note = "llgrad.nn.functional.cross_entropy"
        else:
            self.mask = llgrad.tensor(one_hot(targets, classes))
            log_softmax = llgrad_functional("log_softmax")
            self.log_softmax = (lambda x: log_softmax(x, dim=1)) if log_softmax else log_softmax_composite
            self.note = ("composite: " + ("nn.functional.log_softmax" if log_softmax else
                                          "x - max - log(sum(exp))") + " times a one-hot mask")

    def __call__(self, logits):
        if self.fn is not None:
            return self.fn(logits, self.targets)
        return -(self.log_softmax(logits) * self.mask).sum() / self.count


def numpy_xent(logits: np.ndarray, targets: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(1, keepdims=True)
    rows = np.arange(targets.size)
    loss = F32(-(shifted[rows, targets] - np.log(total[:, 0])).mean())
    grad = exp / total
    grad[rows, targets] -= 1
    grad *= F32(1.0 / targets.size)
    return loss, grad


def torch_maybe_compiled(torch, fn, compiled: bool):
    return torch.compile(fn, dynamic=False) if compiled else fn


def torch_note(compiled: bool) -> str:
    return "torch.compile (inductor), default mode" if compiled else ""
