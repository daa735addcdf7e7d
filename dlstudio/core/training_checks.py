"""Checks of a graph's training section against the graph itself, as diagnostics with fixes.

Run by :func:`dlstudio.core.analysis.analyze` through :func:`check_training` after shape
inference, so a loss or a dataset field is compared with the inferred port types.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from dlstudio.core.diffusion_checks import check_diffusion, diffusion_fed_inputs
from dlstudio.core.findings import Analysis, Diagnostic
from dlstudio.core.gan_checks import check_gan, gan_fed_inputs
from dlstudio.core.tensor import FLOAT_DTYPES, TensorType, format_shape
from dlstudio.core.training import (
    BINARY_LOSSES,
    CLASS_LOSSES,
    CLASS_METRICS,
    DATASETS,
    DEVICE_RE,
    IMAGE_FILE_DATASETS,
    LOSSES,
    OPTIMIZERS,
    OWN_OBJECTIVE_TASKS,
    QUANTIZATION_AWARE_TASKS,
    REGRESSION_METRICS,
    SAME_SHAPE_LOSSES,
    SCHEDULERS,
    TASKS,
    TEXT_DATASETS,
    TOPK_RE,
    FieldInfo,
    TrainingConfig,
    dataset_fields,
    default_metrics,
    input_binding,
    language_model_settings,
    loss_output,
    metric_names,
    pruning_end,
    vocabulary_size,
)
from dlstudio.core.vae_checks import check_vae, vae_fed_inputs

Dims = tuple[Any, ...]


def check_training(config: TrainingConfig, analysis: Analysis) -> list[Diagnostic]:
    """Every problem of the training section, as diagnostics attached to the nodes involved."""
    return TrainingChecker(config, analysis).run()


class TrainingChecker:
    """Collects every problem of one training section (never stops at the first)."""

    def __init__(self, config: TrainingConfig, analysis: Analysis,
                 fields: dict[str, FieldInfo] | None = None) -> None:
        """``fields`` replaces the dataset's declared fields (with those of loaded data)."""
        self.config = config
        self.loaded_fields = fields
        self.analysis = analysis
        nodes = analysis.graph.nodes
        self.input_ids = [n.id for n in nodes if n.type == "Input"]
        self.output_ids = [n.id for n in nodes if n.type == "Output"]
        self.found: list[Diagnostic] = []

    def run(self) -> list[Diagnostic]:
        self._unknown_keys()
        self._task()
        fields = self._dataset()
        self._bindings(fields)
        own_objective = self.config.task in OWN_OBJECTIVE_TASKS
        classes = None if own_objective else self._loss(fields)
        self._language_model()
        self._distillation()
        self._task_sections()
        if not own_objective:
            self._auxiliary()
        self._unused_augment()
        self._quantization_aware()
        self._named("optimizer", OPTIMIZERS, self.config.optimizer.type, self.config.optimizer.params)
        if self.config.scheduler is not None:
            self._scheduler()
        if not own_objective:
            self._metrics(classes)
        self._early_stopping()
        self._pruning()
        self._something_to_train()
        if not DEVICE_RE.fullmatch(self.config.device):
            self._error(None, f"training device '{self.config.device[:20]}' is not known",
                        "use auto, cpu, cuda, cuda:N or mps", "training.device")
        return self.found

    def _error(self, node: str | None, message: str, fix: str = "", param: str | None = None,
               severity: str = "error") -> None:
        self.found.append(Diagnostic(severity, node, message, fix, None, param))  # type: ignore[arg-type]

    def _task(self) -> None:
        task = self.config.task
        if task is not None and task not in TASKS:
            self._error(None, f"training task '{task[:40]}' is not known",
                        f"use one of: {', '.join(TASKS)}", "training.task")

    def _unknown_keys(self) -> None:
        c = self.config
        sections: dict[str, BaseModel | None] = {
            "training": c, "training.dataset": c.dataset, "training.loss": c.loss,
            "training.optimizer": c.optimizer, "training.scheduler": c.scheduler,
            "training.early_stopping": c.early_stopping, "training.language_model": c.language_model,
            "training.gan": c.gan, "training.vae": c.vae, "training.diffusion": c.diffusion,
            "training.augment": c.augment, "training.distillation": c.distillation,
            "training.quantization_aware": c.quantization_aware,
            "training.pruning": c.pruning,
        }
        for where, section in sections.items():
            for key in (section.model_extra or {}) if section is not None else {}:
                self._error(None, f"unknown key '{where}.{key[:40]}' is kept but not used",
                            "check the spelling, or open the file with a newer DL Studio", where, "warning")

    # -- dataset and Input bindings -----------------------------------------------------------

    def _dataset(self) -> dict[str, FieldInfo] | None:
        dataset = self.config.dataset
        if dataset.name not in DATASETS:
            self._error(None, f"unknown dataset '{dataset.name[:40]}'",
                        "use one of: " + ", ".join(DATASETS), "training.dataset.name")
            return None
        try:
            declared = dataset_fields(dataset)
            return self.loaded_fields if self.loaded_fields is not None else declared
        except ValidationError as error:
            self._error(None, f"dataset '{dataset.name}': {_describe(error, dataset.params)}",
                        "change or remove the value", "training.dataset.params")
            return None

    def _bindings(self, fields: dict[str, FieldInfo] | None) -> None:
        fed = fed_inputs(self.config, self.analysis)
        binding = input_binding(self.config, [i for i in self.input_ids if i not in fed])
        for node_id, field in binding.items():
            if node_id not in self.input_ids:
                self._error(None, f"the dataset binds field '{field[:40]}' to '{node_id[:40]}', "
                            "which is not an Input node", "bind fields to Input node ids",
                            "training.dataset.inputs")
            elif fields is not None and field not in fields:
                self._error(node_id, f"dataset '{self.config.dataset.name}' has no field '{field[:40]}'",
                            "use one of: " + ", ".join(fields), "training.dataset.inputs")
            elif fields is not None:
                self._fit_input(node_id, field, fields[field])
        for node_id in self.input_ids:
            if node_id not in binding and node_id not in fed:
                self._error(node_id, f"Input '{node_id}' gets no dataset field",
                            f'add "{node_id}": "<field>" to training.dataset.inputs',
                            "training.dataset.inputs")

    def _fit_input(self, node_id: str, field: str, info: FieldInfo) -> None:
        tensor = self.analysis.ports.get((node_id, "output"))
        if tensor is None:
            return
        wanted = tensor.shape[1:]
        if info.shape is not None and not _dims_fit(wanted, info.shape):
            shown = format_shape(["N", *("?" if d is None else d for d in info.shape)])
            self._error(node_id, f"Input '{node_id}' has shape {tensor} but dataset field '{field}' "
                        f"holds {shown}", f"set the Input shape to {_plain_shape(info.shape)}",
                        "shape")
        field_float = info.dtype in FLOAT_DTYPES
        if info.dtype != "any" and field_float != tensor.is_float:
            what = "numbers" if field_float else "integer ids"
            self._error(node_id, f"Input '{node_id}' has dtype {tensor.dtype} but dataset field "
                        f"'{field}' holds {info.dtype} {what}", f"set the Input dtype to {info.dtype}",
                        "dtype")

    # -- loss ------------------------------------------------------------------------------------

    def _loss(self, fields: dict[str, FieldInfo] | None) -> int | None:
        """Check the loss binding; returns the number of class scores the output holds, if known."""
        loss = self.config.loss
        if not self._named("loss", LOSSES, loss.type, loss.params):
            return None
        output = loss_output(self.config, self.output_ids)
        if output is None or output not in self.output_ids:
            self._error(None, f"the loss is bound to '{str(output)[:40]}', which is not an Output node",
                        "set training.loss.output to an Output node id", "training.loss.output")
            return None
        tensor = self.analysis.ports.get((output, "output"))
        info = None if fields is None else fields.get(loss.target)
        if fields is not None and info is None:
            self._error(output, f"the loss target '{loss.target[:40]}' is not a field of dataset "
                        f"'{self.config.dataset.name}'", "use one of: " + ", ".join(fields),
                        "training.loss.target")
        if tensor is None:
            return None
        if loss.type in CLASS_LOSSES:
            return self._class_loss(output, tensor, info)
        self._same_shape_loss(output, tensor, info)
        return 2 if loss.type in BINARY_LOSSES else None

    def _class_loss(self, output: str, tensor: TensorType, info: FieldInfo | None) -> int | None:
        kind = self.config.loss.type
        scores = tensor.shape[1:]
        if not tensor.is_float or not scores:
            self._error(output, f"{kind} needs class scores, but '{output}' gives {tensor.dtype} "
                        f"{tensor}", "end the network with a Linear layer with one output per class")
            return None
        classes = scores[-1]
        if info is not None and info.shape is not None:
            target = info.shape
            if _dims_fit(scores[:-1], target):
                classes = scores[-1]
            elif _dims_fit(scores[1:], target):
                classes = scores[0]
            else:
                self._error(output, f"{kind} compares '{output}' {tensor} with target "
                            f"'{self.config.loss.target}' {_field_shape(target)}",
                            f"make the output {format_shape(['N', *target, 'C'])} with C class scores")
                return None
        if info is not None and info.dtype in FLOAT_DTYPES:
            self._error(output, f"{kind} needs integer class labels, but target "
                        f"'{self.config.loss.target}' holds {info.dtype} values",
                        "use MSELoss or L1Loss for numeric targets")
        if self.config.task == "language_model":
            self._vocabulary(output, classes, info)
        elif info is not None and isinstance(classes, int) and info.classes is not None:
            self._check_classes(output, classes, info.classes)
        return classes if isinstance(classes, int) else None

    def _check_classes(self, output: str, scores: int, classes: int) -> None:
        name = self.config.dataset.name
        if scores < classes:
            self._error(output, f"'{output}' gives {scores} class scores but dataset '{name}' has "
                        f"{classes} classes", f"make the last layer produce {classes} outputs")
        elif scores > classes:
            self._error(output, f"'{output}' gives {scores} class scores but dataset '{name}' has "
                        f"only {classes} classes", f"make the last layer produce {classes} outputs",
                        severity="warning")

    # -- language model --------------------------------------------------------------------------

    def _language_model(self) -> None:
        """A language model learns from a text with a class loss; its settings go unused elsewhere."""
        c = self.config
        if c.task != "language_model":
            if c.language_model is not None:
                self._error(None, f"training.language_model is set but the task is {c.task or 'supervised'}, "
                            "so it is not used", "set training.task to language_model, or remove the "
                            "section", "training.language_model", "warning")
            return
        if c.dataset.name in DATASETS and c.dataset.name not in TEXT_DATASETS:
            self._error(None, f"a language model learns from text, and dataset '{c.dataset.name}' is not "
                        "a text", f"use one of: {', '.join(TEXT_DATASETS)}", "training.dataset.name")
        if c.loss.type in LOSSES and c.loss.type not in CLASS_LOSSES:
            self._error(None, f"a language model scores every token of its vocabulary, which {c.loss.type} "
                        "does not compare", "use CrossEntropyLoss", "training.loss.type")

    def _distillation(self) -> None:
        """A distillation run names its teacher; the settings go unused by other tasks."""
        c = self.config
        if c.task != "distillation":
            if c.distillation is not None:
                self._error(None, f"training.distillation is set but the task is {c.task or 'supervised'}, so it "
                            "is not used", "set training.task to distillation, or remove the section",
                            "training.distillation", "warning")
            return
        if c.distillation is None or c.distillation.teacher is None or c.distillation.teacher_weights is None:
            self._error(None, "distillation needs training.distillation to name the teacher's graph and weights",
                        'add "distillation": {"teacher": "<graph file>", "teacher_weights": "<run folder>"}',
                        "training.distillation")

    def _unused_augment(self) -> None:
        augment = self.config.augment
        if augment is None:
            return
        if self.config.dataset.name not in IMAGE_FILE_DATASETS:
            self._error(None, f"training.augment is set but dataset '{self.config.dataset.name[:40]}' is not "
                        "read from image files, so it is not used",
                        f"use {' or '.join(IMAGE_FILE_DATASETS)}, or remove the section", "training.augment",
                        "warning")
            return
        channels = self.config.dataset.params.get("channels", 3)
        for name in ("mean", "std"):
            values = getattr(augment, name)
            if values is not None and len(values) not in (1, channels):
                self._error(None, f"training.augment.{name} has {len(values)} values for {channels}-channel images",
                            "give one value, or one per channel", f"training.augment.{name}")

    def _quantization_aware(self) -> None:
        """Fake quantization trains one float32 network, and starts within the run."""
        c, where = self.config, "training.quantization_aware"
        if c.quantization_aware is None:
            return
        if (c.task or "supervised") not in QUANTIZATION_AWARE_TASKS:
            self._error(None, f"quantization-aware training needs a {' or '.join(QUANTIZATION_AWARE_TASKS)} "
                        f"task, not {c.task}", "remove training.quantization_aware", where)
        if c.precision != "fp32":
            self._error(None, f"quantization-aware training fake-quantizes float32, not {c.precision}",
                        "set training.precision to fp32", "training.precision")
        if c.quantization_aware.start_epoch >= c.epochs:
            self._error(None, f"training.quantization_aware.start_epoch is {c.quantization_aware.start_epoch} "
                        f"of {c.epochs} epochs, so fake quantization never starts",
                        f"set start_epoch below {c.epochs}", f"{where}.start_epoch")

    def _task_sections(self) -> None:
        """The gan, vae and diffusion tasks' checks; either's section under another task goes unused."""
        c = self.config
        for task, section, check in (("gan", c.gan, check_gan), ("vae", c.vae, check_vae),
                                     ("diffusion", c.diffusion, check_diffusion)):
            if c.task == task:
                check(c, self.analysis, self._error)
            elif section is not None:
                self._error(None, f"training.{task} is set but the task is {c.task or 'supervised'}, so it is "
                            f"not used", f"set training.task to {task}, or remove the section",
                            f"training.{task}", "warning")

    def _vocabulary(self, output: str, scores: int | None, target: FieldInfo | None) -> None:
        size = vocabulary_size(self.config, target)
        if size is None or scores is None or scores == size:
            return
        tokenizer = language_model_settings(self.config).tokenizer
        self._error(output, f"a language model's output must be vocabulary-sized: '{output}' gives "
                    f"{scores} scores per position, but the {tokenizer} vocabulary of dataset "
                    f"'{self.config.dataset.name}' has {size} tokens",
                    f"make the last layer produce {size} outputs")

    def _same_shape_loss(self, output: str, tensor: TensorType, info: FieldInfo | None) -> None:
        kind = self.config.loss.type
        if not tensor.is_float:
            self._error(output, f"{kind} needs a floating-point output, but '{output}' gives {tensor.dtype}")
            return
        if kind in BINARY_LOSSES and info is not None and (info.classes or 2) > 2:
            self._error(output, f"{kind} is for two classes but dataset '{self.config.dataset.name}' "
                        f"has {info.classes}", "use CrossEntropyLoss with one output per class")
            return
        if info is None or info.shape is None:
            return
        out = tensor.shape[1:]
        if _dims_fit(out, info.shape) or (info.shape == () and out == (1,)):
            return
        self._error(output, f"{kind} compares '{output}' {tensor} with target "
                    f"'{self.config.loss.target}' {_field_shape(info.shape)} of another shape",
                    f"make the output {_field_shape(info.shape if info.shape else (1,))}")

    def _something_to_train(self) -> None:
        if not self.analysis.ok or self.analysis.trainable_params:
            return
        if any(node.frozen for node in self.analysis.graph.nodes):
            self._error(None, "nothing to train: every layer with parameters is frozen",
                        "unfreeze a layer", "training")
        else:
            self._error(None, "nothing to train: the graph has no parameters",
                        "add a layer with weights, such as Linear", "training")

    def _auxiliary(self) -> None:
        """Each auxiliary loss: an Output other than the loss's, a float scalar, a weight >= 0."""
        main = loss_output(self.config, self.output_ids)
        for node_id, weight in (self.config.loss.auxiliary or {}).items():
            if self._auxiliary_output(node_id, main):
                self._auxiliary_value(node_id, weight)

    def _auxiliary_output(self, node_id: str, main: str | None) -> bool:
        name, where = node_id[:40], "training.loss.auxiliary"
        if node_id not in self.output_ids:
            known = node_id in self.analysis.graph.node_ids()
            self._error(node_id if known else None, f"the auxiliary loss '{name}' is not an Output node",
                        "connect the scalar loss to an Output node and name that Output's id in "
                        "training.loss.auxiliary", where)
            return False
        if node_id == main:
            self._error(node_id, f"Output '{name}' is the main loss's output, so it cannot also be "
                        "an auxiliary loss", "give the auxiliary loss an Output node of its own, or "
                        "bind the main loss to another Output (training.loss.output)", where)
            return False
        return True

    def _auxiliary_value(self, node_id: str, weight: float) -> None:
        where = "training.loss.auxiliary"
        tensor = self.analysis.ports.get((node_id, "output"))
        if tensor is not None and (tensor.shape != () or not tensor.is_float):
            self._error(node_id, f"the auxiliary loss '{node_id[:40]}' must be one floating-point "
                        f"number, but its Output gets {tensor.dtype} {tensor}",
                        "connect a scalar loss to it, such as a MixtureOfExperts' aux_loss port", where)
        if weight < 0:
            self._error(node_id, f"the auxiliary loss '{node_id[:40]}' has the weight {weight}, "
                        "which would make training push it up", "use a weight of 0 or more "
                        "(0.01 is usual for a load-balancing loss)", where)

    # -- optimizer, scheduler, metrics -------------------------------------------------------------

    def _named(self, section: str, table: dict[str, type[BaseModel]], name: str,
               params: dict[str, Any]) -> bool:
        if name not in table:
            self._error(None, f"unknown {section} '{name[:40]}'", "use one of: " + ", ".join(table),
                        f"training.{section}.type")
            return False
        try:
            table[name].model_validate(params)
        except ValidationError as error:
            self._error(None, f"{section} {name}: {_describe(error, params, table[name])}",
                        "change or remove the value", f"training.{section}.params")
            return False
        return True

    def _scheduler(self) -> None:
        scheduler = self.config.scheduler
        assert scheduler is not None
        if self._named("scheduler", SCHEDULERS, scheduler.type, scheduler.params):
            if scheduler.type == "ReduceLROnPlateau":
                self._monitor(str(scheduler.params.get("monitor", "val_loss")), "training.scheduler.params")

    def _monitor(self, monitor: str, param: str) -> None:
        names = metric_names(self.config)
        if monitor not in names:
            self._error(None, f"cannot monitor '{monitor[:40]}': it is not measured",
                        "use one of: " + ", ".join(names), param)
        elif monitor.startswith("val_") and self.config.validation_split == 0:
            self._error(None, f"monitoring '{monitor}' needs validation data",
                        "set validation_split above 0, or monitor train_loss", param)

    def _early_stopping(self) -> None:
        if self.config.early_stopping is not None:
            self._monitor(self.config.early_stopping.monitor, "training.early_stopping.monitor")

    def _pruning(self) -> None:
        settings, epochs = self.config.pruning, self.config.epochs
        if settings is None:
            return
        end = pruning_end(settings, epochs)
        if end > epochs:
            self._error(None, f"pruning ends after epoch {end}, but training has {epochs} epochs",
                        f"set training.pruning.end_epoch to {epochs} or less, or train longer",
                        "training.pruning.end_epoch")
        if settings.start_epoch > end:
            self._error(None, f"pruning starts at epoch {settings.start_epoch}, after it ends (epoch {end})",
                        f"set training.pruning.start_epoch to {end} or less", "training.pruning.start_epoch")

    def _metrics(self, classes: int | None) -> None:
        loss = self.config.loss.type
        for metric in default_metrics(self.config):
            topk = TOPK_RE.fullmatch(metric)
            if metric in CLASS_METRICS or topk:
                if loss not in CLASS_LOSSES and not (loss in BINARY_LOSSES and not topk):
                    self._error(None, f"metric '{metric}' needs a classification loss, not {loss}",
                                "use CrossEntropyLoss, or the metrics mse and mae", "training.metrics")
                elif topk and classes is not None and int(topk.group(1)) > classes:
                    self._error(None, f"metric '{metric}' asks for more than the {classes} classes",
                                f"use k <= {classes}", "training.metrics")
            elif metric in REGRESSION_METRICS:
                if loss not in SAME_SHAPE_LOSSES:
                    self._error(None, f"metric '{metric}' compares values, but {loss} predicts classes",
                                "use accuracy, topK_accuracy or f1", "training.metrics")
            else:
                self._error(None, f"unknown metric '{metric[:40]}'",
                            "use accuracy, top5_accuracy (any k), f1, mse or mae", "training.metrics")


