"""Keras layers beyond the core vocabulary, needed to write `keras.applications` models and to import Keras
models: padding, cropping, resizing, reshaping, the configurable ReLU, transposed convolution and layer norm.

Same conventions as `archs.vocabulary`: Keras's argument names and defaults, torch-free `output_shape`, and
`build()` that returns the PyTorch module (from `archs.keras_modules`, loaded on first build).
"""
from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from dlx.archs.geometry import Pair, SizePair, pair
from dlx.archs.registry import LAYERS
from dlx.archs.vocabulary import Layer, WithActivation, describe
from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module

kmodules = lazy_module("dlx.archs.keras_modules")  # torch: loaded by the first build()

Sides = int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]]


def sides(value: Sides) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's padding/cropping forms as ((top, bottom), (left, right)): 1 → ((1, 1), (1, 1)),
    (1, 2) → ((1, 1), (2, 2)), ((1, 2), (3, 4)) as is."""
    if isinstance(value, int):
        return (value, value), (value, value)
    height, width = value
    return tuple(pair(height)), tuple(pair(width))


def _non_negative_sides(value):
    if any(amount < 0 for side in sides(value) for amount in side):
        raise ValueError(f"every amount must be 0 or more, got {value}")
    return value


@LAYERS.register("ZeroPadding2D")
class ZeroPadding2D(Layer):
    """Zeros around the image: `padding` is 1, (rows, cols) or ((top, bottom), (left, right))."""

    positional: ClassVar = ("padding",)
    wants: ClassVar[str] = "image"
    padding: Sides = 1

    _check = field_validator("padding")(_non_negative_sides)

    def output_shape(self, shape):
        (top, bottom), (left, right) = sides(self.padding)
        return shape[0], shape[1] + top + bottom, shape[2] + left + right

    def build(self, shape):
        return kmodules.zero_pad(sides(self.padding))


@LAYERS.register("Cropping2D")
class Cropping2D(Layer):
    """Rows and columns cut from the image's edges: `cropping` as ZeroPadding2D's `padding`."""

    positional: ClassVar = ("cropping",)
    wants: ClassVar[str] = "image"
    cropping: Sides = 0

    _check = field_validator("cropping")(_non_negative_sides)

    def output_shape(self, shape):
        (top, bottom), (left, right) = sides(self.cropping)
        return shape[0], shape[1] - top - bottom, shape[2] - left - right

    def build(self, shape):
        return kmodules.Crop(sides(self.cropping))


@LAYERS.register("UpSampling2D")
class UpSampling2D(Layer):
    """Each pixel repeated `size` times (nearest) or interpolated (bilinear)."""

    positional: ClassVar = ("size", "interpolation")
    wants: ClassVar[str] = "image"
    size: SizePair = Field(2, description="(rows, cols) factors")
    interpolation: Literal["nearest", "bilinear"] = "nearest"

    @field_validator("size")
    @classmethod
    def _positive(cls, value):
        if min(pair(value)) < 1 or max(pair(value)) > 64:
            raise ValueError(f"size must be between 1 and 64, got {value}")
        return value

    def output_shape(self, shape):
        rows, cols = pair(self.size)
        return shape[0], shape[1] * rows, shape[2] * cols

    def build(self, shape):
        return kmodules.upsample(pair(self.size), self.interpolation)


@LAYERS.register("ReLU")
class ReLU(Layer):
    """Keras's ReLU layer: `max_value` caps it (6 gives ReLU6), below `threshold` it is
    `negative_slope * (x - threshold)`."""

    positional: ClassVar = ("max_value", "negative_slope", "threshold")
    max_value: float | None = Field(None, ge=0.0)
    negative_slope: float = Field(0.0, ge=0.0)
    threshold: float = Field(0.0, ge=0.0)

    def build(self, shape):
        return kmodules.relu(self.max_value, self.negative_slope, self.threshold)


@LAYERS.register("Reshape")
class Reshape(Layer):
    """Keras's Reshape, in Keras's channels-last terms: `target_shape` is (features,) or (height, width,
    channels), one of them may be -1 (inferred)."""

    positional: ClassVar = ("target_shape",)
    target_shape: tuple[int, ...]

    @field_validator("target_shape")
    @classmethod
    def _one_or_three(cls, value):
        if len(value) not in (1, 3):
            raise ValueError(f"target_shape must be (features,) or (height, width, channels), got {list(value)}")
        if value.count(-1) > 1 or any(size == 0 or size < -1 for size in value):
            raise ValueError(f"target_shape needs positive sizes and at most one -1, got {list(value)}")
        return value

    def keras_target(self, shape: tuple) -> tuple:
        total, known = math.prod(shape), math.prod(size for size in self.target_shape if size != -1)
        target = tuple(total // known if size == -1 else size for size in self.target_shape)
        if math.prod(target) != total:
            raise DlxError(f"Reshape cannot turn {describe(shape)} ({total} values) into {list(self.target_shape)}.")
        return target

    def output_shape(self, shape):
        target = self.keras_target(shape)
        return target if len(target) == 1 else (target[2], target[0], target[1])

    def build(self, shape):
        return kmodules.KerasReshape(self.keras_target(shape))


@LAYERS.register("Conv2DTranspose")
class Conv2DTranspose(WithActivation):
    """Keras's transposed convolution, with the output sizes Keras infers (input × strides with 'same')."""

    positional: ClassVar = ("filters", "kernel_size", "strides", "padding")
    wants: ClassVar[str] = "image"
    filters: int = Field(gt=0, le=65536)
    kernel_size: SizePair = 3
    strides: SizePair = 1
    padding: Literal["valid", "same"] = "valid"
    output_padding: Pair | None = None
    dilation_rate: SizePair = 1
    use_bias: bool = True

    @model_validator(mode="after")
    def _output_padding_below_stride(self):
        if self.output_padding is not None and any(
                p >= s for p, s in zip(pair(self.output_padding), pair(self.strides))):
            raise ValueError(f"output_padding must be smaller than strides, got output_padding={self.output_padding} "
                             f"and strides={self.strides}")
        return self

    def sizes(self, shape) -> list[tuple[int, int, int]]:
        """Per axis (output length, start of the crop, extra length at the end) of the full transposed conv."""
        output_padding = pair(self.output_padding) if self.output_padding is not None else (None, None)
        return [transpose_geometry(size, k, s, d, self.padding, p) for size, k, s, d, p in
                zip(shape[1:], pair(self.kernel_size), pair(self.strides), pair(self.dilation_rate), output_padding)]

    def output_shape(self, shape):
        (height, _, _), (width, _, _) = self.sizes(shape)
        return self.filters, height, width

    def build(self, shape):
        return kmodules.conv_transpose(shape[0], self.filters, pair(self.kernel_size), pair(self.strides),
                                       pair(self.dilation_rate), self.sizes(shape), self.use_bias, self.activation)


