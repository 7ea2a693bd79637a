"""A Keras 3 model's architecture (a `.keras` file's config.json, or `model.to_json()`) → a dlx layer list in the
graph syntax. Keras-free: it reads the JSON only (bounded, checked by `archs.keras_json`), so no weights and no
Keras are needed; torch is loaded only by `keras_spec`, which builds the spec on the meta device before it is
written, as `dlx summary` would.

Each Keras layer becomes the dlx layer of the same name with the arguments dlx has; initialisers, regularisers
and constraints (training details, not architecture) are left out. A layer dlx lacks, or an argument value it
can't reproduce, is reported with the layer's position, all in one error.
"""
from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dlx.archs.keras_json import checked_layout, parse_config
from dlx.archs.parse import INPUT, MAX_LAYERS, WIRING
from dlx.archs.registry import LAYERS
from dlx.archs.vocabulary import Layer, Repeat, Residual
from dlx.core.diskfull import full_disk_error
from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_text
from dlx.core.reading import check_regular

MAX_CONFIG_BYTES = 16 * 2**20  # Keras writes about 1 KB a layer: room for dlx's MAX_LAYERS, and a bound on memory
MAX_KERAS_BYTES = 64 * 2**30  # a .keras file holds the weights too; only its config.json is read
IGNORED = ("name", "trainable", "dtype", "seed", "synchronized", "renorm_clipping", "renorm_momentum")
IGNORED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
# argument → the values dlx reproduces (its only behaviour); anything else is an unsupported setting
ONLY = {"data_format": (None, "channels_last"), "groups": (1,), "noise_shape": (None,), "renorm": (False,),
        "rms_scaling": (False,), "lora_rank": (None,)}
CHANNEL_AXES = {"BatchNormalization": (-1, 3, [-1], [3]), "LayerNormalization": (-1, 3, [-1], [3])}
ALWAYS = ("kernel_size", "pool_size")  # written even at dlx's default: Keras has none, readers expect them
PAIRS = ("kernel_size", "strides", "dilation_rate", "pool_size", "size", "padding", "cropping", "output_padding")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


@dataclass
class KerasImport:
    """The translated model: dlx layer entries, Keras's input shape (channels last, no batch) and its name."""

    name: str
    input_shape: list[int]
    layers: list[dict | str] = field(default_factory=list)
    outputs: int | None = None  # the final Dense's units, written as `units: classes`
    origins: list[str] = field(default_factory=list)  # per entry, its Keras layer: "layer 3 'conv2d' (Conv2D)"