def fed_inputs(config: TrainingConfig, analysis: Analysis) -> set[str]:
    """Inputs the task feeds, not the data: a GAN's noise, a VAE decoder's z, a diffusion
    network's timestep."""
    input_ids = [n.id for n in analysis.graph.nodes if n.type == "Input"]
    return (gan_fed_inputs(config, input_ids) | vae_fed_inputs(config, input_ids)
            | diffusion_fed_inputs(config, analysis))


def _dims_fit(declared: Dims, actual: Dims) -> bool:
    """Equal rank and equal sizes, where a symbolic (str) or unknown (None) size fits anything."""
    if len(declared) != len(actual):
        return False
    return all(not isinstance(a, int) or not isinstance(b, int) or a == b for a, b in zip(declared, actual, strict=True))


def _plain_shape(shape: Dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _field_shape(shape: Dims) -> str:
    return format_shape(["N", *("?" if d is None else d for d in shape)])


def _describe(error: ValidationError, given: dict[str, Any], model: type[BaseModel] | None = None) -> str:
    first = error.errors(include_url=False)[0]
    name = ".".join(str(p) for p in first["loc"]) if first["loc"] else ""
    if first["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields) if model is not None else ""
        return f"unknown argument '{name[:40]}'" + (f" (arguments: {known})" if known else "")
    if first["type"] == "missing":
        return f"argument '{name}' is required"
    value = given.get(str(first["loc"][0])) if first["loc"] else None
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{name}={shown} is not valid: {message}" if name else message
