"""Batch-norm statistics that describe the weights being evaluated ("precise BN").

Keras's BatchNormalization keeps an exponential moving average with momentum 0.99: a horizon of about 100
steps. With 20–60 batches an epoch that average still holds most of its initial zeros/ones after the first
epochs, and later mixes statistics of weights from several epochs ago, so validation scores a different model
than the one being trained (train accuracy 0.95, validation at chance on MNIST). Before every validation dlx
therefore recomputes the statistics as a plain (cumulative) average over a fixed, seeded sample of training
batches, as fvcore/timm's precise BN and `torch.optim.swa_utils.update_bn` do. Only the batch-norm layers run
in training mode then; dropout stays off, so the statistics describe the activations seen at evaluation.
Keras's parameter names, defaults and counts are unchanged: the moving averages are still updated in training.
"""
from __future__ import annotations

import torch
from torch import nn

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)
AUTO_FRACTION = 0.125  # of the training images, forward passes only: 5-7% of an epoch (a quarter cost 12-14%)
AUTO_MAX_IMAGES = 4096  # per-channel means over 4,096 images are far more precise than the EMA they replace
AUTO_MIN_IMAGES = 256
RECOMPUTE_BATCH = 256  # without autograd a batch holds ~2 layers' activations, not all: 4x training's fits


def tracked_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]


def recalibration_images(setting, n_train: int) -> int:
    """How many training images to recompute the statistics on: `auto`, `off` or a count."""
    if setting == "off":
        return 0
    if setting == "auto":
        return min(n_train, max(AUTO_MIN_IMAGES, min(AUTO_MAX_IMAGES, int(n_train * AUTO_FRACTION))))
    return min(n_train, int(setting))


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, data, images: int, batch_size: int, plan, seed: int) -> bool:
    """Replace every batch norm's running mean/variance by their average over `images` training images (the
    same seeded sample each epoch, no augmentation). Returns whether anything was recomputed."""
    norms = tracked_norms(model)
    if not norms or images < 2:
        return False
    was_training = model.training
    momenta = [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average: every batch counts equally
        norm.train()
    sample = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:images]
    step = max(batch_size, min(RECOMPUTE_BATCH, 4 * batch_size))
    try:
        for start in range(0, len(sample), step):
            index = sample[start:start + step]
            if len(index) < 2 and start:  # batch norm can't use a batch of one
                break
            x, _ = data.take(index.to(data.y.device))
            with plan.autocast():
                model(plan.inputs(x))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return True
