"""PyTorch modules behind `archs.keras_layers` (channels-first tensors, Keras's channels-last semantics)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlx.archs.modules import activation, chain


def zero_pad(amounts) -> nn.Module:
    (top, bottom), (left, right) = amounts
    return nn.ZeroPad2d((left, right, top, bottom))


class Crop(nn.Module):
    """Cropping2D: rows and columns cut from the edges."""

    def __init__(self, amounts):
        super().__init__()
        (self.top, self.bottom), (self.left, self.right) = amounts

    def forward(self, x):
        return x[..., self.top:x.shape[-2] - self.bottom, self.left:x.shape[-1] - self.right]


def upsample(size, interpolation: str) -> nn.Module:
    mode = "nearest" if interpolation == "nearest" else "bilinear"
    return nn.Upsample(scale_factor=tuple(float(s) for s in size), mode=mode,
                       **({} if mode == "nearest" else {"align_corners": False}))


class ThresholdedReLU(nn.Module):
    """Keras's ReLU in general: min(x, max_value) from `threshold` up, `negative_slope·(x - threshold)` below."""

    def __init__(self, max_value, negative_slope, threshold):
        super().__init__()
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def forward(self, x):
        y = x.clamp(max=self.max_value) if self.max_value is not None else x
        return y.where(x >= self.threshold, self.negative_slope * (x - self.threshold))


def relu(max_value, negative_slope, threshold) -> nn.Module:
    """The plain torch module where one exists (ReLU, ReLU6, LeakyReLU), else the general one."""
    if threshold == 0 and negative_slope == 0:
        if max_value is None:
            return nn.ReLU()
        return nn.ReLU6() if max_value == 6 else nn.Hardtanh(0.0, max_value)
    if threshold == 0 and max_value is None:
        return nn.LeakyReLU(negative_slope)
    return ThresholdedReLU(max_value, negative_slope, threshold)


class KerasReshape(nn.Module):
    """Reshape in channels-last order, as Keras does, so values land where Keras puts them."""

    def __init__(self, target: tuple):
        super().__init__()
        self.target = tuple(target)

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(x.shape[0], *self.target)
        return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


class CroppedTranspose(nn.Module):
    """A transposed conv with Keras's output size: the full output (plus any extra rows/cols at the end),
    cropped from `start`."""

    def __init__(self, conv: nn.ConvTranspose2d, starts, lengths):
        super().__init__()
        self.conv, self.starts, self.lengths = conv, starts, lengths

    def forward(self, x):
        (top, left), (height, width) = self.starts, self.lengths
        return self.conv(x)[..., top:top + height, left:left + width]


def conv_transpose(in_channels, out_channels, kernel, stride, dilation, sizes, bias, activation_name) -> nn.Module:
    """`sizes`: per axis (Keras's length, crop start, extra length), from `keras_layers.transpose_geometry`."""
    (height, top, extra_h), (width, left, extra_w) = sizes
    conv = nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, padding=0, output_padding=(extra_h, extra_w),
                              dilation=dilation, bias=bias)
    return chain(CroppedTranspose(conv, (top, left), (height, width)), activation(activation_name))


class LayerNorm(nn.Module):
    """Keras's LayerNormalization over the channels (features) axis; gamma or beta only where Keras has them."""

    def __init__(self, channels: int, eps: float, center: bool, scale: bool):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.weight = nn.Parameter(torch.ones(channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(channels)) if center else None

    def forward(self, x):
        if x.dim() == 2:
            return F.layer_norm(x, (self.channels,), self.weight, self.bias, self.eps)
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)

