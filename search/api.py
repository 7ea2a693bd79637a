"""`dlx search` as a Python function: space file → search folder with a study, trial runs and results.

A search folder holds `search.yaml` (the resolved space, base spec inline), `study.json` (study name and
storage), `study.db` (default storage), `trials/<number>/` (run folders) and, at the end,
`leaderboard.csv/json`, `best.json` and `best.yaml`.

A search folder is not locked as a whole: several `dlx search` processes may share it (and its study) by design.
Each trial folder is locked by the process training it (train.outdir), so no two processes write one trial.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module
from dlx.search.devices import assign
from dlx.search.folder import (check_binding, check_identity, read_resolved_space, read_study_json, require_study,
                               stored_storage, write_folder)
from dlx.search.objective import Objective
from dlx.search.pareto import parse_pick, pick
from dlx.search.records import best_metrics, search_records
from dlx.search.results import write_results
from dlx.search.samplers import grid_size
from dlx.search.space import SearchSpace, load_space
from dlx.search.study import (RETRY_ATTR, counts, default_storage, fail_dead_trials, full_disk, open_storage,
                              open_study, owner_attrs, retrying)
from dlx.search.worker import Budget, run_trials, split_threads, worker_process
from dlx.train.interrupts import sigterm_interrupts
from dlx.train.outdir import check, write_marker
from dlx.train.rundir import ensure_writable, new_run_dir

optuna = lazy_module("optuna")

DEFAULT_WORKERS = 1
DEFAULT_MAX_FAILURES = 10


@dataclass
class SearchRequest:
    """What `dlx search` was asked for: a space file or a search folder to resume, and the limits that override
    the space's own."""

    space_path: Optional[str | Path] = None
    out: Optional[str | Path] = None         # search folder (default: runs/<name>-<time>)
    resume: Optional[str | Path] = None      # continue this search folder instead of starting from a space
    storage: Optional[str] = None            # Optuna storage URL (default: the folder's study.db)
    name: Optional[str] = None               # study name
    workers: int = DEFAULT_WORKERS           # trial processes on this machine (per device, with `devices`)
    devices: Optional[list[str]] = None      # one worker per device and --workers (search.devices), or None
    trials: Optional[int] = None             # COMPLETE + PRUNED trials to reach
    timeout: Optional[float] = None          # seconds after which no new trial starts
    max_failures: Optional[int] = DEFAULT_MAX_FAILURES
    overrides: Optional[list[str]] = None    # --set on the base spec
    pick: Optional[str] = None               # at the end: the most accurate Pareto-front trial meeting this


