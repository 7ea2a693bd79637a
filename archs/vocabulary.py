"""The Keras layer vocabulary: argument names and defaults as in Keras, shape inference as pure
math (no torch), and `build()` that returns the PyTorch module (channels-first inside).

Shapes are tuples: (C, H, W) for images, (F,) for flat features.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


from archs.registry import ACTIVATIONS, register_layer
from core.errors import DlxError, did_you_mean

Pair = Union[int, tuple[int, int]]


def pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


class ShapeError(DlxError):
    """A layer cannot accept the shape it receives."""


class Layer(BaseModel):
    """Base of every YAML layer: validated Keras-style arguments plus shape math."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use: fast start-up
    positional: ClassVar[tuple[str, ...]] = ()  # order of Keras's positional arguments
    wants: ClassVar[str] = "any"  # "image", "flat" or "any"

    def output_shape(self, shape: tuple) -> tuple:
        return shape

    def build(self, shape: tuple):  # -> torch.nn.Module
        raise NotImplementedError


def _check_activation(value):
    if value is None:
        return value
    if value not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{value}'; expected one of: {', '.join(ACTIVATIONS)}.{did_you_mean(value, ACTIVATIONS)}")
    return value


ActivationName = Annotated[str, AfterValidator(_check_activation)]


class WithActivation(Layer):
    activation: Optional[ActivationName] = None


