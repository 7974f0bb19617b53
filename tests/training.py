"""Helpers for training tests: the same model and data in llgrad and PyTorch, trained side by side."""

from __future__ import annotations

import llgrad
import numpy as np


def to_torch(t, torch):
    return torch.from_numpy(np.array(t.detach().numpy()))


def copy_weights(module, torch_module, torch) -> None:
    """Give the PyTorch module llgrad's initial weights (the two libraries' random streams differ)."""
    ours = dict(module.state_dict())
    theirs = torch_module.state_dict()
    assert list(ours) == list(theirs), (list(ours), list(theirs))
    with torch.no_grad():
        for name, value in theirs.items():
            value.copy_(to_torch(ours[name], torch))


def train_side_by_side(model, torch_model, make_opt, make_torch_opt, loss_fn, torch_loss_fn, inputs,
                       torch_inputs, steps: int = 5):
    """Run `steps` optimizer steps on both; return (llgrad losses, torch losses)."""
    opt, topt = make_opt(model.parameters()), make_torch_opt(torch_model.parameters())
    losses, torch_losses = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(*inputs))
        loss.backward()
        opt.step()
        losses.append(loss.item())
        topt.zero_grad()
        tl = torch_loss_fn(torch_model(*torch_inputs))
        tl.backward()
        topt.step()
        torch_losses.append(tl.item())
    return np.array(losses), np.array(torch_losses)


def assert_same_parameters(model, torch_model, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    theirs = dict(torch_model.named_parameters())
    names = [n for n, _ in model.named_parameters()]
    assert names == list(theirs)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), theirs[name].detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"parameter {name}")


def compiles() -> int:
    return llgrad.runtime.stats()["compiles"]
