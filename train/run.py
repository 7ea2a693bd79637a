"""`dlx train` as a Python function: spec → run folder with metrics, checkpoints and summary."""
from __future__ import annotations

import os
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from core.errors import DlxError
from archs.check import validate_spec
from experiment.load import spec_to_dict
from experiment.schema import ExperimentSpec
from experiment.yamlio import dump_yaml
from core.files import atomic_write_json, atomic_write_text
from train.checkpoint import load_checkpoint, save_checkpoint
from train.memory import check_activation_memory
from train.outdir import claim
from train.rundir import new_run_dir, read_split, read_summary, write_metrics, write_summary


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; `run_dir` holds a resumable checkpoints/last.pt of epoch `epoch`."""

    def __init__(self, run_dir: Path, epoch: int):
        super().__init__(f"interrupted after epoch {epoch}")
        self.run_dir, self.epoch = run_dir, epoch


class RunAlreadyFinished(DlxError):
    """`resume` names a finished run and no new total of epochs was given: there is nothing to do."""


RESUME_KEYS = ("model", "optimizer", "scheduler", "rng", "train_state", "spec")


@dataclass
class RunResult:
    run_dir: Path
    summary: dict


def build_for(spec: ExperimentSpec, splits):
    from archs.builder import build_model
    return build_model(spec.model, splits.input_shape, splits.classes)


def data_record(splits) -> dict:
    """Preprocessing that travels with every checkpoint, so a run can be used without its dataset; `input` is
    what the raw training inputs looked like, which `dlx predict` and `dlx evaluate` hold new input to."""
    from train.inputs import input_record
    return {"mean": splits.mean.tolist(), "std": splits.std.tolist(), "scale": splits.scale,
            "class_names": list(splits.class_names), "input_shape": list(splits.input_shape),
            "input": input_record(splits.x["train"])}


def _summary(spec, state, model_params, status, plan, started_wall, extra=None) -> dict:
    history = state.history
    best = history[state.best_epoch - 1] if state.best_epoch else {}
    train_seconds = sum(r["seconds"] for r in history)
    images = sum(r["images_per_second"] * r["seconds"] for r in history)
    return {"name": spec.name, "dataset": spec.data.dataset, "status": status, "best_epoch": state.best_epoch,
            "val_accuracy": best.get("val_accuracy"), "val_loss": best.get("val_loss"), "test_accuracy": None,
            "test_loss": None, "trainable_params": model_params, "epochs": state.epoch,
            "wall_seconds": started_wall + 0.0, "images_per_second": images / train_seconds if train_seconds else None,
            "device": str(plan.device), "torch_version": torch.__version__,
            "pid": os.getpid(), "host": socket.gethostname(),  # lets `dlx runs` spot dead runs
            "warnings": list(state.warnings), **(extra or {})}


def train(spec: ExperimentSpec, out: Optional[str | Path] = None, resume: Optional[str | Path] = None,
          quiet: bool = True, on_epoch: Optional[Callable] = None, progress=None, test: bool = True,
          epochs: Optional[int] = None) -> RunResult:
    """Train `spec` into a new run folder (or `out`), or continue the run folder `resume`.

    `epochs` trains a resumed run further, to that many epochs in total (see `_continue_to`).

    `test=False` skips the test-set evaluation (a search scores only its best trial on test data).

    The run folder is locked until training ends (train.outdir): a second writer is refused at once."""
    with ExitStack() as lock:
        return _train(spec, out, resume, quiet, on_epoch, progress, test, epochs, lock)


def _train(spec: ExperimentSpec, out, resume, quiet: bool, on_epoch, progress, test: bool, epochs: Optional[int],
           lock: ExitStack) -> RunResult:
    """The body of `train`; `lock` holds the run folder's lock (see `_claimed`)."""
    from archs.builder import count_params
    from train.data import check_split_compatible, load_splits
    from train.data.tensors import TensorData, make_augment
    from train.device import pick_device
    from train.diagnose import split_warnings
    from train.loop import TrainState, evaluate, fit
    from train.optim import make_optimizer, make_scheduler
    from train.progress import make_progress

    if resume is None and spec.train.log.tensorboard:
        from train.tensorboard import require_tensorboard
        require_tensorboard()  # an optional extra: say so before a run folder is made
    checkpoint = None
    if resume is not None:
        run_dir = Path(resume)
        last = run_dir / "checkpoints" / "last.pt"
        if not last.exists():
            _no_checkpoint(run_dir)
        held = lock.enter_context(claim(run_dir, "run"))  # before last.pt is read: a second --resume is refused
        checkpoint = load_checkpoint(last)
        missing = [key for key in RESUME_KEYS if key not in checkpoint]
        if missing:
            raise DlxError(f"this checkpoint lacks {', '.join(missing)}, so it can't continue a run.", file=last)
        spec = _continue_to(validate_spec(checkpoint["spec"], file=last), checkpoint, run_dir, epochs)
        held.mark()  # a run from before markers existed says what it is from now on
    elif out is not None:
        run_dir = _claimed(lock, out)
    else:
        run_dir = _claimed(lock, new_run_dir(spec.output.dir, spec.name))

    tensorboard = None
    if spec.train.log.tensorboard:  # event files in run_dir/tensorboard/, one point per epoch
        from train.tensorboard import epoch_logger
        on_epoch = tensorboard = epoch_logger(run_dir, then=on_epoch)
    plan = pick_device(spec.device)
    splits = load_splits(spec.data)
    split_path = run_dir / "split.json"
    if checkpoint is not None and split_path.exists():
        reason = check_split_compatible(read_split(run_dir) or {}, splits.split_record)
        if reason:
            raise DlxError(f"the dataset or its split changed since this run started ({reason}); can't resume.",
                           file=split_path)
    torch.manual_seed(spec.seed)
    model = build_for(spec, splits)
    check_activation_memory(model, spec.train.batch_size, plan.device, len(splits.y["train"]))
    model = plan.place(model)
    runner = torch.compile(model) if spec.train.compile else model
    data_train = TensorData(splits, "train", plan.device)
    data_val = TensorData(splits, "val", plan.device)
    steps = max(1, -(-len(data_train) // spec.train.batch_size))
    optimizer = make_optimizer(model, spec.train.optimizer)
    scheduler = make_scheduler(optimizer, spec.train.scheduler, spec.train.optimizer.lr, steps, spec.train.epochs)
    generator = torch.Generator().manual_seed(spec.seed)
    state = TrainState()
    spec_dict = spec_to_dict(spec)
    if checkpoint is not None:
        state = _restore(checkpoint, run_dir, model, optimizer, scheduler, generator, extended=epochs is not None)
        if epochs is not None:  # the run's spec now plans the new total
            atomic_write_text(run_dir / "config.yaml", dump_yaml(spec_dict))
    else:
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", dump_yaml(spec_dict))
        atomic_write_json(split_path, splits.split_record)
    record = data_record(splits)
    trainable = count_params(model)[0]
    wall_start = time.perf_counter()
    wall_before = read_summary(run_dir).get("wall_seconds") or 0.0 if checkpoint else 0.0

    def elapsed():
        return wall_before + time.perf_counter() - wall_start

    def save(current: TrainState, improved: bool) -> None:
        weights = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
        common = {"model": weights, "spec": spec_dict, "data": record, "epoch": current.epoch,
                  "metrics": current.history[-1]}
        if improved:
            save_checkpoint(run_dir / "checkpoints" / "best.pt", common)
        if spec.output.save_last:
            save_checkpoint(run_dir / "checkpoints" / "last.pt", {
                **common, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "generator": generator.get_state()},
                "train_state": current.__dict__.copy()})
        write_metrics(run_dir, current.history)
        write_summary(run_dir, _summary(spec, current, trainable, "running", plan, elapsed()))

    progress = progress or make_progress(quiet)
    progress.note(f"run folder: {run_dir}")  # at the start too, so it can be watched (or found after a crash)
    if checkpoint is None:
        state.warnings = split_warnings(splits.y, splits.class_names)
        for raised in state.warnings:
            progress.note(f"warning: {raised['message']}")
    write_summary(run_dir, _summary(spec, state, trainable, "running", plan, elapsed()))
    test_loss = test_accuracy = None
    try:
        state = fit(model, runner, data_train, data_val, optimizer, scheduler, spec, generator, make_augment(spec.data.augment),
                    plan, state, progress, save, on_epoch, classes=splits.classes)
        progress.close()
        if test and state.best_epoch and (run_dir / "checkpoints" / "best.pt").exists():  # test data: once, at the end
            model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "best.pt", plan.device)["model"])
            test_loss, test_accuracy = evaluate(model, TensorData(splits, "test", plan.device), plan)
    except KeyboardInterrupt:
        progress.close()
        write_summary(run_dir, _summary(spec, state, trainable, "interrupted", plan, elapsed()))
        raise TrainingInterrupted(run_dir, state.epoch) from None
    except DlxError as exc:
        progress.close()
        write_summary(run_dir, _summary(spec, state, trainable, "failed", plan, elapsed(), {"error": exc.message}))
        raise DlxError(exc.message, file=exc.file or run_dir, key=exc.key) from None
    except BaseException:
        progress.close()
        write_summary(run_dir, _summary(spec, state, trainable, "failed", plan, elapsed()))
        raise
    finally:
        if tensorboard is not None:
            tensorboard.close()
    summary = _summary(spec, state, trainable, "finished", plan, elapsed(),
                       {"test_accuracy": test_accuracy, "test_loss": test_loss,
                        "stopped_early": state.epoch < spec.train.epochs})
    write_summary(run_dir, summary)
    return RunResult(run_dir, summary)


