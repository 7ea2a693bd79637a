"""The trial loop one process runs, and the body of each worker process of `dlx search --workers N`.

A process starts a trial only while COMPLETE + PRUNED + RUNNING trials are fewer than the target, so
N workers (or N machines) together stop at the requested count; a trial that fails frees its place.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module
from dlx.search.devices import device_env
from dlx.search.folder import claim_trial_folder, open_search_dir, record_trial_folder
from dlx.search.objective import Objective
from dlx.search.study import (BEAT_ATTR, HEARTBEAT_SECONDS, STUDY_ID_ATTR, beats_itself, counts, fail_dead_trials,
                              full_disk, owner_attrs)
from dlx.train.interrupts import interrupt

optuna = lazy_module("optuna")
torch = lazy_module("torch")


@dataclass
class Budget:
    trials: Optional[int]          # COMPLETE + PRUNED trials to reach (None: until the deadline)
    deadline: Optional[float]      # time.time() after which no new trial starts
    max_failures: Optional[int]    # stop after this many failed trials in this invocation
    first_number: int = 0          # trials numbered from here on belong to this invocation


def run_trials(study, objective, budget: Budget, on_trial: Optional[Callable] = None, poll: float = 0.25) -> str:
    """Run trials until the budget is spent; returns why it stopped: 'done', 'timeout' or 'failures'."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", module="optuna")
    callbacks = [lambda _study, trial: on_trial(trial)] if on_trial else []
    full: list = []  # a full disk fails every trial alike: stop the search instead (see search.study.full_disk)
    study_id = study.user_attrs.get(STUDY_ID_ATTR)
    trials_dir = getattr(objective, "trials_dir", None)

    def guarded(trial):
        folder = trials_dir / str(trial.number) if trials_dir is not None else None
        new = False
        try:
            new = folder is not None and _claim(trial, folder, study_id)
            with heartbeat(trial, beats_itself(study)):
                return objective(trial)
        except Exception as exc:
            error = full_disk(exc)
            if error is not None:
                full.append(error)
            raise
        finally:
            if new:
                with contextlib.suppress(OSError):  # a full disk: the folder then counts as one of an older dlx
                    record_trial_folder(folder, study_id, trial.number)
    while True:
        state = counts(study, budget.first_number)
        if budget.max_failures is not None and state["failed_since"] >= budget.max_failures:
            return "failures"
        if budget.trials is not None and state["done"] >= budget.trials:
            return "done"
        if budget.deadline is not None and time.time() >= budget.deadline:
            return "timeout"
        exhausted = getattr(study.sampler, "is_exhausted", None)  # GridSampler: every grid point has run
        if exhausted is not None and not state["waiting"] and not state["running"] and exhausted(study):
            return "done"
        if budget.trials is not None and state["done"] + state["running"] >= budget.trials:
            time.sleep(poll)  # the last trials run elsewhere; one of them may still fail and free a place
            fail_dead_trials(study)  # ... or belong to a process that was killed
            continue
        _optimize_one(study, guarded, callbacks, full)


def _optimize_one(study, guarded, callbacks: list, full: list) -> None:
    """Run one trial; a full disk stops the search (a trial whose end the full storage could not record stays
    RUNNING, and the resumed search settles it: search.study.fail_dead_trials)."""
    try:
        study.optimize(guarded, n_trials=1, catch=(Exception,), callbacks=callbacks, gc_after_trial=False)
    except Exception as exc:
        error = full_disk(exc)
        if error is None:
            raise
        full.append(error)
    if full:
        raise full[0]


def _claim(trial, folder: Path, study_id) -> bool:
    """search.folder.claim_trial_folder, the refusal recorded as the trial's reason for failing."""
    try:
        return claim_trial_folder(folder, study_id, trial.number)
    except DlxError as exc:
        trial.set_user_attr("fail_reason", exc.render())
        raise


@contextlib.contextmanager
def heartbeat(trial, on: bool):
    """While the block runs, record the trial's heartbeat every HEARTBEAT_SECONDS (for storages without their own:
    search.study.beats_itself), so other machines can tell a live trial from one whose machine died."""
    if not on:
        yield
        return
    stop = threading.Event()

    def beat():
        while True:
            try:
                trial.set_user_attr(BEAT_ATTR, time.time())
            except Exception:  # noqa: BLE001 - a missed beat is retried; the trial itself reports real failures
                pass
            if stop.wait(HEARTBEAT_SECONDS):
                return
    thread = threading.Thread(target=beat, name="dlx-trial-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def split_threads(workers: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def worker_process(search_dir: Path, storage_url: str, index: int, threads: int, budget: Budget, log: Path,
                   parent: int, device: Optional[str] = None) -> None:
    """Body of one `--workers N` process. On Linux it is forked from `dlx search` after torch and the training
    code are imported, so it starts in milliseconds instead of paying seconds of imports per worker.

    With a `device` (--devices), only that GPU is visible to it (search.devices), and its trials record it."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    owner = owner_attrs()
    if device is not None:
        os.environ.update(device_env(device))  # before CUDA starts: the fork inherited no CUDA context
        owner.update(device=device, cuda_visible_devices=os.environ["CUDA_VISIBLE_DEVICES"])
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    torch.set_num_threads(threads)
    try:
        space, study, _ = open_search_dir(search_dir, worker=index, storage_url=storage_url)
        run_trials(study, Objective(space, search_dir, owner), budget)
    except DlxError as exc:
        sys.stderr.write(f"error: {exc.render()}\n")
        sys.exit(2)
    except KeyboardInterrupt:  # its trial re-queued itself (search.objective)
        sys.stderr.write("interrupted.\n")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a full disk ends the worker with a message, not a traceback
        full = full_disk(exc)
        if full is None:
            raise
        sys.stderr.write(f"error: {full.render()}\n")
        sys.exit(2)
    sys.exit(0)


def _die_with_parent(parent: int) -> None:
    """A SIGKILLed `dlx search` takes its workers with it (Linux's PR_SET_PDEATHSIG)."""
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
