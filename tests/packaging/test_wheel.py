"""dlx as its users get it: a wheel built from the tracked files, holding one import package, installed (not
editable) into a fresh virtual environment with only what running dlx needs, and run from a folder outside the
checkout that holds the user's own train.py, core.py, ... ."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.packaging.user_folder import assert_dlx_ran, user_folder

pytestmark = pytest.mark.xdist_group("wheel")  # one worker builds the wheel once for the module
STAGES = ["cli", "core", "experiment", "archs", "train", "search", "ensemble", "report", "export"]
TEST_ONLY = ["pytest", "keras", "mlflow", "psycopg2", "tensorboard", "mlxtend", "hypothesis", "optuna_dashboard"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of what git tracks, as a clean clone has it, so nothing untracked slips in."""
    source, dist = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(source)], check=True, capture_output=True, text=True, timeout=300)
    return next(dist.glob("dlx-*.whl"))


def test_the_wheel_holds_one_import_package_with_every_module_and_preset(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"dlx"}
    tracked = subprocess.run(["git", "ls-files", *STAGES, "dlx"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    wanted = {name if name.startswith("dlx/") else f"dlx/{name}" for name in tracked
              if name.endswith(".py") or name.startswith("archs/presets/")}
    assert wanted - set(names) == set(), f"missing from the wheel: {sorted(wanted - set(names))}"
    entry = next(name for name in names if name.endswith("entry_points.txt"))
    assert "dlx = dlx.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()


def digit_pngs(folder: Path, count: int = 4) -> Path:
    from sklearn.datasets import load_digits
    folder.mkdir()
    for i, image in enumerate(load_digits().images[:count]):
        Image.fromarray((image * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.slow
def test_the_installed_wheel_trains_searches_ensembles_exports_and_predicts_from_a_user_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    # Nothing of the checkout may be seen: with it on PYTHONPATH, pip takes its dlx.egg-info for an installed dlx.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(COLUMNS="200", OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, check=True, timeout=120)
    torch = [f"torch=={__import__('torch').__version__.split('+')[0]}",
             f"torchvision=={__import__('torchvision').__version__.split('+')[0]}"]
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *torch, f"{wheel}[export]"], env=env,
                   check=True, capture_output=True, text=True, timeout=900)
    folder = user_folder(tmp_path / "project")

    def dlx(*args):
        result = subprocess.run([venv / "bin" / "dlx", *map(str, args)], cwd=folder, env=env, capture_output=True,
                                text=True, timeout=600)
        assert_dlx_ran(result)
        return result

    dlx("train", "spec.yaml", "--out", "run", "--quiet")
    dlx("search", "space.yaml", "--out", "search", "--quiet")
    dlx("ensemble", "run", *sorted((folder / "search" / "trials").iterdir()), "--out", "ensemble")
    dlx("export", "ensemble", "--format", "onnx", "--out", "onnx")
    predicted = dlx("predict", "onnx/model.onnx", digit_pngs(folder / "images"), "--json")
    assert predicted.stdout.count('"predicted"') == 4

    shown = subprocess.run([str(venv / "bin" / "pip"), "show", "-f", "dlx"], env=env, capture_output=True,
                           text=True, check=True).stdout
    files = shown.split("Files:", 1)[1].split()
    tops = {name.split("/")[0] for name in files if not name.startswith("..")}  # ../../../bin/dlx: the script
    assert {top for top in tops if not top.endswith(".dist-info")} == {"dlx"}, sorted(tops)
    check = f"import importlib.util as u; print([m for m in {TEST_ONLY!r} if u.find_spec(m)])"
    present = subprocess.run([str(venv / "bin" / "python"), "-c", check], cwd=folder, env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
    assert present == "[]", f"test-only packages in a user's install: {present}"
