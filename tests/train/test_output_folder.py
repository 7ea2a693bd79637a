"""`dlx train` into an output folder that can't be written: exit code 2, one paragraph, and nothing in the way
(here a file) is touched."""
from __future__ import annotations

from dataset_files import write_npz

from tests.conftest import assert_user_error
from tests.train.conftest import dlx, spec_file


def test_output_folder_that_cannot_be_written(tmp_path):
    npz = write_npz(tmp_path / "d.npz")
    (tmp_path / "file.txt").write_text("keep me")
    spec = spec_file(tmp_path, f"{{dataset: npz, path: {npz}}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "file.txt" / "run"), "the output folder can't be written")
    assert (tmp_path / "file.txt").read_text() == "keep me"


def test_the_run_folder_line_keeps_a_long_path_whole_in_a_pipe_at_80_columns(tmp_path):
    from tests.conftest import run_dlx
    out = tmp_path / ("a-long-folder-name-" * 5) / "run"
    result = run_dlx("train", "configs/digits.yaml", "--out", out, "--set", "train.epochs=1", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    output = result.stderr + result.stdout
    assert any(line.startswith("run folder:") and str(out) in line for line in output.splitlines()), output