def conv_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after): the extra pixel goes after."""
    effective = dilation * (kernel - 1) + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class ConvLike(WithActivation):
    wants: ClassVar[str] = "image"
    kernel_size: Pair = 3
    strides: Pair = 1
    padding: Literal["valid", "same"] = "valid"
    dilation_rate: Pair = 1
    use_bias: bool = True

    def out_channels(self, channels: int) -> int:
        raise NotImplementedError

    def output_shape(self, shape):
        (kh, kw), (sh, sw), (dh, dw) = pair(self.kernel_size), pair(self.strides), pair(self.dilation_rate)
        c, h, w = shape
        return (self.out_channels(c), conv_out(h, kh, sh, dh, self.padding), conv_out(w, kw, sw, dw, self.padding))

    def padding_for(self, shape):
        from archs import modules
        return modules.padding_layer(shape, pair(self.kernel_size), pair(self.strides), pair(self.dilation_rate),
                                     self.padding)


@register_layer
class Conv2D(ConvLike):
    positional: ClassVar = ("filters", "kernel_size", "strides", "padding")
    filters: int = Field(gt=0, le=65536)

    def out_channels(self, channels):
        return self.filters

    def build(self, shape):
        from archs import modules
        pad, conv_padding = self.padding_for(shape)
        conv = modules.conv(shape[0], self.filters, self.kernel_size, self.strides, conv_padding, self.dilation_rate,
                            groups=1, bias=self.use_bias)
        return modules.chain(pad, conv, modules.activation(self.activation))


@register_layer
class DepthwiseConv2D(ConvLike):
    positional: ClassVar = ("kernel_size", "strides", "padding", "depth_multiplier")
    depth_multiplier: int = Field(1, gt=0, le=1024)

    def out_channels(self, channels):
        return channels * self.depth_multiplier

    def build(self, shape):
        from archs import modules
        pad, conv_padding = self.padding_for(shape)
        conv = modules.conv(shape[0], shape[0] * self.depth_multiplier, self.kernel_size, self.strides, conv_padding,
                            self.dilation_rate, groups=shape[0], bias=self.use_bias)
        return modules.chain(pad, conv, modules.activation(self.activation))


@register_layer
class SeparableConv2D(ConvLike):
    """Depthwise k×k conv (no bias, as Keras) then a pointwise 1×1 conv with bias."""

    positional: ClassVar = ("filters", "kernel_size", "strides", "padding")
    filters: int = Field(gt=0, le=65536)
    depth_multiplier: int = Field(1, gt=0, le=1024)

    def out_channels(self, channels):
        return self.filters

    def build(self, shape):
        from archs import modules
        pad, conv_padding = self.padding_for(shape)
        mid = shape[0] * self.depth_multiplier
        depthwise = modules.conv(shape[0], mid, self.kernel_size, self.strides, conv_padding, self.dilation_rate,
                                 groups=shape[0], bias=False)
        pointwise = modules.conv(mid, self.filters, 1, 1, 0, 1, groups=1, bias=self.use_bias)
        return modules.chain(pad, depthwise, pointwise, modules.activation(self.activation))


@register_layer
class BatchNormalization(Layer):
    positional: ClassVar = ()
    momentum: float = Field(0.99, ge=0.0, lt=1.0, description="Keras meaning: weight of the old moving average")
    epsilon: float = Field(1e-3, gt=0.0, le=1.0)
    center: bool = True
    scale: bool = True

    def build(self, shape):
        from archs import modules
        return modules.batch_norm(shape, 1.0 - self.momentum, self.epsilon, self.center, self.scale)


@register_layer
class Activation(Layer):
    positional: ClassVar = ("activation",)
    activation: ActivationName

    def build(self, shape):
        from archs import modules
        return modules.activation(self.activation)


@register_layer
class Dense(WithActivation):
    positional: ClassVar = ("units", "activation")
    wants: ClassVar[str] = "flat"
    units: Union[int, Literal["classes"]]
    use_bias: bool = True
    classes: ClassVar[Optional[int]] = None

    @field_validator("units")
    @classmethod
    def _positive(cls, value):
        if isinstance(value, int) and not 0 < value <= 1_000_000:
            raise ValueError(f"units must be between 1 and 1000000, got {value}")
        return value

    def resolved_units(self, classes: Optional[int]) -> int:
        if self.units == "classes":
            if classes is None:
                raise DlxError("'units: classes' needs the dataset's number of classes.")
            return classes
        return self.units

    def output_shape(self, shape, classes=None):
        return (self.resolved_units(classes),)

    def build(self, shape, classes=None):
        from archs import modules
        return modules.chain(modules.linear(shape[0], self.resolved_units(classes), self.use_bias),
                             modules.activation(self.activation))


@register_layer
class Dropout(Layer):
    positional: ClassVar = ("rate",)
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of units dropped during training")

    def build(self, shape):
        from torch import nn
        return nn.Dropout(self.rate)


@register_layer
class SpatialDropout2D(Dropout):
    wants: ClassVar[str] = "image"

    def build(self, shape):
        from torch import nn
        return nn.Dropout2d(self.rate)


class Pooling(Layer):
    positional: ClassVar = ("pool_size", "strides", "padding")
    wants: ClassVar[str] = "image"
    pool_size: Pair = 2
    strides: Optional[Pair] = None
    padding: Literal["valid", "same"] = "valid"

    def geometry(self):
        kernel = pair(self.pool_size)
        return kernel, pair(self.strides) if self.strides is not None else kernel

    def output_shape(self, shape):
        (kh, kw), (sh, sw) = self.geometry()
        c, h, w = shape
        return (c, conv_out(h, kh, sh, 1, self.padding), conv_out(w, kw, sw, 1, self.padding))


@register_layer
class MaxPooling2D(Pooling):
    def build(self, shape):
        from archs import modules
        return modules.pool("max", shape, *self.geometry(), self.padding)


@register_layer
class AveragePooling2D(Pooling):
    def build(self, shape):
        from archs import modules
        return modules.pool("avg", shape, *self.geometry(), self.padding)


class GlobalPooling(Layer):
    wants: ClassVar[str] = "image"

    def output_shape(self, shape):
        return (shape[0],)


@register_layer
class GlobalAveragePooling2D(GlobalPooling):
    def build(self, shape):
        from archs import modules
        return modules.global_pool("avg")


@register_layer
class GlobalMaxPooling2D(GlobalPooling):
    def build(self, shape):
        from archs import modules
        return modules.global_pool("max")


@register_layer
class Flatten(Layer):
    def output_shape(self, shape):
        return (math.prod(shape),)

    def build(self, shape):
        from torch import nn
        return nn.Flatten()


@register_layer
class Residual(Layer):
    """`layers` plus the block's input; a 1×1 conv shortcut when channels or size change."""

    layers: list[Any] = Field(min_length=1)
    shortcut_bn: bool = Field(False, description="a BatchNormalization after the projection shortcut")
    shortcut_use_bias: bool = Field(True, description="the projection's bias; Keras ResNets drop it before the BN")
    activation: Optional[ActivationName] = Field(None, description="applied after the addition")


@register_layer
class Repeat(Layer):
    """`layers` repeated `times` times (0 removes them), so depth is one number a search can vary."""

    positional: ClassVar = ("times", "layers")
    times: int = Field(ge=0, le=1000)
    layers: list[Any] = Field(min_length=1)
