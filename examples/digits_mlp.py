"""Train an MLP classifier on scikit-learn's digits (8x8 images, 10 classes) with llgrad.nn and llgrad.optim.

    pip install 'llgrad[examples]'        # scikit-learn (bundled dataset, no download), tqdm
    python examples/digits_mlp.py         # ~97% test accuracy in 15 epochs
    python examples/digits_mlp.py --compare-torch   # also time PyTorch eager on the same batches
    python examples/digits_mlp.py --compile         # the whole step through llgrad.compile

Each training step is forward + backward (one compiled program, cached after the first step) and the
optimizer update (one more). With --compile the step (zero_grad, forward, backward, update) is traced
once and replayed as one native program. The first epoch pays for compiling; the later ones run
cached native code.
"""

from __future__ import annotations

import argparse
import sys

import llgrad
import llgrad.nn.functional as F
import numpy as np
from common import Timer, load_digits_data, minibatches, progress, synthetic_digits_like, time_torch_epochs


def build(nn):
    """The model, written once for llgrad.nn and torch.nn alike."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with llgrad.no_grad():
        predicted = model(llgrad.from_numpy(x)).argmax(dim=1).numpy()
    model.train()
    return float((predicted == y).mean())


def training_step(model, opt):
    def step(x: llgrad.Tensor, y: llgrad.Tensor) -> llgrad.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def train(data, epochs: int = 15, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
          drop_last: bool = False, log=print, build=build, compiled: bool = False) -> dict:
    """Train `build(llgrad.nn)` from seed; return test accuracy, per-epoch losses and seconds, compile
    statistics."""
    x_train, y_train, x_test, y_test = data
    llgrad.manual_seed(seed)
    model = build(llgrad.nn)
    initial = {k: v.numpy().copy() for k, v in model.state_dict().items()}  # for the PyTorch twin
    opt = llgrad.optim.Adam(model.parameters(), lr=lr)
    step_fn = training_step(model, opt)
    if compiled:
        step_fn = llgrad.compile(step_fn)
    rng = np.random.default_rng(seed)
    epochs_batches = [minibatches(len(x_train), batch_size, rng, drop_last) for _ in range(epochs)]
    result = {"losses": [], "seconds": [], "step_seconds": [], "batches": epochs_batches}
    before = llgrad.runtime.stats()
    for epoch, batches in enumerate(epochs_batches, 1):
        timer, total = Timer(), 0.0
        for idx in progress(batches, f"epoch {epoch}"):
            step = Timer()
            loss = step_fn(llgrad.from_numpy(x_train[idx]), llgrad.from_numpy(y_train[idx]))
            total += loss.item()
            result["step_seconds"].append(step.seconds())
        result["seconds"].append(timer.seconds())
        result["losses"].append(total / len(batches))
        log(f"epoch {epoch:2d}/{epochs}  loss {result['losses'][-1]:.4f}  {result['seconds'][-1]:.3f} s")
    after = llgrad.runtime.stats()
    result["accuracy"] = accuracy(model, x_test, y_test)
    result["compiles"] = after["compiles"] - before["compiles"]
    result["compile_seconds"] = after["compile_seconds"] - before["compile_seconds"]
    result["model"], result["initial"] = model, initial
    return result


def report(result: dict, compare_torch: bool, data, lr: float, build=build) -> None:
    seconds = result["seconds"]
    steps = result["step_seconds"]
    print(f"\ntest accuracy: {result['accuracy']:.2%}")
    print(f"llgrad: first epoch {seconds[0]:.3f} s (includes compiling), later epochs median "
          f"{np.median(seconds[1:] or seconds):.3f} s")
    print(f"training step: first {steps[0] * 1e3:.0f} ms, cached median {np.median(steps[1:]) * 1e3:.2f} ms; "
          f"{result['compiles']} programs compiled in {result['compile_seconds']:.2f} s")
    if compare_torch:
        torch_seconds = time_torch_epochs(build, result["initial"], data[0], data[1], result["batches"], lr)
        if torch_seconds is None:
            print("PyTorch is not installed: nothing to compare with")
        else:
            import torch

            threads = torch.get_num_threads()
            print(f"PyTorch eager ({threads} threads): median {np.median(torch_seconds):.3f} s per epoch "
                  "(same model, initial weights, batches)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", action="store_true", help="Gaussian clusters instead of the digits")
    parser.add_argument("--compare-torch", action="store_true", help="time PyTorch eager on the same batches")
    parser.add_argument("--compile", action="store_true", help="the whole step through llgrad.compile")
    args = parser.parse_args(argv)
    data = synthetic_digits_like(seed=args.seed) if args.synthetic else load_digits_data(seed=args.seed)
    print(f"{len(data[0])} training and {len(data[2])} test images; model:\n{build(llgrad.nn)}\n")
    result = train(data, args.epochs, args.batch_size, args.lr, args.seed, compiled=args.compile)
    report(result, args.compare_torch, data, args.lr)


if __name__ == "__main__":
    sys.exit(main())
