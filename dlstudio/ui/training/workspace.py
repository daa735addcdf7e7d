"""Training in the main window: docks, the Train menu and toolbar, and one run at a time.

:func:`install_training` adds it all to a :class:`~dlstudio.ui.main_window.MainWindow`. The
plots and activation views use pyqtgraph, which is imported only once the window has painted
(or a run starts), so the editor starts as fast as without them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from dlstudio.train.events import FinishReason, SessionMode, SessionState
from dlstudio.ui.first_paint import FirstPaint
from dlstudio.ui.training.exports import FILTERS, SUFFIXES, ExportJob, ExportResult
from dlstudio.ui.training.indicators import NodeIndicators
from dlstudio.ui.training.predict_panel import PredictPanel
from dlstudio.ui.training.runs_panel import EXPORT_KINDS, RunsPanel, run_label
from dlstudio.ui.training.train_panel import TrainPanel

SNAPSHOT_NOTE = "Training a snapshot of the graph taken at Start: edits now apply to the next run."
STOP_WAIT_MS = 60_000
#: How long an idle spare worker may take to quit before it is killed (it holds no run).
SPARE_QUIT_S = 0.5
WARM_AFTER_MS = 1500


class LazyPanel(QWidget):
    """Holds a widget built on first need, so its imports wait until after the first paint."""

    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.factory = factory
        self.content: Any = None
        self.ready = False
        self.on_built: list[Callable[[Any], None]] = []
        QVBoxLayout(self).setContentsMargins(0, 0, 0, 0)

    def get(self) -> Any:
        if self.content is None:
            self.content = self.factory()
            self.layout().addWidget(self.content)
            for callback in self.on_built:
                callback(self.content)
        return self.content

    def showEvent(self, event: Any) -> None:  # noqa: N802
        if self.ready:
            QTimer.singleShot(0, self.get)
        super().showEvent(event)


class TrainingWorkspace(QObject):
    """The training features of one main window."""

    weights_written = Signal()  # the live run wrote weights (a checkpoint, or its last ones)

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.document = window.document
        self.session: Any = None
        self.live_key: str | None = None
        self.live_owner: tuple[Path | None, Any] = (None, None)  # the run's document: its path, its graph
        self.live_step: Any = None  # the newest StepEnd, ProbeReport and ConfusionReport of the run
        self.live_report: Any = None
        self.live_confusion: Any = None
        self.live_samples: list[Any] = []  # the run's EpochSamples, to show again when its graph is back
        self.sample_seed = 0  # each Sample draws with the next seed
        self.last_run: Path | None = None
        self.shown_runs: set[Path] = set()
        self.runs_root_override: Path | None = None
        self.ask_save_path: Callable[[str, Path], Path | None] = self._ask_save_path
        self.jobs: list[Any] = []
        self.mode = SessionMode.PROCESS  # or THREAD (tests)
        self.arranged = False
        # a spare worker costs a process; headless test and screenshot runs do without
        self.prewarm = QGuiApplication.platformName() != "offscreen"
        self.spare: Any = None  # a worker process that has imported torch, waiting for a run
        self.indicators = NodeIndicators(window.view)
        self._build_docks()
        self._build_actions()
        self._connect()
        self._update_actions()
        FirstPaint(window.view.viewport(), self._after_first_paint)

    # ----- construction ------------------------------------------------------------------------

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.window.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        w = self.window
        bottom, right = Qt.DockWidgetArea.BottomDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.panel = TrainPanel(self.document)
        self.runs = RunsPanel()
        self.plots_holder = LazyPanel(self._make_plots)
        self.insight_holder = LazyPanel(self._make_insight)
        self.samples_holder = LazyPanel(self._make_samples)
        self.train_dock = self._dock("Training", "training_dock", self.panel, right)
        self.runs_dock = self._dock("Runs", "runs_dock", self.runs, right)
        self.predict = PredictPanel(lambda: self.runs.selected_path() or self.last_run)
        self.predict_dock = self._dock("Predict", "predict_dock", self.predict, right)
        self.curves_dock = self._dock("Curves", "curves_dock", self.plots_holder, bottom)
        self.inside_dock = self._dock("Inside", "inside_dock", self.insight_holder, bottom)
        self.samples_dock = self._dock("Samples", "samples_dock", self.samples_holder, bottom)
        anchor = getattr(w, "history_dock", None)
        if anchor is not None:  # join the right-hand tab group
            w.tabifyDockWidget(anchor, self.train_dock)
            w.tabifyDockWidget(self.train_dock, self.runs_dock)
            w.tabifyDockWidget(self.runs_dock, self.predict_dock)
            getattr(w, "inspector_dock", anchor).raise_()
        problems = getattr(w, "problems_dock", None)
        if problems is not None:
            w.splitDockWidget(problems, self.curves_dock, Qt.Orientation.Horizontal)
        w.splitDockWidget(self.curves_dock, self.inside_dock, Qt.Orientation.Horizontal)
        self.curves_dock.hide()
        self.inside_dock.hide()
        self.samples_dock.hide()

    def _make_plots(self) -> QWidget:
        from dlstudio.ui.training.plots import PlotsPanel

        plots = PlotsPanel()
        plots.export_png_requested.connect(lambda: self._export_plots("png"))
        plots.export_csv_requested.connect(lambda: self._export_plots("csv"))
        return plots

    def _make_insight(self) -> QWidget:
        from dlstudio.ui.training.insight import InsightPanel

        insight = InsightPanel(self.document)
        insight.details_wanted.connect(self._details_wanted)
        insight.select(self.window.view.selected_node_ids())
        return insight

    def _make_samples(self) -> QWidget:
        from dlstudio.ui.training.samples import SamplesPanel

        return SamplesPanel()

    @property
    def samples(self) -> Any:
        return self.samples_holder.get()

    @property
    def plots(self) -> Any:
        return self.plots_holder.get()

    @property
    def insight(self) -> Any:
        return self.insight_holder.get()

    def _action(self, text: str, slot: Callable[[], Any], shortcut: str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self.window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip or text} ({shortcut})" if shortcut else tip or text)
        action.triggered.connect(lambda _checked=False: slot())
        self.window.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.start_action = self._action("Start", self.start, "F5", "Train the graph")
        self.pause_action = self._action("Pause", self.toggle_pause, "F6", "Pause or resume training")
        self.stop_action = self._action("Stop", self.stop, "Shift+F5", "Stop after this batch")
        style = self.window.style()
        for action, icon in ((self.start_action, QStyle.StandardPixmap.SP_MediaPlay),
                             (self.pause_action, QStyle.StandardPixmap.SP_MediaPause),
                             (self.stop_action, QStyle.StandardPixmap.SP_MediaStop)):
            action.setIcon(style.standardIcon(icon))
        self.panel.set_actions([self.start_action, self.pause_action, self.stop_action])
        bar = self.window.menuBar()
        menu = QMenu("&Train", bar)
        help_menu = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        bar.insertMenu(help_menu, menu) if help_menu is not None else bar.addMenu(menu)
        for action in (self.start_action, self.pause_action, self.stop_action):
            menu.addAction(action)
        menu.addSeparator()
        exports = menu.addMenu("Export &Trained Model")
        self.export_actions = {kind: exports.addAction(text, lambda k=kind: self.export(k))
                               for kind, text in EXPORT_KINDS}
        menu.addSeparator()
        for dock in (self.train_dock, self.curves_dock, self.inside_dock, self.samples_dock, self.runs_dock):
            menu.addAction(dock.toggleViewAction())
        self.toolbar = self.window.addToolBar("Training")
        self.toolbar.setObjectName("training_toolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.start_action, self.pause_action, self.stop_action):
            self.toolbar.addAction(action)

    def _connect(self) -> None:
        doc = self.document
        doc.analysed.connect(lambda _a: self._update_actions())
        doc.path_changed.connect(lambda _p: self.refresh_runs())
        doc.reset.connect(self._document_reset)
        self.window.view.selection_changed.connect(self._selection_changed)
        self.panel.node_activated.connect(lambda node: self.window.view.select_node(node, center=True))
        self.runs.curves_toggled.connect(self.show_run_curves)
        self.runs.resume_requested.connect(self.resume_run)
        self.runs.export_requested.connect(self.export)
        self.runs.sample_requested.connect(self.sample)
        self.runs.task_refusal = _task_refusal
        self.runs.refresh_requested.connect(self.refresh_runs)
        self.window.installEventFilter(self)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _after_first_paint(self) -> None:
        for holder in (self.plots_holder, self.insight_holder, self.samples_holder):
            holder.ready = True
            if holder.isVisible():
                holder.get()
        self.refresh_runs()
        QTimer.singleShot(WARM_AFTER_MS, self.warm_up)

    def warm_up(self) -> None:
        """Start a worker process now, so that Start begins training without waiting for torch."""
        if self.prewarm and self.mode == SessionMode.PROCESS and (self.spare is None or not self.spare.alive):
            from dlstudio.train.worker import start_worker

            self.spare = start_worker()

    # ----- running -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.active

    @property
    def live_shown(self) -> bool:
        """The session's run was started from the open graph, so the panels show it."""
        path, graph = self.live_owner
        return self.session is not None and (graph is self.document.graph
                                             or (path is not None and path == self.document.path))

    def runs_root(self) -> Path:
        """The runs folder of the command line too (``runs/`` in the working directory or
        ``$DLSTUDIO_RUNS``), never the graph's folder: examples may be installed read-only."""
        if self.runs_root_override is not None:
            return self.runs_root_override
        from dlstudio.train.rundir import runs_folder

        return runs_folder()

    def start(self, max_steps: int | None = None) -> bool:
        """Train the document's graph as its training section says; False when it cannot start."""
        if self.running:
            return False
        self.panel.refresh()
        if not self.panel.can_start:
            self._raise(self.train_dock)
            first = next(p for p in self.panel.problems if p.severity == "error")
            self.panel.show_message(f"Cannot start: {first.one_line()}", error=True)
            return False
        from dlstudio.train.rundir import default_run_path

        path = default_run_path(self.document.graph.name, self.runs_root())
        return self._launch(self.document.graph, None, path, resume=False, max_steps=max_steps)

    def resume_run(self, path: Path, epochs: int) -> bool:
        """Continue a run from its last checkpoint, up to ``epochs`` epochs in all."""
        from dlstudio.core.io import load_graph
        from dlstudio.core.training import TrainingConfig
        from dlstudio.train.rundir import RunDir, network_hash

        if self.running:
            return False
        try:
            record = RunDir(path).read_record()
            config = TrainingConfig.model_validate({**record["config"], "epochs": epochs})
            same = record.get("network_sha256") == network_hash(self.document.graph)
            graph = self.document.graph if same else load_graph(record["graph"])
        except Exception as error:  # noqa: BLE001  (a damaged run folder is reported, not raised)
            self.panel.show_message(f"Cannot resume {Path(path).name}: {error}", error=True)
            return False
        return self._launch(graph, config, Path(path), resume=True)

    def _launch(self, graph: Any, config: Any, path: Path, resume: bool, max_steps: int | None = None) -> bool:
        from dlstudio.ui.training.bridge import TrainingSession

        base = self.document.folder
        if self.session is not None:
            self.session.close()  # the last run's worker held its network for probes
        worker, self.spare = self.spare, None
        self.session = session = TrainingSession(graph, config, run_dir=path, resume=resume, base_dir=base,
                                                 max_steps=max_steps, mode=self.mode, worker=worker, parent=self)
        self.live_key = str(path)
        self.live_owner = (self.document.path, self.document.graph)
        self.live_step = self.live_report = self.live_confusion = None
        self.live_samples = []
        if self.samples_holder.content is not None:
            self.samples.clear()
        self.last_run = path
        self.indicators.clear()
        self._arrange()
        self._raise(self.train_dock)  # its progress bar
        plots = self.plots
        series = plots.add_run(self.live_key, run_label(path), live=True)
        if resume:
            from dlstudio.train.rundir import RunDir

            series.epochs = [{k: float(v) for k, v in r.items() if isinstance(v, int | float)}
                             for r in RunDir(path).read_metrics()]
        self.insight.clear()
        self.shown_runs.add(path)
        self._wire(session)
        self.panel.show_message("")
        self.panel.show_progress(0, 0, "starting…")
        self.panel.status.setText(SNAPSHOT_NOTE)
        session.set_details(self.insight.details())
        session.start()
        return True

    def _arrange(self) -> None:
        """Show the curves and the Inside view; the first time, give them room below the canvas."""
        shown = self.curves_dock.isVisible() and self.inside_dock.isVisible()
        self.curves_dock.show()
        self.inside_dock.show()
        if shown or self.arranged:
            return
        self.arranged = True
        problems = getattr(self.window, "problems_dock", None)
        if problems is not None and self.window.dockWidgetArea(problems) == self.window.dockWidgetArea(self.curves_dock):
            self.window.tabifyDockWidget(problems, self.curves_dock)  # what stops a run shows in Training
            self.curves_dock.raise_()
        width = self.window.width()
        self.window.resizeDocks([self.curves_dock, self.inside_dock], [int(width * 0.42), int(width * 0.26)],
                                Qt.Orientation.Horizontal)
        self.window.resizeDocks([self.curves_dock], [int(self.window.height() * 0.42)], Qt.Orientation.Vertical)

    def _wire(self, s: Any) -> None:
        s.state_changed.connect(self._state_changed)
        s.started.connect(self._run_started)
        s.steps.connect(self._steps)
        s.epoch_ended.connect(self._epoch_ended)
        s.throughput.connect(lambda e: self.plots.add_throughput(self.live_key, e.epoch, e.samples_per_s))
        s.probed.connect(self._probed)
        s.confusion.connect(self._confusion)
        s.sampled.connect(self._sampled)
        s.notice.connect(lambda text: self.window.statusBar().showMessage(text, 8000))
        s.failed.connect(self._failed)
        s.finished.connect(self._finished)
        s.checkpoint_saved.connect(lambda _: self.weights_written.emit())
        s.finished.connect(lambda _: self.weights_written.emit())

    def toggle_pause(self) -> None:
        if self.session is None:
            return
        if self.session.state == SessionState.RUNNING:
            self.session.pause()
        elif self.session.state == SessionState.PAUSED:
            self.session.resume_run()

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()

    def shutdown(self) -> None:
        """Stop a run (it saves a checkpoint) and wait for its thread: called on close and quit."""
        if self.session is not None:
            self.session.close()
        if self.spare is not None:  # no run: if it is still importing torch, kill it, not wait
            self.spare.close(timeout=SPARE_QUIT_S)
            self.spare = None
        for job in self.jobs:
            job.wait(STOP_WAIT_MS)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.window and event.type() == QEvent.Type.Close:
            if self.running:
                self.window.statusBar().showMessage("Stopping the run (a checkpoint is saved)…")
            self.shutdown()
        return False

    # ----- events from the run -----------------------------------------------------------------------

    def _state_changed(self, state: SessionState) -> None:
        self._update_actions()
        self.runs.set_busy(self.running, self.last_run)
        if state.ended:
            self.plots.redraw()  # while training, a plot waits up to MIN_PAUSE_S between redraws
            self.refresh_runs()
            QTimer.singleShot(WARM_AFTER_MS, self.warm_up)

    def _run_started(self, event: Any) -> None:
        if self.live_shown:
            self.plots.set_epochs(event.epochs)
        self.window.statusBar().showMessage(
            f"Training on {event.device}: {event.train_samples:,} samples, {event.parameters:,} parameters", 6000)
        self.refresh_runs()

    def _steps(self, steps: list[Any]) -> None:
        self.plots.add_steps(self.live_key, steps)
        self.live_step = steps[-1]
        if self.live_shown:
            self._show_step(steps[-1])

    def _show_step(self, last: Any) -> None:
        epochs = self.session.run_started.epochs if self.session.run_started else 0
        done = (last.epoch - 1) * last.batches + last.batch
        self.panel.show_progress(done, epochs * last.batches, f"epoch {last.epoch}/{epochs} · step {last.step} "
                                                               f"· loss {last.loss:.4g}")

    def _epoch_ended(self, event: Any) -> None:
        self.plots.add_epoch(self.live_key, event.epoch, event.metrics)
        if not self.live_shown:
            return
        shown = "  ".join(f"{k} {_format(k, v)}" for k, v in event.metrics.items())
        self.panel.status.setText(f"Epoch {event.epoch}: {shown}")

    def _probed(self, report: Any) -> None:
        self.live_report = report
        if not self.live_shown:
            return
        types = {n.id: n.type for n in self.document.graph.nodes}
        self.indicators.show_report(report, types)
        self.insight.show_report(report)

    def _confusion(self, report: Any) -> None:
        self.live_confusion = report
        if self.live_shown:
            self.insight.show_confusion(report)

    def _sampled(self, event: Any) -> None:
        """A picture or text the run drew after an epoch: the first brings the Samples view up."""
        self.live_samples.append(event)
        if not self.live_shown:
            return
        self.samples.add_epoch_sample(event)
        if len(self.live_samples) == 1:
            self._show_samples()

    def _show_samples(self) -> None:
        """Bring the Samples view up: in a tab beside Inside, or else with room of its own."""
        if not self.samples_dock.isVisible():
            if self.inside_dock.isVisible():
                self.window.tabifyDockWidget(self.inside_dock, self.samples_dock)
            else:
                self.samples_dock.show()
                w = self.window
                w.resizeDocks([self.samples_dock], [int(w.width() * 0.4)], Qt.Orientation.Horizontal)
                w.resizeDocks([self.samples_dock], [int(w.height() * 0.42)], Qt.Orientation.Vertical)
        self._raise(self.samples_dock)

    def _failed(self, event: Any) -> None:
        if not self.live_shown:
            return
        advice = f" — {event.advice}" if event.advice else ""
        text = f"Training failed ({event.kind.replace('_', ' ')}): {event.message}{advice}"
        self.panel.show_message(text, error=True)
        self.window.statusBar().showMessage(text, 15000)
        self._raise(self.train_dock)

    def _finished(self, event: Any) -> None:
        if not self.live_shown:
            return
        how = {FinishReason.COMPLETED: "Finished", FinishReason.EARLY_STOPPING: "Stopped early (no improvement)",
               FinishReason.MAX_STEPS: "Reached the step limit", FinishReason.STOPPED: "Stopped",
               FinishReason.INTERRUPTED: "Interrupted"}[event.reason]
        metric = next((f" · {k} {_format(k, v)}" for k, v in event.metrics.items()
                       if not k.startswith("train_loss")), "")
        resume = " (checkpoint saved: resume it from Runs)" if event.reason == FinishReason.STOPPED else ""
        self.panel.show_message(f"{how} after {event.epoch} epochs, {event.step} steps in "
                                f"{event.seconds:.0f} s{metric}{resume}")

    # ----- selection, documents, runs -------------------------------------------------------------------

    def _selection_changed(self, node_ids: list[str]) -> None:
        if self.insight_holder.content is not None or self.session is not None:
            self.insight.select(list(node_ids))

    def _details_wanted(self, nodes: list[str]) -> None:
        if self.live_shown:
            self.session.set_details(nodes)

    def _document_reset(self) -> None:
        """Another graph is open: the curves, the Inside view and the Training panel show its runs."""
        from dlstudio.train.runlist import list_runs

        self.indicators.clear()
        if self.plots_holder.content is not None:
            self.plots.hide_runs()
            listed = {r.path for r in list_runs(self.runs_root(), self.document.graph)}
            for path in sorted(self.shown_runs & listed):
                self._load_curves(path)
        if self.insight_holder.content is not None:
            self.insight.clear()
        if self.samples_holder.content is not None:
            self.samples.clear()
        if self.live_shown:
            self._show_live_run()
        else:
            self._show_no_run()
        self.refresh_runs()

    def _show_live_run(self) -> None:
        """Back to the graph of the session's run: its curves, pictures, progress and outcome."""
        from dlstudio.train.events import Finished

        if self.live_key is not None:
            self.plots.show_hidden(self.live_key)
        if self.session.run_started is not None:
            self.plots.set_epochs(self.session.run_started.epochs)
        if self.live_report is not None:
            self._probed(self.live_report)
        if self.live_confusion is not None:
            self.insight.show_confusion(self.live_confusion)
        for sample in self.live_samples:
            self.samples.add_epoch_sample(sample)
        if self.live_step is not None:
            self._show_step(self.live_step)
        self.panel.status.setText(SNAPSHOT_NOTE if self.running else "")
        self.panel.show_message("")
        outcome = self.session.outcome
        if outcome is not None:
            (self._finished if isinstance(outcome, Finished) else self._failed)(outcome)

    def _show_no_run(self) -> None:
        """The open graph has no run in this session (another graph's may be training)."""
        self.panel.status.setText("")
        self.panel.show_progress(0, 1, "ready" if self.panel.can_start else "fix the problems below")
        other = self.session.graph.name if self.running else ""
        self.panel.show_message(f"Training {other!r}: open it to follow the run; Stop ends it." if other else "")

    def refresh_runs(self) -> None:
        from dlstudio.train.runlist import list_runs  # dlstudio.train imports torch

        root = self.runs_root()
        runs = list_runs(root, self.document.graph)
        plotted = self.plots_holder.content.runs if self.plots_holder.content is not None else {}
        colours = {Path(key): series.colour for key, series in plotted.items()}
        self.runs.show_runs(runs, self.shown_runs, root, colours)

    def show_run_curves(self, path: Path, shown: bool) -> None:
        key = str(path)
        if not shown:
            self.shown_runs.discard(path)
            self.plots.remove_run(key)
            self.refresh_runs()
            return
        self.shown_runs.add(path)
        if key == self.live_key and key in self.plots.runs:
            return
        self.curves_dock.show()
        if self._load_curves(path):
            self.refresh_runs()  # its colour beside its name

    def _load_curves(self, path: Path) -> bool:
        """Draw a run's curves: kept from when its graph was last open, else read from its folder."""
        from dlstudio.train.errors import RunDirError
        from dlstudio.train.rundir import RunDir

        key = str(path)
        if self.plots.show_hidden(key):
            return True
        try:
            run = RunDir(path)
            records = run.read_metrics()
            samples = run.read_record().get("data", {}).get("train_samples")
        except (OSError, ValueError, RunDirError) as error:
            self.window.statusBar().showMessage(f"Cannot read the curves of {path.name}: {error}", 8000)
            return False
        series = self.plots.load_history(key, run_label(path), records)
        if isinstance(samples, int):  # throughput, where the log has each epoch's training time
            series.speed = [(float(r["epoch"]), samples / r["train_seconds"]) for r in records
                            if isinstance(r.get("train_seconds"), int | float) and r["train_seconds"] > 0]
        return True

    def _update_actions(self) -> None:
        state = self.session.state if self.session is not None else SessionState.READY
        active = self.running
        self.start_action.setEnabled(not active)
        self.pause_action.setEnabled(state.controllable)
        self.pause_action.setText("Resume" if state == SessionState.PAUSED else "Pause")
        self.stop_action.setEnabled(state.controllable)
        if not active and self.session is None:
            self.panel.show_progress(0, 1, "ready" if self.panel.can_start else "fix the problems below")

    def _raise(self, dock: QDockWidget) -> None:
        dock.show()
        dock.raise_()

    # ----- samples -------------------------------------------------------------------------------------

    def sample(self, run: Path) -> Any:
        """Draw samples from ``run`` on a worker thread; they show in the Samples view."""
        from dlstudio.ui.training.samples import SampleJob

        self.sample_seed += 1
        job = SampleJob(Path(run), self.sample_seed, self)
        job.done.connect(self._drawn)
        self.jobs.append(job)
        self.window.statusBar().showMessage(f"Drawing samples from {run_label(Path(run))}…")
        job.start()
        return job

    def _drawn(self, result: Any) -> None:
        self.jobs = [j for j in self.jobs if j.isRunning()]
        if result.drawn is None:
            self.window.statusBar().showMessage(result.message, 10000)
            self.panel.show_message(result.message, error=True)
            return
        self.window.statusBar().showMessage(f"Drew samples from {run_label(result.run)}", 6000)
        self.samples.show_drawn(run_label(result.run), result.drawn)
        self._show_samples()

    # ----- exports ---------------------------------------------------------------------------------------

    def export(self, kind: str, run: Path | None = None) -> ExportJob | None:
        """Export a trained run (the one selected in Runs, else the latest) as ``kind``."""
        run = run or self.runs.selected_path() or self.last_run
        if run is None:
            self.panel.show_message("Train the graph first, or pick a run in the Runs panel.", error=True)
            return None
        default = Path(run) / f"model{SUFFIXES[kind]}"
        output = self.ask_save_path(kind, default)
        if output is None:
            return None
        job = ExportJob(Path(run), kind, output, self)
        job.done.connect(self._exported)
        self.jobs.append(job)
        self.window.statusBar().showMessage(f"Exporting {output.name}…")
        job.start()
        return job

    def _exported(self, result: ExportResult) -> None:
        self.jobs = [j for j in self.jobs if j.isRunning()]
        self.window.statusBar().showMessage(result.message, 10000)
        self.panel.show_message(result.message, error=not result.ok)
        if result.snippet:
            box = QMessageBox(QMessageBox.Icon.Information, "Python export", result.message, parent=self.window)
            box.setTextFormat(Qt.TextFormat.PlainText)
            box.setInformativeText("Load it with:\n\n" + result.snippet)
            box.open()

    def _ask_save_path(self, kind: str, default: Path) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self.window, "Export", str(default), FILTERS.get(kind, ""))
        if not name:
            return None
        path = Path(name)
        return path if path.suffix else path.with_suffix(SUFFIXES.get(kind, ""))

    def _export_plots(self, kind: str) -> None:
        default = self.runs_root() / f"curves.{kind}"
        name, _ = QFileDialog.getSaveFileName(self.window, "Export curves", str(default),
                                              "PNG image (*.png)" if kind == "png" else "CSV (*.csv)")
        if not name:
            return
        path = Path(name)
        ok = self.plots.write_png(path) if kind == "png" else self.plots.write_csv(path) >= 0
        self.window.statusBar().showMessage(f"Wrote {path.name}" if ok else f"Could not write {path}", 8000)


def _task_refusal(task: str) -> str | None:
    from dlstudio.train.sampling import sample_refusal  # imports the tasks, so torch

    return sample_refusal(task)


def _format(name: str, value: float) -> str:
    return f"{value:.2%}" if name.endswith(("accuracy", "f1")) else f"{value:.4g}"
