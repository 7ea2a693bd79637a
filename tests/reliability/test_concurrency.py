"""Concurrency: 4 workers on the default SQLite storage, and 4 separate `dlx search` processes on one real
PostgreSQL server, each complete a 40-trial study together: no storage errors, unique trial numbers, every
trial accounted for. The target counts COMPLETE + PRUNED trials; a process starts a trial only while
COMPLETE + PRUNED + RUNNING < target, but the count and the start are not one transaction, so up to N-1 extra
trials (N = workers or processes) may run past the target."""
from __future__ import annotations

import time

import optuna
import pytest

from tests.forked import Dlx
from tests.reliability.conftest import assert_intact

TRIALS = 40
N = 4
SPACE = """\
base: tiny.yaml
overrides: {train.epochs: 1, model.vars.width: 4}
sampler: random
pruner: none
trials: %d
keep: 1
params:
  train.optimizer.lr: {float: [1.0e-3, 5.0e-2], log: true}
""" % TRIALS
STORAGE_ERRORS = ("database is locked", "Traceback", "OperationalError", "kept failing", "could not serialize")


@pytest.fixture
def space(tmp_path):
    from tests.search.conftest import TINY_SPEC
    (tmp_path / "tiny.yaml").write_text(TINY_SPEC.replace("device: cpu", "device: {type: cpu, threads: 1}"))
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def check_study(study, processes: int) -> list:
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)), "duplicate trial numbers"
    assert sorted(numbers) == list(range(len(numbers))), "a gap in the trial numbers"
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    states = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "FAIL", "RUNNING", "WAITING", "PRUNED")}
    assert TRIALS <= len(complete) <= TRIALS + processes - 1, states
    assert states["FAIL"] == states["RUNNING"] == states["WAITING"] == 0, states
    assert all(t.value is not None for t in complete)
    return complete


def assert_clean(output: str) -> None:
    for fragment in STORAGE_ERRORS:
        assert fragment not in output, output[-3000:]


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # kill and multi-process tests: never two at once under `--dist loadgroup`
def test_four_workers_on_sqlite_complete_a_40_trial_study(space, tmp_path):
    started = time.monotonic()
    out = tmp_path / "search"
    process = Dlx(["search", space, "--out", out, "--workers", N, "--quiet"], tmp_path / "search.log")
    code = process.wait(300)
    output = process.output()
    assert code == 0, output[-3000:]
    assert_clean(output)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="space", storage=f"sqlite:///{out / 'study.db'}")
    complete = check_study(study, N)
    assert len({t.user_attrs["pid"] for t in complete}) >= 2, "the workers did not share the trials"
    assert_intact(out)
    print(f"sqlite: {len(complete)} COMPLETE trials from {N} workers in {time.monotonic() - started:.0f} s")


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # kill and multi-process tests: never two at once under `--dist loadgroup`
def test_four_processes_on_postgres_complete_a_40_trial_study(postgres_url, space, tmp_path):
    started = time.monotonic()
    processes = [Dlx(["search", space, "--storage", postgres_url, "--name", "shared", "--out",
                      tmp_path / f"machine{i}", "--quiet"], tmp_path / f"machine{i}.log") for i in range(N)]
    codes = [p.wait(300) for p in processes]
    outputs = [p.output() for p in processes]
    assert codes == [0] * N, "\n".join(o[-2000:] for o in outputs)
    for output in outputs:
        assert_clean(output)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="shared", storage=postgres_url.replace("postgresql:", "postgresql+psycopg2:"))
    complete = check_study(study, N)
    assert len({t.user_attrs["pid"] for t in complete}) >= 2, "the processes did not share the trials"
    for i in range(N):
        assert (tmp_path / f"machine{i}" / "best.json").is_file()
        assert_intact(tmp_path / f"machine{i}")
    print(f"postgres: {len(complete)} COMPLETE trials from {N} processes in {time.monotonic() - started:.0f} s")
