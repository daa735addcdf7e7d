"""File > Import: a PyTorch model (``.py``) or an ONNX file as a new, unsaved graph.

A Python file is run to build the model, so the app says so and asks first; nothing else in
the app runs code from a file. The imported graph opens like an example (unsaved); the status
bar shows the importer's one-line summary, and Unsupported nodes show in the problems list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from dlstudio.core.errors import DLStudioError
from dlstudio.ui.files import message_box

MODEL_FILTER = "PyTorch or ONNX models (*.py *.onnx);;All files (*)"


class ModelImport:
    """The Import action of one main window; the ``ask_*`` methods are its only dialogs."""

    def __init__(self, window: Any) -> None:  # MainWindow (not imported: it imports us)
        self.window = window

    def ask_model_path(self) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Import model", "", MODEL_FILTER)
        return Path(path) if path else None

    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        value, accepted = QInputDialog.getText(self.window, title, label, text=text)
        return value.strip() if accepted and value.strip() else None

    def confirm_running(self, path: Path) -> bool:
        """Ask before running ``path``: importing executes its code with the user's rights."""
        box = message_box(self.window, QMessageBox.Icon.Warning, "Run this file?",
                          f"Importing {path.name} runs the Python code in it, and whatever that "
                          "code does, with your permissions.",
                          "Import only files you trust.")
        run = box.addButton("Run and Import", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is run

    def import_model(self) -> bool:
        """Ask for a model file (and for Python, what to build and its inputs), import it and
        open the graph; any problem shows a dialog with its one-line reason."""
        files = self.window.files
        if not files.maybe_save():
            return False
        path = self.ask_model_path()
        if path is None:
            return False
        try:
            result = self._import_onnx(path) if path.suffix.lower() == ".onnx" else self._import_python(path)
        except (DLStudioError, OSError) as error:
            files.show_error("Cannot import", str(error))
            return False
        if result is None:
            return False
        files.open_unsaved(result.graph)
        self.window.statusBar().showMessage(f"Imported {path.name}: {result.summary()}", 15000)
        return True

    def _import_onnx(self, path: Path) -> Any:
        from dlstudio.interop.onnx_import import import_onnx

        return import_onnx(path)

    def _import_python(self, path: Path) -> Any:
        from dlstudio.interop.command import parse_input
        from dlstudio.interop.pytorch import import_module, load_model

        name = self.ask_text("Import model", "Class or function that builds the model:")
        if name is None:
            return None
        inputs = self.ask_text("Import model", "Inputs without the batch, e.g. x=3,32,32 or "
                               "tokens=T:int64 (several separated by spaces):")
        if inputs is None or not self.confirm_running(path):
            return None
        specs = [parse_input(text) for text in inputs.split()]
        return import_module(load_model(f"{path}:{name}"), specs, name)
