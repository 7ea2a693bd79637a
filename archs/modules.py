"""PyTorch building blocks behind the vocabulary: Keras 'same' padding, pooling, activations."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlx.archs.geometry import pair, same_pads
from dlx.archs.registry import ACTIVATIONS


def activation(name: str | None) -> nn.Module | None:
    """The module of a registered activation; None for no activation or `linear`."""
    class_name, arguments = (None, {}) if name is None else ACTIVATIONS.get(name)
    return None if class_name is None else getattr(nn, class_name)(**arguments)


def chain(*modules: nn.Module | None) -> nn.Module:
    kept = [m for m in modules if m is not None]
    return kept[0] if len(kept) == 1 else nn.Sequential(*kept)


def padding_layer(shape, kernel, stride, dilation, padding: str, value: float = 0.0):
    """(explicit pad module or None, padding for the conv itself) reproducing Keras's padding."""
    if padding == "valid":
        return None, 0
    pads = same_pads(shape, kernel, stride, dilation)
    if all(before == after for before, after in pads):
        return None, tuple(before for before, _ in pads)
    (top, bottom), (left, right) = pads
    return nn.ConstantPad2d((left, right, top, bottom), value), 0


def conv(in_channels, out_channels, kernel, stride, padding, dilation, groups, bias) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, pair(kernel), pair(stride), padding, pair(dilation), groups, bias)


def linear(in_features, out_features, bias) -> nn.Linear:
    return nn.Linear(in_features, out_features, bias)


def batch_norm(shape, momentum, eps, center, scale) -> nn.Module:
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    norm = cls(shape[0], eps=eps, momentum=momentum, affine=center or scale)
    if norm.affine and not (center and scale):  # Keras can drop beta or gamma alone: it has no such weight, so
        name = "bias" if not center else "weight"  # it is a constant buffer here, neither trained nor counted
        constant = getattr(norm, name).detach().clone()
        delattr(norm, name)
        norm.register_buffer(name, constant)
    return norm


class AvgPoolSame(nn.Module):
    """Average pooling with Keras 'same' padding: padded pixels are not counted in the mean."""

    def __init__(self, pad: tuple[int, int, int, int], kernel, stride):
        super().__init__()
        self.pad, self.kernel, self.stride = pad, kernel, stride

    def forward(self, x):
        ones = torch.ones_like(x[:1, :1])
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel, self.stride)
        count = F.avg_pool2d(F.pad(ones, self.pad), self.kernel, self.stride)
        return total / count


def pool(kind: str, shape, kernel, stride, padding: str) -> nn.Module:
    if padding == "valid":
        return (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(kernel, stride)
    (top, bottom), (left, right) = same_pads(shape, kernel, stride)
    if kind == "avg":
        return AvgPoolSame((left, right, top, bottom), kernel, stride)
    if top == bottom and left == right and top <= kernel[0] // 2 and left <= kernel[1] // 2:
        return nn.MaxPool2d(kernel, stride, padding=(top, left))
    return nn.Sequential(nn.ConstantPad2d((left, right, top, bottom), float("-inf")), nn.MaxPool2d(kernel, stride))


def dropout(rate: float, spatial: bool) -> nn.Module:
    """Keras's Dropout, or SpatialDropout2D (whole channels) when `spatial`."""
    return (nn.Dropout2d if spatial else nn.Dropout)(rate)


def flatten() -> nn.Module:
    return nn.Flatten()


def global_pool(kind: str, keepdims: bool = False) -> nn.Module:
    pool = nn.AdaptiveAvgPool2d(1) if kind == "avg" else nn.AdaptiveMaxPool2d(1)
    return pool if keepdims else nn.Sequential(pool, nn.Flatten())


class Residual(nn.Module):
    """y = body(x) + shortcut(x), optionally followed by an activation (Keras `layers.add`)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module, post: nn.Module | None):
        super().__init__()
        self.body, self.shortcut = body, shortcut
        self.post = post if post is not None else nn.Identity()

    def forward(self, x):
        return self.post(self.body(x) + self.shortcut(x))


MERGE_OPS = {"add": torch.add, "subtract": torch.sub, "multiply": torch.mul, "average": torch.add,
             "maximum": torch.maximum, "minimum": torch.minimum}


class Merge(nn.Module):
    """Keras's elementwise merges: the inputs folded with one operation; Average divides the sum by their number."""

    def __init__(self, op: str, count: int):
        super().__init__()
        self.op, self.scale = MERGE_OPS[op], (1.0 / count if op == "average" else None)

    def forward(self, *inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = self.op(out, x)
        return out if self.scale is None else out * self.scale


class Concatenate(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *inputs):
        return torch.cat(inputs, self.dim)


def identity() -> nn.Module:
    return nn.Identity()


def compile_schedule(sources: list[tuple[int, ...]]):
    """A plain Python function `run(modules, x)` that calls `modules[i]` on the outputs of `sources[i]` (earlier
    steps; -1 is the input) in order, and drops each output after its last use, as hand-written code would.

    Generated once per model, so a forward pass does no graph walking at all (torch.fx generates code likewise)."""
    last_use = {s: i for i, step in enumerate(sources) for s in step}
    lines = ["def run(modules, x):"]
    for i, step in enumerate(sources):
        arguments = ", ".join("x" if s < 0 else f"v{s}" for s in step)
        lines.append(f"    v{i} = modules[{i}]({arguments})")
        dead = sorted({f"v{s}" for s in step if s >= 0 and last_use[s] == i})
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    lines.append(f"    return v{len(sources) - 1}")
    namespace: dict = {}
    exec(compile("\n".join(lines), "<dlx graph>", "exec"), namespace)  # noqa: S102 - our own generated source
    return namespace["run"]
