"""The Keras layer vocabulary: argument names and defaults as in Keras, shape inference as pure
math (no torch), and `build()` that returns the PyTorch module (channels-first inside).

Every layer has the same two methods: `output_shape(shape)` and `build(shape)`. Shapes are tuples:
(C, H, W) for images, (F,) for flat features.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from dlx.archs.geometry import SizePair, conv_out_shape, pair, projection_stride
from dlx.archs.registry import ACTIVATIONS, LAYERS
from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module

modules = lazy_module("dlx.archs.modules")  # torch: loaded by the first build(), not by validating a spec


def describe(shape: tuple) -> str:
    """A shape for messages: (channels=.., height=.., width=..) or (features=..)."""
    return f"(channels={shape[0]}, height={shape[1]}, width={shape[2]})" if len(shape) == 3 else f"(features={shape[0]})"


def _takes_bool(annotation) -> bool:
    return annotation is bool or annotation is Any or any(_takes_bool(arg) for arg in get_args(annotation))


class Layer(BaseModel):
    """Base of every YAML layer: validated Keras-style arguments plus shape math."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use: fast start-up
    positional: ClassVar[tuple[str, ...]] = ()  # order of Keras's positional arguments
    wants: ClassVar[str] = "any"  # "image", "flat" or "any"

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value, info):
        """YAML's true and false are not the numbers 1 and 0: `filters: true` would build one filter."""
        if isinstance(value, bool) and not _takes_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected a number, not {str(value).lower()}")
        return value

    def output_shape(self, shape: tuple) -> tuple:
        return shape

    def build(self, shape: tuple):  # -> torch.nn.Module
        raise NotImplementedError

    def with_classes(self, classes: int) -> Layer:
        """This layer once the dataset's number of classes is known (`Dense: {units: classes}`)."""
        return self

    def as_output(self) -> Layer | None:
        """This layer as the model's last: the model outputs logits (the loss applies log-softmax), so a final
        softmax is dropped; None drops the whole layer."""
        if getattr(self, "activation", None) == "softmax":
            return self.model_copy(update={"activation": None})
        return self


def _check_activation(value):
    """A registered activation's name as registered (`ReLU` → `relu`); pydantic reports the ValueError."""
    if value is None or value in ACTIVATIONS:
        return value if value is None else ACTIVATIONS.canonical(value)
    raise ValueError(ACTIVATIONS.unknown(value).message)


ActivationName = Annotated[str, AfterValidator(_check_activation)]


class WithActivation(Layer):
    activation: ActivationName | None = None


class ConvLike(WithActivation):
    wants: ClassVar[str] = "image"
    kernel_size: SizePair = 3
    strides: SizePair = 1
    padding: Literal["valid", "same"] = "valid"
    dilation_rate: SizePair = 1
    use_bias: bool = True

    def out_channels(self, channels: int) -> int:
        raise NotImplementedError

    def output_shape(self, shape):
        return conv_out_shape(shape, self.out_channels(shape[0]), self.kernel_size, self.strides,
                              self.dilation_rate, self.padding)

    def padding_for(self, shape):
        return modules.padding_layer(shape, pair(self.kernel_size), pair(self.strides), pair(self.dilation_rate),
                                     self.padding)


@LAYERS.register("Conv2D")
class Conv2D(ConvLike):
    positional: ClassVar = ("filters", "kernel_size", "strides", "padding")
    filters: int = Field(gt=0, le=65536)

    def out_channels(self, channels):
        return self.filters

    def build(self, shape):
        pad, conv_padding = self.padding_for(shape)
        conv = modules.conv(shape[0], self.filters, self.kernel_size, self.strides, conv_padding, self.dilation_rate,
                            groups=1, bias=self.use_bias)
        return modules.chain(pad, conv, modules.activation(self.activation))


@LAYERS.register("DepthwiseConv2D")
class DepthwiseConv2D(ConvLike):
    positional: ClassVar = ("kernel_size", "strides", "padding", "depth_multiplier")
    depth_multiplier: int = Field(1, gt=0, le=1024)

    def out_channels(self, channels):
        return channels * self.depth_multiplier

    def build(self, shape):
        pad, conv_padding = self.padding_for(shape)
        conv = modules.conv(shape[0], shape[0] * self.depth_multiplier, self.kernel_size, self.strides, conv_padding,
                            self.dilation_rate, groups=shape[0], bias=self.use_bias)
        return modules.chain(pad, conv, modules.activation(self.activation))


@LAYERS.register("SeparableConv2D")
class SeparableConv2D(ConvLike):
    """Depthwise k×k conv (no bias, as Keras) then a pointwise 1×1 conv with bias."""

    positional: ClassVar = ("filters", "kernel_size", "strides", "padding")
    filters: int = Field(gt=0, le=65536)
    depth_multiplier: int = Field(1, gt=0, le=1024)

    def out_channels(self, channels):
        return self.filters

    def build(self, shape):
        pad, conv_padding = self.padding_for(shape)
        mid = shape[0] * self.depth_multiplier
        depthwise = modules.conv(shape[0], mid, self.kernel_size, self.strides, conv_padding, self.dilation_rate,
                                 groups=shape[0], bias=False)
        pointwise = modules.conv(mid, self.filters, 1, 1, 0, 1, groups=1, bias=self.use_bias)
        return modules.chain(pad, depthwise, pointwise, modules.activation(self.activation))


@LAYERS.register("BatchNormalization")
class BatchNormalization(Layer):
    positional: ClassVar = ()
    momentum: float = Field(0.99, ge=0.0, lt=1.0, description="Keras meaning: weight of the old moving average")
    epsilon: float = Field(1e-3, gt=0.0, le=1.0)
    center: bool = True
    scale: bool = True

    def build(self, shape):
        return modules.batch_norm(shape, 1.0 - self.momentum, self.epsilon, self.center, self.scale)


