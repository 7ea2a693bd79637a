"""Optimiser and learning-rate schedule registries (names as in the spec's `train` section)."""
from __future__ import annotations

import math

import torch

from core.errors import DlxError

OPTIMIZERS = {
    "sgd": lambda p, o, **fast: torch.optim.SGD(p, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                                nesterov=o.nesterov and o.momentum > 0, **fast),
    "adam": lambda p, o, **fast: torch.optim.Adam(p, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, **fast),
    "adamw": lambda p, o, **fast: torch.optim.AdamW(p, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, **fast),
    "rmsprop": lambda p, o, **fast: torch.optim.RMSprop(p, lr=o.lr, momentum=o.momentum,
                                                        weight_decay=o.weight_decay, **fast),
}
FUSED = {"sgd", "adam", "adamw"}  # one kernel per step instead of a Python loop over parameters


def make_optimizer(model: torch.nn.Module, spec) -> torch.optim.Optimizer:
    params = list(model.parameters())
    try:
        if spec.name in FUSED:
            try:
                return OPTIMIZERS[spec.name](params, spec, fused=True)
            except RuntimeError:  # a device without fused kernels: fall back to the default implementation
                pass
        return OPTIMIZERS[spec.name](params, spec)
    except ValueError as exc:  # torch's own range checks, e.g. betas outside [0, 1)
        raise DlxError(f"{spec.name} rejects these settings: {exc}.", key="train.optimizer") from None


def lr_factor(schedule, base_lr: float, steps_per_epoch: int, epochs: int):
    """Multiplier of the base learning rate at each optimizer step (stepped once per batch)."""
    warmup = schedule.warmup_epochs * steps_per_epoch
    total = max(1, epochs * steps_per_epoch - warmup)
    min_ratio = schedule.min_lr / base_lr

    def after_warmup(step: int) -> float:
        if schedule.name == "cosine":
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        if schedule.name == "step":
            return schedule.gamma ** (step // (schedule.step_size * steps_per_epoch))
        return 1.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return after_warmup(step - warmup)

    return factor


def make_scheduler(optimizer, schedule, base_lr: float, steps_per_epoch: int, epochs: int):
    if schedule.name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=base_lr, total_steps=max(2, steps_per_epoch * epochs))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, base_lr, steps_per_epoch, epochs))


def continue_schedule(scheduler, step: int) -> None:
    """Move a schedule built for a new total number of epochs to optimizer step `step` of a run trained further:
    the learning rate (and onecycle's momentum) becomes what that schedule gives at this step."""
    import warnings
    scheduler.last_epoch = step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when get_lr() is called outside step(); here that is the point
        rates = scheduler.get_lr()
    for group, lr in zip(scheduler.optimizer.param_groups, rates):
        group["lr"] = lr