def _claimed(lock: ExitStack, folder: str | Path) -> Path:
    """Lock `folder` for a new run until `lock` closes, and mark it as a run before anything else is written.
    Anything else there (an ensemble, the user's files) is refused and left unchanged, and so is a run that
    recorded an epoch (even without last.pt); a run killed before its first epoch was saved is started again."""
    held = lock.enter_context(claim(folder, "run"))
    if (held.path / "checkpoints" / "last.pt").exists() or (held.path / "metrics.jsonl").exists():
        raise DlxError(f"{held.path} already holds a run; use --resume {held.path} to continue it, or another "
                       "--out.")
    held.mark()
    return held.path


def _restore(checkpoint: dict, run_dir: Path, model, optimizer, scheduler, generator, extended: bool = False):
    """Put model, optimizer, schedule and both random generators back as they were after the saved epoch.

    `extended` (trained past its planned epochs): the schedule, built for the new total, moves to the saved
    step instead of being loaded, and early stopping's patience starts again."""
    from train.loop import TrainState
    from train.optim import continue_schedule
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if extended:
            continue_schedule(scheduler, checkpoint["scheduler"]["last_epoch"])
        else:
            scheduler.load_state_dict(checkpoint["scheduler"])
        generator.set_state(checkpoint["rng"]["generator"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        state = TrainState(**checkpoint["train_state"])
        if extended:
            state.bad_epochs = 0
        return state
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise DlxError(f"the checkpoint doesn't match the run it belongs to ({str(exc).splitlines()[0][:200]}).",
                       file=run_dir / "checkpoints" / "last.pt") from None


def _continue_to(spec: ExperimentSpec, checkpoint: dict, run_dir: Path, epochs: Optional[int]) -> ExperimentSpec:
    """The spec a resumed run goes on with: as saved, or planning `epochs` in total (`dlx train --resume --epochs`).

    A finished run is refused without `epochs`: resuming it would only rewrite its summary."""
    done = int((checkpoint.get("train_state") or {}).get("epoch", 0))
    if epochs is None:
        summary = read_summary(run_dir)  # a damaged one is refused, naming the field
        if summary.get("status") == "finished":
            how = "stopped early after" if summary.get("stopped_early") else "trained for"
            raise RunAlreadyFinished(f"{run_dir} has already finished ({how} {done} epochs), so there is nothing to "
                                     f"resume; it was left unchanged. To train it further, give the new total "
                                     f"number of epochs: dlx train --resume {run_dir} --epochs N, with N above "
                                     f"{done}.")
        return spec
    if epochs <= done:
        raise DlxError(f"--epochs is the total number of epochs to train to, so it must be above the {done} this "
                       f"run has done, but got {epochs}.", file=run_dir, key="--epochs")
    data = spec_to_dict(spec)
    data["train"]["epochs"] = epochs
    return validate_spec(data, file=run_dir / "config.yaml")


def _no_checkpoint(run_dir: Path):
    if not run_dir.is_dir():
        raise DlxError("no such run folder to resume.", file=run_dir)
    raise DlxError("this folder has no checkpoints/last.pt to resume from (is it a dlx run folder?).", file=run_dir)
