"""The input contract: what a model's training inputs looked like (dtype, value range, channels, height×width),
recorded in every checkpoint, and the checks that hold new input to it (`dlx predict`, `dlx evaluate`).

Input that differs is converted where the conversion is unambiguous, with a one-line notice naming it (uint8
0–255 for a model trained on 0–1 floats and back, RGB ↔ grayscale, a resize asked for with --resize), and
refused otherwise, saying what was expected and what was received: never a silently wrong prediction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module
from dlx.experiment.schema import MAX_IMAGE_SIDE

torch = lazy_module("torch")  # only --resize needs it

BYTE = (0.0, 255.0)  # 8-bit images
UNIT = (0.0, 1.0)  # fractions, as dlx stores digits and as most float image data come
SLACK = 1e-3  # rounding: 1.0000001 is still 0–1
BYTE_FLOOR = 32  # non-uint8 values peaking in 1–32 for a 0–255 model: another scale (digits' 0–16), not dark
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as PIL's RGB → L


def input_record(x: np.ndarray) -> dict:
    """The checkpoint's record of the raw training inputs (before scaling and normalisation)."""
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    images = x.ndim == 4
    return {"dtype": str(x.dtype), "min": low, "max": high, "channels": int(x.shape[1]) if images else None,
            "size": [int(s) for s in x.shape[2:]] if images else None}


def pin_channels(spec, record: dict):
    """A checkpoint's spec with data.channels `auto` pinned to the channels its model takes: runs from before dlx
    recorded the choice (image folders then always loaded as RGB unless data.grayscale) re-read their images as
    they were trained on. Other specs are returned as they are."""
    shape = record.get("input_shape") or ()
    if spec.data.dataset == "image_folder" and spec.data.channels == "auto" and len(shape) == 3:
        spec.data.channels = 1 if int(shape[0]) == 1 else 3
    return spec


def _span(low: float, high: float) -> str:
    return f"{low:.4g}–{high:.4g}"


@dataclass(frozen=True)
class InputContract:
    """What a model takes, from a checkpoint's `data` record; dtype and range are None for checkpoints written
    before dlx recorded them (their inputs are then scaled as dlx always did: uint8 ÷ 255, floats as given)."""

    shape: tuple  # (C, H, W) or (features,)
    dtype: Optional[str]
    low: Optional[float]  # the raw training values' minimum and maximum
    high: Optional[float]
    scale: float  # raw value × scale = what the model's normalisation takes

    @classmethod
    def from_record(cls, record: dict, file=None) -> "InputContract":
        shape = tuple(record["input_shape"])
        if len(shape) == 3 and max(shape[1:]) > MAX_IMAGE_SIDE:  # or --resize would upscale to it, gigabytes
            raise DlxError(f"the checkpoint records inputs of {shape[1]}×{shape[2]} pixels, over the limit of "
                           f"{MAX_IMAGE_SIDE} a side (MAX_IMAGE_SIDE) that dlx train enforces; the checkpoint is "
                           "damaged or was not written by dlx.", file=file, key="data.input_shape")
        seen = record.get("input") or {}
        low, high = seen.get("min"), seen.get("max")
        known = low is not None and high is not None and np.isfinite([low, high]).all()
        return cls(tuple(record["input_shape"]), seen.get("dtype"), low if known else None,
                   high if known else None, float(record["scale"]))

    @property
    def accepted(self) -> Optional[tuple[float, float]]:
        """Values taken as they are: the whole 0–255 for a uint8 model, 0–1 for images whose training values lay
        within it, otherwise training's own range widened by a quarter of its span (held-out data stray a
        little; features scaled to 0–1 on the training set can exceed it elsewhere)."""
        if self.dtype is None or self.low is None:
            return None
        if self.dtype == "uint8":
            return BYTE
        if self.low >= 0 and self.high <= 1 and len(self.shape) == 3:
            return UNIT
        margin = (self.high - self.low) / 4
        return self.low - margin, self.high + margin

    def describe(self) -> str:
        """e.g. 'float32 values in 0–1, 1 channel of 8×8' (the form errors and --help use)."""
        if len(self.shape) == 3:
            channels, height, width = self.shape
            form = f"{channels} channel{'s' if channels != 1 else ''} of {height}×{width}"
        else:
            form = f"{self.shape[0]} features"
        if self.accepted is None:
            return f"{form} (dtype and range not recorded by the older dlx that trained it)"
        shown = self.accepted if self.accepted in (BYTE, UNIT) else (self.low, self.high)
        return f"{self.dtype} values in {_span(*shown)}, {form}"

    def as_dict(self) -> dict:
        return {"dtype": self.dtype, "range": [self.low, self.high], "shape": list(self.shape),
                "description": self.describe()}


def _fits(low: float, high: float, bounds: tuple[float, float]) -> bool:
    slack = SLACK * max(1.0, bounds[1] - bounds[0])
    return low >= bounds[0] - slack and high <= bounds[1] + slack


def check_finite(x: np.ndarray, source) -> None:
    """NaN or inf give a confident-looking but meaningless prediction: refuse them, naming where they are."""
    if x.dtype.kind != "f" or not len(x):
        return
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise DlxError(f"the input holds NaN or inf in {int(bad.sum())} of its {len(x)} samples (the first is sample "
                       f"{int(bad.argmax())}); a model can't predict from them. Replace or drop those samples.",
                       file=source)


def _refuse_range(x: np.ndarray, low: float, high: float, contract: InputContract, source) -> DlxError:
    hints = {UNIT: "Scale it to 0–1 first (divide by the largest value its format allows: 255 for 8-bit images, 16 "
                   "for scikit-learn's digits), or give uint8 0–255 values, which are scaled for you.",
             BYTE: "Give uint8 values, or floats in 0–255 (as training saw) or in 0–1 (scaled for you)."}
    hint = hints.get(contract.accepted, f"Give values in {_span(contract.low, contract.high)}, as training saw.")
    return DlxError(f"the model was trained on {contract.describe()}; this input holds {x.dtype} values in "
                    f"{_span(low, high)}, which no unambiguous conversion maps onto that range. {hint}", file=source)


