"""The predictions CSV that `dlx predict --out` writes, whichever model made them (a run, an ensemble or an
exported ONNX graph): one row per input, the predicted class and every class's probability. Torch-free."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from core.errors import DlxError
from core.files import atomic_write_text


def write_predictions_csv(path: Path, rows: list[dict], classes: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["input", "predicted", "class", *(f"p_{c}" for c in classes)])
    for row in rows:
        writer.writerow([row["input"], row["predicted"], row["class"], *(f"{v:.6g}" for v in row["probabilities"])])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, buffer.getvalue())
    except OSError as exc:
        raise DlxError(f"can't write the predictions ({exc.strerror}).", file=path) from None