@LAYERS.register("Activation")
class Activation(Layer):
    positional: ClassVar = ("activation",)
    activation: ActivationName

    def build(self, shape):
        return modules.activation(self.activation)

    def as_output(self):
        return None if self.activation == "softmax" else self


@LAYERS.register("Dense")
class Dense(WithActivation):
    positional: ClassVar = ("units", "activation")
    wants: ClassVar[str] = "flat"
    units: int | Literal["classes"]  # "classes": the dataset's number of classes, filled in by with_classes
    use_bias: bool = True

    @field_validator("units")
    @classmethod
    def _positive(cls, value):
        if isinstance(value, int) and not 0 < value <= 1_000_000:
            raise ValueError(f"units must be between 1 and 1000000, got {value}")
        return value

    def with_classes(self, classes):
        return self.model_copy(update={"units": classes}) if self.units == "classes" else self

    def output_shape(self, shape):
        if self.units == "classes":
            raise DlxError("'units: classes' needs the dataset's number of classes.")
        return (self.units,)

    def build(self, shape):
        return modules.chain(modules.linear(shape[0], self.output_shape(shape)[0], self.use_bias),
                             modules.activation(self.activation))


@LAYERS.register("Dropout")
class Dropout(Layer):
    positional: ClassVar = ("rate",)
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of units dropped during training")

    def build(self, shape):
        return modules.dropout(self.rate, spatial=False)


@LAYERS.register("SpatialDropout2D")
class SpatialDropout2D(Dropout):
    wants: ClassVar[str] = "image"

    def build(self, shape):
        return modules.dropout(self.rate, spatial=True)


class Pooling(Layer):
    positional: ClassVar = ("pool_size", "strides", "padding")
    wants: ClassVar[str] = "image"
    pool_size: SizePair = 2
    strides: SizePair | None = None
    padding: Literal["valid", "same"] = "valid"

    def geometry(self):
        kernel = pair(self.pool_size)
        return kernel, pair(self.strides) if self.strides is not None else kernel

    def output_shape(self, shape):
        return conv_out_shape(shape, shape[0], *self.geometry(), 1, self.padding)


@LAYERS.register("MaxPooling2D")
class MaxPooling2D(Pooling):
    def build(self, shape):
        return modules.pool("max", shape, *self.geometry(), self.padding)


@LAYERS.register("AveragePooling2D")
class AveragePooling2D(Pooling):
    def build(self, shape):
        return modules.pool("avg", shape, *self.geometry(), self.padding)


class GlobalPooling(Layer):
    wants: ClassVar[str] = "image"
    keepdims: bool = Field(False, description="keep a 1×1 image instead of flat features")

    def output_shape(self, shape):
        return (shape[0], 1, 1) if self.keepdims else (shape[0],)


@LAYERS.register("GlobalAveragePooling2D")
class GlobalAveragePooling2D(GlobalPooling):
    def build(self, shape):
        return modules.global_pool("avg", self.keepdims)


@LAYERS.register("GlobalMaxPooling2D")
class GlobalMaxPooling2D(GlobalPooling):
    def build(self, shape):
        return modules.global_pool("max", self.keepdims)


@LAYERS.register("Flatten")
class Flatten(Layer):
    def output_shape(self, shape):
        return (math.prod(shape),)

    def build(self, shape):
        return modules.flatten()


@LAYERS.register("Residual")
class Residual(Layer):
    """`layers` plus the block's input (sugar for a branch and an `Add`); the shortcut is the identity, a 1×1 conv
    when channels or size change, or the `shortcut:` layers when given (a Keras ResNet's strided conv and BN)."""

    layers: list[Any] = Field(min_length=1)
    shortcut: list[Any] | None = Field(None, description="the shortcut's layers, a chain; [] is the identity")
    shortcut_bn: bool = Field(False, description="a BatchNormalization after the projection shortcut")
    shortcut_use_bias: bool = Field(True, description="the projection's bias; Keras ResNets drop it before the BN")
    activation: ActivationName | None = Field(None, description="applied after the addition")

    def projection(self, in_shape: tuple, out_shape: tuple, key: str) -> list[Layer]:
        """The shortcut's layers: none when the body keeps the shape, else a projection (a strided 1×1 Conv2D,
        optionally followed by BatchNormalization, or a Dense for flat features). `key` places the errors."""
        if in_shape == out_shape:
            return []
        if len(in_shape) != len(out_shape):
            raise DlxError("a Residual block must keep its input an image or flat, not change between them.", key=key)
        if len(in_shape) == 1:
            return [Dense(units=out_shape[0], use_bias=self.shortcut_use_bias)]
        stride = projection_stride(in_shape, out_shape)
        if stride is None:
            raise DlxError(f"the Residual body maps {describe(in_shape)} to {describe(out_shape)}, which no strided "
                           "1×1 shortcut can match; use padding: same inside the block.", key=f"{key}.shortcut")
        projection = Conv2D(filters=out_shape[0], kernel_size=1, strides=stride, use_bias=self.shortcut_use_bias)
        return [projection, BatchNormalization()] if self.shortcut_bn else [projection]


@LAYERS.register("Repeat")
class Repeat(Layer):
    """`layers` repeated `times` times (0 removes them), so depth is one number a search can vary."""

    positional: ClassVar = ("times", "layers")
    times: int = Field(ge=0, le=1000)
    layers: list[Any] = Field(min_length=1)
