"""Second derivatives from PyTorch for tests/test_functional.cpp: the Hessian and a Hessian-vector
product of a small MLP's loss with respect to its parameters (torch.autograd.functional), and a
WGAN-GP critic step (the gradient penalty and the critic's parameter gradients through it).

Run by Debian's /usr/bin/python3 (python3-torch 1.13); writes JSON to the path given. Inputs are
made here (seeded) and written too, so the C++ side computes on the very same values."""
import json
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(22)
d = torch.float64


def flat(t):
    return t.detach().reshape(-1).tolist()


def mlp_case():
    x = torch.randn(3, 4, dtype=d)
    target = torch.tensor([2, 0, 1])
    params = (torch.randn(5, 4, dtype=d) * 0.5, torch.randn(5, dtype=d) * 0.1,
              torch.randn(3, 5, dtype=d) * 0.5, torch.randn(3, dtype=d) * 0.1)
    v = tuple(torch.randn_like(p) for p in params)

    def loss(w1, b1, w2, b2):
        h = torch.tanh(F.gelu(F.linear(x, w1, b1)))
        return F.cross_entropy(F.linear(h, w2, b2), target)

    hess = torch.autograd.functional.hessian(loss, params)
    _, hv = torch.autograd.functional.hvp(loss, params, v)
    return {
        "x": flat(x), "target": target.tolist(),
        "params": [flat(p) for p in params], "shapes": [list(p.shape) for p in params],
        "v": [flat(t) for t in v],
        "loss": loss(*params).item(),
        "hessian": [[flat(hess[i][j]) for j in range(4)] for i in range(4)],
        "hvp": [flat(t) for t in hv],
    }


def wgan_gp_case():
    real, fake = torch.randn(4, 3, dtype=d), torch.randn(4, 3, dtype=d)
    eps = torch.rand(4, 1, dtype=d)
    w1 = (torch.randn(6, 3, dtype=d) * 0.5).requires_grad_()
    b1 = (torch.randn(6, dtype=d) * 0.1).requires_grad_()
    w2 = (torch.randn(1, 6, dtype=d) * 0.5).requires_grad_()
    b2 = (torch.randn(1, dtype=d) * 0.1).requires_grad_()

    def critic(z):
        return F.linear(torch.tanh(F.linear(z, w1, b1)), w2, b2)

    interp = (eps * real + (1 - eps) * fake).requires_grad_()
    g, = torch.autograd.grad(critic(interp).sum(), interp, create_graph=True)
    gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(fake).mean() - critic(real).mean() + 10 * gp
    loss.backward()
    return {
        "real": flat(real), "fake": flat(fake), "eps": flat(eps),
        "params": [flat(p) for p in (w1, b1, w2, b2)], "shapes": [list(p.shape) for p in (w1, b1, w2, b2)],
        "gp": gp.item(), "loss": loss.item(),
        "grads": [flat(p.grad) for p in (w1, b1, w2, b2)],
    }


with open(sys.argv[1], "w") as out:
    json.dump({"mlp": mlp_case(), "wgan_gp": wgan_gp_case()}, out)
