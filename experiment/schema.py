"""The experiment spec: one small pydantic model per YAML section.

Validation here is torch-free so that `dlx config` stays fast; layer lists are
checked by `archs.parse` (also torch-free) when the spec is loaded.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from dlx.core.errors import DlxError
from dlx.experiment.datasets import DATASETS

UnitInterval = Annotated[float, Field(ge=0.0, lt=1.0)]
MAX_IMAGE_SIDE = 4096  # pixels per side: a 15000×15000 image set fills memory before the first batch
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


BYTE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
              "GIB": 2**30, "TIB": 2**40}
BUDGET_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?\s*$", re.IGNORECASE)


def budget_bytes(value, ram_bytes: int) -> int:
    """data.memory_budget in bytes: a fraction of `ram_bytes` (0 < f <= 1), a byte count, or '512MB' / '2GiB'."""
    if isinstance(value, bool):
        raise ValueError(f"memory_budget must be a fraction of RAM (0-1], a byte count or a size such as '2GB', but "
                         f"got {value!r}")
    if isinstance(value, (int, float)) and 0 < value <= 1:
        return int(value * ram_bytes)
    if isinstance(value, (int, float)) and value > 1 and float(value).is_integer():
        return int(value)
    match = BUDGET_PATTERN.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"memory_budget must be a fraction of RAM (0-1], a byte count or a size such as '2GB', but "
                         f"got {value!r}")
    return int(float(match.group(1)) * BYTE_UNITS[(match.group(2) or "").upper()])


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)  # built on first use: fast start-up


class AugmentSpec(Section):
    random_crop_padding: int = Field(0, ge=0, le=64, description="pixels of zero padding before a random crop; 0 = off")
    horizontal_flip: bool = Field(False, description="flip images left-right with probability 0.5")


class DataSpec(Section):
    dataset: str = Field("digits", description="one of " + ", ".join(DATASETS.names()))
    root: str = Field("data", description="folder holding torchvision datasets in their on-disk formats")
    download: bool = Field(False, description="let torchvision download missing files (needs a network)")
    path: Optional[str] = Field(None, description="image_folder: the folder of class folders; npz: the .npz file, or a "
                                                "folder of x_train.npy, y_train.npy (x_test.npy, y_test.npy)")
    image_size: Optional[Union[PositiveInt, tuple[PositiveInt, PositiveInt]]] = Field(
        None, description=f"image_folder: resize to this (h, w), at most {MAX_IMAGE_SIDE} pixels a side")
    grayscale: bool = Field(False, description="image_folder: convert images to one channel (data.channels: 1)")
    channels: Literal["auto", 1, 3] = Field(
        "auto", description="image_folder: channels the model takes, 1 (grayscale) or 3 (RGB); auto: 1 when every "
                            "image is single-channel (read from the file headers, nothing decoded), else 3. A run "
                            "records the choice in its config.yaml")
    val_split: float = Field(0.1, gt=0.0, lt=1.0, description="fraction of the training set held out for validation")
    test_split: float = Field(0.2, gt=0.0, lt=1.0, description="fraction held out as test set when the data has none")
    split_seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the validation/test split; keep it fixed to compare runs")
    normalize: bool = Field(True, description="standardise with mean/std of the training split")
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    cache: Literal["auto", "memory", "stream"] = Field(
        "auto", description="memory: decode every split into memory; stream: read samples from disk per batch "
                            "(image_folder, npz); auto: memory when the decoded data fits memory_budget")
    memory_budget: Union[float, int, str] = Field(
        0.25, description="most decoded data bytes `auto` holds in memory: bytes (int or '2GB'), or a fraction "
                          "of the machine's RAM (0-1)")
    workers: Optional[int] = Field(None, ge=0, le=256, description="stream: decoding processes; None = from the cores")

    @field_validator("image_size")
    @classmethod
    def _image_size_limit(cls, value):
        sides = (value,) if isinstance(value, int) else (value or ())
        if any(side > MAX_IMAGE_SIDE for side in sides):
            raise ValueError(f"image_size is limited to {MAX_IMAGE_SIDE} pixels a side (MAX_IMAGE_SIDE), but got "
                             f"{value if isinstance(value, int) else list(value)}; choose a smaller size")
        return value

    @field_validator("memory_budget")
    @classmethod
    def _budget(cls, value):
        budget_bytes(value, 1)  # raises ValueError naming the accepted forms
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        try:
            return DATASETS.canonical(value)  # `Fashion-MNIST` → `fashion_mnist`, as every registry matches names
        except DlxError as exc:
            raise ValueError(exc.message) from None

    @field_validator("channels", mode="before")
    @classmethod
    def _no_bool_channels(cls, value):
        if isinstance(value, bool):  # YAML's `true` would pass as 1
            raise ValueError(f"channels is 'auto', 1 or 3, not {str(value).lower()}; for one channel write 1")
        return value

    @model_validator(mode="after")
    def _one_channel_count(self):
        if self.grayscale and self.channels == 3:
            raise ValueError("grayscale: true converts images to one channel, but channels is 3; give one of them")
        return self

    @model_validator(mode="after")
    def _path_needed(self):
        needs = DATASETS.get(self.dataset).path
        if needs and not self.path:
            raise ValueError(f"dataset '{self.dataset}' needs 'path:' (the {needs})")
        return self


class ModelSpec(Section):
    preset: Optional[str] = Field(None, description="a named architecture from archs/presets (instead of layers)")
    layers: Optional[list[Any]] = Field(None, description="Keras-style layer list; see docs/spec.md")
    vars: dict[str, Any] = Field(default_factory=dict, description="values that layers reference as ${name}")

    @model_validator(mode="after")
    def _one_source(self):
        if self.preset is None and not self.layers:
            raise ValueError("give either 'preset:' or a non-empty 'layers:' list")
        if self.preset is not None and self.layers:
            raise ValueError("give either 'preset:' or 'layers:', not both")
        return self


class OptimizerSpec(Section):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="sgd/rmsprop momentum")
    nesterov: bool = Field(False, description="sgd only")
    betas: tuple[UnitInterval, UnitInterval] = Field((0.9, 0.999), description="adam/adamw")


class SchedulerSpec(Section):
    name: Literal["none", "cosine", "step", "onecycle"] = "none"
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up before the schedule (not for onecycle)")
    step_size: int = Field(10, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step: decay factor")
    min_lr: float = Field(0.0, ge=0.0, description="cosine: final learning rate")


class EarlyStoppingSpec(Section):
    patience: Optional[int] = Field(None, ge=1, description="epochs without improvement before stopping; null = off")
    min_delta: float = Field(0.0, ge=0.0)


class MlflowSpec(Section):
    tracking_uri: str = Field(description="MLflow tracking server (http://host:5000) or store (sqlite:///mlflow.db)")
    experiment: Optional[str] = Field(None, description="MLflow experiment name (default: the spec's name)")
    required: bool = Field(False, description="an unreachable server stops the command (default: a warning)")


class LogSpec(Section):
    tensorboard: bool = False
    mlflow: Optional[MlflowSpec] = Field(None, description="log the run to MLflow as well (pip install 'dlx[mlflow]')")


class TrainSpec(Section):
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(64, ge=1, le=1_000_000, description="the global batch: under torchrun each of N "
                            "processes takes 1/N of it, so a spec trains the same at any world size")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: Optional[float] = Field(None, gt=0.0, description="clip the gradient norm to this value")
    metric: Literal["val_accuracy", "val_loss"] = Field("val_accuracy", description="picks the best epoch")
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    compile: bool = Field(False, description="torch.compile the model")
    sync_batch_norm: bool = Field(False, description="under torchrun/--nproc on CUDA: batch norm over the global "
                                  "batch (SyncBatchNorm) instead of each process's share of it")
    precise_bn: Union[Literal["auto", "off"], PositiveInt] = Field(
        "auto", description="before each validation, recompute batch-norm statistics over this many training "
        "images (auto: an eighth of them, 256-4096); off: Keras's moving averages alone")
    log: LogSpec = Field(default_factory=LogSpec)

    @field_validator("precise_bn", mode="before")
    @classmethod
    def _yaml_booleans(cls, value):
        """YAML reads `off`/`on` as booleans."""
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value


class DeviceSpec(Section):
    type: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto = bf16 autocast on CUDA, fp32 elsewhere")
    channels_last: Literal["auto", True, False] = "auto"
    threads: Optional[int] = Field(None, ge=1, le=1024, description="torch CPU threads (default: all cores)")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"type": value} if isinstance(value, str) else value


class OutputSpec(Section):
    dir: str = Field("runs", description="parent folder of run folders")
    save_last: bool = Field(True, description="write checkpoints/last.pt each epoch (needed for --resume)")


class DistillSpec(Section):
    """Knowledge distillation: train this spec's model on a teacher's softened outputs as well as the labels."""

    teacher: str = Field(description="the teacher: a run folder or an ensemble folder (dlx distill also takes a "
                                     "search folder, for its best trial); relative paths from the working folder")
    temperature: float = Field(2.0, gt=0.0, le=100.0, description="T: teacher and student logits are divided by it "
                                                                  "before the softmax of the KL term")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the KL term; 1 − alpha weighs the labels' "
                                                          "cross-entropy")
    cache_budget: Union[int, str] = Field(
        "256MB", description="most bytes of teacher outputs on the training split held at once (bytes or '256MB'); "
                             "above it, or with data.augment, the teacher predicts each batch as it is trained on")

    @field_validator("cache_budget")
    @classmethod
    def _budget(cls, value):
        budget_bytes(value, 1)
        return value


class ExperimentSpec(Section):
    name: str = "experiment"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    device: DeviceSpec = Field(default_factory=DeviceSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    distill: Optional[DistillSpec] = Field(None, description="train on a teacher's outputs too (dlx distill)")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value) or ".." in value:
            raise ValueError("a run name may use letters, digits, '_', '-', '.' (max 100, no '..', no '/'), "
                             f"so it can't place files outside the output folder; got {value!r}")
        return value
