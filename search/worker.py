"""The trial loop one process runs, and `python -m search.worker SEARCH_DIR ...` for `--workers N`.

A process starts a trial only while COMPLETE + PRUNED + RUNNING trials are fewer than the target, so
N workers (or N machines) together stop at the requested count; a trial that fails frees its place.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from search.study import counts, full_disk, owner_attrs


@dataclass
class Budget:
    trials: Optional[int]          # COMPLETE + PRUNED trials to reach (None: until the deadline)
    deadline: Optional[float]      # time.time() after which no new trial starts
    max_failures: Optional[int]    # stop after this many failed trials in this invocation
    first_number: int = 0          # trials numbered from here on belong to this invocation


def run_trials(study, objective, budget: Budget, on_trial: Optional[Callable] = None, poll: float = 1.0) -> str:
    """Run trials until the budget is spent; returns why it stopped: 'done', 'timeout' or 'failures'."""
    import optuna
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", module="optuna")
    callbacks = [lambda _study, trial: on_trial(trial)] if on_trial else []
    full: list = []  # a full disk fails every trial alike: stop the search instead (see search.study.full_disk)

    def guarded(trial):
        try:
            return objective(trial)
        except Exception as exc:
            error = full_disk(exc)
            if error is not None:
                full.append(error)
            raise
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
            continue
        study.optimize(guarded, n_trials=1, catch=(Exception,), callbacks=callbacks, gc_after_trial=False)
        if full:
            raise full[0]


def split_threads(workers: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="one worker process of `dlx search --workers N`")
    parser.add_argument("search_dir", type=Path)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--deadline", type=float, default=None)
    parser.add_argument("--max-failures", type=int, default=None)
    parser.add_argument("--first-number", type=int, default=0)
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from search.api import open_search_dir
    from spec.errors import DlxError
    try:
        space, study, seed = open_search_dir(args.search_dir, worker=args.index)
        from search.objective import Objective
        objective = Objective(space, args.search_dir, owner_attrs())
        run_trials(study, objective, Budget(args.trials, args.deadline, args.max_failures, args.first_number))
    except DlxError as exc:
        sys.stderr.write(f"error: {exc.render()}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - a full disk ends the worker with a message, not a traceback
        from search.study import full_disk
        full = full_disk(exc)
        if full is None:
            raise
        sys.stderr.write(f"error: {full.render()}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
