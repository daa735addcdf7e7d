"""The Training panel: the graph's training section as a form, problems to fix, and run controls.

The task (:data:`~dlstudio.core.training.TASKS`) comes first; its own settings form is generated
from its settings model (:func:`~dlstudio.core.training.task_settings`), and the entries it
replaces (a GAN's loss and learning rate) are hidden, so a new task needs no code here. Every edit goes through the document's undoable ``set_graph_field("training", ...)``; the form
redraws from the document after each analysis (undo included), touching only editors whose
value changed. Problems that would stop a run (graph errors, training checks, a device this
machine lacks) are listed before the run starts, and Start stays off until they are fixed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dlstudio.core.analysis import Analysis, Diagnostic
from dlstudio.core.starter import suggest_training
from dlstudio.core.training import (
    DATASETS,
    DEFAULT_TASK,
    KEY_MAPS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULERS,
    TASKS,
    TrainingConfig,
    init_weights_path,
    replaced_settings,
    task_settings,
)
from dlstudio.core.training_checks import check_training
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels import plain_label, set_text_colour
from dlstudio.ui.theme import colors, plain_tooltip
from dlstudio.ui.training.forms import ArgsForm, show
from dlstudio.ui.training.widgets import LiveText

PRECISIONS = ("fp32", "bf16", "fp16")
#: The key map entry meaning none: names as they are, or a built-in map that fits exactly.
AUTO_KEY_MAP = "automatic"
NO_SCHEDULE = "none"


def available_devices() -> list[tuple[str, str]]:
    """(value, label) of every device this machine has: the CPU, each CUDA GPU by name, MPS."""
    import torch

    found = [("auto", "auto (best available)"), ("cpu", f"CPU ({os.cpu_count() or 1} cores)")]
    if torch.cuda.is_available():
        found += [(f"cuda:{i}", f"cuda:{i} — {torch.cuda.get_device_name(i)}")
                  for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(("mps", "Apple GPU (MPS)"))
    return found


def default_training(document: GraphDocument) -> dict[str, Any]:
    """A starting training section: a built-in dataset and a loss that fit the Input and Output."""
    return suggest_training(document.graph, document.analysis)


def run_problems(document: GraphDocument, devices: list[str] | None) -> list[Diagnostic]:
    """What stops a run now, errors first: the graph's, the training section's, the device."""
    analysis: Analysis = document.analysis
    config = document.graph.training
    if config is None:
        return [Diagnostic("error", None, "this graph has no training section", "click Add training")]
    found = list(analysis.errors)
    found += [d for d in check_training(config, analysis) if d.severity != "error"]
    if devices is not None and config.device not in devices and config.device != "auto":
        found.append(Diagnostic("error", None, f"device {config.device} is not available on this machine",
                                f"pick one of: {', '.join(devices)}", param="training.device"))
    if config.init_weights and not init_weights_path(config.init_weights, document.folder).exists():
        found.append(Diagnostic("error", None, f"pretrained weights '{config.init_weights}' are not there",
                                "choose a .safetensors file or a run folder, or clear Start from",
                                param="training.init_weights"))
    key_map = config.init_weights_map
    if key_map and key_map not in KEY_MAPS and not init_weights_path(key_map, document.folder).is_file():
        found.append(Diagnostic("error", None, f"key map '{key_map}' is neither a built-in map nor a file",
                                f"choose one of {', '.join(KEY_MAPS)}, a JSON rename file, or automatic",
                                param="training.init_weights_map"))
    return sorted(found, key=lambda d: d.severity != "error")


class TrainPanel(QWidget):
    """The training section editor with problems and run controls."""

    node_activated = Signal(str)

    def __init__(self, document: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("train_panel")
        self.document = document
        self.devices: list[tuple[str, str]] | None = None
        self.problems: list[Diagnostic] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._controls())
        self.message = plain_label("", wrap=True)
        self.message.hide()
        layout.addWidget(self.message)
        self.add_button = QPushButton("Add training section")
        self.add_button.clicked.connect(self.add_section)
        layout.addWidget(self.add_button)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.form = QWidget()
        self._build_form(QVBoxLayout(self.form))
        scroll.setWidget(self.form)
        layout.addWidget(scroll, 1)
        self.problem_list = QListWidget()
        self.problem_list.setWordWrap(True)
        self.problem_list.setMaximumHeight(110)
        self.problem_list.itemActivated.connect(self._problem_activated)
        layout.addWidget(self.problem_list)
        document.analysed.connect(lambda _a: self.refresh())
        document.reset.connect(self.refresh)
        if "torch" in sys.modules:
            self.refresh_devices()
        self.refresh()

    # ----- construction ------------------------------------------------------------------------

    def _controls(self) -> QVBoxLayout:
        box = QVBoxLayout()
        row = QHBoxLayout()
        self.buttons: list[QToolButton] = []
        for _ in range(3):
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setMinimumWidth(70)
            self.buttons.append(button)
            row.addWidget(button)
        row.addStretch(1)
        box.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        box.addWidget(self.progress)
        self.status = LiveText("", lines=2, muted=True, small=True)
        box.addWidget(self.status)
        return box

    def set_actions(self, actions: list[QAction]) -> None:
        for button, action in zip(self.buttons, actions, strict=True):
            button.setDefaultAction(action)

    def _group(self, layout: QVBoxLayout, title: str) -> QFormLayout:
        group = QGroupBox(title)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addWidget(group)
        return form

    def _combo(self, items: list[str], key: tuple[str, ...]) -> QComboBox:
        combo = QComboBox()
        for item in items:
            combo.addItem(item, item)
        combo.activated.connect(lambda i, c=combo: self._set(key, c.itemData(i)))
        return combo

    def _build_form(self, layout: QVBoxLayout) -> None:
        layout.setContentsMargins(0, 0, 0, 0)
        self._task_group(layout)
        data = self._group(layout, "Data")
        self.dataset = self._combo(list(DATASETS), ("dataset", "name"))
        for i, (name, decl) in enumerate(DATASETS.items()):
            self.dataset.setItemData(i, plain_tooltip(f"{name}: {decl.summary}"), Qt.ItemDataRole.ToolTipRole)
        data.addRow("Dataset", self.dataset)
        self.dataset_args = ArgsForm()
        self.dataset_args.changed.connect(lambda n, v: self._set(("dataset", "params", n), v))
        data.addRow(self.dataset_args)
        self.split = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.9, singleStep=0.05)
        self.split.editingFinished.connect(lambda: self._set(("validation_split",), self.split.value()))
        data.addRow("Validation split", self.split)
        self.batch = QSpinBox(minimum=1, maximum=2**20)
        self.batch.editingFinished.connect(lambda: self._set(("batch_size",), self.batch.value()))
        data.addRow("Batch size", self.batch)
        self.objective = objective = self._group(layout, "Loss and optimizer")
        self.loss = self._combo(list(LOSSES), ("loss", "type"))
        objective.addRow("Loss", self.loss)
        self.loss_args = ArgsForm()
        self.loss_args.changed.connect(lambda n, v: self._set(("loss", "params", n), v))
        objective.addRow(self.loss_args)
        self.optimizer = self._combo(list(OPTIMIZERS), ("optimizer", "type"))
        objective.addRow("Optimizer", self.optimizer)
        self.lr = QLineEdit()
        self.lr.setToolTip(plain_tooltip("Learning rate"))
        self.lr.editingFinished.connect(self._lr_edited)
        objective.addRow("Learning rate", self.lr)
        self.optimizer_args = ArgsForm()
        self.optimizer_args.changed.connect(lambda n, v: self._set(("optimizer", "params", n), v))
        objective.addRow(self.optimizer_args)
        self.schedule = self._combo([NO_SCHEDULE, *SCHEDULERS], ("scheduler", "type"))
        objective.addRow("Schedule", self.schedule)
        self.schedule_args = ArgsForm()
        self.schedule_args.changed.connect(lambda n, v: self._set(("scheduler", "params", n), v))
        objective.addRow(self.schedule_args)
        run = self._group(layout, "Run")
        self.epochs = QSpinBox(minimum=1, maximum=100_000)
        self.epochs.editingFinished.connect(lambda: self._set(("epochs",), self.epochs.value()))
        run.addRow("Epochs", self.epochs)
        self.precision = self._combo(list(PRECISIONS), ("precision",))
        run.addRow("Precision", self.precision)
        self.device = _DeviceCombo(self)
        self.device.activated.connect(lambda i: self._set(("device",), self.device.itemData(i)))
        run.addRow("Device", self.device)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed.editingFinished.connect(lambda: self._set(("seed",), self.seed.value()))
        run.addRow("Seed", self.seed)
        run.addRow("Start from", self._init_weights_row())
        run.addRow("Key map", self._key_map_row())
        layout.addStretch(1)

    def _task_group(self, layout: QVBoxLayout) -> None:
        form = self._group(layout, "Task")
        self.task = QComboBox()
        self.task.setObjectName("task")
        for i, (name, summary) in enumerate(TASKS.items()):
            self.task.addItem(name.replace("_", " "), name)
            self.task.setItemData(i, plain_tooltip(f"{name}: {summary}"), Qt.ItemDataRole.ToolTipRole)
        self.task.activated.connect(lambda i: self.set_task(self.task.itemData(i)))
        form.addRow("Task", self.task)
        self.task_args = ArgsForm()
        self.task_args.setObjectName("task_settings")
        self.task_args.changed.connect(lambda n, v: self._set((self.task_name, n), v))
        form.addRow(self.task_args)

    def _init_weights_row(self) -> QHBoxLayout:
        self.init_weights = QLineEdit()
        self.init_weights.setObjectName("init_weights")
        self.init_weights.setPlaceholderText("fresh weights")
        self.init_weights.setToolTip(plain_tooltip(
            "Pretrained weights to start from (transfer learning): a .safetensors file or an earlier "
            "run's folder, relative to the graph file. Weights go to the nodes whose ids they name; "
            "freeze layers in the inspector."))
        self.init_weights.editingFinished.connect(self._init_weights_edited)
        return _with_browse(self.init_weights, "Choose a .safetensors file", self._browse_weights)

    # ----- editing -------------------------------------------------------------------------------

    @property
    def config(self) -> TrainingConfig | None:
        return self.document.graph.training

    def add_section(self) -> None:
        self.document.set_graph_field("training", default_training(self.document))

    @property
    def task_name(self) -> str:
        config = self.config
        return (config.task if config is not None else None) or DEFAULT_TASK

    def set_task(self, task: str) -> None:
        """Train the graph as ``task`` (one undo step); the other tasks' settings go."""
        config = self.config
        if config is None or task == self.task_name:
            return
        data = config.model_dump(mode="json", exclude_none=True)
        for other in TASKS:
            if other != task and task_settings(other) is not None:
                data.pop(other, None)
        data.pop("task", None)
        if task != DEFAULT_TASK:
            data["task"] = task
        self._commit(data)

    def _set(self, key: tuple[str, ...], value: Any) -> None:
        """Change one entry of the training section (None removes it) as one undo step."""
        config = self.config
        if config is None:
            return
        data = config.model_dump(mode="json", exclude_none=True)
        if key == ("scheduler", "type"):
            data.pop("scheduler", None)
            if value != NO_SCHEDULE:
                data["scheduler"] = {"type": value, "params": {}}
        else:
            if key[-1] == "type" or key == ("dataset", "name"):
                data[key[0]]["params"] = {}
            target = data
            for part in key[:-1]:
                target = target.setdefault(part, {})
            if value is None:
                target.pop(key[-1], None)
            else:
                target[key[-1]] = value
        self._commit(data)

    def _commit(self, data: dict[str, Any]) -> None:
        try:
            self.document.set_graph_field("training", data)
        except ValueError as error:
            self.show_message(f"Not changed: {error}", error=True)
            self.refresh()

    def _key_map_row(self) -> QHBoxLayout:
        self.key_map = QComboBox(editable=True)
        self.key_map.setObjectName("init_weights_map")
        self.key_map.addItem(AUTO_KEY_MAP)
        self.key_map.addItems(list(KEY_MAPS))
        self.key_map.setToolTip(plain_tooltip(
            "How the starting weights' names become this graph's: a published checkpoint's layout "
            "(torchvision, Hugging Face), or a JSON file of renames. Automatic keeps the names, or "
            "picks the built-in map under which they fit exactly."))
        self.key_map.activated.connect(lambda _: self._key_map_edited())
        self.key_map.lineEdit().editingFinished.connect(self._key_map_edited)
        return _with_browse(self.key_map, "Choose a JSON rename file", self._browse_key_map)

    def _key_map_edited(self) -> None:
        text = self.key_map.currentText().strip()
        value = None if text in ("", AUTO_KEY_MAP) else text
        if self.config is not None and value != self.config.init_weights_map:
            self._set(("init_weights_map",), value)

    def _browse_key_map(self) -> None:
        chosen = self._chosen_file("Key map", "Rename files (*.json);;All files (*)")
        if chosen:
            self.key_map.setEditText(chosen)
            self._key_map_edited()

    def _init_weights_edited(self) -> None:
        text = self.init_weights.text().strip()
        if self.config is not None and (text or None) != self.config.init_weights:
            self._set(("init_weights",), text or None)

    def _browse_weights(self) -> None:
        chosen = self._chosen_file("Start from weights", "Weights (*.safetensors);;All files (*)")
        if chosen:
            self.init_weights.setText(chosen)
            self._init_weights_edited()

    def _chosen_file(self, title: str, filters: str) -> str | None:
        """A file the user picks, relative to the graph's folder when it lies inside it."""
        folder = self.document.folder
        chosen, _ = QFileDialog.getOpenFileName(self, title, str(folder or Path.home()), filters)
        if not chosen:
            return None
        path = Path(chosen)
        return str(path.relative_to(folder) if folder is not None and path.is_relative_to(folder) else path)

    def _lr_edited(self) -> None:
        if self.lr.isModified():
            self.lr.setModified(False)
            text = self.lr.text().strip()
            try:
                value: Any = float(text) if text else None
            except ValueError:
                value = text
            self._set(("optimizer", "params", "lr"), value)

    # ----- showing ----------------------------------------------------------------------------------

    def refresh_devices(self) -> None:
        self.devices = available_devices()
        self.refresh()

    def refresh(self) -> None:
        config = self.config
        self.add_button.setVisible(config is None)
        self.form.setVisible(config is not None)
        if config is not None:
            self._show_config(config)
        self._show_problems()

    def _show_task(self, c: TrainingConfig) -> tuple[str, ...]:
        """The task and its settings; returns the entries it replaces, which the form hides."""
        task = self.task_name
        _choose(self.task, task)
        settings = getattr(c, task, None) if task_settings(task) is not None else None
        values = settings.model_dump(mode="json", exclude_unset=True) if settings is not None else {}
        nodes: dict[str, list[str]] = {}
        for node in self.document.graph.nodes:
            nodes.setdefault(node.type, []).append(node.id)
        self.task_args.set_model(task_settings(task), values, nodes=nodes)
        return replaced_settings(task)

    def _show_config(self, c: TrainingConfig) -> None:
        replaced = self._show_task(c)
        optimizer_skip = tuple(k.removeprefix("optimizer.params.") for k in replaced
                               if k.startswith("optimizer.params."))
        _choose(self.dataset, c.dataset.name)
        decl = DATASETS.get(c.dataset.name)
        self.dataset_args.set_model(decl.args if decl else None, c.dataset.params)
        _value(self.split, c.validation_split)
        _value(self.batch, c.batch_size)
        _choose(self.loss, c.loss.type)
        self.loss_args.set_model(LOSSES.get(c.loss.type), c.loss.params)
        _choose(self.optimizer, c.optimizer.type)
        if not self.lr.hasFocus():
            lr = c.optimizer.params.get("lr")
            self.lr.setText(show(lr))
            default = OPTIMIZERS[c.optimizer.type].model_fields["lr"].default if c.optimizer.type in OPTIMIZERS else ""
            self.lr.setPlaceholderText(show(default))
        self.optimizer_args.set_model(OPTIMIZERS.get(c.optimizer.type), c.optimizer.params,
                                      skip=tuple(dict.fromkeys(("lr", *optimizer_skip))))
        _choose(self.schedule, c.scheduler.type if c.scheduler else NO_SCHEDULE)
        self.schedule_args.set_model(SCHEDULERS.get(c.scheduler.type) if c.scheduler else None,
                                     c.scheduler.params if c.scheduler else {})
        _value(self.epochs, c.epochs)
        _choose(self.precision, c.precision)
        self.device.show_devices(self.devices, c.device)
        _value(self.seed, c.seed)
        if not self.init_weights.hasFocus():
            self.init_weights.setText(c.init_weights or "")
        if not self.key_map.hasFocus():
            self.key_map.setEditText(c.init_weights_map or AUTO_KEY_MAP)
        self._hide_replaced(replaced)

    def _hide_replaced(self, replaced: tuple[str, ...]) -> None:
        """Hide the loss and learning rate rows when the task replaces them by its own."""
        self.objective.setRowVisible(self.loss, "loss" not in replaced)
        if "loss" in replaced:  # otherwise the argument form shows itself when it has fields
            self.objective.setRowVisible(self.loss_args, False)
        self.objective.setRowVisible(self.lr, "optimizer.params.lr" not in replaced)

    def _show_problems(self) -> None:
        devices = [value for value, _ in self.devices] if self.devices is not None else None
        self.problems = run_problems(self.document, devices)
        self.problem_list.clear()
        for problem in self.problems:
            item = QListWidgetItem(f"{'●' if problem.severity == 'error' else '▲'} {problem.one_line()}")
            item.setForeground(colors().error if problem.severity == "error" else colors().warning)
            item.setData(Qt.ItemDataRole.UserRole, problem.node)
            self.problem_list.addItem(item)
        self.problem_list.setVisible(bool(self.problems))

    @property
    def can_start(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def _problem_activated(self, item: QListWidgetItem) -> None:
        node = item.data(Qt.ItemDataRole.UserRole)
        if node:
            self.node_activated.emit(node)

    def show_message(self, text: str, error: bool = False) -> None:
        """A line above the form (a failed run's reason, in the error colour)."""
        self.message.setText(text)
        set_text_colour(self.message, colors().error if error else colors().ok)
        self.message.setVisible(bool(text))

    def show_progress(self, value: int, maximum: int, text: str) -> None:
        """``maximum`` 0: busy, no known end."""
        self.progress.setRange(0, max(maximum, 0))
        self.progress.setValue(min(value, maximum))
        self.progress.setFormat(text)


class _DeviceCombo(QComboBox):
    """Lists the machine's devices when first opened (torch is not imported before that)."""

    def __init__(self, panel: TrainPanel) -> None:
        super().__init__()
        self.panel = panel

    def showPopup(self) -> None:  # noqa: N802
        if self.panel.devices is None:
            self.panel.refresh_devices()
        super().showPopup()

    def show_devices(self, devices: list[tuple[str, str]] | None, current: str) -> None:
        items = list(devices or [("auto", "auto (best available)")])
        if current not in [v for v, _ in items]:
            items.append((current, current if devices is None else f"{current} (not on this machine)"))
        if [(self.itemData(i), self.itemText(i)) for i in range(self.count())] != items:
            self.blockSignals(True)
            self.clear()
            for value, label in items:
                self.addItem(label, value)
            self.blockSignals(False)
        _choose(self, current)


def _choose(combo: QComboBox, value: Any) -> None:
    index = combo.findData(value)
    if index >= 0 and index != combo.currentIndex():
        combo.blockSignals(True)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)


def _value(spin: QSpinBox | QDoubleSpinBox, value: float) -> None:
    if not spin.hasFocus() and spin.value() != value:
        spin.blockSignals(True)
        spin.setValue(value)
        spin.blockSignals(False)


def _with_browse(field: QWidget, tip: str, browse: Callable[[], None]) -> QHBoxLayout:
    """``field`` with a "…" button beside it that calls ``browse``."""
    button = QToolButton(text="…")
    button.setToolTip(plain_tooltip(tip))
    button.clicked.connect(browse)
    row = QHBoxLayout()
    row.addWidget(field, 1)
    row.addWidget(button)
    return row
