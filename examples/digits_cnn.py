"""Train a small CNN on scikit-learn's digits (1x8x8 images) with Conv2d, MaxPool2d and Adam.

    pip install 'llgrad[examples]'
    python examples/digits_cnn.py         # ~98% test accuracy in 10 epochs
    python examples/digits_cnn.py --compare-torch

conv2d is im2col: the 3x3 windows are strided views of the padded input (index arithmetic, no
copies) stacked into one matrix that a single matmul multiplies by the filters; max pooling takes the
max over a stack of strided views and sends each window's gradient to its first maximum.
"""

from __future__ import annotations

import argparse
import sys

import llgrad
from common import load_digits_data, synthetic_digits_like
from digits_mlp import report, train


def build(nn):
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),  # the 64 pixels as a 1-channel 8x8 image
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 2 x 2
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", action="store_true", help="Gaussian clusters instead of the digits")
    parser.add_argument("--compare-torch", action="store_true", help="time PyTorch eager on the same batches")
    parser.add_argument("--compile", action="store_true", help="the whole step through llgrad.compile")
    args = parser.parse_args(argv)
    data = synthetic_digits_like(seed=args.seed) if args.synthetic else load_digits_data(seed=args.seed)
    print(f"{len(data[0])} training and {len(data[2])} test images; model:\n{build(llgrad.nn)}\n")
    result = train(data, args.epochs, args.batch_size, args.lr, args.seed, build=build, compiled=args.compile)
    report(result, args.compare_torch, data, args.lr, build=build)


if __name__ == "__main__":
    sys.exit(main())
