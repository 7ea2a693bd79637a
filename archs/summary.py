"""Model summary as data (the CLI formats it): rows (each with all its parameters, as Keras's Param #, its
inputs and its FLOPs per image), totals. The model is laid out on the meta device: nothing is allocated."""
from __future__ import annotations

import math
from dataclasses import asdict

import torch

from dlx.archs.builder import build_model, count_params, keras_shape
from dlx.core.errors import DlxError

MAX_INPUT_VALUES = 2 ** 24  # 64 MB of float32 per image: beyond any model dlx is meant for


def summary_inputs(input_shape: str | None, classes: int | None) -> tuple[tuple | None, int | None]:
    """`--input-shape` and `--classes`, checked: (channels-first shape or None, classes or None)."""
    if classes is not None and not 1 <= classes <= 1_000_000:
        raise DlxError(f"the number of classes must be between 1 and 1000000, but got {classes}.", key="--classes")
    return (parse_input_shape(input_shape) if input_shape is not None else None), classes


def parse_input_shape(text: str) -> tuple:
    """'H,W,C' (an image, channels last as Keras writes it) or 'F' (flat features) → the channels-first shape the
    builder takes."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 3) or min(sizes) < 1:
        raise DlxError(f"expected H,W,C such as 32,32,3 (or one number of flat features), each a positive whole "
                       f"number, but got {text!r}.", key="--input-shape")
    if math.prod(sizes) > MAX_INPUT_VALUES:
        raise DlxError(f"an input of {math.prod(sizes):,} values is more than the {MAX_INPUT_VALUES:,} a summary "
                       f"traces; got {text!r}.", key="--input-shape")
    return (sizes[2], sizes[0], sizes[1]) if len(sizes) == 3 else (sizes[0],)


def summarize(spec, input_shape: tuple, classes: int) -> dict:
    """The summary for `input_shape` (channels first) and `classes`; the caller reads them from the spec's dataset
    when the user gives none (`train.data.dataset_info`), so a spec can be summarised without its data."""
    with torch.device("meta"):  # shapes and counts need no weights: nothing is allocated or computed
        model = build_model(spec.model, input_shape, classes)
    trainable, non_trainable = count_params(model)
    return {
        "name": spec.name,
        "input_shape": keras_shape(input_shape),
        "classes": classes,
        "graph": model.sources is not None,  # layers wired with `inputs:`: each row's `inputs` is its "Connected to"
        "layers": [asdict(row) for row in model.rows],
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "mflops": sum(row.flops for row in model.rows) / 1e6,  # per image: see `archs.builder.layer_flops`
    }
