"""Activation memory, estimated from the inferred layer shapes before a batch is allocated.

The parameter cap (`archs.builder.MAX_PARAMS`) says nothing about activations: a Conv2D(65536) on 8×8 digits has
few weights but needs gigabytes per batch. Each layer's output is kept for the backward pass, which needs about as
much again for gradients and scratch space, so a batch costs about
sum(layer output sizes) × batch size × 4 bytes × BACKWARD_FACTOR. Scoring a split needs no backward pass, but takes
larger batches (EVALUATION_BATCH): `evaluation_batch` lowers them to what fits."""
from __future__ import annotations

import math
import os

import torch

from dlx.core.errors import DlxError

BACKWARD_FACTOR = 3  # forward activations + their gradients + temporaries
MEMORY_FRACTION = 0.5  # of physical RAM (CPU) or of the GPU's memory
EVALUATION_BATCH = 1024  # samples a batch when a split is scored, where memory allows


def activation_bytes(model, batch_size: int) -> int:
    """Float32 bytes the layer outputs of one training batch need, forward and backward (block headings are
    not layers: their layers have rows of their own)."""
    values = math.prod(model.input_shape) + sum(math.prod(row.output_shape) for row in model.rows
                                                if row.role != "block")
    return values * batch_size * 4 * BACKWARD_FACTOR


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory the batch lives in: the GPU's for CUDA, physical RAM otherwise (None if unknown)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_activation_memory(model, batch_size: int, device: torch.device, samples: int) -> None:
    """Refuse a batch whose activations would take more than MEMORY_FRACTION of the device's memory, before
    allocating it: otherwise the run dies with an out-of-memory traceback, or the kernel kills it."""
    batch = max(1, min(batch_size, samples))  # a batch is never larger than the training set
    needed, memory = activation_bytes(model, batch), device_memory(device)
    if memory is None or needed <= MEMORY_FRACTION * memory:
        return
    raise DlxError(f"a training batch of {batch} samples would need about {needed / 2**30:.1f} GiB for activations "
                   f"(layer outputs × batch × 4 bytes × {BACKWARD_FACTOR} for the backward pass), more than "
                   f"{MEMORY_FRACTION:.0%} of the {memory / 2**30:.1f} GiB of {device.type.upper()} memory; lower "
                   "train.batch_size, or use fewer filters or more pooling.", key="train.batch_size")


def _built(model):
    """The dlx model inside a torch.compile or DistributedDataParallel wrapper (None for another module)."""
    while not hasattr(model, "rows"):
        inner = getattr(model, "_orig_mod", None)
        inner = getattr(model, "module", None) if inner is None else inner
        if not isinstance(inner, torch.nn.Module):
            return None
        model = inner
    return model


def evaluation_batch(model, device: torch.device, limit: int = EVALUATION_BATCH) -> int:
    """The largest batch, up to `limit`, whose layer outputs fit MEMORY_FRACTION of the device's memory: the
    training check sizes only the training batch, and an evaluation batch of 1,024 can need many times more."""
    built, memory = _built(model), device_memory(device)
    if built is None or memory is None:
        return limit
    per_sample = max(1, activation_bytes(built, 1) // BACKWARD_FACTOR)  # forward only: no gradients kept
    return max(1, min(limit, int(MEMORY_FRACTION * memory) // per_sample))
