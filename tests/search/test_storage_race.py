"""Two workers asking for a trial at the same instant must never both take the same re-queued (WAITING) trial:
they would train it into one folder, and one would then crash on "Cannot tell a COMPLETE trial"."""
from __future__ import annotations

import multiprocessing

import optuna

from dlx.search.study import open_storage

ROUNDS = 15


def _ask(url: str, barrier, answers) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="race", storage=open_storage(url, heartbeat=False))
    for _ in range(ROUNDS):
        barrier.wait()
        answers.put(study.ask().number)
        barrier.wait()  # the main process enqueues the next round's trial


def test_two_workers_never_pop_the_same_waiting_trial(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="race", storage=open_storage(url, heartbeat=False))
    context = multiprocessing.get_context("fork")
    barrier, answers = context.Barrier(3), context.Queue()
    # daemons, and a bounded wait: a worker that crashes must fail the test, not hang it (or pytest's exit)
    workers = [context.Process(target=_ask, args=(url, barrier, answers), daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    taken = []
    for _ in range(ROUNDS):
        study.enqueue_trial({"x": 1.0})
        barrier.wait(timeout=60)
        pair = [answers.get(timeout=60), answers.get(timeout=60)]
        taken.append(pair)
        barrier.wait(timeout=60)
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0, f"a worker failed (exit {worker.exitcode})"
    assert all(a != b for a, b in taken), f"both workers took the same trial: {taken}"
