"""What can't be exported is refused with a DlxError that names why and what to try."""
from __future__ import annotations

import pytest

from dlx.core.errors import DlxError
from dlx.train import InputContract


def test_flat_features_are_refused():
    from dlx.export.graph import byte_factor
    with pytest.raises(DlxError, match="only image models can be exported.*64 features"):
        byte_factor(InputContract((64,), "float32", 0.0, 16.0, 1.0))


def test_images_in_another_unit_are_refused():
    from dlx.export.graph import byte_factor
    with pytest.raises(DlxError, match="trained on float32 values in 0–16.*not on image pixels"):
        byte_factor(InputContract((1, 8, 8), "float32", 0.0, 16.0, 1.0))


@pytest.mark.parametrize("contract, factor", [(InputContract((1, 8, 8), "float32", 0.0, 1.0, 1.0), 1 / 255),
                                              (InputContract((3, 8, 8), "uint8", 0.0, 255.0, 1 / 255), 1.0),
                                              (InputContract((1, 8, 8), None, None, None, 1 / 255), 1.0)])
def test_pixels_map_onto_training_units(contract, factor):
    from dlx.export.graph import byte_factor
    assert byte_factor(contract) == pytest.approx(factor)


def test_an_exporter_failure_names_the_layers_and_other_formats(tmp_path):
    import torch

    from dlx.export.formats import write

    class ToNumpy(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.numpy() * 2)

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.networks = torch.nn.ModuleList([torch.nn.Sequential(ToNumpy())])

        def forward(self, images):
            return self.networks[0](images)

    with pytest.raises(DlxError, match=r"the pt2 exporter could not write this model: .*layers ToNumpy\). Try "
                                       r"another format \(onnx, torchscript\)"):
        write("pt2", Graph(), torch.rand(2, 8, 8, 1), tmp_path / "model.pt2")


def test_a_model_that_fails_verification_is_not_left_behind(runs, tmp_path, monkeypatch):
    """The exported file is removed when its runtime disagrees with PyTorch, so no unverified model looks usable."""
    import numpy as np

    from dlx.export import export_model
    from dlx.export import formats
    monkeypatch.setattr(formats, "run", lambda fmt, path, images, batch_size=512: np.full((len(images), 10), 0.1))
    out = tmp_path / "onnx"
    with pytest.raises(DlxError, match="disagrees with PyTorch"):
        export_model(next(iter(runs.values())), "onnx", out)
    assert not (out / "model.onnx").exists() and not (out / "export.json").exists()


def test_a_failed_export_leaves_no_folder_it_made(runs, tmp_path, monkeypatch):
    """`dlx export` that fails removes the folders it made: the default RUN/export/onnx, and --out's."""
    import shutil

    import numpy as np
    from typer.testing import CliRunner

    from dlx.cli.main import app
    from dlx.export import formats
    from tests.conftest import assert_user_error
    monkeypatch.setattr(formats, "run", lambda fmt, path, images, batch_size=512: np.full((len(images), 10), 0.1))
    run = shutil.copytree(runs["cnn"], tmp_path / "run")
    for out in ([], ["--out", str(tmp_path / "new" / "onnx")]):
        assert_user_error(CliRunner().invoke(app, ["export", str(run), *out]), "disagrees with PyTorch")
    assert not (run / "export").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
