"""summary.json says how a run computed: its device, precision (bf16 autocast or fp32) and memory layout, as
the device section of the spec resolved them on this machine."""
from __future__ import annotations

import json

import pytest
from dataset_files import TINY_CNN, write_npz

from dlx.archs.check import load_spec
from dlx.train.run import train


@pytest.mark.parametrize("device, precision, channels_last", [
    ("{type: cpu, threads: 1}", "fp32", True),  # auto on the CPU: fp32, channels_last
    ("{type: cpu, threads: 1, precision: bf16, channels_last: false}", "bf16", False),
])
def test_the_summary_records_device_precision_and_layout(tmp_path, device, precision, channels_last):
    npz = write_npz(tmp_path / "d.npz", n_train=60, n_test=21)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: tiny\ndata: {{dataset: npz, path: {npz}}}\n{TINY_CNN}\ntrain: {{epochs: 1}}\n"
                    f"device: {device}\n")
    run = train(load_spec(spec), out=tmp_path / "run").run_dir
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["device"], summary["precision"], summary["channels_last"]) == ("cpu", precision, channels_last)
