"""`dlx train` as a Python function: spec → run folder with metrics, checkpoints and summary.

`train` opens the run folder (new, or resumed), loads the data, builds a `TrainingSession`, restores it when
resuming, runs `train.loop.fit`, and writes the final summary; `RunWriter` writes the files as it goes."""
from __future__ import annotations

import os
import socket
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from dlx.archs.builder import build_model, count_params
from dlx.archs.check import validate_spec
from dlx.core.errors import DlxError
from dlx.experiment.load import spec_to_dict
from dlx.experiment.overrides import key_paths
from dlx.experiment.schema import ExperimentSpec
from dlx.train.checkpoint import load_checkpoint, save_checkpoint
from dlx.train.data import Splits, check_split_compatible, load_splits
from dlx.train.data.access import open_split
from dlx.train.data.tensors import make_augment
from dlx.train.device import DevicePlan, pick_device
from dlx.train.diagnose import split_warnings
from dlx.train.distill import check_same_teacher, make_distiller, side_by_side
from dlx.train.distributed import SINGLE, World, join, leave, lost_peer, restarted_run, share, world_from_env, wrap
from dlx.train.inputs import input_record, pin_channels
from dlx.train.loop import TrainingSession, TrainState, evaluate, fit
from dlx.train.memory import check_activation_memory
from dlx.train.mlflow_log import Tracking, require_mlflow, resumable_run, summary_metrics, tracked
from dlx.train.optim import continue_schedule, make_optimizer, make_scheduler
from dlx.train.outdir import claim
from dlx.train.progress import make_progress
from dlx.train.provenance import read_provenance, recorded
from dlx.train.rundir import RunFolder, new_run_dir
from dlx.train.tensorboard import epoch_logger, require_tensorboard


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
    main: bool = True  # False on the ranks of a torchrun run other than 0: they neither write nor report


@dataclass
class Opened:
    """A run folder claimed for training, the spec it trains with and, when resuming, its last.pt."""

    folder: RunFolder
    spec: ExperimentSpec
    checkpoint: Optional[dict] = None


def build_for(spec: ExperimentSpec, splits):
    return build_model(spec.model, splits.input_shape, splits.classes)


def data_record(splits) -> dict:
    """Preprocessing that travels with every checkpoint, so a run can be used without its dataset; `input` is
    what the raw training inputs looked like, which `dlx predict` and `dlx evaluate` hold new input to."""
    return {"mean": splits.mean.tolist(), "std": splits.std.tolist(), "scale": splits.scale,
            "class_names": list(splits.class_names), "input_shape": list(splits.input_shape),
            "input": input_record(splits.x["train"]), "cache": splits.cache.mode if splits.cache else "memory",
            "channels": splits.split_record.get("channels")}  # image_folder: 1 or 3, and why