def training_values(x: np.ndarray, contract: InputContract, source, notices: list[str]) -> np.ndarray:
    """`x` as float32 in the units of the raw training values: scaled where the input's form says how
    (uint8 means 0–255, floats within 0–1 fractions), refused where it doesn't."""
    bounds = contract.accepted
    values = x.astype(np.float32)
    if bounds is None:  # an older checkpoint: as dlx always did
        return values / 255 / contract.scale if x.dtype == np.uint8 else values / contract.scale
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if x.dtype == np.uint8 and bounds == UNIT:
        notices.append(f"uint8 0–255 input scaled to 0–1 (÷ 255): the model was trained on {contract.dtype} "
                       "0–1.")
        return values / 255
    if x.dtype.kind == "f" and bounds == BYTE and _fits(low, high, UNIT):
        notices.append("float input in 0–1 scaled to 0–255 (× 255): the model was trained on uint8 0–255.")
        return values * 255
    if not _fits(low, high, bounds) or (x.dtype != np.uint8 and bounds == BYTE and high < BYTE_FLOOR):
        raise _refuse_range(x, low, high, contract, source)
    trained = contract.high - contract.low
    if contract.dtype != "uint8" and x.size > 1 and trained > 0 and high - low < trained / 10:
        notices.append(f"the input's values span only {_span(low, high)} of the {_span(contract.low, contract.high)} "
                       "training saw; if they are in another unit, rescale them.")
    return values


def match_channels(x: np.ndarray, contract: InputContract, source, notices: list[str]) -> np.ndarray:
    """(N, C, H, W) with the model's channel count: RGB → grayscale (luma) or grayscale → RGB, else refused."""
    want, have = contract.shape[0], x.shape[1]
    if have == want:
        return x
    if want == 1 and have == 3:
        notices.append("RGB input converted to grayscale (ITU-R 601 luma): the model takes 1 channel.")
        return np.tensordot(x, LUMA, axes=([1], [0]))[:, None].astype(np.float32)
    if want == 3 and have == 1:
        notices.append("grayscale input repeated into 3 channels: the model takes RGB.")
        return np.repeat(x, 3, axis=1)
    raise DlxError(f"the model takes {contract.describe()}; this input has {have} channel{'s' if have != 1 else ''}"
                   f" (shape {tuple(x.shape[1:])}), and only RGB ↔ grayscale is converted.", file=source)


def match_size(x: np.ndarray, contract: InputContract, source, resize: bool, notices: list[str]) -> np.ndarray:
    """(N, C, H, W) at the model's height×width: resized (bilinear, antialiased) only when asked."""
    want, have = tuple(contract.shape[1:]), tuple(x.shape[2:])
    if have == want:
        return x
    if not resize:
        raise DlxError(f"the model takes {want[0]}×{want[1]} images (height×width; samples of shape "
                       f"{tuple(contract.shape)}); this input is {have[0]}×{have[1]} (samples of shape "
                       f"{tuple(x.shape[1:])}). Give --resize to resize it (bilinear), or resize it yourself.",
                       file=source)
    notices.append(f"resized {have[0]}×{have[1]} → {want[0]}×{want[1]} (bilinear, --resize).")
    tensor = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=want, mode="bilinear",
                                             align_corners=False, antialias=True)
    return tensor.numpy()


def conform(x: np.ndarray, contract: InputContract, source, resize: bool = False,
            notices: Optional[list[str]] = None) -> np.ndarray:
    """Channels-first input (N, C, H, W) or (N, F) → what the model's normalisation takes (raw × scale).
    Conversions made are appended to `notices`; anything else that differs from the contract is refused."""
    notices = [] if notices is None else notices
    if x.dtype.kind not in "biuf":
        raise DlxError(f"the input holds {x.dtype} values; the model takes {contract.describe()}.", file=source)
    check_finite(x, source)
    images = len(contract.shape) == 3
    if x.ndim != len(contract.shape) + 1 or (not images and tuple(x.shape[1:]) != contract.shape):
        raise DlxError(f"the input has samples of shape {tuple(x.shape[1:])}, but the model takes "
                       f"{tuple(contract.shape)}: {contract.describe()}.", file=source)
    values = training_values(x, contract, source, notices)
    if images:
        values = match_size(match_channels(values, contract, source, notices), contract, source, resize, notices)
    return values * np.float32(contract.scale)


def check_dataset(x: np.ndarray, contract: InputContract, source) -> None:
    """Data re-read from a run's dataset (`dlx evaluate`) must still look like what the model was trained on:
    the same dtype and shape, finite, and images within 0–1 or 0–255 as recorded (other ranges are the data's
    own: held-out features may lie outside the training range). No conversion: the dataset itself changed."""
    check_finite(x, source)
    received = [f"shape {tuple(x.shape[1:])}"] if tuple(x.shape[1:]) != contract.shape else []
    if contract.dtype is not None and str(x.dtype) != contract.dtype:
        received.append(f"dtype {x.dtype}")
    if contract.accepted in (UNIT, BYTE) and x.size and not _fits(float(x.min()), float(x.max()), contract.accepted):
        received.append(f"values in {_span(float(x.min()), float(x.max()))}")
    if received:
        raise DlxError(f"the dataset no longer matches what this model was trained on: expected "
                       f"{contract.describe()}, received {', '.join(received)}. Restore the training data, or "
                       "train a new run on the data as it is now.", file=source, key="data")
