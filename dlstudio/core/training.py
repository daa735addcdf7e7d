"""The training section of a graph file: dataset binding, loss, optimizer, schedule and run settings.

Structure is typed here (pydantic, checked when the file loads); the name-dependent arguments
(``optimizer.params``, ``loss.params``, ``dataset.params`` ...) are plain dicts checked by
:func:`dlstudio.core.training_checks.check_training` during analysis, so a bad value shows up as a diagnostic with a fix
instead of making the file unreadable. Each dataset declares its fields here (shapes, dtypes,
classes) so the binding to Input nodes is checked without loading data. No torch import.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_Pos = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Unit = Annotated[float, Field(ge=0, lt=1)]
_PosInt = Annotated[int, Field(ge=1, le=2**31 - 1)]
_Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
_Path = Annotated[str, Field(min_length=1, max_length=4096)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Args(BaseModel):
    """Arguments of one named thing (an optimizer, a loss, a dataset): unknown keys refused."""

    model_config = ConfigDict(extra="forbid")


# --- the section as written in the file ---------------------------------------------------

class DatasetConfig(_Model):
    """Which data to train on, and which field feeds which Input node (``{input id: field}``)."""

    name: str = Field(max_length=100, description="a dataset name, see DATASETS")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict, description="Input node id -> dataset field")


_Weight = Annotated[float, Field(allow_inf_nan=False)]


class LossConfig(_Model):
    """A torch.nn loss comparing an Output node with a dataset field, plus weighted
    ``auxiliary`` scalars (such as a MixtureOfExperts' load-balancing loss) to add to it."""

    type: str = Field(default="CrossEntropyLoss", max_length=100)
    output: str | None = Field(default=None, description="Output node id (default: the first)")
    target: str = Field(default="y", max_length=100, description="dataset field holding the target")
    params: dict[str, Any] = Field(default_factory=dict)
    auxiliary: dict[str, _Weight] | None = Field(
        default=None, max_length=20,
        description="scalar Output node id -> weight: the objective is the loss plus weight x value "
                    "for each; train_loss and val_loss report that sum, since it is what is optimised")


class OptimizerConfig(_Model):
    type: str = Field(default="Adam", max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class SchedulerConfig(_Model):
    type: str = Field(max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class EarlyStoppingConfig(_Model):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_loss"
    patience: _PosInt = 5
    min_delta: _NonNeg = 0.0
    mode: Literal["auto", "min", "max"] = "auto"


Scope = Literal["layer", "global"]


class PruningConfig(_Model):
    """Gradual magnitude pruning while training (``training.pruning``; Zhu and Gupta, 2017): the
    share of zero weights rises from 0 at the start of ``start_epoch`` to ``sparsity`` at the end
    of ``end_epoch`` along ``s * (1 - (1 - progress)^3)`` (fast at first, gently at the end), the
    smallest-magnitude weights zeroed every ``frequency`` steps and kept at zero after every
    optimizer step; the epochs after ``end_epoch`` fine-tune at the target. Weights that are zero
    when the run starts (``dlstudio prune --sparsity`` wrote them) stay zero. Biases and
    normalisation scales are never pruned."""

    sparsity: float = Field(description="share of the prunable weights that end at zero, from 0 up to "
                                        "(not including) 1, e.g. 0.5")
    scope: Scope = Field(default="global", description="global: one magnitude threshold over all prunable "
                                                       "weights; layer: each layer loses the same share")
    start_epoch: _PosInt = Field(default=1, description="the first epoch that prunes (counting from 1)")
    end_epoch: _PosInt | None = Field(
        default=None, description="the epoch at whose end the target is reached (default: half of the epochs)",
        json_schema_extra={"unset": "half of the epochs"})
    frequency: _PosInt | None = Field(
        default=None, description="optimizer steps between two prunings (default: once an epoch)",
        json_schema_extra={"unset": "once an epoch"})

    @field_validator("sparsity")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError(f"sparsity {value} is not a share from 0 up to 1: use e.g. 0.5 to zero half the weights")
        return value


def pruning_end(settings: PruningConfig, epochs: int) -> int:
    """The epoch at whose end gradual pruning reaches its target."""
    return settings.end_epoch if settings.end_epoch is not None else max(1, (epochs + 1) // 2)


class DistillationConfig(_Model):
    """Settings of the ``distillation`` task (``training.distillation``): the teacher whose
    softened outputs the graph (the student) learns from besides the labels. The loss is
    ``(1 - alpha) * label loss + alpha * temperature^2 * KL(teacher || student)`` on the
    outputs divided by ``temperature``."""

    teacher: _Path | None = Field(default=None, description="the teacher's graph file, relative to this one")
    teacher_weights: _Path | None = Field(
        default=None, description="the teacher's trained weights: a run folder or a .safetensors file, "
                                  "relative to this graph file")
    temperature: _Pos = Field(default=4.0, description="softens both outputs before they are compared")
    alpha: Annotated[float, Field(ge=0, le=1)] = Field(default=0.7, description="weight of the teacher's term")


class LanguageModelConfig(_Model):
    """Settings of the ``language_model`` task (``training.language_model``)."""

    tokenizer: Literal["char", "byte"] = Field(
        default="char", description="char: one token per distinct character of the text (the "
                                    "vocabulary is saved with the run); byte: one per UTF-8 byte (256)")
    sample_temperature: _NonNeg | None = Field(
        default=None, description="temperature of the text drawn after each epoch and by Sample: below 1 "
                                  "safer choices, above 1 wilder, 0 always the likeliest (default 1)",
        json_schema_extra={"unset": "1"})
    sample_top_k: _PosInt | None = Field(
        default=None, description="draw sample text from the K likeliest tokens only (default: all)",
        json_schema_extra={"unset": "all"})


GanLoss = Literal["non_saturating", "hinge", "wgan_gp"]


class GanConfig(_Model):
    """Settings of the ``gan`` task (``training.gan``): which Output is the generator's and
    which the discriminator's, the Inputs they read, the loss, and each part's learning rate.
    The optimizer's type and other arguments come from ``training.optimizer``; its ``lr`` and
    ``betas`` are replaced by these."""

    #: entries of the training section this task does not use (see :func:`replaced_settings`)
    replaces: ClassVar[tuple[str, ...]] = ("loss", "optimizer.params.lr", "optimizer.params.betas")

    generator: str | None = Field(default=None, max_length=100, description="the generator's Output node id",
                                  json_schema_extra={"node": "Output"})
    discriminator: str | None = Field(default=None, max_length=100,
                                      description="the discriminator's Output node id (one score per sample)",
                                      json_schema_extra={"node": "Output"})
    noise: str | None = Field(default=None, max_length=100,
                              description="the generator's Input node id: the task feeds it noise",
                              json_schema_extra={"node": "Input"})
    real: str | None = Field(default=None, max_length=100,
                             description="the discriminator's Input node id: it gets the real data "
                                         "(field x unless training.dataset.inputs binds another)",
                             json_schema_extra={"node": "Input"})
    loss: GanLoss = Field(default="non_saturating",
                          description="non_saturating (the DCGAN loss), hinge, or wgan_gp (Wasserstein "
                                      "with a gradient penalty)")
    generator_lr: _Pos = 2e-4
    discriminator_lr: _Pos = 2e-4
    betas: tuple[_Unit, _Unit] = Field(default=(0.5, 0.999), description="Adam's betas for both parts")
    discriminator_steps: Annotated[int, Field(ge=1, le=100)] = Field(
        default=1, description="discriminator updates per generator update (5 is usual for wgan_gp)")
    gradient_penalty: _NonNeg = Field(default=10.0, description="weight of wgan_gp's gradient penalty")
    grid: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=64, description="samples in the fixed-noise grid saved after each epoch")


class AugmentConfig(_Model):
    """Image augmentations of an image dataset read from files (``training.augment``): the
    random ones change training samples only, drawn by seed, epoch and sample; ``mean`` and
    ``std`` normalise every sample, in training, validation and prediction alike."""

    crop_padding: _Count = Field(default=0, description="pad by this many pixels, then crop back at a "
                                                        "random place (0: no random crop)")
    flip: bool = Field(default=False, description="mirror left to right, half of the time")
    brightness: Annotated[float, Field(ge=0, le=1)] = Field(default=0.0, description="colour jitter")
    contrast: Annotated[float, Field(ge=0, le=1)] = Field(default=0.0, description="colour jitter")
    saturation: Annotated[float, Field(ge=0, le=1)] = Field(default=0.0, description="colour jitter")
    mean: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        default=None, min_length=1, max_length=3, description="per channel, of pixels scaled to 0..1")
    std: list[_Pos] | None = Field(default=None, min_length=1, max_length=3, description="per channel")


VaeLoss = Literal["bce", "mse"]


class VaeConfig(_Model):
    """Settings of the ``vae`` task (``training.vae``): the encoder reads Input ``data`` and gives
    two Outputs, ``mu`` and ``logvar``; the decoder reads Input ``latent`` (the task feeds it z)
    and gives Output ``decoder``, the reconstruction."""

    data: str | None = Field(default=None, max_length=100,
                             description="the encoder's Input node id: it gets the data (field x unless "
                                         "training.dataset.inputs binds another)")
    mu: str | None = Field(default=None, max_length=100, description="the encoder's Output of latent means")
    logvar: str | None = Field(default=None, max_length=100,
                               description="the encoder's Output of latent log-variances (mu's shape)")
    latent: str | None = Field(default=None, max_length=100,
                               description="the decoder's Input node id: the task feeds it z")
    decoder: str | None = Field(default=None, max_length=100,
                                description="the decoder's Output node id: the reconstruction")
    loss: VaeLoss = Field(default="bce", description="bce: the decoder gives logits of pixels scaled to "
                                                     "[0, 1]; mse: it gives the pixels themselves")
    kl_weight: _NonNeg = Field(default=1.0, description="weight of the KL term (beta)")
    kl_warmup_epochs: _Count = Field(default=0, description="epochs over which the KL weight rises "
                                                            "linearly from 0 to kl_weight")
    grid: Annotated[int, Field(ge=2, le=1024)] = Field(
        default=64, description="images in the reconstructions and samples grids saved after each epoch")


DiffusionSchedule = Literal["linear", "cosine"]


class DiffusionConfig(_Model):
    """Settings of the ``diffusion`` task (``training.diffusion``): the noise schedule, the EMA
    of the weights that samples are drawn with, the epoch grid, and which Input is which (by
    default the timestep Input is the one holding one number per sample, shape [])."""

    schedule: DiffusionSchedule = Field(
        default="linear", description="linear: betas from beta_start to beta_end (DDPM); cosine: "
                                      "Nichol and Dhariwal's, the signal falling as cos^2")
    timesteps: Annotated[int, Field(ge=2, le=100_000)] = Field(default=1000, description="noise levels T")
    beta_start: Annotated[float, Field(gt=0, lt=1)] = Field(default=1e-4, description="the linear schedule's first beta")
    beta_end: Annotated[float, Field(gt=0, lt=1)] = Field(default=0.02, description="the linear schedule's last beta")
    ema_decay: _Unit = Field(default=0.0, description="decay of the moving average of the weights "
                                                      "that samples are drawn with (0: no average; 0.999 is usual)")
    image: str | None = Field(default=None, max_length=100,
                              description="the image Input node id (default: the Input that is not the timestep)")
    timestep: str | None = Field(default=None, max_length=100,
                                 description="the timestep Input node id (default: the Input of shape [])")
    grid: Annotated[int, Field(ge=1, le=1024)] = Field(default=64, description="samples in the grid saved after each epoch")
    grid_steps: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=50, description="DDIM steps that draw the epoch grid (at most timesteps)")


QuantizedEngine = Literal["x86", "fbgemm", "qnnpack", "onednn"]
#: Tasks whose network quantization-aware training can fake-quantize (one network, one input binding).
QUANTIZATION_AWARE_TASKS = ("supervised", "distillation")


class QuantizationAwareConfig(_Model):
    """Quantization-aware training (``training.quantization_aware``): int8 fake quantization of
    weights and activations (torch.ao's for ``backend``) from epoch ``start_epoch`` on, so the
    weights learn to live with int8 rounding before ``export --quantize int8``."""

    backend: QuantizedEngine = Field(default="x86", description="the int8 kernels the ranges are chosen "
                                                                "for: x86 or fbgemm (server CPUs), qnnpack (ARM)")
    start_epoch: _Count = Field(default=0, description="epochs trained in float before fake quantization "
                                                       "starts (0: from the first step)")


#: The built-in key maps of published checkpoints (``train/keymaps.py`` defines them), named here
#: so that the checks and the app list them without importing torch.
KEY_MAPS = ("torchvision-resnet", "torchvision-vgg", "torchvision-mobilenet", "hf-gpt2", "hf-bert", "hf-mamba")


class TrainingConfig(_Model):
    """The ``training`` section of a graph file."""

    task: str | None = Field(default=None, max_length=100,
                             description="the kind of training, see TASKS (default: supervised)")
    language_model: LanguageModelConfig | None = Field(
        default=None, description="settings of the language_model task (saved only when set)")
    gan: GanConfig | None = Field(default=None, description="settings of the gan task (saved only when set)")
    distillation: DistillationConfig | None = Field(
        default=None, description="settings of the distillation task (saved only when set)")
    vae: VaeConfig | None = Field(default=None, description="settings of the vae task (saved only when set)")
    diffusion: DiffusionConfig | None = Field(
        default=None, description="settings of the diffusion task (saved only when set)")
    dataset: DatasetConfig
    loss: LossConfig = Field(default_factory=LossConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig | None = None
    epochs: _PosInt = 10
    batch_size: Annotated[int, Field(ge=1, le=2**20)] = 32
    validation_split: _Unit = 0.2
    metrics: list[str] = Field(default_factory=list, max_length=20)
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    device: str = Field(default="auto", max_length=20)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    grad_clip: _Pos | None = Field(default=None, description="max gradient norm")
    early_stopping: EarlyStoppingConfig | None = None
    pruning: PruningConfig | None = Field(
        default=None, description="gradual magnitude pruning while training (saved only when set)")
    deterministic: bool = False
    init_weights: str | None = Field(
        default=None, max_length=4096,
        description="start from these weights (transfer learning): a .safetensors file or an earlier "
                    "run's folder, relative to the graph file; matched by <node id>.<parameter>")
    init_weights_map: str | None = Field(
        default=None, max_length=4096,
        description="how the init_weights file's keys become the graph's: a built-in map "
                    f"({', '.join(KEY_MAPS)}) or a JSON rename file; unset: keys as they are, or a "
                    "built-in map that fits them exactly")
    augment: AugmentConfig | None = Field(
        default=None, description="augmentations of images read from files (image_folder, image_csv)")
    num_workers: Annotated[int, Field(ge=0, le=64)] | None = Field(
        default=None, description="processes decoding images read from files (default: a few, by CPU count)")
    quantization_aware: QuantizationAwareConfig | None = Field(
        default=None, description="train with int8 fake quantization (saved only when set)")


# --- argument declarations of named things --------------------------------------------------

class SGDArgs(_Args):
    lr: _Pos = 0.01
    momentum: _NonNeg = 0.0
    dampening: _NonNeg = 0.0
    weight_decay: _NonNeg = 0.0
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov(self) -> SGDArgs:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        return self


class AdamArgs(_Args):
    lr: _Pos = 0.001
    betas: tuple[_Unit, _Unit] = (0.9, 0.999)
    eps: _Pos = 1e-8
    weight_decay: _NonNeg = 0.0
    amsgrad: bool = False


class AdamWArgs(AdamArgs):
    weight_decay: _NonNeg = 0.01


class RMSpropArgs(_Args):
    lr: _Pos = 0.01
    alpha: _Unit = 0.99
    eps: _Pos = 1e-8
    weight_decay: _NonNeg = 0.0
    momentum: _NonNeg = 0.0
    centered: bool = False


class StepLRArgs(_Args):
    step_size: _PosInt = 10
    gamma: _Pos = 0.1


class CosineAnnealingLRArgs(_Args):
    T_max: _PosInt | None = Field(default=None, description="epochs (default: all of them)")
    eta_min: _NonNeg = 0.0


class OneCycleLRArgs(_Args):
    max_lr: _Pos | None = Field(default=None, description="peak LR (default: the optimizer's lr)")
    pct_start: Annotated[float, Field(gt=0, lt=1)] = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    div_factor: _Pos = 25.0
    final_div_factor: _Pos = 1e4
    three_phase: bool = False


class ReduceLROnPlateauArgs(_Args):
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: _Count = 10
    threshold: _NonNeg = 1e-4
    threshold_mode: Literal["rel", "abs"] = "rel"
    cooldown: _Count = 0
    min_lr: _NonNeg = 0.0


class CrossEntropyLossArgs(_Args):
    weight: list[_NonNeg] | None = None
    ignore_index: int = -100
    label_smoothing: Annotated[float, Field(ge=0, le=1)] = 0.0


class NLLLossArgs(_Args):
    weight: list[_NonNeg] | None = None
    ignore_index: int = -100


class NoArgs(_Args):
    pass


class HuberLossArgs(_Args):
    delta: _Pos = 1.0


class SmoothL1LossArgs(_Args):
    beta: _NonNeg = 1.0


class BCEWithLogitsLossArgs(_Args):
    pos_weight: list[_NonNeg] | None = None


#: Training tasks by name, each implemented by a module of :mod:`dlstudio.train.tasks`; named
#: here too so that ``dlstudio validate`` checks the name without importing torch.
TASKS: dict[str, str] = {
    "supervised": "the Input fields go in; a loss compares an Output with a target field",
    "language_model": "predict the next token at every position of windows slid over a text",
    "gan": "a generator and a discriminator, two Output-rooted parts of one graph, trained in turn",
    "distillation": "supervised, and the output also learns a frozen teacher graph's softened outputs",
    "vae": "an encoder (Outputs mu, logvar) and a decoder (its own Input z) trained on reconstruction and KL",
    "diffusion": "denoising diffusion (DDPM): predict the noise added to an image at a drawn timestep",
}
#: Tasks whose objective is their own: no training.loss compares an Output with a field.
OWN_OBJECTIVE_TASKS = ("gan", "diffusion", "vae")
DEFAULT_TASK = "supervised"

OPTIMIZERS: dict[str, type[_Args]] = {
    "SGD": SGDArgs, "Adam": AdamArgs, "AdamW": AdamWArgs, "RMSprop": RMSpropArgs,
}
SCHEDULERS: dict[str, type[_Args]] = {
    "StepLR": StepLRArgs, "CosineAnnealingLR": CosineAnnealingLRArgs,
    "OneCycleLR": OneCycleLRArgs, "ReduceLROnPlateau": ReduceLROnPlateauArgs,
}
#: Losses whose output holds class scores (class dim 1, or last with a target one rank lower).
CLASS_LOSSES: dict[str, type[_Args]] = {"CrossEntropyLoss": CrossEntropyLossArgs, "NLLLoss": NLLLossArgs}
#: Losses comparing an output with a target of the same shape.
SAME_SHAPE_LOSSES: dict[str, type[_Args]] = {
    "MSELoss": NoArgs, "L1Loss": NoArgs, "HuberLoss": HuberLossArgs, "SmoothL1Loss": SmoothL1LossArgs,
    "BCEWithLogitsLoss": BCEWithLogitsLossArgs, "BCELoss": NoArgs,
}
LOSSES: dict[str, type[_Args]] = {**CLASS_LOSSES, **SAME_SHAPE_LOSSES}
BINARY_LOSSES = frozenset({"BCEWithLogitsLoss", "BCELoss"})

DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")
TOPK_RE = re.compile(r"top([1-9]\d?)_accuracy")
CLASS_METRICS = ("accuracy", "f1")
REGRESSION_METRICS = ("mse", "mae")


# --- datasets: declared fields ---------------------------------------------------------------

@dataclass(frozen=True)
class FieldInfo:
    """A dataset field as one sample sees it. ``shape`` None: known once loaded; a None dim: any."""

    shape: tuple[int | None, ...] | None
    dtype: str
    classes: int | None = None


@dataclass(frozen=True)
class DatasetDecl:
    """A dataset name: its arguments and the fields it yields (None: any names, known on load)."""

    summary: str
    args: type[_Args]
    fields: Callable[[Any], dict[str, FieldInfo] | None]


class DigitsArgs(_Args):
    layout: Literal["image", "flat"] = "image"


class MoonsArgs(_Args):
    samples: Annotated[int, Field(ge=10, le=10**6)] = 1000
    noise: _NonNeg = 0.1


class SpiralsArgs(_Args):
    samples: Annotated[int, Field(ge=10, le=10**6)] = 1500
    classes: Annotated[int, Field(ge=2, le=10)] = 3
    noise: _NonNeg = 0.2
    turns: _Pos = 1.5


class TimeSeriesArgs(_Args):
    kind: Literal["sine", "sines", "sawtooth", "square", "random_walk"] = "sine"
    samples: Annotated[int, Field(ge=10, le=10**6)] = 2000
    length: Annotated[int, Field(ge=2, le=10_000)] = 32
    horizon: Annotated[int, Field(ge=1, le=1000)] = 1
    noise: _NonNeg = 0.05


class TokenTaskArgs(_Args):
    samples: Annotated[int, Field(ge=10, le=10**6)] = 4000
    length: Annotated[int, Field(ge=2, le=4096)] = 12
    vocab: Annotated[int, Field(ge=3, le=100_000)] = 12


class CopyArgs(TokenTaskArgs):
    delay: Annotated[int, Field(ge=0, le=4095)] = 3


class ParquetArgs(_Args):
    """A table file: the column to predict, the input columns, which of them are categories."""

    path: _Path
    target: str
    features: list[str] | None = None
    categorical: list[str] | None = None
    task: Literal["auto", "classification", "regression"] = "auto"


class CsvArgs(ParquetArgs):
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","


class HFDatasetArgs(_Args):
    path: _Path = Field(description="a folder written by Hugging Face datasets' save_to_disk")
    target: str = Field(default="label", description="the column to predict")
    features: list[str] | None = Field(default=None, description="the input columns (default: all "
                                                                 "but the target); one image column, or table columns")
    categorical: list[str] | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    split: str = Field(default="train", max_length=100, description="the split to train on (a saved DatasetDict)")
    val_split: str | None = Field(default=None, max_length=100, description="the split to validate on "
                                                                           "(replaces validation_split)")
    size: tuple[_PosInt, _PosInt] = Field(default=(32, 32), description="height and width of image columns")
    channels: Literal[1, 3] = 3


class NpzArgs(_Args):
    path: _Path


class ImageFolderArgs(_Args):
    path: _Path
    size: tuple[_PosInt, _PosInt] = (32, 32)
    channels: Literal[1, 3] = 3
    val_path: _Path | None = Field(default=None, description="a folder of validation images, sorted in "
                                                             "the same class sub-folders (replaces validation_split)")


class ImageCsvArgs(_Args):
    path: _Path
    image_column: str = Field(default="image", description="column of image paths, relative to the CSV file")
    label_column: str = Field(default="label", description="column of class labels (names or numbers)")
    size: tuple[_PosInt, _PosInt] = (32, 32)
    channels: Literal[1, 3] = 3
    val_path: _Path | None = Field(default=None, description="a CSV file of validation images (replaces "
                                                             "validation_split)")


_Length = Annotated[int, Field(ge=2, le=100_000)]


class TextArgs(_Args):
    path: _Path
    length: _Length = 64


class ShakespeareArgs(_Args):
    length: _Length = 64


#: The bundled text (dlstudio/resources/shakespeare.txt): Hamlet, Macbeth and Julius Caesar from
#: Project Gutenberg (public domain), 393,594 characters of which this many are distinct.
SHAKESPEARE_CHARACTERS = 70
#: Datasets read from the user's files (every one needs a path); the others ship or are made here.
FILE_DATASETS = ("csv", "parquet", "hf_dataset", "npz", "image_folder", "image_csv", "text")
#: Datasets of image files, decoded lazily batch by batch (augmentations apply to these).
IMAGE_FILE_DATASETS = ("image_folder", "image_csv")
#: Datasets that are one text, which the language_model task reads whole.
TEXT_DATASETS = ("text", "shakespeare")
#: The tokens of the byte tokenizer.
BYTE_VOCABULARY = 256


def _xy(x: tuple[int | None, ...] | None, x_dtype: str, y: tuple[int | None, ...] | None,
        y_dtype: str = "int64", classes: int | None = None) -> dict[str, FieldInfo]:
    return {"x": FieldInfo(x, x_dtype), "y": FieldInfo(y, y_dtype, classes)}


DATASETS: dict[str, DatasetDecl] = {
    "digits": DatasetDecl("scikit-learn's 8x8 handwritten digits (1797 samples, 10 classes)", DigitsArgs,
                          lambda a: _xy((1, 8, 8) if a.layout == "image" else (64,), "float32", (), classes=10)),
    "iris": DatasetDecl("Fisher's iris flowers: 4 features, 3 classes", NoArgs,
                        lambda a: _xy((4,), "float32", (), classes=3)),
    "wine": DatasetDecl("wine recognition: 13 features, 3 classes", NoArgs,
                        lambda a: _xy((13,), "float32", (), classes=3)),
    "breast_cancer": DatasetDecl("breast cancer Wisconsin: 30 features, 2 classes", NoArgs,
                                 lambda a: _xy((30,), "float32", (), classes=2)),
    "moons": DatasetDecl("two interleaving half circles in 2-D", MoonsArgs,
                         lambda a: _xy((2,), "float32", (), classes=2)),
    "spirals": DatasetDecl("interleaved spirals in 2-D, one per class", SpiralsArgs,
                           lambda a: _xy((2,), "float32", (), classes=a.classes)),
    "timeseries": DatasetDecl("noisy periodic series: predict the next `horizon` values of a window",
                              TimeSeriesArgs,
                              lambda a: _xy((a.length, 1), "float32", (a.horizon,), "float32")),
    "copy": DatasetDecl("token sequences; the target repeats the input `delay` steps later", CopyArgs,
                        lambda a: _xy((a.length,), "int64", (a.length,), classes=a.vocab)),
    "reverse": DatasetDecl("token sequences; the target is the input reversed", TokenTaskArgs,
                           lambda a: _xy((a.length,), "int64", (a.length,), classes=a.vocab)),
    "csv": DatasetDecl("a CSV file: `target` column, numeric features standardised, others encoded",
                       CsvArgs, lambda a: _xy((None,), "float32", None, "any")),
    "parquet": DatasetDecl("a Parquet file: `target` column, numeric features standardised, others encoded",
                           ParquetArgs, lambda a: _xy((None,), "float32", None, "any")),
    "hf_dataset": DatasetDecl("a Hugging Face dataset saved with save_to_disk: an image or table columns, "
                              "and a target column", HFDatasetArgs, lambda a: None),
    "npz": DatasetDecl("a NumPy .npz file: every array is a field", NpzArgs, lambda a: None),
    "image_folder": DatasetDecl("a folder with one sub-folder of images per class", ImageFolderArgs,
                                lambda a: _xy((a.channels, *a.size), "float32", ())),
    "image_csv": DatasetDecl("a CSV file of image paths and class labels", ImageCsvArgs,
                             lambda a: _xy((a.channels, *a.size), "float32", ())),
    "text": DatasetDecl("a text file tokenised by character; the target is the next character", TextArgs,
                        lambda a: _xy((a.length,), "int64", (a.length,))),
    "shakespeare": DatasetDecl("three Shakespeare plays shipped with DL Studio (394 KB of text); the "
                               "target is the next character", ShakespeareArgs,
                               lambda a: _xy((a.length,), "int64", (a.length,), classes=SHAKESPEARE_CHARACTERS)),
}


def dataset_args(config: DatasetConfig) -> Any:
    """The validated arguments of a dataset (raises KeyError or pydantic's ValidationError)."""
    return DATASETS[config.name].args.model_validate(config.params)


def dataset_fields(config: DatasetConfig) -> dict[str, FieldInfo] | None:
    """The fields a dataset yields, or None when unknown until loaded."""
    return DATASETS[config.name].fields(dataset_args(config))


# --- resolution --------------------------------------------------------------------------------

def input_binding(config: TrainingConfig, input_ids: list[str]) -> dict[str, str]:
    """``{Input node id: field}``: the declared binding, or ``x`` for a lone unbound Input (a
    GAN's real-data Input, whose noise Input the task feeds)."""
    if config.dataset.inputs:
        return dict(config.dataset.inputs)
    if config.task in ("gan", "vae"):
        return {data: "x"} if (data := generative_data_input(config)) is not None else {}
    return {input_ids[0]: "x"} if len(input_ids) == 1 else {}


def generative_data_input(config: TrainingConfig) -> str | None:
    """The Input node a GAN's discriminator or a VAE's encoder reads the data through."""
    if config.task == "gan":
        return config.gan.real if config.gan is not None else None
    return config.vae.data if config.task == "vae" and config.vae is not None else None


def loss_output(config: TrainingConfig, output_ids: list[str]) -> str | None:
    return config.loss.output or (output_ids[0] if output_ids else None)


def init_weights_path(source: str, base_dir: Path | None) -> Path:
    """Where the pretrained weights ``source`` names are: a relative path starts at
    ``base_dir``, the graph file's folder."""
    path = Path(source).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def default_metrics(config: TrainingConfig) -> list[str]:
    """The metrics as configured, or a sensible default for the loss (accuracy for classes)."""
    if config.metrics or config.task in OWN_OBJECTIVE_TASKS:
        return list(config.metrics)
    if config.loss.type in CLASS_LOSSES or config.loss.type in BINARY_LOSSES:
        return ["accuracy"]
    return ["mae"] if config.loss.type in SAME_SHAPE_LOSSES else []


def resolve_training(config: TrainingConfig, input_ids: list[str], output_ids: list[str]) -> TrainingConfig:
    """A copy with every default written out: bindings, metrics and all named arguments."""
    data = config.model_dump(mode="json")
    data["dataset"]["inputs"] = input_binding(config, input_ids)
    data["dataset"]["params"] = dataset_args(config.dataset).model_dump(mode="json")
    data["loss"]["output"] = loss_output(config, output_ids)
    data["loss"]["params"] = LOSSES[config.loss.type].model_validate(config.loss.params).model_dump(mode="json")
    data["optimizer"]["params"] = _args_of(OPTIMIZERS, config.optimizer.type, config.optimizer.params)
    if config.scheduler is not None:
        data["scheduler"]["params"] = _args_of(SCHEDULERS, config.scheduler.type, config.scheduler.params)
    data["metrics"] = default_metrics(config)
    if config.task == "language_model":
        data["language_model"] = language_model_settings(config).model_dump(mode="json", exclude_none=True)
    if config.task == "gan" and config.gan is not None:
        data["gan"] = config.gan.model_dump(mode="json")
    if config.task == "diffusion":
        data["diffusion"] = diffusion_settings(config).model_dump(mode="json")
    if config.task in OWN_OBJECTIVE_TASKS:
        # no loss compares an Output with a field: the real images are what the run keeps as target
        data["loss"]["target"] = next(iter(data["dataset"]["inputs"].values()), config.loss.target)
    if config.task == "vae" and config.vae is not None:
        data["vae"] = config.vae.model_dump(mode="json")
        data["loss"]["target"] = next(iter(data["dataset"]["inputs"].values()), config.loss.target)
    return TrainingConfig.model_validate(data)


def task_settings(task: str) -> type[BaseModel] | None:
    """The model of a task's own settings, kept under ``training.<task>`` (``training.gan``): the
    training section's field named as the task, so a task declares its settings once, there."""
    info = TrainingConfig.model_fields.get(task) if task in TASKS else None
    if info is None:
        return None
    kinds = typing.get_args(info.annotation) or (info.annotation,)
    return next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)


def replaced_settings(task: str) -> tuple[str, ...]:
    """Entries of the training section that ``task`` replaces by its own settings and so does not
    use (the GAN's ``loss`` and ``optimizer.params.lr``), as its settings model declares them."""
    model = task_settings(task)
    return tuple(getattr(model, "replaces", ())) if model is not None else ()


def diffusion_settings(config: TrainingConfig) -> DiffusionConfig:
    """The diffusion task's settings: the section as written, or the defaults."""
    return config.diffusion or DiffusionConfig()


def language_model_settings(config: TrainingConfig) -> LanguageModelConfig:
    """The language_model task's settings: the section as written, or the defaults."""
    return config.language_model or LanguageModelConfig()


def vocabulary_size(config: TrainingConfig, target: FieldInfo | None) -> int | None:
    """Tokens a language model chooses from: 256 bytes, or the text's distinct characters
    (known before loading only for a bundled text)."""
    if language_model_settings(config).tokenizer == "byte":
        return BYTE_VOCABULARY
    return target.classes if target is not None else None


def _args_of(table: dict[str, type[_Args]], name: str, params: dict[str, Any]) -> dict[str, Any]:
    return table[name].model_validate(params).model_dump(mode="json")


def metric_names(config: TrainingConfig) -> list[str]:
    """Names a monitor may use: train_loss, val_loss and val_<metric> for each metric (and
    val_bits_per_char for a language model)."""
    task = {"language_model": ["val_bits_per_char"],
            "gan": ["val_loss/generator", "val_loss/discriminator"],
            "vae": ["val_loss/reconstruction", "val_loss/kl"]}.get(config.task or "", [])
    return ["train_loss", "val_loss", *task] + [f"val_{m}" for m in default_metrics(config)]


def monitor_mode(monitor: str, mode: str) -> str:
    """``min`` for losses and errors, ``max`` for accuracies and F1, unless given."""
    if mode != "auto":
        return mode
    return "min" if monitor.endswith(("loss", "mse", "mae")) else "max"
