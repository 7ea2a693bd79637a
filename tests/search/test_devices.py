"""`dlx search --devices`: one worker process per listed device and --workers, each seeing only its own GPU."""
from __future__ import annotations

import pytest

from dlx.search.devices import assign, device_env, parse_devices
from tests.conftest import assert_user_error, run_dlx
from tests.search.conftest import load_trials


def test_each_worker_sees_only_its_device():
    assert device_env("cuda:3") == {"CUDA_VISIBLE_DEVICES": "3"}
    assert device_env("cpu") == {"CUDA_VISIBLE_DEVICES": ""}
    assert assign(["cuda:0", "cuda:1"], 2) == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert parse_devices("cpu, CPU") == ["cpu", "cpu"]


@pytest.mark.xdist_group("heavy")
def test_workers_per_device_record_their_device_and_environment(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 4\n")
    run_dlx("search", space, "--devices", "cpu,cpu", "--workers", "2", "--out", tmp_path / "s", "--quiet", check=0)
    trials = [t for t in load_trials(tmp_path / "s") if t.state.name == "COMPLETE"]
    assert len(trials) >= 4
    assert {t.user_attrs["device"] for t in trials} == {"cpu"}
    assert {t.user_attrs["cuda_visible_devices"] for t in trials} == {""}  # the worker's own environment
    assert len({t.user_attrs["pid"] for t in trials}) >= 2  # several of the 2 devices x 2 workers took trials
    logs = sorted(p.name for p in (tmp_path / "s" / "logs").iterdir())
    assert logs == [f"worker-{i}.log" for i in range(1, 5)]  # 2 devices x 2 workers


@pytest.mark.parametrize("devices, fragment", [("gpu0", "cpu, cuda:N or N"), ("cuda:7", "cuda:7")])
def test_unknown_or_missing_devices_are_refused(make_space, tmp_path, devices, fragment):
    result = run_dlx("search", make_space("trials: 1\n"), "--devices", devices, "--out", tmp_path / "s")
    assert_user_error(result, "--devices", fragment)


def test_a_trial_on_several_devices_holds_a_group_of_them():
    assert assign(["cuda:0", "cuda:1", "cuda:2", "cuda:3"], 1, nproc=2) == ["cuda:0,cuda:1", "cuda:2,cuda:3"]
    assert device_env("cuda:2,cuda:3") == {"CUDA_VISIBLE_DEVICES": "2,3"}
    assert assign(["cpu"], 2, nproc=2) == ["cpu", "cpu"]  # each worker runs its trial's 2 processes on the CPU
    with pytest.raises(Exception, match="multiple of 2"):
        assign(["cuda:0", "cuda:1", "cuda:2"], 1, nproc=2)


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_trials_of_a_space_with_nproc_train_on_several_processes(make_space, tmp_path):
    import json
    space = make_space("sampler: random\ntrials: 2\nnproc: 2\npruner: median\n"
                       "pruner_args: {n_startup_trials: 1, n_warmup_steps: 0}\noverrides: {train.epochs: 2}\n")
    run_dlx("search", space, "--devices", "cpu", "--out", tmp_path / "s", "--quiet", check=0)
    trials = load_trials(tmp_path / "s")
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 2 and {t.user_attrs["device"] for t in finished} == {"cpu"}
    complete = [t for t in finished if t.state.name == "COMPLETE"]
    tested = 0
    for trial in complete:
        summary = json.loads((tmp_path / "s" / "trials" / str(trial.number) / "summary.json").read_text())
        assert summary["world_size"] == 2 and summary["status"] == "finished"
        assert trial.value == summary["val_accuracy"]
        tested += summary["test_accuracy"] is not None
    assert tested == 1  # trials leave the test split alone: the search scores its best one, once
    assert (tmp_path / "s" / "best.json").is_file()
