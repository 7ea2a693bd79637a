"""A decompression bomb (a small PNG that decodes to gigabytes) is refused with exit 2 naming the file, in
`dlx predict` and in image-folder training, never a traceback (issue 21)."""
from __future__ import annotations

import pytest

from tests.conftest import assert_user_error, run_dlx
from tests.train.dataset_files import write_png_folder


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    from PIL import Image
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(path)  # 400 M pixels in a few KB: over twice PIL's MAX_IMAGE_PIXELS
    assert path.stat().st_size < 1_000_000
    return path


def test_predict_refuses_a_decompression_bomb(bomb, tmp_path):
    folder = write_png_folder(tmp_path / "data", per_class=4, size=(8, 8))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: b\ndata: {{dataset: image_folder, path: '{folder}'}}\n"
                    "model: {layers: [Flatten, {Dense: {units: classes}}]}\ntrain: {epochs: 1}\ndevice: cpu\n")
    run_dlx("train", spec, "--out", tmp_path / "run", "--quiet", check=0)
    assert_user_error(run_dlx("predict", tmp_path / "run", bomb), "bomb.png", "decompression bomb")


def test_training_refuses_a_decompression_bomb_in_an_image_folder(bomb, tmp_path):
    folder = write_png_folder(tmp_path / "data", per_class=4, size=(8, 8))
    (folder / "cat" / "zz.png").write_bytes(bomb.read_bytes())
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: b\ndata: {{dataset: image_folder, path: '{folder}', image_size: 8}}\n"
                    "model: {layers: [Flatten, {Dense: {units: classes}}]}\ntrain: {epochs: 1}\ndevice: cpu\n")
    assert_user_error(run_dlx("train", spec, "--out", tmp_path / "run"), "zz.png", "decompression bomb")
