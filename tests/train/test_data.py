"""Each dataset loader on small files written in the real on-disk formats; splits; normalisation."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from dataset_files import (write_cifar10, write_cifar100, write_mnist, write_npz, write_png_folder, write_svhn)

from pydantic import ValidationError

from dlx.core.errors import DlxError
from dlx.experiment.schema import DataSpec
from dlx.train.data import load_splits
from dlx.train.data.split import stratified_split


def splits_of(**data):
    return load_splits(DataSpec(**data))


def sizes(splits):
    return {name: len(splits.y[name]) for name in ("train", "val", "test")}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"),
                                             ("kmnist", "KMNIST")])
def test_mnist_like_idx_files(tmp_path, dataset, folder, gz):
    write_mnist(tmp_path, folder, n_train=60, n_test=20, gz=gz)
    splits = splits_of(dataset=dataset, root=str(tmp_path))
    assert splits.input_shape == (1, 28, 28) and splits.classes == 10
    assert sizes(splits) == {"train": 50, "val": 10, "test": 20}  # 10% of each class carved for validation
    assert splits.x["train"].dtype == np.uint8 and splits.scale == pytest.approx(1 / 255)


def test_cifar10_pickle_batches(tmp_path):
    write_cifar10(tmp_path, per_batch=20, n_test=20)
    splits = splits_of(dataset="cifar10", root=str(tmp_path))
    assert splits.input_shape == (3, 32, 32) and splits.class_names[0] == "airplane"
    assert sizes(splits) == {"train": 90, "val": 10, "test": 20}


def test_cifar10_pixels_are_channel_planes(tmp_path):
    """CIFAR rows hold 1024 red, then 1024 green, then 1024 blue values."""
    folder = write_cifar10(tmp_path)
    data = np.zeros((20, 3072), np.uint8)
    data[:, 1024:2048] = 255  # pure green
    for i in range(1, 6):
        with (folder / f"data_batch_{i}").open("wb") as handle:
            pickle.dump({"data": data, "labels": list(range(10)) * 2}, handle)
    splits = splits_of(dataset="cifar10", root=str(tmp_path), normalize=False)
    assert (splits.x["train"][:, 1] == 255).all() and (splits.x["train"][:, [0, 2]] == 0).all()


def test_cifar100_fine_labels(tmp_path):
    write_cifar100(tmp_path, n_train=400, n_test=100)
    splits = splits_of(dataset="cifar100", root=str(tmp_path))
    assert splits.classes == 100 and splits.class_names[99] == "class99"
    assert sizes(splits)["test"] == 100 and sizes(splits)["val"] == 100  # at least one per class


def test_svhn_mat_files_map_label_10_to_0(tmp_path):
    write_svhn(tmp_path)
    splits = splits_of(dataset="svhn", root=str(tmp_path))
    assert splits.input_shape == (3, 32, 32) and splits.classes == 10
    assert set(np.unique(splits.y["test"])) == set(range(10))


def test_image_folder_flat_layout_resized(tmp_path):
    write_png_folder(tmp_path / "pics", per_class=10, size=(12, 10))
    splits = splits_of(dataset="image_folder", path=str(tmp_path / "pics"), image_size=16)
    assert splits.input_shape == (3, 16, 16) and splits.class_names == ["cat", "dog", "fox"]
    assert sizes(splits) == {"train": 21, "val": 3, "test": 6}  # test carved (20%), then val (10%)


def test_image_folder_uses_its_val_and_test_folders(tmp_path):
    write_png_folder(tmp_path / "pics" / "train", per_class=6, seed=1)
    write_png_folder(tmp_path / "pics" / "val", per_class=2, seed=2)
    write_png_folder(tmp_path / "pics" / "test", per_class=3, seed=3)
    splits = splits_of(dataset="image_folder", path=str(tmp_path / "pics"), grayscale=True)
    assert splits.input_shape == (1, 10, 12)  # (C, H, W) of 12x10 images, unresized
    assert sizes(splits) == {"train": 18, "val": 6, "test": 9}  # nothing carved: the folders are the splits
    assert splits.split_record["val_source"] == "folder" and "val_indices" not in splits.split_record


def test_an_image_folder_of_grayscale_pngs_loads_as_one_channel(tmp_path):
    write_png_folder(tmp_path / "pics" / "train", per_class=6, mode="L")
    write_png_folder(tmp_path / "pics" / "test", per_class=2, mode="LA")  # grayscale with alpha: one channel too
    splits = splits_of(dataset="image_folder", path=str(tmp_path / "pics"))
    assert splits.input_shape == (1, 10, 12) and splits.x["test"].shape[1] == 1
    assert splits.split_record["channels"] == {"count": 1, "why": "data.channels auto: all 24 images are "
                                                                  "single-channel"}
    rgb = splits_of(dataset="image_folder", path=str(tmp_path / "pics"), channels=3)
    assert rgb.input_shape == (3, 10, 12) and rgb.split_record["channels"]["why"] == "data.channels: 3"
    assert (rgb.x["train"][:, 0] == rgb.x["train"][:, 2]).all()  # the grey repeated, as before


def test_one_colour_image_anywhere_makes_an_auto_folder_rgb(tmp_path):
    write_png_folder(tmp_path / "pics" / "train", per_class=6, mode="L")
    write_png_folder(tmp_path / "pics" / "test", per_class=2, mode="L")
    write_png_folder(tmp_path / "colour", classes=("dog",), per_class=1)
    (tmp_path / "colour" / "dog" / "000.png").rename(tmp_path / "pics" / "test" / "dog" / "zz.png")
    splits = splits_of(dataset="image_folder", path=str(tmp_path / "pics"), cache="stream", workers=0)
    assert splits.input_shape == (3, 10, 12)
    assert splits.split_record["channels"] == {"count": 3, "why": "data.channels auto: test/dog/zz.png is in colour"}
    gray = splits_of(dataset="image_folder", path=str(tmp_path / "pics"), grayscale=True)
    assert gray.input_shape == (1, 10, 12) and gray.split_record["channels"]["why"] == "data.grayscale: true"


def test_the_channel_choice_reads_headers_without_decoding(tmp_path, monkeypatch):
    from PIL import ImageFile

    from dlx.train.data import formats
    write_png_folder(tmp_path, classes=("a",), per_class=2, mode="L")
    write_png_folder(tmp_path, classes=("b",), per_class=2, mode="P")  # a palette: colour, whatever its entries
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
    assert formats.single_channel(tmp_path / "a" / "000.png") and not formats.single_channel(tmp_path / "b" / "000.png")


@pytest.mark.parametrize("fields, message", [({"grayscale": True, "channels": 3}, "but channels is 3"),
                                             ({"channels": True}, "not true; for one channel write 1"),
                                             ({"channels": 2}, "'auto', 1 or 3")])
def test_contradictory_or_unknown_channel_settings_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        DataSpec(dataset="image_folder", path="pics", **fields)


def test_npz_channels_last_is_transposed(tmp_path):
    write_npz(tmp_path / "d.npz", shape=(8, 6, 3))
    splits = splits_of(dataset="npz", path=str(tmp_path / "d.npz"))
    assert splits.input_shape == (3, 8, 6) and sizes(splits) == {"train": 54, "val": 6, "test": 20}


def test_npz_flat_features_without_test_set(tmp_path):
    x = np.random.default_rng(0).normal(size=(100, 5)).astype(np.float32)
    np.savez(tmp_path / "flat.npz", x_train=x, y_train=np.arange(100) % 4)
    splits = splits_of(dataset="npz", path=str(tmp_path / "flat.npz"))
    assert splits.input_shape == (5,) and splits.classes == 4 and splits.scale == 1.0
    assert sizes(splits) == {"train": 72, "val": 8, "test": 20}


def test_normalisation_statistics_come_from_the_training_split_only(tmp_path):
    x_train = np.zeros((40, 4, 4, 1), np.uint8)
    x_test = np.full((10, 4, 4, 1), 255, np.uint8)  # a very different test set must not move the statistics
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=np.arange(40) % 2, x_test=x_test, y_test=np.arange(10) % 2)
    splits = splits_of(dataset="npz", path=str(tmp_path / "d.npz"))
    assert splits.mean.tolist() == [0.0]


def test_stratified_split_keeps_class_proportions_and_is_reproducible():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    kept, held = stratified_split(labels, 0.1, seed=3)
    assert np.bincount(labels[held]).tolist() == [10, 5, 3, 2]
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(labels)
    again_kept, again_held = stratified_split(labels, 0.1, seed=3)
    assert held.tolist() == again_held.tolist()
    assert held.tolist() != stratified_split(labels, 0.1, seed=4)[1].tolist()


def test_split_record_holds_exact_indices(tmp_path):
    write_npz(tmp_path / "d.npz")
    record = splits_of(dataset="npz", path=str(tmp_path / "d.npz"), split_seed=5).split_record
    assert record["split_seed"] == 5 and len(record["val_indices"]) == 6 and record["sizes"]["val"] == 6


@pytest.mark.parametrize("dataset, folder, expected", [
    ("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
    ("cifar10", "cifar-10-batches-py", "data_batch_1"),
    ("cifar100", "cifar-100-python", "train, test, meta"),
    ("svhn", "", "train_32x32.mat, test_32x32.mat"),
])
def test_missing_files_name_the_folder_and_files(tmp_path, dataset, folder, expected):
    with pytest.raises(DlxError) as info:
        splits_of(dataset=dataset, root=str(tmp_path / "nowhere"), download=False)
    message = str(info.value)
    assert str((tmp_path / "nowhere" / folder).resolve()) in message and expected in message
    assert "download" in message


def test_cifar_batch_with_a_code_payload_is_refused_without_running_it(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with (folder / "data_batch_3").open("wb") as handle:
        pickle.dump({"data": Payload(), "labels": [0]}, handle)
    with pytest.raises(DlxError, match="refusing to load 'posix.system'"):
        splits_of(dataset="cifar10", root=str(tmp_path))
    assert not marker.exists()


def test_cifar_pickle_protocol_5_loads(tmp_path):
    folder = write_cifar10(tmp_path)
    x = np.zeros((20, 3072), np.uint8)
    with (folder / "data_batch_1").open("wb") as handle:
        pickle.dump({"data": x, "labels": list(range(10)) * 2}, handle, protocol=5)
    assert len(splits_of(dataset="cifar10", root=str(tmp_path)).y["train"]) == 90


@pytest.mark.parametrize("broken, message", [
    ({"data": np.zeros((5, 100), np.uint8), "labels": [0] * 5}, "must be uint8 of shape (N, 3072)"),
    ({"data": np.zeros((5, 3072), np.uint8), "labels": [0] * 4}, "one integer per image"),
    ({"pixels": 1}, "expected a dict with 'data' and 'labels'"),
])
def test_malformed_cifar_batches(tmp_path, broken, message):
    folder = write_cifar10(tmp_path)
    with (folder / "data_batch_2").open("wb") as handle:
        pickle.dump(broken, handle)
    with pytest.raises(DlxError) as info:
        splits_of(dataset="cifar10", root=str(tmp_path))
    assert message in str(info.value) and "data_batch_2" in str(info.value)


def test_truncated_idx_file(tmp_path):
    raw = write_mnist(tmp_path)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DlxError, match="truncated"):
        splits_of(dataset="mnist", root=str(tmp_path))


def test_idx_images_and_labels_must_match(tmp_path):
    write_mnist(tmp_path, train_labels=np.zeros(59, np.uint8))
    with pytest.raises(DlxError, match=r"one label per image.*\(60, 28, 28\).*\(59,\)"):
        splits_of(dataset="mnist", root=str(tmp_path))


def test_labels_out_of_range_for_the_classes(tmp_path):
    write_mnist(tmp_path, train_labels=(np.arange(60) % 12).astype(np.uint8))
    with pytest.raises(DlxError, match=r"labels range over 0\.\.11, but the dataset has 10 classes"):
        splits_of(dataset="mnist", root=str(tmp_path))


def test_svhn_labels_out_of_range(tmp_path):
    write_svhn(tmp_path, labels=np.full(60, 11, np.uint8))
    with pytest.raises(DlxError, match=r"0\.\.9"):
        splits_of(dataset="svhn", root=str(tmp_path))


def test_image_folder_with_no_images(tmp_path):
    (tmp_path / "pics" / "cat").mkdir(parents=True)
    (tmp_path / "pics" / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(DlxError, match="no images found in class sub-folders"):
        splits_of(dataset="image_folder", path=str(tmp_path / "pics"))


def test_image_folder_with_an_empty_test_folder(tmp_path):
    write_png_folder(tmp_path / "pics" / "train")
    (tmp_path / "pics" / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DlxError, match="no images found in the class sub-folders of .*test"):
        splits_of(dataset="image_folder", path=str(tmp_path / "pics"))


def test_image_folder_val_without_train(tmp_path):
    write_png_folder(tmp_path / "pics" / "val")
    with pytest.raises(DlxError, match="no train/ folder"):
        splits_of(dataset="image_folder", path=str(tmp_path / "pics"))


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": None}, "the .npz lacks x_train; it holds y_train, x_test, y_test"),
    ({"y_train": np.zeros(59, np.int64)}, "x_train has 60 samples but y_train has 59"),
    ({"y_test": None}, "only one of x_test/y_test"),
    ({"y_train": np.eye(3)[np.arange(60) % 3]}, "not one-hot"),
    ({"y_train": -np.ones(60, np.int64)}, "smallest -1"),
    ({"x_test": np.zeros((20, 4, 4, 1), np.uint8)}, "x_test samples have shape"),
])
def test_bad_npz(tmp_path, arrays, message):
    write_npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DlxError) as info:
        splits_of(dataset="npz", path=str(tmp_path / "d.npz"))
    assert message in str(info.value) and "d.npz" in str(info.value)


def test_image_size_must_be_positive(tmp_path):
    write_png_folder(tmp_path / "pics")
    with pytest.raises(ValidationError, match="greater than 0"):  # the spec itself refuses it
        splits_of(dataset="image_folder", path=str(tmp_path / "pics"), image_size=0)


def test_digits_read_from_sklearns_file_match_its_loader():
    """dlx reads the bundled CSV without importing sklearn (a second per process); it must be the same data."""
    from sklearn.datasets import load_digits as sk_digits
    from dlx.train.data.sources import load_digits
    raw, reference = load_digits(DataSpec(dataset="digits")), sk_digits()
    assert raw.x_train.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(raw.x_train[:, 0], (reference.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(raw.y_train, reference.target)
