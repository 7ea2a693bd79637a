"""`dlx predict` holds its input to the contract recorded in the checkpoint (dtype, value range, channels,
height×width): each wrong-input case is converted with a one-line notice or refused with exit code 2, never
predicted from silently. Two tiny digits runs, trained once for this module through the real CLI: the shipped
digits spec (float32 values in 0–1, 1 channel) and the same digits as uint8 0–255 RGB in an .npz."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, assert_user_error, run_dlx

COMMON = ["--set", "train.epochs=2", "--set", "output.save_last=false", "--set", "device.type=cpu", "--quiet"]
N = 60


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits in their native form: float64 values 0–16, (N, 8, 8)."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return bunch.images[:N], bunch.target[:N]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from sklearn.datasets import load_digits
    root = tmp_path_factory.mktemp("predict_inputs")
    bunch = load_digits()
    rgb = np.repeat(np.round(bunch.images / 16 * 255).astype(np.uint8)[..., None], 3, axis=-1)
    np.savez(root / "digits_rgb.npz", x_train=rgb, y_train=bunch.target)
    config = ROOT / "configs" / "digits.yaml"
    run_dlx("train", config, *COMMON, "--out", root / "gray", check=0)
    run_dlx("train", config, *COMMON, "--set", "data.dataset=npz", "--set", f"data.path={root / 'digits_rgb.npz'}",
            "--out", root / "rgb", check=0)
    return {"gray": root / "gray", "rgb": root / "rgb"}


def predict(model, path, *extra):
    """(predictions' JSON, notice lines on stderr) of a successful `dlx predict`."""
    result = run_dlx("predict", model, path, "--json", *extra, check=0)
    notices = [line for line in result.stderr.splitlines() if line.startswith("notice:")]
    return json.loads(result.stdout), notices


def probabilities(result) -> np.ndarray:
    return np.array([row["probabilities"] for row in result["predictions"]])


def save_png(path, image: np.ndarray, size=None, mode="L"):
    from PIL import Image
    picture = Image.fromarray(image, mode="L")
    picture = picture.resize(size, Image.BILINEAR) if size else picture
    picture.convert(mode).save(path)


def byte_images(images: np.ndarray) -> np.ndarray:
    return np.round(images / 16 * 255).astype(np.uint8)


def test_native_0_16_floats_are_refused_and_correctly_scaled_inputs_agree(runs, digits, tmp_path):
    images, labels = digits
    np.savez(tmp_path / "native.npz", x=images)
    assert_user_error(run_dlx("predict", runs["gray"], tmp_path / "native.npz"),
                      "trained on float32 values in 0–1", "float64 values in 0–16", "divide by", "16")
    np.savez(tmp_path / "byte.npz", x=byte_images(images))
    np.savez(tmp_path / "unit.npz", x=byte_images(images).astype(np.float32) / 255)
    np.savez(tmp_path / "divided.npz", x=images / 16)
    byte, byte_notices = predict(runs["gray"], tmp_path / "byte.npz")
    unit, unit_notices = predict(runs["gray"], tmp_path / "unit.npz")
    divided, _ = predict(runs["gray"], tmp_path / "divided.npz")
    assert byte_notices == ["notice: uint8 0–255 input scaled to 0–1 (÷ 255): the model was trained on float32 0–1."]
    assert unit_notices == [] and unit["notices"] == [] and byte["notices"] == [byte_notices[0][len("notice: "):]]
    np.testing.assert_allclose(probabilities(byte), probabilities(unit), atol=1e-6)
    predicted = probabilities(byte).argmax(1)
    assert (probabilities(divided).argmax(1) == predicted).mean() >= 0.95
    assert (predicted == labels).mean() >= 0.6 and len(set(predicted)) >= 5  # not "1" for almost everything
    assert byte["input_contract"]["description"] == "float32 values in 0–1, 1 channel of 8×8"


def test_uint8_model_scales_0_1_floats_and_refuses_0_16(runs, digits, tmp_path):
    images, _ = digits
    rgb = np.repeat(byte_images(images)[..., None], 3, axis=-1)
    np.savez(tmp_path / "byte.npz", x=rgb)
    np.savez(tmp_path / "unit.npz", x=rgb.astype(np.float32) / 255)
    np.savez(tmp_path / "native.npz", x=np.repeat(images[..., None], 3, axis=-1))
    byte, byte_notices = predict(runs["rgb"], tmp_path / "byte.npz")
    unit, unit_notices = predict(runs["rgb"], tmp_path / "unit.npz")
    assert byte_notices == []
    assert unit_notices == ["notice: float input in 0–1 scaled to 0–255 (× 255): the model was trained on uint8 0–255."]
    np.testing.assert_allclose(probabilities(unit), probabilities(byte), atol=1e-5)
    assert_user_error(run_dlx("predict", runs["rgb"], tmp_path / "native.npz"),
                      "trained on uint8 values in 0–255, 3 channels of 8×8", "float64 values in 0–16")


def test_wrong_size_png_is_refused_without_resize_and_resized_with_it(runs, digits, tmp_path):
    from PIL import Image
    images, _ = digits
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    for i in range(20):
        save_png(big / f"{i:02d}.png", byte_images(images)[i], size=(28, 28))
        with Image.open(big / f"{i:02d}.png") as picture:  # the same images resized by PIL, for reference
            picture.resize((8, 8), Image.BILINEAR).save(small / f"{i:02d}.png")
    assert_user_error(run_dlx("predict", runs["gray"], big / "00.png"), "takes 8×8 images", "this input is 28×28",
                      "--resize")
    assert_user_error(run_dlx("predict", runs["gray"], big), "28×28", "--resize")
    resized, notices = predict(runs["gray"], big, "--resize")
    assert "notice: resized 28×28 → 8×8 (bilinear, --resize). (20 inputs)" in notices
    original, _ = predict(runs["gray"], small)
    assert (probabilities(resized).argmax(1) == probabilities(original).argmax(1)).mean() >= 0.9
    np.testing.assert_allclose(probabilities(resized), probabilities(original), atol=0.05)


def test_channels_are_converted_between_rgb_and_grayscale_or_refused(runs, digits, tmp_path):
    images, _ = digits
    first = byte_images(images)[0]
    save_png(tmp_path / "gray.png", first)
    save_png(tmp_path / "rgb.png", first, mode="RGB")
    gray, gray_notices = predict(runs["gray"], tmp_path / "gray.png")
    as_gray, rgb_notices = predict(runs["gray"], tmp_path / "rgb.png")
    assert gray_notices == [n for n in gray_notices if "uint8" in n]  # the usual ÷ 255, nothing about channels
    assert "notice: RGB image converted to grayscale: the model takes 1 channel." in rgb_notices
    np.testing.assert_allclose(probabilities(as_gray), probabilities(gray), atol=1e-6)
    rgb, _ = predict(runs["rgb"], tmp_path / "rgb.png")
    as_rgb, notices = predict(runs["rgb"], tmp_path / "gray.png")
    assert notices == ["notice: grayscale image converted to RGB: the model takes 3 channels."]
    np.testing.assert_allclose(probabilities(as_rgb), probabilities(rgb), atol=1e-6)
    np.savez(tmp_path / "two.npz", x=np.repeat(images[:, None] / 16, 2, axis=1))
    assert_user_error(run_dlx("predict", runs["gray"], tmp_path / "two.npz"), "1 channel of 8×8",
                      "this input has 2 channels")


def test_non_finite_input_is_refused(runs, digits, tmp_path):
    unit = digits[0] / 16
    unit[3, 4, 4] = np.nan
    np.savez(tmp_path / "nan.npz", x=unit)
    assert_user_error(run_dlx("predict", runs["gray"], tmp_path / "nan.npz"), "NaN or inf in 1 of its 60 samples",
                      "sample 3")
    unit[3, 4, 4] = np.inf
    np.savez(tmp_path / "inf.npz", x=unit)
    assert_user_error(run_dlx("predict", runs["gray"], tmp_path / "inf.npz"), "NaN or inf")


def test_a_checkpoint_without_the_record_predicts_as_before(runs, digits, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(runs["gray"], old)
    checkpoint = torch.load(old / "checkpoints" / "best.pt", weights_only=True)
    del checkpoint["data"]["input"]
    torch.save(checkpoint, old / "checkpoints" / "best.pt")
    byte = byte_images(digits[0])
    np.savez(tmp_path / "byte.npz", x=byte)
    np.savez(tmp_path / "unit.npz", x=byte.astype(np.float32) / 255)
    new, _ = predict(runs["gray"], tmp_path / "unit.npz")
    for name in ("byte", "unit"):
        before, notices = predict(old, tmp_path / f"{name}.npz")
        assert notices == []
        np.testing.assert_allclose(probabilities(before), probabilities(new), atol=1e-6)


def test_help_states_the_input_contract():
    for command, fragments in (("predict", ["dtype", "value range", "channels", "height×width", "--resize",
                                            "NaN", "exit code 2", "notice"]),
                               ("evaluate", ["dtype", "recorded value range", "channels", "height×width", "NaN",
                                             "exit code 2", "confusion matrix"])):
        text = " ".join(run_dlx(command, "--help", check=0).stdout.split())
        assert "Input contract" in text
        for fragment in fragments:
            assert fragment in text, (command, fragment, text)
