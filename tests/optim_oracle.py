"""PyTorch's optimizer and LR-scheduler trajectories, which test_optim.cpp replays in weft.

  optim_oracle.py FILE    writes FILE (JSON): for every optimizer case the initial parameters, the
                          gradients of each step and the parameters after it; for every scheduler
                          case each group's lr (and momentum) after construction and after each step.

Every case has two parameter groups, the second with its own lr and no weight decay. The cases'
constructions are written out again in test_optim.cpp, by name.
"""
import json
import sys
import warnings

import numpy as np
import torch

STEPS = 6
SCHED_STEPS = 12
SHAPES = [(3,), (2, 2), (4,)]  # the first two in group 0, the last in group 1

OPTIMIZERS = {
    "sgd": (torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum_dampening": (torch.optim.SGD, dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.05)),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam": (torch.optim.Adam, dict(lr=0.05)),
    "adam_amsgrad_decay": (torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    "adamw": (torch.optim.AdamW, dict(lr=0.05)),
    "adamw_amsgrad": (torch.optim.AdamW, dict(lr=0.05, betas=(0.85, 0.95), weight_decay=0.2, amsgrad=True)),
    "rmsprop": (torch.optim.RMSprop, dict()),
    "rmsprop_centered_momentum": (torch.optim.RMSprop, dict(lr=0.02, alpha=0.9, eps=1e-6, weight_decay=0.1,
                                                             momentum=0.7, centered=True)),
    "adagrad": (torch.optim.Adagrad, dict()),
    "adagrad_decay": (torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.2, weight_decay=0.1,
                                                 initial_accumulator_value=0.5, eps=1e-8)),
}


def optimizer_case(name, rng):
    cls, options = OPTIMIZERS[name]
    params = [torch.tensor(rng.normal(size=s), dtype=torch.float64, requires_grad=True) for s in SHAPES]
    case = {"params": [p.detach().numpy().ravel().tolist() for p in params], "shapes": SHAPES, "steps": []}
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.02, "weight_decay": 0.0}]
    opt = cls(groups, **options)
    for _ in range(STEPS):
        grads = [torch.tensor(rng.normal(size=s), dtype=torch.float64) for s in SHAPES]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        case["steps"].append({"grads": [g.numpy().ravel().tolist() for g in grads],
                              "params": [p.detach().numpy().ravel().tolist() for p in params]})
    return case


S = torch.optim.lr_scheduler
SCHEDULERS = {
    "step": lambda o: S.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda o: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "exponential": lambda o: S.ExponentialLR(o, gamma=0.9),
    "cosine": lambda o: S.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "linear_default": lambda o: S.LinearLR(o),
    "linear": lambda o: S.LinearLR(o, start_factor=0.25, end_factor=0.5, total_iters=4),
    "lambda": lambda o: S.LambdaLR(o, lambda e: 1.0 / (1.0 + e)),
    "lambda_per_group": lambda o: S.LambdaLR(o, [lambda e: 0.95 ** e, lambda e: 1.0 / (1.0 + e)]),
    "onecycle": lambda o: S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=SCHED_STEPS),
    "onecycle_three_phase_linear": lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=SCHED_STEPS, pct_start=0.25,
                                                          anneal_strategy="linear", three_phase=True,
                                                          base_momentum=0.8, max_momentum=0.9, div_factor=10,
                                                          final_div_factor=100),
    "sequential": lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                               S.ExponentialLR(o, gamma=0.8)], milestones=[3]),
    "sequential_three": lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.5, total_iters=2),
                                                     S.CosineAnnealingLR(o, T_max=5),
                                                     S.StepLR(o, step_size=2, gamma=0.5)], milestones=[2, 6]),
}
# Schedulers that cycle momentum run on Adam for the "_adam" variant (beta1 is its momentum).
ADAM_VARIANTS = ["onecycle_three_phase_linear"]


def momentum_of(opt, group):
    return group["betas"][0] if isinstance(opt, torch.optim.Adam) else group["momentum"]


def scheduler_case(name, adam):
    p, q = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    groups = [{"params": [p], "lr": 0.1}, {"params": [q], "lr": 0.02}]
    opt = torch.optim.Adam(groups) if adam else torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    sched = SCHEDULERS[name](opt)
    record = lambda: {"lr": [g["lr"] for g in opt.param_groups], "momentum": [momentum_of(opt, g) for g in opt.param_groups]}
    case = {"trajectory": [record()]}
    for _ in range(SCHED_STEPS):
        opt.step()
        sched.step()
        case["trajectory"].append(record())
    return case


def main(path):
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(23)
    out = {"optimizers": {n: optimizer_case(n, rng) for n in OPTIMIZERS}, "schedulers": {}}
    for n in SCHEDULERS:
        out["schedulers"][n] = scheduler_case(n, adam=False)
        if n in ADAM_VARIANTS:
            out["schedulers"][n + "_adam"] = scheduler_case(n, adam=True)
    with open(path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1])
