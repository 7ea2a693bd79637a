"""`dlx train` on bad data (exit code 2, one paragraph that names the file and the fix, no traceback): dataset
files missing, a malformed .npz, labels out of range, an empty image folder, inf values that make the loss NaN."""
from __future__ import annotations

import json

import numpy as np
import pytest
from dataset_files import write_mnist, write_npz

from tests.conftest import assert_user_error
from tests.train.conftest import dlx, spec_file


def test_missing_dataset_files(tmp_path):
    spec = spec_file(tmp_path, f"{{dataset: fashion_mnist, root: {tmp_path / 'data'}, download: false}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"),
                      f"expected train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                      f"t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] in the folder "
                      f"{tmp_path / 'data' / 'FashionMNIST' / 'raw'}", "data.download: true")


@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"),
                                             ("kmnist", "KMNIST")])
def test_the_missing_files_hint_leads_to_them(tmp_path, dataset, folder):
    """data.root set to the dataset's own folder (one level too deep) is refused with torchvision's layout, and
    data.root set as the hint says trains: the files are in <root>/MNIST/raw/."""
    write_mnist(tmp_path / "data", folder=folder)
    given = tmp_path / "data" / folder
    message = assert_user_error(dlx("train", spec_file(tmp_path, f"{{dataset: {dataset}, root: {given}}}"), "--out",
                                    tmp_path / "run"), f"in the folder {given / folder / 'raw'} ",
                                f"set data.root to the folder that holds {folder}/raw/,")
    assert not (tmp_path / "run").exists()  # nothing of value was written: no run folder is left
    below = message.split("set data.root to the folder that holds ")[1].split(",")[0]
    root = next(p for p in (given, *given.parents) if (p / below).is_dir())
    result = dlx("train", spec_file(tmp_path, f"{{dataset: {dataset}, root: {root}}}"), "--out", tmp_path / "run",
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("arrays, message", [
    ({"y_train": None}, "the .npz lacks y_train"),
    ({"y_test": np.zeros(3, np.int64)}, "x_test has 20 samples but y_test has 3"),
])
def test_bad_npz(tmp_path, arrays, message):
    npz = write_npz(tmp_path / "d.npz", **arrays)
    spec = spec_file(tmp_path, f"{{dataset: npz, path: {npz}}}")
    assert_user_error(dlx("train", spec, "--set", f"output.dir={tmp_path / 'runs'}"), message, str(npz))
    assert not (tmp_path / "runs").exists()  # the run folder made for it, and runs/, are removed again


def test_labels_out_of_range(tmp_path):
    write_mnist(tmp_path / "data", train_labels=(np.arange(60) % 11).astype(np.uint8))
    spec = spec_file(tmp_path, f"{{dataset: mnist, root: {tmp_path / 'data'}}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"), "labels range over 0..10",
                      "labels must lie in 0..9")


def test_image_folder_without_images(tmp_path):
    (tmp_path / "pics" / "cat").mkdir(parents=True)
    spec = spec_file(tmp_path, f"{{dataset: image_folder, path: {tmp_path / 'pics'}}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"), "no images found in class sub-folders")


def test_nan_loss_from_values_near_the_float32_limit(tmp_path):
    """Finite values (NaN and inf in the data are refused before training) whose weighted sums overflow."""
    x = np.full((60, 8, 8, 1), 3e38, np.float32)
    npz = write_npz(tmp_path / "d.npz", x_train=x, x_test=x[:20].copy())
    spec = spec_file(tmp_path, f"{{dataset: npz, path: {npz}, normalize: false}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"), "non-finite (NaN or inf) at epoch 1, batch 1 of 4",
                      "no checkpoint was written")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"
