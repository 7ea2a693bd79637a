"""kill -9 at random moments during `dlx ensemble` over 3 small pre-trained runs; a rerun succeeds each time.
After every kill, each file a reader would take for whole is whole (ensemble.json / ensemble.yaml parse,
prediction caches and combiner.npz load with allow_pickle=False); a cache cut short is recomputed.
A kill that lands half-way through writing each artefact of the ensemble folder leaves the previous ensemble
byte-identical. Also: a prediction cache crafted to carry a pickle is never unpickled."""
from __future__ import annotations

import json
import shutil
import signal
import time

import numpy as np
import pytest
import yaml

from tests.conftest import assert_user_error, run_dlx
from tests.forked import Dlx, run
from tests.reliability.conftest import DIGITS, assert_intact, rng
from tests.reliability.midwrite import kill_writing

pytestmark = pytest.mark.slow  # the quick subset (-m "not slow") leaves this suite to CI

KILLS = 10
SCENARIO = 5
COMMON = ["data.val_split=0.25", "device.type=cpu", "device.threads=1", "train.epochs=2", "output.save_last=false",
          "model.vars={}"]  # the layers below reference no vars
LAYERS = ["model.layers=[Flatten, {Dense: {units: 8, activation: relu}}, {Dense: {units: classes}}]",
          "model.layers=[Flatten, {Dense: {units: 12, activation: tanh}}, {Dense: {units: classes}}]",
          "model.layers=[Flatten, {Dense: {units: classes}}]"]


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list:
    """Three small digits runs, trained once for this module."""
    from dlx.archs.check import load_spec
    from dlx.train.run import train
    root = tmp_path_factory.mktemp("members")
    return [train(load_spec(DIGITS, [*COMMON, f"name=m{i}", layers, f"seed={i}"]), out=root / f"m{i}",
                  quiet=True).run_dir for i, layers in enumerate(LAYERS)]


def caches(members) -> list:
    return sorted(p for m in members for p in (m / "predictions").glob("*.npz")) if members else []


def check_ensemble(folder, members) -> dict:
    result = json.loads((folder / "ensemble.json").read_text())
    document = yaml.safe_load((folder / "ensemble.yaml").read_text())
    assert len(result["members"]) == 3 and len(document["members"]) == 3
    from dlx.ensemble.folder import load_ensemble
    assert len(load_ensemble(folder).members) == 3
    for path in caches(members):
        with np.load(path, allow_pickle=False) as archive:
            assert archive["val"].ndim == 2 and np.isfinite(archive["test"]).all()
    return result


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # kill and multi-process tests: never two at once under `--dist loadgroup`
def test_ensemble_survives_ten_kills(members, tmp_path):
    draw = rng(SCENARIO)
    code, output = run(["ensemble", *members, "--out", tmp_path / "warm"], tmp_path / "warm.log")  # fork server up
    assert code == 0, output
    for path in caches(members):
        path.unlink()
    started = time.monotonic()
    code, output = run(["ensemble", *members, "--out", tmp_path / "timing", "--method", "stacking"],
                       tmp_path / "timing.log")
    assert code == 0, output
    # kill moments spread over one whole run, with and without caches; a run that ends before its kill moment
    # (the machine got faster than when the window was measured) narrows its window to what that run took
    windows = {True: time.monotonic() - started, False: time.monotonic() - started}
    kills = attempts = 0
    while kills < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, f"only {kills} of {attempts} kills landed (windows {windows})"
        folder = tmp_path / f"ensemble{attempts}"
        uncached = draw.random() < 0.7  # mostly without caches, so that kills also land while caches are written
        if uncached:
            for path in caches(members):
                path.unlink()
        method = draw.choice(["stacking", "weighted"])
        args = ["ensemble", *members, "--out", folder, "--method", method]
        process = Dlx(args, tmp_path / f"attempt{attempts}.log")
        process.process.join(draw.uniform(0.0, windows[uncached]))  # sleeps until the kill moment or its end
        if process.kill():
            kills += 1
        else:
            windows[uncached] = time.monotonic() - process.started
        for member in members:
            assert_intact(member)
        if folder.exists():
            assert_intact(folder)
        code, output = run(args, tmp_path / f"rerun{attempts}.log")  # the rerun into the same folder succeeds
        assert code == 0, output
        check_ensemble(folder, members)
        assert_intact(folder)
        shutil.rmtree(folder)
    print(f"ensemble: {kills} kills survived in {attempts} attempts, windows {windows}")
    assert kills >= KILLS