class RunWriter:
    """Writes a run's files as training goes: best/last checkpoints, metrics and the summary."""

    def __init__(self, folder: RunFolder, session: TrainingSession, record: dict, wall_before: float = 0.0):
        self.folder, self.session, self.record = folder, session, record
        self.writes = session.world.main  # under torchrun, rank 0 alone writes the run folder
        self.spec_dict = spec_to_dict(session.spec)
        self.trainable = count_params(session.model)[0]
        self.wall_before, self.wall_start = wall_before, time.perf_counter()

    def elapsed(self) -> float:
        return self.wall_before + time.perf_counter() - self.wall_start

    def save(self, state: TrainState, improved: bool) -> None:
        """Persist an epoch: best.pt when it improved, last.pt (resumable), metrics and a running summary."""
        session = self.session
        if not self.writes:
            return
        weights = {k: v.detach().to("cpu") for k, v in session.model.state_dict().items()}
        common = {"model": weights, "spec": self.spec_dict, "data": self.record, "epoch": state.epoch,
                  "metrics": state.history[-1]}
        if improved:
            save_checkpoint(self.folder.best, common)
        if session.spec.output.save_last:
            save_checkpoint(self.folder.last, {
                **common, "optimizer": session.optimizer.state_dict(), "scheduler": session.scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "generator": session.generator.get_state()},
                "train_state": state.__dict__.copy()})
        self.folder.write_metrics(state.history)
        self.summary(state, "running")

    def summary(self, state: TrainState, status: str, extra: Optional[dict] = None) -> dict:
        """Write summary.json for `state` with `status`, and return it."""
        spec, history = self.session.spec, state.history
        best = history[state.best_epoch - 1] if state.best_epoch else {}
        train_seconds = sum(r["seconds"] for r in history)
        images = sum(r["images_per_second"] * r["seconds"] for r in history)
        summary = {
            "name": spec.name, "dataset": spec.data.dataset, "status": status, "best_epoch": state.best_epoch,
            "val_accuracy": best.get("val_accuracy"), "val_loss": best.get("val_loss"), "test_accuracy": None,
            "test_loss": None, "trainable_params": self.trainable, "epochs": state.epoch,
            "wall_seconds": self.elapsed() + 0.0,
            "images_per_second": images / train_seconds if train_seconds else None,
            "device": str(self.session.plan.device), "torch_version": torch.__version__,
            "precision": "bf16" if self.session.plan.autocast_dtype == torch.bfloat16 else "fp32",
            "channels_last": self.session.plan.channels_last,
            "pid": os.getpid(), "host": socket.gethostname(),  # lets `dlx runs` spot dead runs
            "data_cache": self.record.get("cache"),  # memory or stream (data.cache; why: split.json)
            "channels": (self.record.get("channels") or {}).get("count"),  # image_folder (data.channels)
            "warnings": list(state.warnings), "world_size": self.session.world.size}
        if self.session.distiller is not None:  # the teacher, T and alpha (train.distill)
            summary["distill"] = self.session.distiller.record()
        summary.update(extra or {})
        if self.session.world.distributed:  # lets a group restarted by torchrun find its run folder again
            summary["torchrun_run_id"] = self.session.world.run_id
        if self.writes:
            self.folder.write_summary(summary)
        return summary


def train(spec: ExperimentSpec, out: Optional[str | Path] = None, resume: Optional[str | Path] = None,
          quiet: bool = True, on_epoch: Optional[Callable] = None, test: bool = True,
          epochs: Optional[int] = None, spec_file: Optional[str | Path] = None,
          mlflow_parent: Optional[str] = None) -> RunResult:
    """Train `spec` into a new run folder (or `out`), or continue the run folder `resume`.

    `epochs` trains a resumed run further, to that many epochs in total (see `_continue_to`).

    `test=False` skips the test-set evaluation (a search scores only its best trial on test data).

    `spec_file` (where the spec came from) names the git working tree recorded in provenance.json;
    `mlflow_parent` nests the run's MLflow run (train.log.mlflow) under that run (a search's).

    The run folder is locked until training ends (train.outdir): a second writer is refused at once.

    Launched by torchrun (several processes), every rank trains its share and rank 0 alone writes the folder,
    records and logs (train.distributed)."""
    world = world_from_env()
    cuda = join(world, spec.device.type if spec is not None else "auto")
    try:
        result = _train(world, cuda, spec, out, resume, quiet, on_epoch, test, epochs, spec_file, mlflow_parent)
    except BaseException as error:
        leave(world)
        lost = lost_peer(world, error)
        if lost is not None:
            raise lost from None
        raise
    leave(world, together=True)
    return result


