"""Issue 34, items 3, 8, 9 and 10 (data): hostile dataset files. A FIFO or a device named x_train.npy, a label of
10⁹, NaN in any split, complex or timedelta values, arrays of the wrong rank, an empty or cut-short file, a
damaged PNG and an .npy truncated while a run streams it: each is refused with exit code 2 and one paragraph that
names the file (and the array) and says what was found and what was expected, quickly, never a traceback, a hang
or a silently wrong metric."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dlx.archs.check import load_spec
from dlx.core.errors import DlxError
from dlx.train.run import train
from tests.conftest import assert_user_error, run_dlx
from tests.reliability.test_bounds import run_limited
from tests.train.dataset_files import images, write_mnist, write_npz, write_png_folder


def dlx(*args):
    """`dlx ARGS` in this process, through the real Typer app and its error boundary."""
    from typer.testing import CliRunner
    from dlx.cli.main import app
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


FLAT = "model: {layers: [Flatten, {Dense: {units: classes}}]}"


def spec_file(tmp_path, data: str, model: str = FLAT) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: d\nseed: 0\ndata: {data}\n{model}\ntrain: {{epochs: 1, batch_size: 16}}\n"
                    "device: {type: cpu, threads: 1}\n")
    return str(path)


def array_folder(folder: Path, **replace) -> Path:
    """x_train.npy and y_train.npy (60 samples of 8×8, 3 classes), with `replace`d arrays (None: left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = images(60, (8, 8, 1), 3, seed=1)
    for name, array in {"x_train": x, "y_train": y.astype(np.int64), **replace}.items():
        if array is not None:
            np.save(folder / f"{name}.npy", array)
    return folder


def npz_spec(tmp_path, path, **data) -> str:
    extra = "".join(f", {key}: {value}" for key, value in data.items())
    return spec_file(tmp_path, f"{{dataset: npz, path: '{path}'{extra}}}")


def test_a_fifo_named_x_train_npy_is_refused_without_waiting(tmp_path):
    folder = array_folder(tmp_path / "arrays", x_train=None)
    os.mkfifo(folder / "x_train.npy")
    result = run_dlx("train", npz_spec(tmp_path, folder), "--out", tmp_path / "run", timeout=60)
    assert_user_error(result, str(folder / "x_train.npy"), "not a regular file", "a FIFO")


def test_dev_zero_as_x_train_npy_is_called_a_device_not_pickled_data(tmp_path):
    folder = array_folder(tmp_path / "arrays", x_train=None)
    (folder / "x_train.npy").symlink_to("/dev/zero")
    result = run_limited("train", npz_spec(tmp_path, folder), "--out", tmp_path / "run", timeout=60)
    text = assert_user_error(result, str(folder / "x_train.npy"), "not a regular file", "a character device")
    assert "pickle" not in text


def test_a_label_of_a_billion_is_refused_naming_it_and_the_distinct_labels(tmp_path):
    labels = np.arange(60) % 3
    labels[7] = 10**9
    folder = array_folder(tmp_path / "arrays", y_train=labels)
    result = run_limited("train", npz_spec(tmp_path, folder), "--out", tmp_path / "run", timeout=60)
    assert_user_error(result, str(folder), "y_train holds the label 1000000000", "4 distinct labels",
                      "at most 100000 classes")


@pytest.mark.parametrize("split", ["x_train", "x_test"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("stored", ["npz", "npy folder"])
def test_nan_or_inf_in_any_split_is_refused_with_the_count(split, value, stored, tmp_path):
    x_train, y_train = images(60, (8, 8, 1), 3, seed=1)
    x_test, y_test = images(20, (8, 8, 1), 3, seed=2)
    arrays = {"x_train": x_train.astype(np.float32), "y_train": y_train.astype(np.int64),
              "x_test": x_test.astype(np.float32), "y_test": y_test.astype(np.int64)}
    arrays[split][[3, 5], 0, 1, 0] = value
    path = write_npz(tmp_path / "d.npz", **arrays) if stored == "npz" else array_folder(tmp_path / "d", **arrays)
    result = dlx("train", npz_spec(tmp_path, path), "--out", tmp_path / "run")
    total = len(arrays[split])
    assert_user_error(result, str(path), f"{split} holds NaN or inf in 2 of its {total} samples",
                      "the first is sample 3")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused before training


@pytest.mark.parametrize("dtype, found", [(np.complex64, "complex64"), (np.complex128, "complex128"),
                                          ("m8[s]", "timedelta64[s]"), ("M8[s]", "datetime64[s]")])
def test_values_that_are_not_real_numbers_are_refused(dtype, found, tmp_path):
    x, _ = images(60, (8, 8, 1), 3, seed=1)
    path = write_npz(tmp_path / "d.npz", x_train=x.astype(dtype), x_test=None, y_test=None)
    result = dlx("train", npz_spec(tmp_path, path), "--out", tmp_path / "run")
    assert_user_error(result, str(path), f"x_train holds {found} values", "real numbers")


@pytest.mark.parametrize("x_train, found", [(np.float32(3), "shape ()"), (np.zeros(60, np.float32), "shape (60,)"),
                                            (np.zeros((60, 2, 2, 2, 2), np.float32), "shape (60, 2, 2, 2, 2)")])
def test_an_array_of_the_wrong_rank_is_reported_with_its_shape(x_train, found, tmp_path):
    path = write_npz(tmp_path / "d.npz", x_train=x_train, x_test=None, y_test=None)
    text = assert_user_error(dlx("train", npz_spec(tmp_path, path), "--out", tmp_path / "run"), str(path),
                             f"'x_train' has {found}", "expected (N, features), (N, H, W), (N, H, W, C) or (N, C, H, W)")
    assert "0 samples" not in text


@pytest.mark.parametrize("x_train, y_train, found", [
    (np.zeros((0, 4), np.float32), np.zeros(0, np.int64), "the training set has no samples"),
    (np.zeros((60, 0), np.float32), np.arange(60) % 3, "x_train samples hold no values (shape (60, 0))")])
def test_an_array_without_samples_or_values_is_refused(x_train, y_train, found, tmp_path):
    path = write_npz(tmp_path / "d.npz", x_train=x_train, y_train=y_train, x_test=None, y_test=None)
    assert_user_error(dlx("train", npz_spec(tmp_path, path), "--out", tmp_path / "run"), str(path), found)


def test_an_empty_npz_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(b"")
    assert_user_error(dlx("train", npz_spec(tmp_path, path), "--out", tmp_path / "run"), str(path),
                      "the file is empty (0 bytes)")


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_an_npy_cut_short_is_refused_with_the_sizes(cache, tmp_path):
    folder = array_folder(tmp_path / "arrays")
    file = folder / "x_train.npy"
    full = file.stat().st_size
    os.truncate(file, full - 100)
    result = dlx("train", npz_spec(tmp_path, folder, cache=cache, workers=1), "--out", tmp_path / "run")
    assert_user_error(result, str(file), f"holds {full - 100} bytes, but its header promises {full}",
                      "(60, 8, 8, 1) uint8")


def _broken_png(path: Path) -> Path:
    """A PNG whose second IDAT chunk has a damaged type: PIL raises SyntaxError while decoding."""
    from PIL import Image
    pixels = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    data = bytearray(path.read_bytes())
    data[data.find(b"IDAT", data.find(b"IDAT") + 4)] = 0
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_a_png_with_a_broken_chunk_is_named_as_damaged(cache, tmp_path):
    folder = write_png_folder(tmp_path / "images", per_class=4, size=(8, 8))
    broken = _broken_png(folder / "dog" / "zz.png")
    spec = spec_file(tmp_path, f"{{dataset: image_folder, path: '{folder}', image_size: 8, cache: {cache}, "
                               "workers: 1}")
    result = run_dlx("train", spec, "--out", tmp_path / "run", "--quiet", timeout=120)
    assert_user_error(result, str(broken), "the image is damaged", "broken PNG file")


def test_an_npy_truncated_while_streaming_is_reported_as_changed(tmp_path):
    folder = array_folder(tmp_path / "arrays")
    file = folder / "x_train.npy"
    spec = load_spec(npz_spec(tmp_path, folder, cache="stream", workers=1), ["train.epochs=3"])

    def truncate_after_first(epoch, row):
        if epoch == 1:
            os.truncate(file, file.stat().st_size // 2)

    with pytest.raises(DlxError) as raised:
        train(spec, out=tmp_path / "run", on_epoch=truncate_after_first)
    assert str(file) in str(raised.value) and "changed size during training" in raised.value.message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs"] == 1


def test_a_gzip_bomb_as_an_idx_file_is_read_no_further_than_its_header_promises(tmp_path):
    """A 5 MB .gz that expands to 5 GiB (80 gzip members of 64 MiB of zeros) after a valid 60×28×28 header."""
    import gzip
    raw = write_mnist(tmp_path / "data", gz=True)
    images_file = raw / "train-images-idx3-ubyte.gz"
    header = gzip.decompress(images_file.read_bytes())[:16]
    zeros = gzip.compress(bytes(64 << 20), compresslevel=1)
    images_file.write_bytes(gzip.compress(header) + zeros * 80)
    spec = spec_file(tmp_path, f"{{dataset: mnist, root: '{tmp_path / 'data'}'}}")
    result = run_limited("train", spec, "--out", tmp_path / "run", timeout=60)
    assert_user_error(result, str(images_file), "holds more bytes but its header promises 47056")


PROPERTY = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None,
                max_examples=150)
DESCRIPTORS = ["<f4", "<f2", ">f8", "|u1", "<i8", "|b1", "<c8", "<m8[s]", "|O", "|V8", "<U3", "[('a', '<f4')]"]


def _npy_bytes(x: np.ndarray) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, x)
    return buffer.getvalue()


def _mutated_header(shape: tuple, descr: str, fortran: bool, body: int) -> bytes:
    """An .npy header saying anything about shape and dtype, followed by `body` zero bytes."""
    text = repr({"descr": descr if not descr.startswith("[") else eval(descr), "fortran_order": fortran,
                 "shape": shape}).encode()
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + bytes(body)


VALID_X = _npy_bytes(images(60, (8, 8, 1), 3, seed=1)[0].astype(np.float32))
NPY_GARBAGE = st.one_of(
    st.binary(max_size=300),
    st.integers(0, len(VALID_X) - 1).map(lambda n: VALID_X[:n]),
    st.builds(_mutated_header, st.lists(st.integers(-3, 70), max_size=5).map(tuple), st.sampled_from(DESCRIPTORS),
              st.booleans(), st.integers(0, 20000)))


def _garbage_source(root: Path, which: str, content: bytes, container: str) -> Path:
    """The 60-sample arrays with `which` replaced by `content`: as .npy files, or as members of an .npz."""
    import zipfile
    folder = array_folder(root / "arrays")
    (folder / f"{which}.npy").write_bytes(content)
    if container == "npy folder":
        return folder
    method = zipfile.ZIP_STORED if container == "npz stored" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(root / "d.npz", "w", method) as archive:
        for file in sorted(folder.glob("*.npy")):
            archive.writestr(file.name, file.read_bytes())
    return root / "d.npz"


@settings(**PROPERTY)
@given(content=NPY_GARBAGE, which=st.sampled_from(["x_train", "y_train"]),
       container=st.sampled_from(["npy folder", "npz stored", "npz compressed"]))
def test_garbage_arrays_load_or_raise_one_dlx_error(content, which, container, tmp_path_factory):
    from dlx.experiment.schema import DataSpec
    from dlx.train.data.sources import MAX_CLASSES, load_npz
    path = _garbage_source(tmp_path_factory.mktemp("garbage"), which, content, container)
    try:
        raw = load_npz(DataSpec(dataset="npz", path=str(path)))
    except DlxError as exc:
        assert str(path) in str(exc) and exc.message
        event("refused")
        return
    event("loaded")
    assert len(raw.class_names) <= MAX_CLASSES and raw.x_train.dtype.kind in "biuf"
    assert np.isfinite(np.asarray(raw.x_train, np.float64)).all()
