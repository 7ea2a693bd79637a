"""`dlx predict MODEL.onnx` trusts nothing in the export folder: --out never replaces a link, device or pipe;
a model with control flow is refused and inference is bounded in time and ends on Ctrl-C; outputs that are no
class probabilities, images of more than 8 bits and damaged export.json fields are refused, each with one
paragraph and exit code 2."""
from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from dlx.cli.main import app
from tests import forked
from tests.conftest import assert_user_error, run_dlx
from tests.reliability import onnx_models
from tests.reliability.conftest import DIGITS
from tests.reliability.test_hostile_input import EXTREMES, nested, paths_of, run_property


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run folder, its ONNX export folder, a folder of three 8×8 digit images), made once."""
    from dlx.archs.check import load_spec
    from dlx.export import export_model
    from dlx.train.run import train
    root = tmp_path_factory.mktemp("untrusted")
    spec = load_spec(DIGITS, ["train.epochs=1", "device.type=cpu", "output.save_last=false", "model.vars.width=4",
                              "name=tiny", "seed=0"])
    run = train(spec, out=root / "run", quiet=True).run_dir
    export_model(run, "onnx", root / "export")
    images = root / "images"
    images.mkdir()
    from sklearn.datasets import load_digits
    for i, pixels in enumerate(load_digits().images[:3]):
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(images / f"{i}.png")
    return run, root / "export", images


@pytest.fixture
def export_copy(exported, tmp_path):
    return shutil.copytree(exported[1], tmp_path / "export")


# ---- --out is never a link, a device or a pipe ----

def _make(kind: str, path: Path) -> None:
    if kind == "symlink":
        (path.parent / "elsewhere.csv").write_text("the user's own file\n")
        path.symlink_to(path.parent / "elsewhere.csv")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 7))  # /dev/full's numbers, in tmp_path
    else:
        path.mkdir()


@pytest.mark.parametrize("kind, what", [("symlink", "symbolic link"), ("fifo", "FIFO"), ("device", "device"),
                                        ("folder", "folder")])
def test_predict_out_never_replaces_what_is_not_a_regular_file(kind, what, exported, tmp_path):
    if kind == "device" and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    target = tmp_path / "predictions.csv"
    _make(kind, target)
    before = os.lstat(target)
    result = run_dlx("predict", exported[1] / "model.onnx", exported[2], "--out", target, timeout=120)
    assert_user_error(result, str(target), what, "left it unchanged")
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    if kind == "symlink":
        assert (tmp_path / "elsewhere.csv").read_text() == "the user's own file\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---- control flow, time, Ctrl-C ----

def test_a_model_with_a_loop_is_refused_at_once(export_copy, exported, tmp_path):
    onnx_models.endless_loop(export_copy)
    started = time.monotonic()
    code, output = forked.run(["predict", export_copy / "model.onnx", exported[2]], tmp_path / "log", timeout=60)
    assert code == 2 and "Traceback" not in output, output
    assert "control flow (Loop)" in output and "never writes" in output, output
    assert time.monotonic() - started < 60


def test_inference_that_runs_too_long_is_stopped_with_a_clear_error(export_copy, exported, tmp_path):
    onnx_models.endless_loop(export_copy)
    process = forked.Dlx(["predict", export_copy / "model.onnx", exported[2]], tmp_path / "log",
                         env={"DLX_TEST_RUNNING": str(tmp_path / "running")},
                         patches={"dlx.export.runtime.check_graph": _announce(), "dlx.export.runtime.RUN_SECONDS": 2})
    code = process.wait(60)
    assert code == 2 and "did not finish 3 images within 2 s" in process.output(), process.output()
    assert "Traceback" not in process.output()


def _announce():
    from tests.reliability.export_hooks import announce_inference
    return announce_inference


def test_ctrl_c_ends_a_model_that_is_running(export_copy, exported, tmp_path):
    onnx_models.endless_loop(export_copy)
    running = tmp_path / "running"
    process = forked.Dlx(["predict", export_copy / "model.onnx", exported[2]], tmp_path / "log",
                         env={"DLX_TEST_RUNNING": str(running)},
                         patches={"dlx.export.runtime.check_graph": _announce()})
    deadline = time.monotonic() + 60
    while not running.exists() and process.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.exists(), process.output()
    time.sleep(1.0)  # well inside onnxruntime's Loop by now
    os.kill(process.pid, signal.SIGINT)
    stopped = time.monotonic()
    code = process.wait(30)
    assert code == 130 and "interrupted" in process.output(), process.output()
    assert time.monotonic() - stopped < 15


# ---- outputs that are no probabilities; images of more than 8 bits ----

OUTPUTS = {"nan": np.full(10, np.nan), "negative": np.array([-0.5, 1.5] + [0.0] * 8),
           "wrong_count": np.full(7, 1 / 7), "not_summing_to_one": np.full(10, 0.5)}


@pytest.mark.parametrize("case", [*OUTPUTS, "scalar"])
def test_outputs_that_are_not_the_recorded_probabilities_are_refused(case, export_copy, exported):
    if case == "scalar":
        onnx_models.scalar(export_copy)
    else:
        onnx_models.per_image(OUTPUTS[case], export_copy)
    result = run_dlx("predict", export_copy / "model.onnx", exported[2], timeout=120)
    assert_user_error(result, str(export_copy / "model.onnx"), "not what export.json records", "3×10")


def test_a_16_bit_image_is_refused_as_predict_on_the_run_refuses_it(exported, tmp_path):
    run, export, _ = exported
    deep = tmp_path / "deep.png"
    Image.fromarray((np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)).save(deep)
    assert Image.open(deep).mode.startswith("I;16")
    on_run = assert_user_error(run_dlx("predict", run, deep, timeout=120), "more than 8 bits")
    on_onnx = assert_user_error(run_dlx("predict", export / "model.onnx", deep, timeout=120), "more than 8 bits")
    assert on_run.split(":", 2)[-1] == on_onnx.split(":", 2)[-1]  # the same words after the file name


# ---- export.json: the model it records, bounded reading, each field checked ----

def test_a_model_that_is_not_the_recorded_one_is_refused(export_copy, exported):
    document = json.loads((export_copy / "export.json").read_text())
    document["model_sha256"] = "0" * 64
    (export_copy / "export.json").write_text(json.dumps(document))
    result = run_dlx("predict", export_copy / "model.onnx", exported[2], timeout=120)
    assert_user_error(result, "not the model export.json beside it records", "Export the model again")


def test_sides_recorded_as_text_are_refused_at_the_key(export_copy, exported):
    """Recorded as "8", the sides never equalled an image's 8: the message read "takes 8×8 images; this one is 8×8"."""
    document = json.loads((export_copy / "export.json").read_text())
    document["input"]["shape"] = ["batch", "8", "8", 1]
    (export_copy / "export.json").write_text(json.dumps(document))
    result = run_dlx("predict", export_copy / "model.onnx", exported[2], timeout=120)
    assert_user_error(result, "export.json", "input.shape", "'8'")
    assert "this one is" not in result.stderr


