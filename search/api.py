"""`dlx search` as a Python function: space file → search folder with a study, trial runs and results.

A search folder holds `search.yaml` (the resolved space, base spec inline), `study.json` (study name and
storage), `study.db` (default storage), `trials/<number>/` (run folders) and, at the end,
`leaderboard.csv/json`, `best.json` and `best.yaml`.

A search folder is not locked as a whole: several `dlx search` processes may share it (and its study) by design.
Each trial folder is locked by the process training it (train.outdir), so no two processes write one trial.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from search.space import SearchSpace, load_space, parse_space
from search.study import default_storage, fail_dead_trials, open_storage, open_study, redact
from core.errors import DlxError
from experiment.yamlio import dump_yaml, load_yaml_mapping, read_text

DEFAULT_WORKERS = 1
DEFAULT_MAX_FAILURES = 10


@dataclass
class SearchResult:
    search_dir: Path
    best: Optional[dict]     # best.json's content (None when no trial completed)
    stopped: str             # done | timeout | failures
    counts: dict


def run_search(space_path: Optional[str | Path] = None, *, out: Optional[str | Path] = None,
               resume: Optional[str | Path] = None, storage: Optional[str] = None, name: Optional[str] = None,
               workers: int = DEFAULT_WORKERS, trials: Optional[int] = None, timeout: Optional[float] = None,
               max_failures: Optional[int] = DEFAULT_MAX_FAILURES, overrides: Optional[list[str]] = None,
               on_trial: Optional[Callable] = None, sampler=None, pruner=None) -> SearchResult:
    """Run (or continue) a search. `on_trial(frozen_trial, study)` is called as each trial finishes (and
    `on_trial.start(metric, direction, target, done)` first, if it has one)."""
    if workers < 1:
        raise DlxError(f"--workers must be >= 1, but got {workers}.", key="--workers")
    try:
        return _run_search(space_path, out, resume, storage, name, workers, trials, timeout, max_failures,
                           overrides, on_trial, sampler, pruner)
    except DlxError:
        raise
    except Exception as exc:  # the study boundary: a full disk is a user-facing error, not a traceback
        from search.study import full_disk
        full = full_disk(exc)
        if full is None:
            raise
        raise full from None


def _run_search(space_path, out, resume, storage, name, workers, trials, timeout, max_failures, overrides,
                on_trial, sampler, pruner) -> SearchResult:
    from search.results import write_results
    from search.study import counts
    from search.worker import Budget, run_trials
    search_dir, space, stored = _prepare(space_path, out, resume, overrides, name)
    url = storage or _stored_storage(stored, search_dir)
    storage_obj = open_storage(url)
    study_name = name or stored.get("name") or space.name
    budget_trials = trials or space.trials
    timeout = timeout if timeout is not None else space.timeout
    if budget_trials is None and timeout is None:
        raise DlxError("give `trials:` or `timeout:` in the space (or --trials / --timeout), or the search never "
                       "ends.", file=space.file, key="trials")
    if space.sampler == "grid":
        from search.samplers import grid_size
        budget_trials = min(budget_trials or grid_size(space), grid_size(space))
    study = open_study(space, storage_obj, study_name, sampler=sampler, pruner=pruner, seed_offset=0)
    _write_folder(search_dir, space, study_name, url)
    fail_dead_trials(study)
    first = len(study.get_trials(deepcopy=False))
    budget = Budget(budget_trials, time.time() + timeout if timeout else None, max_failures, first)
    report = (lambda trial: on_trial(trial, study)) if on_trial else None
    if hasattr(on_trial, "start"):
        on_trial.start(space.metric, space.direction, budget_trials, counts(study)["done"], _best_value(study))
    if workers == 1:
        from search.objective import Objective
        from search.study import owner_attrs
        stopped = run_trials(study, Objective(space, search_dir, owner_attrs()), budget, report)
    else:
        stopped = _run_workers(search_dir, url, workers, budget, study, storage_obj, report)
    best = write_results(study, space, search_dir)
    state = counts(study, first)
    if stopped == "failures":
        raise DlxError(f"the search stopped: {state['failed_since']} trials failed in this run (--max-failures "
                       f"{max_failures}); last reason: {_last_failure(study)}. Results so far are in {search_dir}.")
    return SearchResult(search_dir, best, stopped, state)


def _prepare(space_path, out, resume, overrides, name) -> tuple[Path, SearchSpace, dict]:
    if (space_path is None) == (resume is None):
        raise DlxError("give a search space file (dlx search SPACE) or --resume SEARCH_DIR, not both.")
    from train.outdir import check, write_marker
    if resume is not None:
        search_dir = Path(resume)
        if not (search_dir / "search.yaml").is_file():
            raise DlxError("this is not a search folder (it has no search.yaml).", file=search_dir)
        if overrides:
            raise DlxError("--set can't change a search being resumed; its space is fixed in search.yaml.")
        check(search_dir, "search")
        write_marker(search_dir, "search")  # a search from before markers existed says what it is from now on
        return search_dir, read_resolved_space(search_dir), _read_study_json(search_dir)
    space = load_space(space_path, overrides)
    if out is not None:
        search_dir = Path(out)
        from train.rundir import ensure_writable
        check(search_dir, "search")  # new, empty or a search (continued); anything else is left unchanged
        ensure_writable(search_dir)
    else:
        from train.rundir import new_run_dir
        search_dir = new_run_dir(space.base["output"]["dir"], name or space.name)
    write_marker(search_dir, "search")  # first: the folder says what it is before anything else is in it
    return search_dir, space, _read_study_json(search_dir)


def read_resolved_space(search_dir: Path) -> SearchSpace:
    path = Path(search_dir) / "search.yaml"
    return parse_space(load_yaml_mapping(path, "search space"), path, read_text(path))


def _read_study_json(search_dir: Path) -> dict:
    from core.files import read_json
    return read_json(Path(search_dir) / "study.json", {}) or {}


def _stored_storage(stored: dict, search_dir: Path) -> str:
    url = stored.get("storage")
    if not url:
        return default_storage(search_dir)
    if "***" in url:
        raise DlxError(f"this search uses the storage {url}, whose password is not stored; give it again with "
                       "--storage URL.", key="--storage")
    return url


def _write_folder(search_dir: Path, space: SearchSpace, study_name: str, url: str) -> None:
    from core.files import atomic_write_json, atomic_write_text
    atomic_write_text(search_dir / "search.yaml", dump_yaml({**space.to_yaml_dict(), "name": study_name}))
    shown = None if url == default_storage(search_dir) else redact(url)
    atomic_write_json(search_dir / "study.json", {"name": study_name, "storage": shown})
    (search_dir / "trials").mkdir(exist_ok=True)


def open_search_dir(search_dir: Path, worker: int = 0, storage_url: Optional[str] = None):
    """(space, study, seed) for a worker process joining the search in `search_dir`."""
    space = read_resolved_space(search_dir)
    stored = _read_study_json(search_dir)
    url = storage_url or _stored_storage(stored, search_dir)
    study = open_study(space, open_storage(url), stored.get("name") or space.name, seed_offset=worker)
    return space, study, space.seed


def _warm_imports() -> None:
    """Import what every trial needs once, before the workers are forked: each would otherwise pay seconds
    for torch and for torch._dynamo (which torch's optimizers import on first use)."""
    import torch._dynamo  # noqa: F401
    import search.objective  # noqa: F401
    import train.run  # noqa: F401


def _run_workers(search_dir: Path, url: str, workers: int, budget, study, storage, report) -> str:
    import multiprocessing
    import multiprocessing.connection
    from search.study import counts
    from search.worker import split_threads, worker_process
    (search_dir / "logs").mkdir(exist_ok=True)
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    if sys.platform == "linux":
        _warm_imports()
    storage.engine.dispose()  # no database connection may cross a fork (SQLite's locks and WAL map would break)
    sys.stdout.flush()
    sys.stderr.flush()
    processes = [context.Process(target=worker_process, name=f"dlx-search-worker-{index}",
                                 args=(search_dir, url, index, split_threads(workers), budget,
                                       search_dir / "logs" / f"worker-{index}.log", os.getpid()))
                 for index in range(1, workers + 1)]
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None}
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
    bad = [(i + 1, p.exitcode) for i, p in enumerate(processes) if p.exitcode != 0]
    if bad:
        index, code = bad[0]
        tail = (search_dir / "logs" / f"worker-{index}.log").read_text(errors="replace").strip().splitlines()[-1:]
        raise DlxError(f"worker {index} stopped with exit code {code}: {' '.join(tail) or 'no output'} (see "
                       f"{search_dir / 'logs'}).")
    state = counts(study, budget.first_number)
    if budget.max_failures is not None and state["failed_since"] >= budget.max_failures:
        return "failures"
    return "done" if budget.trials is not None and state["done"] >= budget.trials else "timeout"


def _report_new(study, seen: set, report) -> None:
    from search.study import retrying
    for trial in retrying(lambda: study.get_trials(deepcopy=False)):
        if trial.datetime_complete is not None and trial.number not in seen:
            seen.add(trial.number)
            if report:
                report(trial)


def _last_failure(study) -> str:
    from optuna.trial import TrialState
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return failed[-1].user_attrs.get("fail_reason", "unknown").rstrip(".") if failed else "unknown"


def _best_value(study) -> Optional[float]:
    try:
        return study.best_value
    except ValueError:  # no trial completed yet
        return None
