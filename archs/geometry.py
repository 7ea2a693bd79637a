"""Output-size arithmetic shared by shape inference (torch-free) and the PyTorch modules, so both agree with
Keras by construction. Sizes are ints; a pair is (height, width)."""
from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

Pair = int | tuple[int, int]
# What a layer's YAML may give for a kernel, stride, dilation or pool size: positive, so that a 0 or -3 is refused
# when the spec is read (dlx config, dlx summary) instead of dividing by zero in shape inference.
Size = Annotated[int, Field(gt=0, le=4096)]
SizePair = Size | tuple[Size, Size]


def pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def conv_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Keras's output size of a convolution or pooling along one axis: ceil(size / stride) with 'same'."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def conv_out_shape(shape: tuple, channels: int, kernel: Pair, stride: Pair, dilation: Pair, padding: str) -> tuple:
    """(channels, height, width) after a 2-D convolution or pooling of an image of `shape`."""
    (kh, kw), (sh, sw), (dh, dw) = pair(kernel), pair(stride), pair(dilation)
    _, h, w = shape
    return channels, conv_out(h, kh, sh, dh, padding), conv_out(w, kw, sw, dw, padding)


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after): the extra pixel goes after."""
    effective = dilation * (kernel - 1) + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def same_pads(shape: tuple, kernel: Pair, stride: Pair, dilation: Pair = 1) -> list[tuple[int, int]]:
    """[(top, bottom), (left, right)]: 'same' padding of an image of `shape` (channels, height, width)."""
    return [same_padding(size, k, s, d) for size, k, s, d in zip(shape[1:], pair(kernel), pair(stride), pair(dilation))]


def projection_stride(in_shape: tuple, out_shape: tuple) -> int | None:
    """The stride of a 1×1 convolution mapping `in_shape` to `out_shape`'s height and width, or None if none can."""
    stride = max(1, -(-in_shape[1] // out_shape[1]))  # ceil: 'same' padding maps 17 to 9 with stride 2
    fits = (conv_out(in_shape[1], 1, stride, 1, "valid"), conv_out(in_shape[2], 1, stride, 1, "valid")) == out_shape[1:]
    return stride if fits else None