def _train(world: World, cuda, spec, out, resume, quiet, on_epoch, test, epochs, spec_file, mlflow_parent) -> RunResult:
    with ExitStack() as lock:
        opened = _open_shared(world, spec, out, resume, epochs, lock)
        record, tracker = _records(lock, opened, spec_file, mlflow_parent) if world.main else ({}, None)
        on_epoch = on_epoch if world.main else None
        tensorboard = epoch_logger(opened.folder.path, then=on_epoch) \
            if opened.spec.train.log.tensorboard and world.main else None
        logger = tracker.epoch_logger(then=tensorboard or on_epoch) if tracker else tensorboard or on_epoch
        try:
            plan = pick_device(opened.spec.device)
            if cuda is not None:
                plan.device = cuda
            splits = _load_data(opened)
            opened.spec = _as_trained(opened.spec, splits)
            record.update(device=str(plan.device), data_fingerprint=splits.split_record.get("fingerprint"))
            session = build_session(opened.spec, splits, plan, world)
            state, writer = _start(opened, session, splits, extended=epochs is not None)
            session.progress = make_progress(quiet or not world.main)  # a live bar starts drawing at once: only now
            _announce(session, state, writer, splits, fresh=opened.checkpoint is None)
            summary = _fit(session, state, writer, splits, logger, test)
        finally:
            if tensorboard is not None:
                tensorboard.close()
        if tracker is not None:
            tracker.log_metrics(summary_metrics(summary))
            record.update(mlflow=tracker.info())
        return RunResult(opened.folder.path, summary, world.main)


def _records(stack: ExitStack, opened: Opened, spec_file, mlflow_parent: Optional[str]):
    """(provenance session, MLflow run or None) for the run folder, both ended with the run's outcome when
    `stack` closes: the session first, so the MLflow run gets the finished provenance.json."""
    path, spec = opened.folder.path, opened.spec
    tracking = Tracking.from_settings(spec.train.log.mlflow)
    resume = resumable_run((read_provenance(path) or {}).get("sessions", []), tracking) if tracking else None
    tracker = stack.enter_context(tracked(tracking, path, "run", spec.name, parent=mlflow_parent, resume=resume,
                                          params=key_paths(spec_to_dict(spec))))
    record = stack.enter_context(recorded(path, "run", spec_file, spec.seed))
    if tracker is not None:
        record.update(mlflow=tracker.info())
    return record, tracker


def _open_shared(world: World, spec: Optional[ExperimentSpec], out, resume, epochs: Optional[int],
                 lock: ExitStack) -> Opened:
    """`_open` on rank 0, which tells the other ranks the folder, the spec and the checkpoint to start from (so they
    need no shared filesystem). A group that torchrun restarted continues its run folder from last.pt."""
    if not world.distributed:
        return _open(spec, out, resume, epochs, lock)
    if not world.main:
        told = share(world, None)
        if "exit" in told:
            raise SystemExit(told["exit"])  # rank 0 reports why
        return Opened(RunFolder(Path(told["path"])), validate_spec(told["spec"]), told["checkpoint"])
    try:
        if resume is None and world.restarts:
            resume, out = _after_restart(world, spec, out)
        opened = _open(spec, out, resume, epochs, lock)
    except RunAlreadyFinished:
        share(world, {"exit": 0})
        raise
    except BaseException:
        share(world, {"exit": 2})
        raise
    share(world, {"path": str(opened.folder.path), "spec": spec_to_dict(opened.spec), "checkpoint": opened.checkpoint})
    return opened


def _after_restart(world: World, spec: ExperimentSpec, out) -> tuple[Optional[Path], Optional[Path]]:
    """(resume, out) for a group torchrun restarted: the folder it was writing, continued from last.pt if it has one."""
    folder = Path(out) if out is not None else restarted_run(world, Path(spec.output.dir))
    if folder is None:
        return None, out
    return (folder, None) if RunFolder(folder).last.exists() else (None, folder)


def _open(spec: ExperimentSpec, out, resume, epochs: Optional[int], lock: ExitStack) -> Opened:
    """Claim the run folder (locked until `lock` closes): `resume`'s, `out`, or a new one in output.dir."""
    if resume is not None:
        return _open_resumed(Path(resume), epochs, lock)
    if spec.train.log.tensorboard:
        require_tensorboard()  # an optional extra: say so before a run folder is made
    if spec.train.log.mlflow is not None:
        require_mlflow()
    folder = out if out is not None else new_run_dir(spec.output.dir, spec.name)
    return Opened(RunFolder(_claimed(lock, folder)), spec)


