"""The training loop: epochs over in-memory tensors, metrics accumulated on the device (no per-batch
host sync), validation each epoch, atomic checkpoints, early stopping, exact resume."""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from core.errors import DlxError
from train.bn_stats import recalibration_images, recompute_bn_stats
from train.diagnose import epoch_warnings


class NonFiniteLoss(DlxError):
    """The loss became NaN or infinite: the run stops and keeps its last good checkpoint."""


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    images: int
    seconds: float


@dataclass
class TrainState:
    """Everything that changes while training and must survive a resume."""

    epoch: int = 0
    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_score: Optional[float] = None
    bad_epochs: int = 0
    warnings: list = field(default_factory=list)  # train.diagnose: each kind once a run, kept across resumes


@contextlib.contextmanager
def deferred_sigint():
    """Hold Ctrl-C until the block ends, so a checkpoint, the metrics and the state describing it are written
    together; the KeyboardInterrupt is raised once they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)


def better(metric: str, row: dict, best_row: Optional[dict], min_delta: float = 0.0) -> bool:
    """Whether epoch `row` beats the best so far. Equal accuracy goes to the lower validation loss:
    on small validation sets accuracy ties are common, and the first epoch to reach a value is rarely the best."""
    value = row[metric]
    if math.isnan(value):
        return False
    if best_row is None or math.isnan(best_row[metric]):
        return True
    best = best_row[metric]
    if metric == "val_loss":
        return value < best - min_delta
    return value > best + min_delta or (value == best and row["val_loss"] < best_row["val_loss"])


def train_epoch(model, data, optimizer, scheduler, spec, generator, augment, plan, progress, epoch) -> EpochStats:
    model.train()
    batch_size = spec.train.batch_size
    batches = max(1, math.ceil(len(data) / batch_size))
    device = data.y.device
    losses = torch.zeros(batches, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    start = time.perf_counter()

    def running():  # called by the progress display a few times a second, not per batch
        done = max(1, seen)
        return float(losses.sum()) / done, float(correct) / done

    for index, (x, y) in enumerate(data.batches(batch_size, generator, augment)):
        with plan.autocast():
            logits = model(plan.inputs(x))
            loss = F.cross_entropy(logits, y, label_smoothing=spec.train.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if spec.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip)
        optimizer.step()
        scheduler.step()
        losses[index] = loss.detach().float() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        progress.batch(index, seen, running)
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0])
        kept = f"the checkpoints of epoch {epoch - 1} are kept" if epoch > 1 else "no checkpoint was written"
        raise NonFiniteLoss(f"the training loss became non-finite (NaN or inf) at epoch {epoch}, batch {bad + 1} of "
                            f"{batches}; training stopped and {kept}. Check the data for NaN/inf values, or try a "
                            "lower train.optimizer.lr, train.grad_clip or batch normalisation.", key="train")
    seconds = time.perf_counter() - start
    return EpochStats(float(losses.sum()) / max(1, seen), float(correct) / max(1, seen), seen, seconds)


@torch.inference_mode()
def predict_logits(model, data, plan, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    outputs = []
    for x, _ in data.batches(batch_size):
        with plan.autocast():
            outputs.append(model(plan.inputs(x)).float())
    return torch.cat(outputs) if outputs else torch.zeros(0)


@torch.inference_mode()
def evaluate(model, data, plan, batch_size: int = 1024) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over a whole split."""
    logits = predict_logits(model, data, plan, batch_size)
    if len(data) == 0:
        return float("nan"), float("nan")
    loss = F.cross_entropy(logits, data.y).item()
    accuracy = (logits.argmax(1) == data.y).float().mean().item()
    return loss, accuracy


def fit(model, runner, data_train, data_val, optimizer, scheduler, spec, generator, augment, plan, state: TrainState,
        progress, save: Callable, on_epoch: Optional[Callable] = None, *, classes: int = 0) -> TrainState:
    """Train from state.epoch + 1 to spec.train.epochs; `save(state, improved)` persists each epoch.

    Before each validation the batch-norm statistics are recomputed for the current weights (train.precise_bn),
    so the metrics, best.pt and last.pt all describe one and the same model."""
    metric, stopping = spec.train.metric, spec.train.early_stopping
    bn_images = recalibration_images(spec.train.precise_bn, len(data_train))
    while state.epoch < spec.train.epochs:
        epoch = state.epoch + 1
        progress.start_epoch(epoch, spec.train.epochs, max(1, math.ceil(len(data_train) / spec.train.batch_size)))
        lr = optimizer.param_groups[0]["lr"]
        stats = train_epoch(runner, data_train, optimizer, scheduler, spec, generator, augment, plan, progress, epoch)
        bn_start = time.perf_counter()
        recompute_bn_stats(model, data_train, bn_images, spec.train.batch_size, plan, spec.seed)
        bn_seconds = time.perf_counter() - bn_start
        val_loss, val_accuracy = evaluate(runner, data_val, plan)
        row = {"epoch": epoch, "train_loss": stats.loss, "train_accuracy": stats.accuracy, "val_loss": val_loss,
               "val_accuracy": val_accuracy, "lr": lr, "seconds": stats.seconds,
               "images_per_second": stats.images / max(stats.seconds, 1e-9), "bn_seconds": bn_seconds}
        score = row[metric]
        best_row = state.history[state.best_epoch - 1] if state.best_epoch else None
        improved = better(metric, row, best_row, stopping.min_delta)
        best = (epoch, score, 0) if improved else (state.best_epoch, state.best_score, state.bad_epochs + 1)
        history = state.history + [row]
        raised = epoch_warnings(history, classes, state.warnings)
        done = TrainState(epoch, history, *best, warnings=state.warnings + raised)
        with deferred_sigint():  # the state moves on only together with its checkpoint
            save(done, improved)
            state.__dict__.update(done.__dict__)
        progress.end_epoch(row)
        for raised_warning in raised:
            progress.note(f"warning: {raised_warning['message']}")
        if on_epoch is not None:
            on_epoch(epoch, row)
        if stopping.patience and state.bad_epochs >= stopping.patience:
            progress.note(f"early stopping: {metric} has not improved for {state.bad_epochs} epochs.")
            break
    return state
