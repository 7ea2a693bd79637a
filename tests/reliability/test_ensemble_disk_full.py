"""A full disk while `dlx ensemble` writes its artefacts: exit code 2 with one paragraph saying the disk is full (no
traceback), no temporary or half-written file left, a previous ensemble in the same `--out` folder unchanged
(byte for byte, and it still evaluates the same), and the same command succeeds once there is room again.

The full disk is injected into the real `dlx` process by a sitecustomize hook: every write into an atomic-write
temporary file (`.<name>.<random>.tmp`, train/checkpoint.py) from the Nth on writes half its bytes and then raises
ENOSPC, as write(2) does on a full disk. The hook logs each such write, so the test knows which artefact it hit."""
from __future__ import annotations

import json
import textwrap

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx
from tests.reliability.conftest import DIGITS, assert_intact

pytestmark = pytest.mark.slow  # the quick subset (-m "not slow") leaves this suite to CI

HOOK = textwrap.dedent("""\
    # injected by tests/reliability: writes into atomic-write temporary files fail with ENOSPC from the {n}th on,
    # after writing half their bytes; each such write is logged as "<target name> ok|ENOSPC"
    import errno, os, tempfile
    _mkstemp, _fdopen, _temps, _calls = tempfile.mkstemp, os.fdopen, {{}}, [0]

    def _target(name):  # ".ensemble.yaml.k2j4_x.tmp" -> "ensemble.yaml"
        return os.path.basename(name)[1:-len(".tmp")].rsplit(".", 1)[0]

    def _log(line):
        with open({log!r}, "a") as handle:
            handle.write(line + "\\n")

    def mkstemp(*args, **kwargs):
        fd, name = _mkstemp(*args, **kwargs)
        if os.path.basename(name).startswith(".") and name.endswith(".tmp"):
            _temps[fd] = name
        return fd, name

    class _FullDisk:
        def __init__(self, handle, target):
            self._handle, self._target = handle, target

        def write(self, data):
            data = bytes(data)
            self._handle.write(data[:len(data) // 2])
            self._handle.flush()
            _log(self._target + " ENOSPC")
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def fdopen(fd, *args, **kwargs):
        handle = _fdopen(fd, *args, **kwargs)
        name = _temps.pop(fd, None)
        if name is None:
            return handle
        _calls[0] += 1
        if _calls[0] >= {n}:
            return _FullDisk(handle, _target(name))
        _log(_target(name) + " ok")
        return handle

    tempfile.mkstemp, os.fdopen = mkstemp, fdopen
""")

COMMON = ["data.val_split=0.25", "device.type=cpu", "device.threads=1", "train.epochs=1", "output.save_last=false",
          "model.vars={}"]  # the layers below reference no vars
LAYERS = ["model.layers=[Flatten, {Dense: {units: 8, activation: relu}}, {Dense: {units: classes}}]",
          "model.layers=[Flatten, {Dense: {units: classes}}]"]
ARTEFACTS = ("combiner.npz", "ensemble.yaml", "ensemble.json")


@pytest.fixture
def members(tmp_path) -> list:
    """Two small digits runs (one epoch each), trained in this process."""
    from dlx.archs.check import load_spec
    from dlx.train.run import train
    return [train(load_spec(DIGITS, [*COMMON, f"name=m{i}", layers, f"seed={i}"]), out=tmp_path / f"m{i}",
                  quiet=True).run_dir for i, layers in enumerate(LAYERS)]


def full_disk_from(tmp_path, n: int, name: str) -> tuple[dict, object]:
    """(env that makes the nth atomic write and all after it hit a full disk, the hook's write log)."""
    hook = tmp_path / name
    hook.mkdir()
    log = hook / "writes.log"
    (hook / "sitecustomize.py").write_text(HOOK.format(n=n, log=str(log)))
    return {"PYTHONPATH": f"{hook}:{ROOT}"}, log