def test_export_json_as_a_link_to_dev_zero_is_refused(export_copy, exported):
    (export_copy / "export.json").unlink()
    (export_copy / "export.json").symlink_to("/dev/zero")
    started = time.monotonic()
    result = run_dlx("predict", export_copy / "model.onnx", exported[2], timeout=120)
    assert_user_error(result, "export.json", "not a regular file")
    assert time.monotonic() - started < 60


@st.composite
def damaged_record(draw, base: dict):
    """export.json text: one field dropped, retyped, nested deep or made huge; or the text cut, stray bytes, a
    deep or huge document."""
    kind = draw(st.sampled_from(["drop", "retype", "retype", "nest", "huge", "cut", "bytes", "deep"]))
    data = copy.deepcopy(base)
    if kind in ("drop", "retype", "nest", "huge"):
        path = draw(st.sampled_from(paths_of(data)))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if kind == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = {"retype": lambda: draw(st.sampled_from(EXTREMES)),
                                "nest": lambda: nested(draw(st.sampled_from([5, 99, 101, 500]))),
                                "huge": lambda: ["x"] * draw(st.sampled_from([10**3, 2 * 10**5]))}[kind]()
        return json.dumps(data).encode()
    text = json.dumps(base).encode()
    if kind == "cut":
        return text[: draw(st.integers(0, len(text) - 1))]
    if kind == "bytes":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    return b"[" * draw(st.sampled_from([200, 10**5])) + b"]" * 3


@pytest.mark.slow
def test_damaged_export_json_predicts_or_is_refused_cleanly(exported, tmp_path_factory):
    """Through the CLI: exit 0 with a prediction for every image, or exit 2 with one paragraph, quickly."""
    base = json.loads((exported[1] / "export.json").read_text())

    def check(raw: bytes) -> str:
        folder = shutil.copytree(exported[1], tmp_path_factory.mktemp("record") / "export")
        (folder / "export.json").write_bytes(raw)
        started = time.monotonic()
        result = CliRunner().invoke(app, ["predict", str(folder / "model.onnx"), str(exported[2]), "--json"])
        assert time.monotonic() - started < 30
        if result.exit_code == 0:
            assert len(json.loads(result.stdout)["predictions"]) == 3
            return "valid"
        assert_user_error(result)
        return "error"
    outcomes = run_property(damaged_record(base), check, examples=80)
    assert sum(outcomes.values()) >= 70 and outcomes["error"] >= 40 and outcomes["valid"] >= 5, outcomes
