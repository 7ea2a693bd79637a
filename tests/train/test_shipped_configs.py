"""The configs shipped in configs/: each documents itself, `dlx summary` and `dlx config` accept it, and the
showcase configs use the parts they promise."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.train.conftest import dlx

SHIPPED = ["mnist_xception.yaml", "cifar10_resnet.yaml", "fashion_mnist_cnn.yaml"]


@pytest.mark.parametrize("config", SHIPPED)
def test_shipped_config_passes_summary_and_config(config):
    path = ROOT / "configs" / config
    assert path.read_text().startswith("#")  # documents itself
    summary = dlx("summary", path, "--json")
    assert summary.exit_code == 0, summary.output
    assert json.loads(summary.stdout)["trainable_params"] > 0
    resolved = dlx("config", path)
    assert resolved.exit_code == 0 and "dataset:" in resolved.stdout


def test_shipped_configs_use_the_promised_parts():
    xception = (ROOT / "configs" / "mnist_xception.yaml").read_text()
    resnet = (ROOT / "configs" / "cifar10_resnet.yaml").read_text()
    assert "SeparableConv2D" in xception and "Residual" in xception
    assert "Residual" in resnet and "BatchNormalization" in resnet and "random_crop_padding: 4" in resnet
