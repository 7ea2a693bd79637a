"""Keras's merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) and Identity, torch-free.

A merge layer takes several inputs, so its two methods take lists: `output_shape(shapes)` and `build(shapes)`;
every other layer keeps the one-shape signature. Shapes are dlx's (channels first); `axis` is Keras's
(channels last), so `Concatenate`'s default `axis: -1` joins channels.
"""
from __future__ import annotations

from typing import ClassVar

from dlx.archs.registry import LAYERS
from dlx.archs.vocabulary import Layer
from dlx.core.lazy import lazy_module

modules = lazy_module("dlx.archs.modules")


class ShapeMismatch(ValueError):
    """Inputs `first` and `second` (positions in the input list) cannot be merged: `rule` says why. The graph
    turns it into the user's error, naming both inputs."""

    def __init__(self, first: int, second: int, rule: str):
        super().__init__(rule)
        self.first, self.second, self.rule = first, second, rule


class MergeLayer(Layer):
    """Elementwise merge: equal shapes, or size 1 along an axis broadcast to the other input's size (as Keras)."""

    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = None
    op: ClassVar[str] = "add"  # archs.modules.MERGE_OPS key

    def output_shape(self, shapes: list[tuple]) -> tuple:
        out = shapes[0]
        for index, shape in enumerate(shapes[1:], 1):
            if len(shape) != len(out) or any(a != b and 1 not in (a, b) for a, b in zip(out, shape)):
                raise ShapeMismatch(0, index, f"{type(self).__name__} needs equal shapes (or size 1 along an axis)")
            out = tuple(max(a, b) for a, b in zip(out, shape))
        return out

    def build(self, shapes: list[tuple]):
        return modules.Merge(self.op, len(shapes))


@LAYERS.register("Add")
class Add(MergeLayer):
    op: ClassVar[str] = "add"


@LAYERS.register("Subtract")
class Subtract(MergeLayer):
    """The first input minus the second; exactly two inputs."""

    max_inputs: ClassVar[int | None] = 2
    op: ClassVar[str] = "subtract"


@LAYERS.register("Multiply")
class Multiply(MergeLayer):
    op: ClassVar[str] = "multiply"


@LAYERS.register("Average")
class Average(MergeLayer):
    op: ClassVar[str] = "average"


@LAYERS.register("Maximum")
class Maximum(MergeLayer):
    op: ClassVar[str] = "maximum"


@LAYERS.register("Minimum")
class Minimum(MergeLayer):
    op: ClassVar[str] = "minimum"


def torch_dim(axis: int, rank: int) -> int | None:
    """The tensor dimension (batch first, channels first) of Keras's `axis` for inputs of `rank` (no batch); None
    for the batch axis or one out of range."""
    position = axis - 1 if axis > 0 else rank + axis  # in Keras's shape without the batch
    if not 0 <= position < rank:
        return None
    order = [1, 2, 0] if rank == 3 else list(range(rank))  # Keras (H, W, C) → dlx (C, H, W)
    return order[position] + 1


@LAYERS.register("Concatenate")
class Concatenate(MergeLayer):
    """Joins the inputs along `axis` (Keras's channels-last numbering: -1 is channels); all other sizes equal."""

    positional: ClassVar = ("axis",)
    axis: int = -1

    def output_shape(self, shapes: list[tuple]) -> tuple:
        first = shapes[0]
        dim = torch_dim(self.axis, len(first))
        if dim is None:
            raise ShapeMismatch(0, 0, f"Concatenate's axis {self.axis} is not an axis of inputs of rank {len(first)} "
                                      "(batch excluded; -1 is channels)")
        for index, shape in enumerate(shapes[1:], 1):
            if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, shape)) if i != dim - 1):
                raise ShapeMismatch(0, index, f"Concatenate along axis {self.axis} needs the other sizes equal")
        return tuple(sum(s[i] for s in shapes) if i == dim - 1 else size for i, size in enumerate(first))

    def build(self, shapes: list[tuple]):
        return modules.Concatenate(torch_dim(self.axis, len(shapes[0])))


@LAYERS.register("Identity")
class Identity(Layer):
    """Passes its input on (Keras's Identity): gives a point of the graph a name, e.g. a repeated block's input."""

    def build(self, shape):
        return modules.identity()
