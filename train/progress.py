"""What a person sees while training: a rich live bar on a terminal, one line per epoch otherwise,
nothing with --quiet. Batch-level numbers are read from the device at most 4 times a second."""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class Silent:
    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None: ...

    def batch(self, index: int, images: int, read_stats) -> None: ...

    def end_epoch(self, row: dict) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


class EpochLines(Silent):
    """One plain line per epoch (for logs and pipes)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)

    def end_epoch(self, row):
        self.console.print(
            f"epoch {row['epoch']:>3}  loss {row['train_loss']:.4f}  acc {row['train_accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  lr {row['lr']:.2e}  "
            f"{row['images_per_second']:,.0f} img/s", soft_wrap=True)

    def note(self, text):
        self.console.print(text, soft_wrap=True)  # a path broken over two lines is no path in a log


class LiveBar(EpochLines):
    """A rich progress bar per epoch with loss, accuracy and images/s."""

    def __init__(self):
        super().__init__(Console(stderr=True, highlight=False))
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[speed]}"),
                                 TimeRemainingColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = None
        self.last_read = 0.0

    def start_epoch(self, epoch, epochs, batches):
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.started = time.perf_counter()
        self.task = self.progress.add_task("train", total=batches, epoch=f"{epoch}/{epochs}", loss="-", acc="-",
                                           speed="")

    def batch(self, index, images, read_stats):
        now = time.perf_counter()
        fields = {}
        if now - self.last_read > 0.25:
            loss, acc = read_stats()
            fields = {"loss": f"{loss:.4f}", "acc": f"{acc:.4f}", "speed": f"{images / (now - self.started):,.0f} img/s"}
            self.last_read = now
        self.progress.update(self.task, completed=index + 1, **fields)

    def close(self):
        self.progress.stop()


def make_progress(quiet: bool) -> Silent:
    if quiet:
        return Silent()
    return LiveBar() if sys.stderr.isatty() else EpochLines()