def _open_resumed(run_dir: Path, epochs: Optional[int], lock: ExitStack) -> Opened:
    folder = RunFolder(run_dir)
    if not folder.last.exists():
        _no_checkpoint(run_dir)
    held = lock.enter_context(claim(run_dir, "run"))  # before last.pt is read: a second --resume is refused
    checkpoint = load_checkpoint(folder.last)
    missing = [key for key in RESUME_KEYS if key not in checkpoint]
    if missing:
        raise DlxError(f"this checkpoint lacks {', '.join(missing)}, so it can't continue a run.", file=folder.last)
    spec = pin_channels(validate_spec(checkpoint["spec"], file=folder.last), checkpoint.get("data") or {})
    spec = _continue_to(spec, checkpoint, run_dir, epochs)
    held.mark()  # a run from before markers existed says what it is from now on
    return Opened(folder, spec, checkpoint)


def _as_trained(spec: ExperimentSpec, splits: Splits) -> ExperimentSpec:
    """`spec` with data.channels auto replaced by the count chosen, so config.yaml and the checkpoints say what
    the model takes, and re-reading the data (evaluate, ensemble, resume) gives it, whatever is added later."""
    chosen = splits.split_record.get("channels")
    if not chosen or spec.data.channels != "auto":
        return spec
    spec = spec.model_copy(deep=True)
    spec.data.channels = chosen["count"]
    return spec


def _load_data(opened: Opened) -> Splits:
    """The run's data, split; a resumed run's split must be the one it started with."""
    splits = load_splits(opened.spec.data)
    if opened.checkpoint is not None and opened.folder.split.exists():
        reason = check_split_compatible(opened.folder.read_split() or {}, splits.split_record)
        if reason:
            raise DlxError(f"the dataset or its split changed since this run started ({reason}); can't resume.",
                           file=opened.folder.split)
    return splits


