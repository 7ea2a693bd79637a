"""kill -9 at random moments during `dlx search` (1 and 2 workers); `dlx search --resume` carries on each time.
No COMPLETE trial is lost or changed, trial numbers stay unique, the target count is reached, the study loads."""
from __future__ import annotations

import time

import optuna
import pytest

from tests.reliability.conftest import assert_intact, rng
from tests.reliability.forked import Dlx

KILLS = 10
TRIALS = 6
# A kill inside Optuna's ask() leaves a trial with no owner, failed once ORPHAN_SECONDS (60) old; with 0.1 s
# trials that happens often here, so the test waits 3 s instead (the rule itself: test_search_cli.py).
ORPHAN = {"search.study.ORPHAN_SECONDS": 3}


def study_of(search_dir):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="space", storage=f"sqlite:///{search_dir / 'study.db'}")


def complete(search_dir) -> dict[int, float]:
    if not (search_dir / "study.db").exists():  # killed before the study was created: nothing to lose yet
        assert not (search_dir / "search.yaml").exists(), "search.yaml is written only once the study exists"
        return {}
    try:
        study = study_of(search_dir)
    except KeyError:  # killed before the study was created (study.db may already exist): nothing to lose yet
        assert not (search_dir / "search.yaml").exists(), "search.yaml is written only once the study exists"
        return {}
    return {t.number: t.value for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}


def check_finished(out, before: dict, workers: int) -> None:
    trials = study_of(out).get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    done = complete(out)
    assert {n: done[n] for n in before} == before, "a COMPLETE trial was lost or changed"
    assert TRIALS <= len(done) <= TRIALS + workers - 1, len(done)
    assert not [t for t in trials if t.state.name == "RUNNING"], "a killed trial was left RUNNING"
    assert len({t.user_attrs.get("run_dir") for t in trials if t.state.name == "COMPLETE"}) == len(done)
    assert_intact(out)


@pytest.mark.slow
@pytest.mark.parametrize("workers, scenario, window", [(1, 2, 3.0), (2, 3, 5.0)])
def test_search_survives_ten_kills(workers, scenario, window, tiny_space, tmp_path):
    """Kill, resume, kill ...; a search that finishes before ten kills is followed by a fresh one."""
    space = tiny_space(f"sampler: random\ntrials: {TRIALS}\nkeep: 2\n")
    draw = rng(scenario)
    kills = attempt = searches = 0
    while kills < KILLS:
        searches += 1
        out = tmp_path / f"search{searches}"
        before: dict[int, float] = {}
        while True:
            attempt += 1
            args = (["search", space, "--out", out] if not (out / "search.yaml").exists()
                    else ["search", "--resume", out]) + ["--workers", str(workers), "--quiet"]
            process = Dlx(args, tmp_path / f"attempt{attempt}.log", patches=ORPHAN)
            if kills < KILLS:
                time.sleep(draw.uniform(0.0, window))
                if process.kill():
                    kills += 1
                    now = complete(out)  # the study loads after every kill
                    assert {n: now[n] for n in before} == before, "a COMPLETE trial was lost or changed by a kill"
                    before = now
                    assert_intact(out)
                    continue
            assert process.wait(600) == 0, process.output()
            if len(complete(out)) >= TRIALS:
                break
        check_finished(out, before, workers)
    assert kills >= KILLS