ARTEFACTS = ("combiner.npz", "ensemble.yaml", "ensemble.json")


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_a_kill_half_way_through_each_write_keeps_the_previous_ensemble(members, tmp_path):
    """The random kills above rarely land inside a write of a few milliseconds; these do (midwrite.kill_writing):
    rebuilding a stacking ensemble with its members reversed, the process kills itself half-way through writing
    combiner.npz, then ensemble.yaml, then ensemble.json. Each time the previous ensemble stays byte-identical
    and loads with its own members; then the same command succeeds."""
    from dlx.ensemble.folder import load_ensemble
    out = tmp_path / "ensemble"
    code, output = run(["ensemble", *members, "--out", out, "--method", "stacking"], tmp_path / "first.log")
    assert code == 0, output
    before = {name: (out / name).read_bytes() for name in ARTEFACTS}
    args = ["ensemble", *reversed(members), "--out", out, "--method", "stacking"]  # a new content for each file
    for name in ARTEFACTS:
        process = Dlx(args, tmp_path / f"kill-{name}.log", patches=kill_writing(name))
        assert process.wait() == -signal.SIGKILL, f"the write of {name} was never reached:\n{process.output()}"
        after = {artefact: (out / artefact).read_bytes() for artefact in ARTEFACTS}
        changed = [artefact for artefact in ARTEFACTS if after[artefact] != before[artefact]]
        assert not changed, f"a kill while writing {name} changed the previous ensemble's {changed}"
        assert [m.run_dir.resolve() for m in load_ensemble(out).members] == [m.resolve() for m in members]
        assert_intact(out)
    code, output = run(args, tmp_path / "rerun.log")
    assert code == 0, output
    check_ensemble(out, members)
    assert [m.run_dir.resolve() for m in load_ensemble(out).members] == [m.resolve() for m in reversed(members)]
    assert_intact(out)


class Payload:
    """Unpickling this creates the marker file: proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_prediction_cache_carrying_a_pickle_is_never_unpickled(members, tmp_path):
    first = tmp_path / "first"
    code, output = run(["ensemble", *members, "--out", first], tmp_path / "first.log")
    assert code == 0, output
    marker = tmp_path / "PWNED"
    crafted = caches(members)
    assert len(crafted) == 3
    for path in crafted:  # same name and array keys, but object arrays: np.load(allow_pickle=True) would run it
        hostile = np.empty(1, dtype=object)
        hostile[0] = Payload(marker)
        with open(path, "wb") as handle:
            np.savez(handle, val=hostile, test=hostile)
    with pytest.raises(ValueError):  # the archive really carries a pickle
        with np.load(crafted[0], allow_pickle=False) as archive:
            archive["val"]
    second = tmp_path / "second"
    code, output = run(["ensemble", *members, "--out", second], tmp_path / "second.log")
    assert code == 0, output
    assert not marker.exists(), "a pickle in a prediction cache was unpickled"
    result = check_ensemble(second, members)  # the caches were recomputed and rewritten without pickles
    assert result["cache"] == {"hits": 0, "misses": 3}
    assert [r["test_accuracy"] for r in result["members"]] == \
        [r["test_accuracy"] for r in json.loads((first / "ensemble.json").read_text())["members"]]
    # a stacking combiner carrying a pickle is refused, also without running it
    stacked = tmp_path / "stacked"
    code, output = run(["ensemble", *members, "--out", stacked, "--method", "stacking"], tmp_path / "stacked.log")
    assert code == 0, output
    hostile = np.empty(1, dtype=object)
    hostile[0] = Payload(marker)
    with open(stacked / "combiner.npz", "wb") as handle:
        np.savez(handle, coef=hostile, intercept=hostile)
    result = run_dlx("evaluate", stacked)
    assert not marker.exists(), "a pickle in combiner.npz was unpickled"
    assert_user_error(result, "combiner.npz")