def transpose_geometry(size: int, kernel: int, stride: int, dilation: int, padding: str,
                       output_padding: int | None) -> tuple[int, int, int]:
    """(Keras's output length, where it starts in the full transposed conv, length to add after the full one).

    The full transposed conv has (size - 1)·stride + effective kernel positions; Keras's length follows its
    `deconv_output_length`; 'same' crops the surplus as TensorFlow does, the odd position at the end."""
    effective = (kernel - 1) * dilation + 1
    full = (size - 1) * stride + effective
    if output_padding is None:
        length = size * stride + (max(effective - stride, 0) if padding == "valid" else 0)
    else:
        length = full - 2 * (effective // 2 if padding == "same" else 0) + output_padding
    start = max(full - length, 0) // 2 if padding == "same" else 0
    return length, start, max(start + length - full, 0)


@LAYERS.register("LayerNormalization")
class LayerNormalization(Layer):
    """Normalises each position over its channels (Keras's default `axis: -1`), then scales and shifts."""

    positional: ClassVar = ()
    axis: Literal[-1] = Field(-1, description="only the channels (features) axis, Keras's default")
    epsilon: float = Field(1e-3, gt=0.0, le=1.0)
    center: bool = True
    scale: bool = True

    def build(self, shape):
        return kmodules.LayerNorm(shape[0], self.epsilon, self.center, self.scale)

