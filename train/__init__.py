"""Training: `train(spec)` fills a run folder (config, metrics, split, summary, best/last checkpoints);
`evaluate_run` scores it again; `RunFolder` names its files and reads them back, validated.

Other packages import these names from here. They load on first use (PEP 562 `__getattr__`), so that reading a
run folder's JSON (`dlx runs`) does not pay for importing torch."""
from __future__ import annotations

from dlx.core.lazy import lazy_attributes

_WHERE = {
    "dlx.train.run": ["RunAlreadyFinished", "RunResult", "TrainingInterrupted", "train"],
    "dlx.train.rundir": ["METRIC_COLUMNS", "TIMING_COLUMNS", "RunFolder", "ensure_writable", "new_run_dir",
                     "read_metrics", "read_split", "read_summary", "write_summary"],
    "dlx.train.evaluate": ["SPLITS", "evaluate_run", "load_run_model"],
    "dlx.train.outdir": ["MARKER", "check", "claim", "marker_text", "write_marker"],
    "dlx.train.checkpoint": ["load_checkpoint"],
    "dlx.train.loop": ["NonFiniteLoss", "predict_logits"],
    "dlx.train.device": ["pick_device"],
    "dlx.train.inputs": ["InputContract", "conform"],
    "dlx.train.data": ["check_split_compatible", "dataset_info", "load_splits"],
    "dlx.train.data.tensors": ["TensorData", "make_augment"],
    "dlx.train.data.formats": ["IMAGE_SUFFIXES", "open_image", "read_npz"],
    "dlx.train.data.sources": ["channels_first"],
    "dlx.train.prediction_file": ["collect_predictions", "write_prediction_chunks", "write_predictions_csv"],
}
__getattr__, __all__ = lazy_attributes(__name__, _WHERE)
