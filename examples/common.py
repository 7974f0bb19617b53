"""Shared by the examples: the digits data, minibatches, a progress bar, and a PyTorch twin for timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np


def load_digits_data(test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's bundled 8x8 digits (no download): standardized float32 features, int64 labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # an optional dependency of the examples only
        raise SystemExit("this example needs scikit-learn: pip install 'llgrad[examples]'") from e
    digits = load_digits()
    return split(digits.data.astype(np.float32), digits.target.astype(np.int64), test_fraction, seed)


def split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6  # statistics of the training set only
    x = ((x - mean) / std).astype(np.float32)
    return x[train], y[train], x[test], y[test]


def synthetic_digits_like(n: int = 1800, classes: int = 10, features: int = 64, seed: int = 0,
                          test_fraction: float = 0.2):
    """Separable Gaussian clusters shaped like the digits data (for running without scikit-learn)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, features)).astype(np.float32) * 1.5
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.standard_normal((n, features)).astype(np.float32)
    return split(x, y.astype(np.int64), test_fraction, seed)


def minibatches(n: int, batch_size: int, rng: np.random.Generator, drop_last: bool = False) -> list:
    order = rng.permutation(n)
    stop = n - n % batch_size if drop_last else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def progress(items: Iterable, desc: str) -> Iterator:
    """A tqdm progress bar when tqdm is installed, else the items as they are."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iter(items)
    return iter(tqdm(items, desc=desc, leave=False, unit="batch"))


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def time_torch_epochs(build: Callable, initial: dict, x: np.ndarray, y: np.ndarray, batches_per_epoch: list,
                      lr: float, optimizer: str = "Adam") -> list[float]:
    """Seconds per epoch of the same model (initial weights: a state dict of arrays) trained by PyTorch
    eager on the same batches; None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    model = build(torch.nn)
    with torch.no_grad():
        for name, theirs in model.state_dict().items():
            theirs.copy_(torch.from_numpy(initial[name]))
    opt = getattr(torch.optim, optimizer)(model.parameters(), lr=lr)
    times = []
    for batches in batches_per_epoch:
        model.train()
        timer = Timer()
        for idx in batches:
            opt.zero_grad()
            inputs, targets = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
            loss.backward()
            opt.step()
            loss.item()
        times.append(timer.seconds())
    return times
