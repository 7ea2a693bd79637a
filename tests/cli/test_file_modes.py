"""Files dlx writes atomically get the mode a plain open() would give them (0666 less the umask), not mkstemp's
0600: colleagues on a shared machine can read runs and ensembles."""
from __future__ import annotations

import stat

import pytest

from tests import forked

TINY = ["--quiet", "--set", "train.epochs=1", "--set", "device=cpu", "--set", "data.val_split=0.25",
        "--set", "model.layers=[Flatten, {Dense: {units: classes}}]", "--set", "model.vars={}"]


def dlx_with_umask(mask: int, *args) -> None:
    """Run the real `dlx ARGS` in a process (forked, tests/forked.py) whose umask is `mask`."""
    result = forked.run_captured(args, timeout=300, umask=mask)
    assert result.returncode == 0, result.stderr


def modes(folder) -> dict[str, str]:
    """{path relative to folder: octal permission bits} of every file under it."""
    return {str(p.relative_to(folder)): oct(stat.S_IMODE(p.stat().st_mode)) for p in folder.rglob("*") if p.is_file()}


def test_run_files_are_readable_by_others_under_umask_022(tmp_path):
    run = tmp_path / "run"
    dlx_with_umask(0o022, "train", "configs/digits.yaml", "--out", run, *TINY)
    found = modes(run)
    assert {"config.yaml", "metrics.csv", "summary.json", "checkpoints/best.pt", "checkpoints/last.pt"} <= set(found)
    assert found == {name: "0o644" for name in found}


@pytest.mark.slow
def test_ensemble_files_follow_the_umask(tmp_path):
    for seed in (1, 2):
        dlx_with_umask(0o022, "train", "configs/digits.yaml", "--out", tmp_path / f"run{seed}", *TINY,
                       "--set", f"seed={seed}")
    dlx_with_umask(0o027, "ensemble", tmp_path / "run1", tmp_path / "run2", "--method", "stacking",
                   "--out", tmp_path / "ensemble")
    found = modes(tmp_path / "ensemble")
    assert {"ensemble.yaml", "combiner.npz"} <= set(found)
    assert found == {name: "0o640" for name in found}
