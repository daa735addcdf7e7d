"""Files with nothing ever lost: recent files, autosave to a recovery folder, example graphs.

Saving itself is core's atomic :func:`~dlstudio.core.io.save_graph`. Unsaved work is written
every 30 s to a recovery file beside (never over) the user's file; on the next start a
recovery newer than its file that parses is offered. A recovery file is removed only when its
content is safely in the saved file, or when the user says to discard it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QObject, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from dlstudio.core.errors import GraphFileError, GraphInvalidError
from dlstudio.core.graph import Graph
from dlstudio.core.io import graph_to_json, load_graph, parse_json, write_atomic
from dlstudio.core.naming import identifier
from dlstudio.core.starter import TEMPLATES
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.theme import plain_tooltip

AUTOSAVE_MS = 30_000
MAX_RECENT = 10
RECENT_KEY = "files/recent"
LAST_FOLDER_KEY = "files/last_folder"
GRAPH_FILTER = "DL Studio graphs (*.json);;All files (*)"
PYTHON_FILTER = "Python files (*.py)"


# ----- recent files ---------------------------------------------------------------------------


class RecentFiles(QObject):
    """The most recently opened or saved files, newest first, kept in QSettings."""

    changed = Signal()

    def __init__(self, settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings

    def paths(self) -> list[Path]:
        stored = self.settings.value(RECENT_KEY, [])
        if isinstance(stored, str):  # QSettings returns a lone string for a 1-item list
            stored = [stored]
        return [Path(p) for p in stored or [] if p][:MAX_RECENT]

    def add(self, path: Path) -> None:
        path = Path(path).resolve()
        paths = [path] + [p for p in self.paths() if p != path]
        self._store(paths[:MAX_RECENT])
        self.settings.setValue(LAST_FOLDER_KEY, str(path.parent))

    def remove(self, path: Path) -> None:
        self._store([p for p in self.paths() if p != Path(path)])

    def clear(self) -> None:
        self._store([])

    def last_folder(self) -> str:
        return str(self.settings.value(LAST_FOLDER_KEY, "") or "")

    def _store(self, paths: list[Path]) -> None:
        # no sync() here: QSettings writes from the event loop (and at exit), so opening a
        # file never waits on the settings file's lock
        self.settings.setValue(RECENT_KEY, [str(p) for p in paths])
        self.changed.emit()


# ----- recovery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """An autosaved copy of unsaved work, found at start-up."""

    key: str
    file: Path
    original: Path | None
    saved_at: float
    graph: Graph

    @property
    def title(self) -> str:
        return self.original.name if self.original else f"{self.graph.name} (never saved)"


def default_recovery_folder() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base or Path.home() / ".dlstudio") / "recovery"


class RecoveryStore:
    """The folder of recovery files: ``<key>.json`` (the graph) and ``<key>.meta.json``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_recovery_folder()

    @staticmethod
    def key_for(path: Path | None) -> str:
        """A stable key for a saved file; a fresh one for an untitled document."""
        if path is None:
            return f"untitled-{os.getpid()}-{time.time_ns()}"
        digest = hashlib.sha1(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:16]
        return f"{Path(path).stem[:40]}-{digest}"

    def graph_file(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def meta_file(self, key: str) -> Path:
        return self.folder / f"{key}.meta.json"

    def write(self, key: str, graph: Graph, original: Path | None) -> Path:
        """Write the recovery copy atomically (graph first, then its description)."""
        target = self.graph_file(key)
        write_atomic(target, graph_to_json(graph).encode("ascii"))
        meta = {"original": str(original) if original else None, "saved_at": time.time(),
                "pid": os.getpid()}
        write_atomic(self.meta_file(key), json.dumps(meta).encode("utf-8"))
        return target

    def discard(self, key: str) -> None:
        """Remove a recovery copy: only once saved, or on the user's say-so."""
        self.graph_file(key).unlink(missing_ok=True)
        self.meta_file(key).unlink(missing_ok=True)

    def pending(self) -> list[Recovery]:
        """Recovery copies worth offering: newer than their file, parseable, not another live app's."""
        if not self.folder.is_dir():
            return []
        found = [self._read(meta) for meta in sorted(self.folder.glob("*.meta.json"))]
        offered = [r for r in found if r is not None and self._newer(r)]
        return sorted(offered, key=lambda r: r.saved_at, reverse=True)

    def _read(self, meta_path: Path) -> Recovery | None:
        key = meta_path.name.removesuffix(".meta.json")
        try:
            meta = parse_json(meta_path.read_bytes(), str(meta_path))
            if _alive_elsewhere(int(meta.get("pid", 0))):
                return None
            graph = load_graph(self.graph_file(key))
        except (GraphFileError, OSError, ValueError, TypeError, AttributeError):
            return None  # unreadable copies are left where they are, never deleted
        original = Path(meta["original"]) if meta.get("original") else None
        saved_at = self.graph_file(key).stat().st_mtime
        return Recovery(key, self.graph_file(key), original, saved_at, graph)

    @staticmethod
    def _newer(recovery: Recovery) -> bool:
        if recovery.original is None or not recovery.original.exists():
            return True
        return recovery.saved_at > recovery.original.stat().st_mtime


def _alive_elsewhere(pid: int) -> bool:
    """True when ``pid`` is another running process (so its recovery file is still in use)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return os.name == "posix"


class Autosaver(QObject):
    """Writes the document's unsaved state to the recovery store every ``interval_ms``."""

    failed = Signal(str)

    def __init__(self, document: GraphDocument, store: RecoveryStore,
                 interval_ms: int = AUTOSAVE_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.store = store
        self.key = store.key_for(document.path)
        self._written: set[str] = set()
        self.timer = QTimer(self, interval=interval_ms)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        document.modified_changed.connect(self._modified_changed)
        document.path_changed.connect(self._path_changed)

    def autosave(self) -> Path | None:
        """Write a recovery copy now if there are unsaved changes."""
        if not self.document.modified:
            return None
        try:
            self._written.add(self.key)
            return self.store.write(self.key, self.document.graph, self.document.path)
        except OSError as error:
            self.failed.emit(f"autosave failed: {error.strerror or error}")
            return None

    def adopt(self, key: str) -> None:
        """Continue with a recovered copy's key, so saving later removes that copy."""
        self.key = key
        self._written.add(key)

    def discard(self) -> None:
        """Remove every copy this document wrote (the user chose to discard the changes)."""
        for key in self._written | {self.key}:
            self.store.discard(key)
        self._written.clear()

    def _modified_changed(self, modified: bool) -> None:
        if not modified:  # saved (or undone back to the saved state): the copies are obsolete
            self.discard()

    def _path_changed(self, path: Path | None) -> None:
        self.key = self.store.key_for(path)


# ----- examples -----------------------------------------------------------------------------------


def example_folders() -> list[Path]:
    """Where example graphs live: the checkout's ``graphs/`` or the installed package's ``examples/``."""
    package = Path(str(resources.files("dlstudio")))
    candidates = [package.parent / "graphs", package / "examples"]
    return [folder for folder in candidates if folder.is_dir()]


def examples() -> list[Path]:
    """Every example graph file, by name, from the first folder that has any."""
    for folder in example_folders():
        found = sorted(folder.glob("*.json"), key=lambda p: p.name.lower())
        if found:
            return found
    return []


# ----- the File menu's actions, with their dialogs ----------------------------------------------


def dropped_graph(mime: QMimeData) -> Path | None:
    """The first local ``.json`` file in dropped data, if any."""
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(".json"):
            return Path(url.toLocalFile())
    return None


def _menu_text(text: str) -> str:
    """Menu text shown literally: a file name's ``&`` is not a keyboard mnemonic."""
    return text.replace("&", "&&")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def message_box(parent: QWidget, icon: QMessageBox.Icon, title: str, text: str,
                detail: str = "") -> QMessageBox:
    """A message box that shows its text literally (never as HTML)."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    if detail:
        box.setInformativeText(detail)
    return box


class FileActions:
    """New, open, save, recent files, examples, export and recovery for one main window.

    The ``ask_*`` methods are the only places that show a dialog and wait for an answer.
    """

    def __init__(self, window: Any) -> None:  # MainWindow (not imported: it imports us)
        self.window = window

    @property
    def document(self) -> GraphDocument:
        return self.window.document

    # ----- dialogs -------------------------------------------------------------------------------

    def show_error(self, title: str, message: str) -> None:
        box = message_box(self.window, QMessageBox.Icon.Critical, title, message)
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.exec()

    def ask_unsaved(self) -> str:
        """``save``, ``discard`` or ``cancel`` for the unsaved changes."""
        box = message_box(self.window, QMessageBox.Icon.Warning, "Unsaved changes",
                          f"Save the changes to {self._name()}?",
                          "Your changes will be lost if you don't save them.")
        buttons = QMessageBox.StandardButton
        box.setStandardButtons(buttons.Save | buttons.Discard | buttons.Cancel)
        box.setDefaultButton(buttons.Save)
        box.exec()
        clicked = box.standardButton(box.clickedButton())
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(clicked, "cancel")

    def ask_recovery(self, recovery: Recovery) -> str:
        """``recover``, ``discard`` or ``later`` for an autosaved copy."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(recovery.saved_at))
        box = message_box(self.window, QMessageBox.Icon.Question, "Recover unsaved work",
                          f"DL Studio found unsaved changes to {recovery.title}, autosaved {when}.",
                          "Recover them now? Not now keeps the copy for the next start.")
        recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(recover)
        box.exec()
        return {id(recover): "recover", id(discard): "discard"}.get(id(box.clickedButton()), "later")

    def ask_open_path(self) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open graph", self._folder(), GRAPH_FILTER)
        return Path(path) if path else None

    def ask_save_path(self, suggested: str, file_filter: str = GRAPH_FILTER) -> Path | None:
        start = str(Path(self._folder()) / suggested) if self._folder() else suggested
        path, _ = QFileDialog.getSaveFileName(self.window, "Save as", start, file_filter)
        if not path:
            return None
        suffix = ".py" if file_filter == PYTHON_FILTER else ".json"
        return Path(path) if Path(path).suffix else Path(path).with_suffix(suffix)

    # ----- new / open ------------------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current document (saved, discarded or unchanged)."""
        if not self.document.modified:
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        if answer == "discard":
            self.window.autosaver.discard()
            return True
        return False

    def new(self) -> None:
        if self.maybe_save():
            self._load(Graph(name="untitled"), None)

    def new_from_example(self, path: Path) -> bool:
        """A new, unsaved document holding a copy of an example graph."""
        if not self.maybe_save():
            return False
        try:
            graph = load_graph(path)
        except GraphFileError as error:
            self.show_error("Cannot open example", str(error))
            return False
        self._load(graph, None)
        return True

    def new_from_template(self, key: str) -> bool:
        """A new, unsaved document from a template, its training section filled in."""
        if not self.maybe_save():
            return False
        self._load(TEMPLATES[key].graph(), None)
        return True

    def open(self) -> None:
        if self.maybe_save():
            path = self.ask_open_path()
            if path is not None:
                self.open_path(path, ask=False)

    def open_path(self, path: str | Path, ask: bool = True) -> bool:
        """Open a graph file; any problem shows a dialog with its one-line reason."""
        if ask and not self.maybe_save():
            return False
        path = Path(path)
        try:
            graph = load_graph(path)
        except GraphFileError as error:
            self.show_error("Cannot open file", str(error))
            return False
        self._load(graph, path)
        self.window.recent.add(path)
        return True

    def open_unsaved(self, graph: Graph) -> None:
        """Show ``graph`` as a new, unsaved document (an imported model)."""
        self._load(graph, None)

    def _load(self, graph: Graph, path: Path | None) -> None:
        document = self.document
        document.path = path
        document.path_changed.emit(path)
        document.replace_graph(graph)
        self.window.view.frame_opening()

    # ----- save -----------------------------------------------------------------------------------

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        path = self.ask_save_path(self._name())
        return path is not None and self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        try:
            self.document.save(path)
        except OSError as error:
            self.show_error("Cannot save", f"{path}: {error.strerror or error}")
            return False
        self.window.recent.add(path)
        self.window.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def export_python(self) -> Path | None:
        """Write the graph as a standalone PyTorch file."""
        analysis = self.document.reanalyse()
        if not analysis.ok:
            self.show_error("Cannot export", GraphInvalidError(self.document.graph.name, analysis.errors).args[0])
            return None
        stem = self.document.path.stem if self.document.path else self.document.graph.name
        path = self.ask_save_path(f"{identifier(stem)}.py", PYTHON_FILTER)
        if path is None:
            return None
        from dlstudio.core.export import export_python

        try:
            write_atomic(path, export_python(analysis).encode("utf-8"))
        except OSError as error:
            self.show_error("Cannot export", f"{path}: {error.strerror or error}")
            return None
        self.window.statusBar().showMessage(f"Exported {path}", 4000)
        return path

    # ----- recovery ----------------------------------------------------------------------------

    def offer_recovery(self, opened: Path | None = None) -> bool:
        """Offer each pending recovery copy, newest first; True when one was restored.

        With ``opened`` (a file given on the command line) only that file's copy is offered.
        """
        pending = self.window.autosaver.store.pending()
        if opened is not None:
            pending = [r for r in pending if r.original is not None and _same_file(r.original, opened)]
        for recovery in pending:
            answer = self.ask_recovery(recovery)
            if answer == "recover":
                self.restore(recovery)
                return True
            if answer == "discard":
                self.window.autosaver.store.discard(recovery.key)
        return False

    def restore(self, recovery: Recovery) -> None:
        """Load a recovered copy as unsaved changes to its original file."""
        self._load(recovery.graph, recovery.original)
        self.window.autosaver.adopt(recovery.key)
        self.document.undo_stack.resetClean()
        self.window.statusBar().showMessage(f"Recovered unsaved changes to {recovery.title}", 8000)

    # ----- menus ---------------------------------------------------------------------------------------

    def fill_examples(self, menu: QMenu) -> None:
        menu.clear()
        found = examples()
        for path in found:
            action = menu.addAction(_menu_text(path.stem))
            action.triggered.connect(lambda _=False, p=path: self.new_from_example(p))
        if not found:
            menu.addAction("No examples found").setEnabled(False)

    def fill_templates(self, menu: QMenu) -> None:
        for key, template in TEMPLATES.items():
            action = menu.addAction(_menu_text(template.title))
            action.setToolTip(plain_tooltip(template.summary))
            action.triggered.connect(lambda _=False, k=key: self.new_from_template(k))

    def fill_recent(self, menu: QMenu) -> None:
        menu.clear()
        paths = self.window.recent.paths()
        for index, path in enumerate(paths):
            action = menu.addAction(f"&{index + 1 if index < 9 else 0}  {_menu_text(path.name)}")
            action.setToolTip(plain_tooltip(str(path)))
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if paths:
            menu.addSeparator()
            menu.addAction("Clear list").triggered.connect(lambda _=False: self.window.recent.clear())
        else:
            menu.addAction("No recent files").setEnabled(False)

    def about(self) -> None:
        from dlstudio import __version__

        box = message_box(self.window, QMessageBox.Icon.Information, "About DL Studio",
                          f"DL Studio {__version__}",
                          "Design neural networks as node graphs, train them, export clean PyTorch.")
        box.exec()

    def _name(self) -> str:
        return self.document.path.name if self.document.path else f"{identifier(self.document.graph.name)}.json"

    def _folder(self) -> str:
        if self.document.path is not None:
            return str(self.document.path.parent)
        return self.window.recent.last_folder()
