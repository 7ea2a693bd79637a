"""`train.log.tensorboard: true`: TensorBoard event files in the run folder, one point per epoch per scalar.

TensorBoard is an optional extra (`pip install 'dlx[tensorboard]'`); asking for it without it installed is a
clear error before training starts."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from dlx.core.errors import DlxError

# metrics.jsonl column → TensorBoard tag (grouped so train and validation share a chart)
TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
        "val_accuracy": "accuracy/val", "lr": "learning_rate", "images_per_second": "speed/images_per_second",
        "seconds": "speed/epoch_seconds"}


def require_tensorboard():
    """torch's SummaryWriter class, or a DlxError saying how to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise DlxError("train.log.tensorboard is true, but TensorBoard is not installed; install dlx[tensorboard] "
                       "(pip install 'dlx[tensorboard]') or set train.log.tensorboard: false.",
                       key="train.log.tensorboard") from None
    return SummaryWriter


def epoch_logger(run_dir: Path, then: Optional[Callable] = None) -> Callable[[int, dict], None]:
    """An `on_epoch(epoch, row)` callback writing row's scalars to run_dir/tensorboard/, then calling `then`."""
    writer = require_tensorboard()(log_dir=str(Path(run_dir) / "tensorboard"))

    def on_epoch(epoch: int, row: dict) -> None:
        for key, tag in TAGS.items():
            value = row.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(tag, value, epoch)
        writer.flush()  # the run may be stopped at any epoch: every point is on disk once its epoch ends
        if then is not None:
            then(epoch, row)

    on_epoch.close = writer.close
    return on_epoch
