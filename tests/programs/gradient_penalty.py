"""A WGAN-GP critic step: the gradient penalty differentiates the critic's input gradient
(autograd.grad with create_graph=True), trained with Adam."""

import os

import numpy as np

if os.environ.get("PROGRAM_LIB") == "torch":
    import torch
else:
    import llgrad as torch

from harness import report, step

rng = np.random.default_rng(0)
nn = torch.nn


def init(layer):
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(rng.standard_normal(tuple(layer.weight.shape)) * 0.3,
                                        dtype=torch.float32))
        layer.bias.zero_()
    return layer


critic = nn.Sequential(init(nn.Linear(2, 32)), nn.Tanh(), init(nn.Linear(32, 32)), nn.Tanh(),
                       init(nn.Linear(32, 1)))
opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))

real_data = rng.standard_normal((200, 64, 2)) * 0.5 + 1.0
fake_data = rng.standard_normal((200, 64, 2))
mix = rng.uniform(size=(200, 64, 1))
lambda_gp = 10.0
history = []
for t in range(200):
    real = torch.tensor(real_data[t], dtype=torch.float32)
    fake = torch.tensor(fake_data[t], dtype=torch.float32)
    eps = torch.tensor(mix[t], dtype=torch.float32)
    interp = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(interp)
    (grads,) = torch.autograd.grad(scores, interp, grad_outputs=torch.ones_like(scores),
                                   create_graph=True)
    penalty = ((grads.norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(fake).mean() - critic(real).mean() + lambda_gp * penalty
    opt.zero_grad()
    loss.backward()
    opt.step()
    if t % 50 == 49:
        history.append([loss.item(), penalty.item()])
    step()

report("history", history)
report("parameters", list(critic.parameters()))
print("critic loss, penalty:", history[-1])
