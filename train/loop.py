"""The training loop: epochs over in-memory tensors, metrics accumulated on the device (no per-batch
host sync), validation each epoch, atomic checkpoints, early stopping, exact resume."""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from dlx.core.errors import DlxError
from dlx.experiment.schema import ExperimentSpec
from dlx.train.bn_stats import recalibration_images, recompute_bn_stats
from dlx.train.data.tensors import TensorData
from dlx.train.device import DevicePlan
from dlx.train.diagnose import epoch_warnings
from dlx.train.distributed import SINGLE, World, all_sum, same_buffers
from dlx.train.memory import evaluation_batch
from dlx.train.progress import Silent


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


@dataclass
class TrainingSession:
    """What training works with, built once (train.run) and passed whole to `fit`."""

    spec: ExperimentSpec
    model: torch.nn.Module  # the weights: saved, batch-norm recalibrated
    runner: torch.nn.Module  # what runs the batches: the model, or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Any  # stepped once per batch
    generator: torch.Generator  # batch order and augmentation
    plan: DevicePlan
    data_train: TensorData
    data_val: TensorData
    augment: Optional[Callable]
    classes: int  # for the class-balance warnings of train.diagnose
    progress: Silent = field(default_factory=Silent)  # what a person sees (train.progress)
    world: World = SINGLE  # the processes of a torchrun run (train.distributed); rank 0 writes
    distiller: Optional[Any] = None  # train.distill.Distiller when the spec has `distill:`: the loss it defines

    @property
    def bn_images(self) -> int:
        return recalibration_images(self.spec.train.precise_bn, len(self.data_train))


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


def train_epoch(session: TrainingSession, epoch: int) -> EpochStats:
    """One pass over the training data, one optimiser and schedule step per batch.

    Under torchrun every rank takes its share of the same global batches (train.data.order), so a spec means
    the same at any world size, and reads only the samples it trains on. Each rank then draws its augmentation
    from a generator seeded by (seed, epoch, rank) at the start of every epoch, so a resumed group goes on exactly
    as an uninterrupted one would."""
    runner, data, settings, plan = session.runner, session.data_train, session.spec.train, session.plan
    world = session.world
    shard = (world.rank, world.size) if world.distributed else None
    if world.distributed:
        session.generator.manual_seed(hash((session.spec.seed, epoch, world.rank)) % 2**63)
    runner.train()
    batches = max(1, math.ceil(len(data) / settings.batch_size))
    device = data.y.device
    losses = torch.zeros(batches, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    start = time.perf_counter()

    def running():  # called by the progress display a few times a second, not per batch
        done = max(1, seen)
        return float(losses.sum()) / done, float(correct) / done

    distiller = session.distiller
    for index, (x, y, *rows) in enumerate(data.batches(settings.batch_size, session.generator, session.augment,
                                                       epoch=epoch, shard=shard, indexed=distiller is not None)):
        with plan.autocast():
            logits = runner(plan.inputs(x))
            loss = distiller.loss(logits, y, x, rows[0], settings.label_smoothing) if distiller is not None \
                else F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)
        session.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(runner.parameters(), settings.grad_clip)
        session.optimizer.step()
        session.scheduler.step()
        losses[index] = loss.detach().float() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        session.progress.batch(index, seen, running)
    totals = all_sum(world, torch.cat([losses.double(), torch.stack([correct.double(), torch.tensor(
        float(seen), dtype=torch.float64, device=device)])]))
    losses, correct, seen = totals[:batches], totals[batches], int(totals[batches + 1])
    _check_finite(losses, epoch, batches)
    seconds = time.perf_counter() - start
    return EpochStats(float(losses.sum()) / max(1, seen), float(correct) / max(1, seen), seen, seconds)


def _check_finite(losses: torch.Tensor, epoch: int, batches: int) -> None:
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0])
        kept = f"the checkpoints of epoch {epoch - 1} are kept" if epoch > 1 else "no checkpoint was written"
        raise NonFiniteLoss(f"the training loss became non-finite (NaN or inf) at epoch {epoch}, batch {bad + 1} of "
                            f"{batches}; training stopped and {kept}. Check the data for NaN/inf values, or try a "
                            "lower train.optimizer.lr, train.grad_clip or batch normalisation.", key="train")