def read_config(path: str | Path) -> dict:
    """The model config from a `.keras` zip (its config.json) or a JSON file of `model.to_json()`, read bounded:
    a regular file only, at most MAX_CONFIG_BYTES of JSON, whatever the zip's headers claim."""
    path = Path(path)
    try:
        size = check_regular(path, MAX_KERAS_BYTES, "a Keras .keras model or its model.to_json() JSON")
        with _open_regular(path) as handle:
            raw = _config_bytes(handle, size, path)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise DlxError("no such file; expected a Keras .keras model or its model.to_json() JSON.", file=path) from None
    except (UnicodeDecodeError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise DlxError(f"not a Keras model: expected a .keras file or model.to_json() JSON ({exc}).",
                       file=path) from None
    config = parse_config(text, path)
    if not isinstance(config, dict) or config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise DlxError("expected a Keras Sequential or Functional model config (class_name 'Sequential' or "
                       f"'Functional'), got {_describe_class(config)}.", file=path)
    return config


def _open_regular(path: Path):
    """The file opened without blocking (a FIFO swapped in after `check_regular` can't hang the open) and checked
    again on the open descriptor."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise DlxError("this is not a regular file; expected a Keras .keras model or its JSON.", file=path)
    return handle


def _config_bytes(handle, size: int, path: Path) -> bytes:
    """config.json's bytes from a .keras zip, or the JSON file's: at most MAX_CONFIG_BYTES + 1 are ever read."""
    limit = f"larger than {MAX_CONFIG_BYTES // 2**20} MiB"
    if not zipfile.is_zipfile(handle):
        if size > MAX_CONFIG_BYTES:
            raise DlxError(f"the file is {limit}; expected a model's JSON config.", file=path)
        handle.seek(0)
        raw = handle.read(MAX_CONFIG_BYTES + 1)
    else:
        with zipfile.ZipFile(handle) as archive:
            if "config.json" not in archive.namelist():
                raise DlxError("this zip has no config.json; expected a Keras 3 .keras model file.", file=path)
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise DlxError(f"its config.json is {limit}; not a model config.", file=path)
            with archive.open("config.json") as member:
                raw = member.read(MAX_CONFIG_BYTES + 1)  # the header's size is the archive's claim, not a bound
    if len(raw) > MAX_CONFIG_BYTES:
        raise DlxError(f"its model config is {limit}; not a model config.", file=path)
    return raw


def import_keras(path: str | Path) -> KerasImport:
    """The Keras model at `path` as dlx layer entries; one DlxError lists every layer dlx can't reproduce."""
    config = read_config(path)
    body, layers = checked_layout(config, path)
    translatable = sum(layer.get("class_name") != "InputLayer" for layer in layers)
    if translatable > MAX_LAYERS:
        raise DlxError(f"the model has {translatable} layers; dlx builds at most {MAX_LAYERS}.", file=path,
                       key="config.layers")
    try:
        return _translate(config, body, layers, path)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:  # a hand-edited or foreign JSON's structure
        raise DlxError(f"the model config is not laid out as Keras 3 writes it ({type(exc).__name__}: {exc}).",
                       file=path) from None


def _translate(config: dict, body: dict, layers: list, path) -> KerasImport:
    functional = config["class_name"] != "Sequential"
    wiring = _functional_wiring(layers, body, path) if functional else None
    result = KerasImport(_model_name(body.get("name")), _input_shape(layers, body, path))
    problems = []
    for index, layer in enumerate(layers):
        if layer.get("class_name") == "InputLayer":
            continue
        try:
            entry = _entry(layer, wiring[index] if functional else {})
        except _Unsupported as exc:
            problems.append(f"layer {index} '{_layer_name(layer)}' ({layer.get('class_name')}): {exc}")
            continue
        result.layers.append(entry)
        result.origins.append(f"layer {index} '{_layer_name(layer)}' ({layer.get('class_name')})")
    if problems:
        raise DlxError(f"{len(problems)} layer(s) have no dlx equivalent: " + "; ".join(problems) +
                       f". dlx layers: {', '.join(_keras_names())}.", file=path, key="config.layers")
    result.outputs = _classes_head(result.layers)
    return result


class _Unsupported(Exception):
    """Why one Keras layer can't be translated; collected into the one DlxError."""


def _keras_names() -> list[str]:
    return [name for name, cls in LAYERS.items() if cls not in (Residual, Repeat)]


def _describe_class(config: Any) -> str:
    return repr(config.get("class_name")) if isinstance(config, dict) else type(config).__name__


def _layer_name(layer: dict) -> str:
    return str(layer.get("name") or (layer.get("config") or {}).get("name") or "?")


def _model_name(name: Any) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name or "keras_model"))[:100].strip("._-")
    return cleaned if cleaned and cleaned[0].isalnum() and ".." not in cleaned else "keras_model"


def _input_shape(layers: list, body: dict, path) -> list[int]:
    first = (layers[0].get("config") or {}) if layers[0].get("class_name") == "InputLayer" else {}
    shape = first.get("batch_shape") or first.get("batch_input_shape") or body.get("build_input_shape")
    if not isinstance(shape, list) or len(shape) not in (2, 4) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape[1:]):
        raise DlxError(f"the model's input shape {shape!r} is not (batch, height, width, channels) or (batch, "
                       "features) with known, positive sizes; build the Keras model with a fixed input shape.",
                       file=path)
    return shape[1:]


def _history(tensor: Any) -> str | None:
    """The producing layer's name of one serialised Keras tensor."""
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        return tensor["config"]["keras_history"][0]
    return None


def _ends(body: dict, key: str) -> list[str]:
    """The names of the model's input or output layers: Keras writes [[name, 0, 0], ...], or [name, 0, 0]."""
    value = body.get(key) or []
    return [entry[0] for entry in (value if isinstance(value[0], list) else [value])] if value else []


def _sources(layer: dict) -> list[str] | None:
    """The names of the layers whose outputs `layer` takes; None for a layer called more than once or never."""
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) != 1:
        return None
    args = nodes[0].get("args") or []
    tensors = args[0] if args and isinstance(args[0], list) else args
    return [name for name in map(_history, tensors) if name is not None]