def writes(log) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in log.read_text().splitlines()] if log.exists() else []


def no_temp_files(*folders) -> None:
    left = [p for folder in folders for p in folder.rglob("*") if ".tmp" in p.name]
    assert not left, f"a failed write left its temporary file: {left}"


def test_a_full_disk_while_ensembling_fails_cleanly_keeps_the_previous_ensemble_and_a_rerun_succeeds(members,
                                                                                                      tmp_path):
    from dlx.ensemble.api import evaluate_ensemble
    from dlx.ensemble.folder import load_ensemble
    out = tmp_path / "ensemble"
    args = ["ensemble", *members, "--out", out, "--method", "stacking"]
    failed = []  # the artefact whose write met the full disk, per failing run

    # 1. the disk is full from the first write on: the prediction caches, then the new ensemble folder
    env, log = full_disk_from(tmp_path, 1, "hook")
    assert_user_error(run_dlx(*args, env=env), "could not write the ensemble: the disk is full",
                      "No space left on device", "run the command again")
    seen = writes(log)
    assert all(status == "ENOSPC" for _, status in seen), seen
    caches = [name for name, _ in seen if name not in ARTEFACTS]
    assert len(caches) == len(members) and all(name.endswith(".npz") for name in caches), seen  # each cache hit
    assert len(seen) == len(members) + 1 and seen[-1][0] in ARTEFACTS, seen  # then the first folder write stops it
    failed.append(seen[-1][0])
    no_temp_files(out, *members)
    assert not [p for p in out.rglob("*") if p.is_file()], "a failed ensemble left a file that looks whole"
    assert not [p for m in members for p in (m / "predictions").glob("*.npz")], "a cache was half-written"
    for member in members:
        assert_intact(member)

    # 2. with room again, the same command succeeds
    rerun = run_dlx(*args, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["cache"] == {"hits": 0, "misses": len(members)}
    assert [m.run_dir.resolve() for m in load_ensemble(out).members] == [m.resolve() for m in members]
    assert set(assert_intact(out)) == {".npz", ".yaml", ".json"}
    no_temp_files(out, *members)
    before = {name: (out / name).read_bytes() for name in ARTEFACTS}
    scores = evaluate_ensemble(out)

    # 3. rewriting that folder with the members in the other order (a new combiner.npz under the old
    # ensemble.yaml would pool them wrongly), the disk filling before the 2nd, then the 3rd write into it
    args = ["ensemble", *reversed(members), "--out", out, "--method", "stacking"]
    for n in (2, 3):
        env, log = full_disk_from(tmp_path, n, f"hook{n}")
        assert_user_error(run_dlx(*args, env=env), "the disk is full", "No space left on device",
                          "Any ensemble already in this folder is unchanged")
        seen = writes(log)
        assert [status for _, status in seen] == ["ok"] * (n - 1) + ["ENOSPC"], seen
        assert all(name in ARTEFACTS for name, _ in seen), f"a valid cache was rewritten: {seen}"
        failed.append(seen[-1][0])
        after = {name: (out / name).read_bytes() for name in ARTEFACTS}
        assert after == before, f"the previous ensemble changed when the write of {failed[-1]} failed"
        assert evaluate_ensemble(out) == scores
        no_temp_files(out, *members)
        assert_intact(out)
    assert sorted(failed) == sorted(ARTEFACTS), f"not every artefact's write met the full disk: {failed}"

    # 4. with room again, the same command rewrites the folder
    rerun = run_dlx(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert [m.run_dir.resolve() for m in load_ensemble(out).members] == [m.resolve() for m in reversed(members)]
    assert json.loads((out / "ensemble.json").read_text())["members"][0]["run"] == str(members[-1])
    assert (out / "combiner.npz").read_bytes() != before["combiner.npz"]
    assert set(assert_intact(out)) == {".npz", ".yaml", ".json"}
    no_temp_files(out, *members)