@torch.inference_mode()
def predict_logits(model, data, plan, batch_size: Optional[int] = None) -> torch.Tensor:
    """Logits of a whole split, in batches of `batch_size` (default: as many as memory allows, up to 1,024)."""
    batch_size = batch_size or evaluation_batch(model, plan.device)
    model.eval()
    outputs = []
    for x, _ in data.batches(batch_size):
        with plan.autocast():
            outputs.append(model(plan.inputs(x)).float())
    return torch.cat(outputs) if outputs else torch.zeros(0)


@torch.inference_mode()
def evaluate(model, data, plan, batch_size: Optional[int] = None, world: World = SINGLE) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over a whole split; under torchrun each rank scores its own share and the
    sums are combined, so every image counts exactly once."""
    batch_size = batch_size or evaluation_batch(model, plan.device)
    if world.distributed:
        return _evaluate_shared(model, data, plan, batch_size, world)
    logits = predict_logits(model, data, plan, batch_size)
    if len(data) == 0:
        return float("nan"), float("nan")
    loss = F.cross_entropy(logits, data.y).item()
    accuracy = (logits.argmax(1) == data.y).float().mean().item()
    return loss, accuracy


def _evaluate_shared(model, data, plan, batch_size: int, world: World) -> tuple[float, float]:
    model.eval()
    share = world.shard(len(data))
    totals = torch.zeros(3, dtype=torch.float64)
    for start in range(share.start, share.stop, batch_size):
        x, y = data.take(torch.arange(start, min(start + batch_size, share.stop), device=data.y.device))
        with plan.autocast():
            logits = model(plan.inputs(x)).float()
        totals += torch.tensor([F.cross_entropy(logits, y, reduction="sum").item(),
                                (logits.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64)
    loss, correct, count = all_sum(world, totals.to(data.y.device)).tolist()
    return (loss / count, correct / count) if count else (float("nan"), float("nan"))


def fit(session: TrainingSession, state: TrainState, save: Callable[[TrainState, bool], None],
        on_epoch: Optional[Callable] = None) -> TrainState:
    """Train from state.epoch + 1 to spec.train.epochs; `save(state, improved)` persists each epoch (the run
    folder's `RunWriter.save`), then `on_epoch(epoch, row)` is called.

    Before each validation the batch-norm statistics are recomputed for the current weights (train.precise_bn),
    so the metrics, best.pt and last.pt all describe one and the same model."""
    settings, progress = session.spec.train, session.progress
    metric, stopping = settings.metric, settings.early_stopping
    while state.epoch < settings.epochs:
        epoch = state.epoch + 1
        progress.start_epoch(epoch, settings.epochs, max(1, math.ceil(len(session.data_train) / settings.batch_size)))
        row = run_epoch(session, epoch)
        best_row = state.history[state.best_epoch - 1] if state.best_epoch else None
        improved = better(metric, row, best_row, stopping.min_delta)
        best = (epoch, row[metric], 0) if improved else (state.best_epoch, state.best_score, state.bad_epochs + 1)
        history = state.history + [row]
        raised = epoch_warnings(history, session.classes, state.warnings)
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


def run_epoch(session: TrainingSession, epoch: int) -> dict:
    """Train one epoch, recalibrate batch norm, validate: the epoch's row of metrics."""
    settings = session.spec.train
    lr = session.optimizer.param_groups[0]["lr"]
    stats = train_epoch(session, epoch)
    bn_start = time.perf_counter()
    recompute_bn_stats(session.model, session.data_train, session.bn_images, settings.batch_size, session.plan,
                       session.spec.seed)
    same_buffers(session.world, session.model)
    bn_seconds = time.perf_counter() - bn_start
    if session.world.distributed:  # the plain model: DDP's forward would sync buffers, shares differ in size
        val_loss, val_accuracy = evaluate(session.model, session.data_val, session.plan, world=session.world)
    else:
        val_loss, val_accuracy = evaluate(session.runner, session.data_val, session.plan)
    return {"epoch": epoch, "train_loss": stats.loss, "train_accuracy": stats.accuracy, "val_loss": val_loss,
            "val_accuracy": val_accuracy, "lr": lr, "seconds": stats.seconds,
            "images_per_second": stats.images / max(stats.seconds, 1e-9), "bn_seconds": bn_seconds}
