"""Training: `train(spec)` fills a run folder (config, metrics, split, summary, best/last checkpoints);
`evaluate_run` scores it again; `RunFolder` names its files and reads them back, validated.

Other packages import these names from here. They load on first use (PEP 562 `__getattr__`), so that reading a
run folder's JSON (`dlx runs`) does not pay for importing torch."""
from __future__ import annotations

from core.lazy import lazy_attributes

_WHERE = {
    "train.run": ["RunAlreadyFinished", "RunResult", "TrainingInterrupted", "train"],
    "train.rundir": ["METRIC_COLUMNS", "TIMING_COLUMNS", "RunFolder", "ensure_writable", "new_run_dir",
                     "read_metrics", "read_split", "read_summary", "write_summary"],
    "train.evaluate": ["SPLITS", "evaluate_run", "load_run_model"],
    "train.outdir": ["MARKER", "check", "claim", "marker_text", "write_marker"],
    "train.checkpoint": ["load_checkpoint"],
    "train.loop": ["NonFiniteLoss", "predict_logits"],
    "train.device": ["pick_device"],
    "train.inputs": ["InputContract", "conform"],
    "train.data": ["check_split_compatible", "dataset_info", "load_splits"],
    "train.data.tensors": ["TensorData", "make_augment"],
    "train.data.formats": ["IMAGE_SUFFIXES", "open_image", "read_npz"],
    "train.data.sources": ["channels_first"],
    "train.prediction_file": ["collect_predictions", "write_prediction_chunks", "write_predictions_csv"],
}
__getattr__, __all__ = lazy_attributes(__name__, _WHERE)