def build_session(spec: ExperimentSpec, splits: Splits, plan: DevicePlan, world: World = SINGLE) -> TrainingSession:
    """Model, optimiser, schedule and data of a fresh run, seeded by `spec.seed` (the same on every rank)."""
    torch.manual_seed(spec.seed)
    model = build_for(spec, splits)
    check_activation_memory(model, spec.train.batch_size, plan.device, len(splits.y["train"]))
    model = plan.place(model)
    runner = wrap(model, world, spec.train.sync_batch_norm)
    model = getattr(runner, "module", model)  # SyncBatchNorm replaces the model's batch norms
    runner = torch.compile(runner) if spec.train.compile else runner
    data_train = open_split(splits, "train", plan.device, spec.seed)
    steps = max(1, -(-len(data_train) // spec.train.batch_size))
    optimizer = make_optimizer(model, spec.train.optimizer)
    scheduler = make_scheduler(optimizer, spec.train.scheduler, spec.train.optimizer.lr, steps, spec.train.epochs)
    augment = make_augment(spec.data.augment)
    distiller = make_distiller(spec.distill, splits, data_train, augment, plan.device) if spec.distill else None
    return TrainingSession(spec, model, runner, optimizer, scheduler, torch.Generator().manual_seed(spec.seed), plan,
                           data_train, open_split(splits, "val", plan.device), augment, splits.classes, world=world,
                           distiller=distiller)


def _start(opened: Opened, session: TrainingSession, splits: Splits, extended: bool) -> tuple[TrainState, RunWriter]:
    """The state training starts from: restored from last.pt, or new with its config and split written."""
    folder, spec_dict, state = opened.folder, spec_to_dict(opened.spec), TrainState()
    if opened.checkpoint is not None:
        check_same_teacher(session.distiller, folder.read_summary(), folder.path)
        state = _restore(opened.checkpoint, folder.path, session, extended=extended)
        if extended and session.world.main:  # the run's spec now plans the new total
            folder.write_config(spec_dict)
    elif session.world.main:
        folder.checkpoints.mkdir(exist_ok=True)
        folder.write_config(spec_dict)
        folder.write_split(splits.split_record)
    wall_before = folder.read_summary().get("wall_seconds") or 0.0 if opened.checkpoint and session.world.main else 0.0
    return state, RunWriter(folder, session, data_record(splits), wall_before)


def _announce(session: TrainingSession, state: TrainState, writer: RunWriter, splits: Splits, fresh: bool) -> None:
    """Say where the run is (at the start too, so it can be watched or found after a crash), warn about the
    split of a fresh run, and write the first summary."""
    session.progress.note(f"run folder: {writer.folder.path}")
    if splits.cache is not None and splits.cache.mode == "stream":  # memory, as always: in summary.json only
        session.progress.note(f"data: {splits.cache.reason}")
    chosen = splits.split_record.get("channels")
    if chosen:
        session.progress.note(f"data: {chosen['count']} channel{'s' if chosen['count'] != 1 else ''} "
                              f"({chosen['why']})")
    if fresh:
        state.warnings = split_warnings(splits.y, splits.class_names)
        for raised in state.warnings:
            session.progress.note(f"warning: {raised['message']}")
    writer.summary(state, "running")


def _fit(session: TrainingSession, state: TrainState, writer: RunWriter, splits: Splits, on_epoch, test: bool) -> dict:
    """Train, score the best checkpoint on the test data (once, at the end), and write the final summary;
    an interruption or failure is recorded in the summary before it propagates."""
    test_loss = test_accuracy = None
    try:
        state = fit(session, state, writer.save, on_epoch)
        session.progress.close()
        if test and state.best_epoch and share(session.world, writer.folder.best.exists()):
            plan, world = session.plan, session.world
            best = load_checkpoint(writer.folder.best, plan.device)["model"] if world.main else None
            session.model.load_state_dict(share(world, best))
            test_loss, test_accuracy = evaluate(session.model, open_split(splits, "test", plan.device), plan,
                                                world=world)
    except KeyboardInterrupt:
        session.progress.close()
        writer.summary(state, "interrupted")
        raise TrainingInterrupted(writer.folder.path, state.epoch) from None
    except DlxError as exc:
        session.progress.close()
        with suppress(DlxError):  # a full disk may refuse the summary too: tell what stopped training
            writer.summary(state, "failed", {"error": exc.message})
        raise DlxError(exc.message, file=exc.file or writer.folder.path, key=exc.key) from None
    except BaseException:
        session.progress.close()
        writer.summary(state, "failed")
        raise
    finished = {"test_accuracy": test_accuracy, "test_loss": test_loss,
                "stopped_early": state.epoch < session.spec.train.epochs}
    if session.distiller is not None and test_accuracy is not None and session.world.main:
        finished["distill"] = side_by_side(session.distiller, test_accuracy, test_loss)
    return writer.summary(state, "finished", finished)


def _claimed(lock: ExitStack, folder: str | Path) -> Path:
    """Lock `folder` for a new run until `lock` closes, and mark it as a run before anything else is written.
    Anything else there (an ensemble, the user's files) is refused and left unchanged, and so is a run that
    recorded an epoch (even without last.pt); a run killed before its first epoch was saved is started again."""
    held = lock.enter_context(claim(folder, "run"))
    if RunFolder(held.path).holds_epochs():
        raise DlxError(f"{held.path} already holds a run; use --resume {held.path} to continue it, or another "
                       "--out.")
    held.mark()
    return held.path


def _restore(checkpoint: dict, run_dir: Path, session: TrainingSession, extended: bool = False) -> TrainState:
    """Put model, optimizer, schedule and both random generators back as they were after the saved epoch.

    `extended` (trained past its planned epochs): the schedule, built for the new total, moves to the saved
    step instead of being loaded, and early stopping's patience starts again."""
    try:
        session.model.load_state_dict(checkpoint["model"])
        session.optimizer.load_state_dict(checkpoint["optimizer"])
        if extended:
            continue_schedule(session.scheduler, checkpoint["scheduler"]["last_epoch"])
        else:
            session.scheduler.load_state_dict(checkpoint["scheduler"])
        session.generator.set_state(checkpoint["rng"]["generator"])
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
        summary = RunFolder(run_dir).read_summary()  # a damaged one is refused, naming the field
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
