"""Optimiser and learning-rate schedule registries (names as in the spec's `train` section)."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from dlx.core.errors import DlxError
from dlx.core.registry import Registry


@dataclass(frozen=True)
class OptimizerKind:
    cls: type  # the torch optimiser
    settings: Callable[..., dict]  # OptimizerSpec → its keyword arguments
    fused: bool = False  # has a one-kernel-per-step implementation instead of a Python loop over parameters


OPTIMIZERS: Registry[OptimizerKind] = Registry("optimizer", key="train.optimizer.name")
OPTIMIZERS.register("sgd", OptimizerKind(torch.optim.SGD, lambda o: dict(
    lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov and o.momentum > 0), fused=True))
OPTIMIZERS.register("adam", OptimizerKind(torch.optim.Adam, lambda o: dict(
    lr=o.lr, betas=o.betas, weight_decay=o.weight_decay), fused=True))
OPTIMIZERS.register("adamw", OptimizerKind(torch.optim.AdamW, lambda o: dict(
    lr=o.lr, betas=o.betas, weight_decay=o.weight_decay), fused=True))
OPTIMIZERS.register("rmsprop", OptimizerKind(torch.optim.RMSprop, lambda o: dict(
    lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)))


def make_optimizer(model: torch.nn.Module, spec) -> torch.optim.Optimizer:
    kind = OPTIMIZERS.get(spec.name)
    params, settings = list(model.parameters()), kind.settings(spec)
    try:
        if kind.fused:
            try:
                return kind.cls(params, **settings, fused=True)
            except RuntimeError:  # a device without fused kernels: fall back to the default implementation
                pass
        return kind.cls(params, **settings)
    except ValueError as exc:  # torch's own range checks, e.g. betas outside [0, 1)
        raise DlxError(f"{spec.name} rejects these settings: {exc}.", key="train.optimizer") from None


# Learning-rate curves after warm-up: (schedule, base_lr, steps_per_epoch, total steps) → step → multiplier.
def _constant(schedule, base_lr: float, steps_per_epoch: int, total: int) -> Callable[[int], float]:
    return lambda step: 1.0


def _cosine(schedule, base_lr: float, steps_per_epoch: int, total: int) -> Callable[[int], float]:
    min_ratio = schedule.min_lr / base_lr
    return lambda step: min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def _step(schedule, base_lr: float, steps_per_epoch: int, total: int) -> Callable[[int], float]:
    return lambda step: schedule.gamma ** (step // (schedule.step_size * steps_per_epoch))


CURVES = {"none": _constant, "cosine": _cosine, "step": _step}


def lr_factor(schedule, base_lr: float, steps_per_epoch: int, epochs: int):
    """Multiplier of the base learning rate at each optimizer step (stepped once per batch)."""
    warmup = schedule.warmup_epochs * steps_per_epoch
    total = max(1, epochs * steps_per_epoch - warmup)
    after_warmup = CURVES[schedule.name](schedule, base_lr, steps_per_epoch, total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return after_warmup(step - warmup)

    return factor


SCHEDULERS: Registry[Callable] = Registry("scheduler", key="train.scheduler.name")


def _warmed_up(optimizer, schedule, base_lr: float, steps_per_epoch: int, epochs: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, base_lr, steps_per_epoch, epochs))


for _name in CURVES:
    SCHEDULERS.register(_name, _warmed_up)


@SCHEDULERS.register("onecycle")
def _onecycle(optimizer, schedule, base_lr: float, steps_per_epoch: int, epochs: int):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=base_lr, total_steps=max(2, steps_per_epoch * epochs))


def make_scheduler(optimizer, schedule, base_lr: float, steps_per_epoch: int, epochs: int):
    return SCHEDULERS.get(schedule.name)(optimizer, schedule, base_lr, steps_per_epoch, epochs)


def continue_schedule(scheduler, step: int) -> None:
    """Move a schedule built for a new total number of epochs to optimizer step `step` of a run trained further:
    the learning rate (and onecycle's momentum) becomes what that schedule gives at this step."""
    scheduler.last_epoch = step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when get_lr() is called outside step(); here that is the point
        rates = scheduler.get_lr()
    for group, lr in zip(scheduler.optimizer.param_groups, rates):
        group["lr"] = lr