def _functional_wiring(layers: list, body: dict, path) -> dict[int, dict]:
    """Per layer position: its dlx `inputs` (None where it takes the previous entry's output), whether a later
    layer refers to it out of order (then it needs a `name`), and whether it is called other than once."""
    for key in ("input_layers", "output_layers"):
        if len(_ends(body, key)) > 1:
            raise DlxError(f"the model has {len(_ends(body, key))} {key.split('_')[0]}s; dlx models have one input "
                           "and one output.", file=path, key=f"config.{key}")
    index_of = {_layer_name(layer): index for index, layer in enumerate(layers)}
    output = _ends(body, "output_layers")
    if output and index_of.get(output[0]) != len(layers) - 1:
        raise DlxError(f"the output layer '{output[0]}' is not the last in the config; dlx's last entry is the "
                       "output.", file=path, key="config.output_layers")
    inputs = {_layer_name(layer) for layer in layers if layer.get("class_name") == "InputLayer"}
    wiring, referenced, previous = {}, set(), INPUT
    for index, layer in enumerate(layers):
        if layer.get("class_name") == "InputLayer":
            continue
        sources = _sources(layer)
        if sources is None:
            wiring[index] = {"shared": True}
            continue
        sources = [INPUT if name in inputs else name for name in sources]
        chained = sources == [previous] and layer.get("class_name") not in _MERGES
        wiring[index] = {"inputs": None if chained else sources}
        referenced.update([] if chained else sources)
        previous = _layer_name(layer)
    for index, wires in wiring.items():
        wires["named"] = _layer_name(layers[index]) in referenced
    return wiring


_MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}


def _entry(layer: dict, wiring: dict) -> dict | str:
    """One dlx layer entry (`- Conv2D: {...}` as a dict) for a Keras layer."""
    kind = layer.get("class_name")
    if wiring.get("shared"):
        raise _Unsupported("it is called more than once (a shared layer) or never; dlx layers run once")
    if kind not in LAYERS or LAYERS.get(kind) in (Residual, Repeat):
        raise _Unsupported("dlx has no such layer")
    cls = LAYERS.get(kind)
    args = _arguments(kind, cls, layer.get("config") or {})
    if kind == "Activation" and args.get("activation") in ("linear", None):
        cls, kind, args = LAYERS.get("Identity"), "Identity", {}
    try:
        cls.model_validate(args)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise _Unsupported(f"argument {where}={error.get('input')!r}: {error['msg']}") from None
    args = _without_defaults(cls, args)
    name = _layer_name(layer)
    if wiring.get("named") and (not _NAME.fullmatch(name) or name == INPUT):
        raise _Unsupported(f"its name {name!r} can't be a dlx layer name (letters, digits, '_', '.', '-')")
    wired = {"name": name} if wiring.get("named") else {}
    if wiring.get("inputs") is not None:
        inputs = wiring["inputs"]
        wired["inputs"] = inputs[0] if len(inputs) == 1 and kind not in _MERGES else inputs
    if not wired and len(args) == 1 and cls.positional[:1] == tuple(args) and not isinstance(
            next(iter(args.values())), list):
        return {kind: next(iter(args.values()))}  # `Activation: relu`, `Dropout: 0.5`
    return {kind: {**args, **wired}} if args or wired else kind


def _arguments(kind: str, cls: type[Layer], config: dict) -> dict:
    """The Keras arguments dlx has, checked: settings dlx can't reproduce raise _Unsupported."""
    args = {}
    for key, value in config.items():
        if key in IGNORED or key.endswith(IGNORED_SUFFIXES) or key in WIRING:
            continue
        if key in ONLY:
            if value not in ONLY[key]:
                raise _Unsupported(f"{key}={value!r} (dlx supports {', '.join(map(repr, ONLY[key]))})")
            continue
        if key == "axis" and kind in CHANNEL_AXES:
            if value not in CHANNEL_AXES[kind]:
                raise _Unsupported(f"axis={value!r} (dlx normalises over the channels axis only, -1)")
            continue
        if key == "activation" and isinstance(value, str) and value == "linear" and kind != "Activation":
            continue
        if key not in cls.model_fields:
            if value in (None, False):
                continue  # an option left off, e.g. quantization_config: null
            raise _Unsupported(f"argument {key}={value!r} (dlx's {kind} has no such argument)")
        args[key] = _simplified(value) if key in PAIRS else value
    if args.get("strides") is not None and args.get("strides") == args.get("pool_size"):
        del args["strides"]  # dlx's pooling strides default to the pool size, as Keras's
    return args