@dataclass
class SearchResult:
    search_dir: Path
    best: Optional[dict]     # best.json's content (None when no trial completed)
    stopped: str             # done | timeout | failures
    counts: dict
    picked: Optional[dict] = None  # --pick's choice from pareto.json


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the search in `search_dir`; the trials that were running are re-queued, to run
    again with their parameters when it resumes."""

    def __init__(self, search_dir: Path):
        super().__init__(f"search interrupted: {search_dir}")
        self.search_dir = search_dir


@dataclass
class OpenSearch:
    """A search ready to run trials: its folder, space, study and budget."""

    search_dir: Path
    space: SearchSpace
    study: object
    url: str
    storage: object          # the study's Optuna storage
    budget: Budget
    devices: Optional[list[str]] = None  # --devices: each worker's device (search.devices)
    resumed: bool = False    # the study held trials already
    requeued: int = 0        # trials waiting to run again (interrupted, or their process died)


def run_search(space_path: Optional[str | Path | SearchRequest] = None, *, on_trial: Optional[Callable] = None,
               **options) -> SearchResult:
    """Run (or continue) a search: `run_search("space.yaml", out=..., workers=2)` takes SearchRequest's fields
    as keywords, or `run_search(SearchRequest(...))`. `on_trial(frozen_trial, study)` is called as each trial
    finishes (and `on_trial.start(metric, direction, target, done, best, folder, resumed, requeued)` first, if it
    has one). Ctrl-C or SIGTERM raises SearchInterrupted."""
    request = space_path if isinstance(space_path, SearchRequest) else SearchRequest(space_path, **options)
    if request.workers < 1:
        raise DlxError(f"--workers must be >= 1, but got {request.workers}.", key="--workers")
    try:
        conditions = parse_pick(request.pick) if request.pick is not None else None
        search = open_search(request)
        if conditions is not None and not search.space.multi:
            raise DlxError("--pick chooses from a Pareto front, but this search has one objective; list several "
                           "under `objectives:` in the space.", file=search.space.file, key="--pick")
        with search_records(search.search_dir, search.space, request.space_path) as tracker, sigterm_interrupts():
            try:
                stopped = _run(search, request.workers, on_trial)
            except KeyboardInterrupt:
                raise SearchInterrupted(search.search_dir) from None
            result = _finish(search, stopped, request.max_failures)
            if conditions is not None and result.best is not None:
                result.picked = pick(search.search_dir, request.pick)
            if tracker is not None:
                tracker.log_metrics(best_metrics(result.best))
        return result
    except DlxError:
        raise
    except Exception as exc:  # the study boundary: a full disk is a user-facing error, not a traceback
        full = full_disk(exc)
        if full is None:
            raise
        raise full from None


def open_search(request: SearchRequest) -> OpenSearch:
    """Prepare the folder, open (or join) the study, write search.yaml and study.json, fail dead trials."""
    search_dir, space, stored = _prepare(request)
    url = request.storage or stored_storage(stored, search_dir)
    study_name = request.name or stored.get("name") or space.name
    check_binding(search_dir, stored, url, study_name)  # another storage or study: refused before either is touched
    storage = open_storage(url)
    require_study(search_dir, stored, storage, url, study_name)
    trials = request.trials or space.trials
    timeout = request.timeout if request.timeout is not None else space.timeout
    if trials is None and timeout is None:
        raise DlxError("give `trials:` or `timeout:` in the space (or --trials / --timeout), or the search never "
                       "ends.", file=space.file, key="trials")
    if space.sampler == "grid":
        trials = min(trials or grid_size(space), grid_size(space))
    study = open_study(space, storage, study_name, seed_offset=0, shared=url != default_storage(search_dir))
    write_folder(search_dir, space, study_name, url, check_identity(search_dir, stored, study, url))
    fail_dead_trials(study)
    known = study.get_trials(deepcopy=False)
    budget = Budget(trials, time.time() + timeout if timeout else None, request.max_failures, len(known))
    requeued = sum(t.state == optuna.trial.TrialState.WAITING and RETRY_ATTR in t.user_attrs for t in known)
    return OpenSearch(search_dir, space, study, url, storage, budget, request.devices, bool(known), requeued)


def _run(search: OpenSearch, workers: int, on_trial: Optional[Callable]) -> str:
    """Run trials in this process or in `workers` processes; returns why the search stopped."""
    study = search.study
    report = (lambda trial: on_trial(trial, study)) if on_trial else None
    if hasattr(on_trial, "start"):
        on_trial.start(search.space.metric, search.space.direction, search.budget.trials, counts(study)["done"],
                       _best_value(study), search.search_dir, search.resumed, search.requeued)
    if workers == 1 and search.devices is None:
        return run_trials(study, Objective(search.space, search.search_dir, owner_attrs()), search.budget, report)
    return _run_workers(search, workers, report)


def _finish(search: OpenSearch, stopped: str, max_failures: Optional[int]) -> SearchResult:
    best = write_results(search.study, search.space, search.search_dir)
    state = counts(search.study, search.budget.first_number)
    if stopped == "failures":
        raise DlxError(f"the search stopped: {state['failed_since']} trials failed in this run (--max-failures "
                       f"{max_failures}); last reason: {_last_failure(search.study)}. Results so far are in "
                       f"{search.search_dir}.")
    return SearchResult(search.search_dir, best, stopped, state)


def _prepare(request: SearchRequest) -> tuple[Path, SearchSpace, dict]:
    """(search folder, space, study.json's content): a resumed folder, or a new one for a space file."""
    if (request.space_path is None) == (request.resume is None):
        raise DlxError("give a search space file (dlx search SPACE) or --resume SEARCH_DIR, not both.")
    if request.resume is not None:
        search_dir = Path(request.resume)
        if not (search_dir / "search.yaml").is_file():
            raise DlxError("this is not a search folder (it has no search.yaml).", file=search_dir)
        if request.overrides:
            raise DlxError("--set can't change a search being resumed; its space is fixed in search.yaml.")
        check(search_dir, "search")
        write_marker(search_dir, "search")  # a search from before markers existed says what it is from now on
        return search_dir, read_resolved_space(search_dir), read_study_json(search_dir)
    space = load_space(request.space_path, request.overrides)
    if request.out is not None:
        search_dir = Path(request.out)
        check(search_dir, "search")  # new, empty or a search (continued); anything else is left unchanged
        ensure_writable(search_dir)
    else:
        search_dir = new_run_dir(space.base["output"]["dir"], request.name or space.name)
    write_marker(search_dir, "search")  # first: the folder says what it is before anything else is in it
    return search_dir, space, read_study_json(search_dir)


def _warm_imports() -> None:
    """Import what every trial needs once, before the workers are forked: each would otherwise pay seconds
    for torch and for torch._dynamo (which torch's optimizers import on first use)."""
    import torch._dynamo  # noqa: F401
    import dlx.train.run  # noqa: F401


def _worker_processes(search: OpenSearch, workers: int) -> list:
    """The worker processes, not yet started; torch and the training code imported first where they fork."""
    logs = search.search_dir / "logs"
    logs.mkdir(exist_ok=True)
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    if sys.platform == "linux":
        _warm_imports()
    if hasattr(search.storage, "engine"):  # a database: no connection may cross a fork (SQLite's locks would break)
        search.storage.engine.dispose()
    sys.stdout.flush()
    sys.stderr.flush()
    devices = assign(search.devices, workers, search.space.nproc) if search.devices else [None] * workers
    processes = [context.Process(target=worker_process, name=f"dlx-search-worker-{index}",
                                 args=(search.search_dir, search.url, index, split_threads(len(devices)),
                                       search.budget, logs / f"worker-{index}.log", os.getpid(), device))
                 for index, device in enumerate(devices, start=1)]
    return processes


def _run_workers(search: OpenSearch, workers: int, report) -> str:
    study, budget = search.study, search.budget
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None}
    processes = _worker_processes(search, workers)
    try:
        for process in processes:
            process.start()
        while True:
            running = [p for p in processes if p.is_alive()]
            _report_new(study, seen, report)
            if not running:
                break
            multiprocessing.connection.wait([p.sentinel for p in running], timeout=1.0)  # wakes as one ends
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            if process.pid is not None:
                process.join()
    _check_exits(search.search_dir, processes)
    state = counts(study, budget.first_number)
    if budget.max_failures is not None and state["failed_since"] >= budget.max_failures:
        return "failures"
    return "done" if budget.trials is not None and state["done"] >= budget.trials else "timeout"


def _check_exits(search_dir: Path, processes: list) -> None:
    bad = [(i + 1, p.exitcode) for i, p in enumerate(processes) if p.exitcode != 0]
    if bad:
        index, code = bad[0]
        tail = (search_dir / "logs" / f"worker-{index}.log").read_text(errors="replace").strip().splitlines()[-1:]
        raise DlxError(f"worker {index} stopped with exit code {code}: {' '.join(tail) or 'no output'} (see "
                       f"{search_dir / 'logs'}).")


def _report_new(study, seen: set, report) -> None:
    for trial in retrying(lambda: study.get_trials(deepcopy=False)):
        if trial.datetime_complete is not None and trial.number not in seen:
            seen.add(trial.number)
            if report:
                report(trial)


def _last_failure(study) -> str:
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    return failed[-1].user_attrs.get("fail_reason", "unknown").rstrip(".") if failed else "unknown"


def _best_value(study) -> Optional[float]:
    if len(study.directions) > 1:  # several objectives: no single best value
        return None
    try:
        return study.best_value
    except ValueError:  # no trial completed yet
        return None
