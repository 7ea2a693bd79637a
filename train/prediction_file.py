"""The predictions CSV that `dlx predict --out` writes, whichever model made them (a run, an ensemble or an
exported ONNX graph): one row per input, the predicted class and every class's probability. Torch-free."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Optional

from dlx.core.errors import DlxError
from dlx.core.files import atomic_write


def write_predictions_csv(path: Path, rows: list[dict], classes: list[str]) -> None:
    write_prediction_chunks(path, [rows], classes)


def collect_predictions(chunks: Iterable[tuple[list[str], Iterable]], classes: list[str],
                        out: Optional[Path] = None) -> list[dict]:
    """The rows of `dlx predict` from (input names, class probabilities) chunks, each chunk written to `out` (when
    given) before the next is read, so a folder of any size is predicted in bounded memory."""
    rows: list[dict] = []

    def as_rows():
        for names, probs in chunks:
            chunk = [{"input": name, "predicted": int(p.argmax()), "class": classes[int(p.argmax())],
                      "probabilities": [float(v) for v in p]} for name, p in zip(names, probs)]
            rows.extend(chunk)
            yield chunk

    if out is not None:
        write_prediction_chunks(Path(out), as_rows(), classes)
    else:
        for _ in as_rows():
            pass
    return rows


def write_prediction_chunks(path: Path, chunks: Iterable[list[dict]], classes: list[str]) -> None:
    """Write the rows of each chunk as it comes (a folder of 100,000 images is predicted a chunk at a time),
    into a temporary file that replaces `path` only once every row is written."""
    def write(handle) -> None:
        handle.write(_csv_lines([["input", "predicted", "class", *(f"p_{c}" for c in classes)]]))
        for rows in chunks:
            handle.write(_csv_lines([[row["input"], row["predicted"], row["class"],
                                      *(f"{v:.6g}" for v in row["probabilities"])] for row in rows]))

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OSError as exc:
        raise DlxError(f"can't write the predictions ({exc.strerror}).", file=path) from None


def _csv_lines(rows: list[list]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")