def _simplified(value: Any) -> Any:
    """Keras's serialised tuples, written as dlx's short forms: [3, 3] → 3, [[1, 1], [1, 1]] → 1."""
    if isinstance(value, list) and value and all(v == value[0] for v in value):
        first = _simplified(value[0])
        return first if isinstance(first, int) and not isinstance(first, bool) and len(value) == 2 else value
    return value


def _without_defaults(cls: type[Layer], args: dict) -> dict:
    """Only the arguments that differ from dlx's defaults (which are Keras's), for a readable spec."""
    kept = {}
    for key, value in args.items():
        info = cls.model_fields[key]
        if key not in ALWAYS and not info.is_required() and _simplified(_plain(info.default)) == value:
            continue
        kept[key] = value
    return kept


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _classes_head(layers: list) -> int | None:
    """A final Dense becomes `units: classes` (any class count); returns Keras's units. Its softmax stays out:
    dlx models emit logits."""
    last = layers[-1] if layers else None
    if not isinstance(last, dict) or "Dense" not in last:
        return None
    args = last["Dense"] if isinstance(last["Dense"], dict) else {"units": last["Dense"]}  # `Dense: 10`
    units = args["units"]
    last["Dense"] = {**args, "units": "classes"}
    if args.get("activation") == "softmax":
        del last["Dense"]["activation"]
    return units


def spec_yaml(result: KerasImport, source: str) -> str:
    """The imported model as a dlx experiment spec (default data: digits), with a header saying how to check it
    against the Keras model. The file's name is written as a Python literal: a newline or any other control
    character in it, escaped, can't end the comment."""
    shape = ",".join(map(str, result.input_shape))
    classes = f" --classes {result.outputs}" if result.outputs else ""
    lines = [f"# Imported from {source!r} by `dlx import keras`: the architecture only, no weights.",
             f"# Keras's input is {' x '.join(map(str, result.input_shape))} (channels last)"
             + (f" and its head has {result.outputs} units, written as `units: classes`" if result.outputs else "")
             + ". Compare with the Keras model:",
             f"#   dlx summary THIS.yaml --input-shape {shape}{classes}",
             f"name: {result.name}", "model:", "  layers:"]
    for entry in result.layers:
        kind, args = (entry, None) if isinstance(entry, str) else next(iter(entry.items()))
        lines.append(f"    - {kind}" if args is None else f"    - {kind}: {_flow(args)}")
    return "\n".join(lines) + "\n"


def keras_spec(path: str | Path) -> tuple[KerasImport, str]:
    """The Keras model at `path` and the text of its dlx spec, checked as `dlx summary` checks a spec (read,
    wired, built on the meta device at Keras's input shape): what dlx would refuse is refused here, naming the
    Keras layer, before anything is written."""
    result = import_keras(path)
    text = spec_yaml(result, Path(path).name)
    _check_spec(result, text, path)
    return result, text


def _check_spec(result: KerasImport, text: str, path: str | Path) -> None:
    from dlx.archs.check import validate_spec
    from dlx.archs.summary import summarize, summary_inputs  # torch, for the build on the meta device
    try:
        shape, classes = summary_inputs(",".join(map(str, result.input_shape)), result.outputs)
    except DlxError as exc:
        where = f"{result.origins[-1]}, the classes head" if exc.key == "--classes" else "the model's input shape"
        raise DlxError(f"{where}: {exc.message}", file=path) from None
    try:
        summarize(validate_spec(yaml.safe_load(text), text=text), shape, classes or 1)
    except DlxError as exc:
        entry = re.match(r"model\.layers\[(\d+)\]", exc.key or "")
        where = f"{result.origins[int(entry[1])]}: " if entry else ""
        raise DlxError(f"dlx would refuse the spec this model makes: {where}{exc.message}", file=path) from None


def write_spec(out: str | Path, text: str) -> None:
    """The spec written atomically to `out`; a write that fails (a full disk) leaves what was there, and is one
    DlxError naming `out`."""
    try:
        atomic_write_text(out, text)
    except OSError as exc:
        raise full_disk_error(exc, out, "the spec", "a file already there is unchanged") or DlxError(
            f"could not write the spec ({exc.strerror or exc}); a file already there is unchanged.", file=out) from None


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _flow(value: Any) -> str:
    """YAML flow style on one line: `{filters: 64, kernel_size: 7}`, `[a, b]`; odd strings quoted."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(v)}" for key, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str) and (not _PLAIN.fullmatch(value) or value.lower() in _RESERVED):
        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
