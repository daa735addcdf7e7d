"""Live training curves (pyqtgraph): loss raw and smoothed, metrics, learning rate, throughput.

A run whose task has several losses (``StepEnd.losses``, the ``train_loss/<name>`` and
``val_loss/<name>`` epoch metrics) also gets one curve per named loss, in shades of the run's
colour, named in a legend on the loss plot; a run with one loss shows just its total.

Several runs share the plots, each in its own colour: the live run and any past runs reopened
from their ``metrics.jsonl``. The x axis is the epoch (a step sits at its fraction of the
epoch), so runs of different lengths line up. New points only mark a run dirty; the curves
are redrawn at most twice a second, one plot per pass of the event loop, downsampled to the
pixels they cover.
"""

from __future__ import annotations

import csv
import math
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dlstudio.train.events import loss_parts
from dlstudio.ui.training.widgets import LegendStrip

TICK_MS = 125
#: Wide enough for tick labels such as "0.0005", "12000" or "-2.5e-05" at the plots' font size.
LEFT_AXIS_WIDTH = 50
PLOTS = ("loss", "metrics", "lr", "speed")
#: Shortest time between two redraws of a plot, in seconds.
MIN_PAUSE_S = {"loss": 1.0, "metrics": 2.0, "lr": 3.0, "speed": 3.0}
PALETTE = ("#4e8cf5", "#f28e2b", "#2ca58d", "#e15759", "#9d7cd8", "#d4a72c", "#e377c2", "#7f8c8d")
LOSS_KEYS = ("train_loss", "val_loss")
#: Hue offsets (degrees) from the run's colour for its named losses, in order.
PART_HUES = (40, -40, 80, -80, 120, -120, 160)


class LossAxis(pg.AxisItem):
    """A y axis whose log-scale labels never overlap.

    pyqtgraph labels every 1..9 step of a decade, so a loss falling from 2 to 0.3 stacks
    "0.3" .. "0.9" on top of each other, and a view inside one step (2.27 to 2.31, at the start
    of training) has no label at all. Here decades are labelled first, then 2 and 5, then the
    rest, each only where it has room; inside one step the ticks follow the values' own scale.
    """

    GAP_PX = 16  # a label's height, and a little air

    def __init__(self, orientation: str = "left", **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self.labelled: list[float] = []

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: list) -> list:  # noqa: N802, N803
        values = sorted({v for _, level in super().logTickValues(minVal, maxVal, size, stdTicks) for v in level})
        if len(values) < 2:
            values = _linear_ticks(10**minVal, 10**maxVal)
        room = self.GAP_PX * (maxVal - minVal) / max(size, 1.0)
        self.labelled = []
        for value in sorted(values, key=_log_tick_priority):
            if all(abs(value - kept) >= room for kept in self.labelled):
                self.labelled.append(value)
        return [(None, values)]

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [f"{10**v:.3g}" if any(math.isclose(v, kept, abs_tol=1e-12) for kept in self.labelled) else ""
                for v in values]


def _log_tick_priority(value: float) -> int:
    """Decades first, then 2 and 5 of a decade, then the other steps."""
    mantissa = round(10 ** (value - math.floor(value)), 6)
    return 0 if mantissa in (1.0, 10.0) else 1 if mantissa in (2.0, 5.0) else 2


def _linear_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round values between ``low`` and ``high`` (> 0), as log10 positions."""
    if not 0 < low < high:
        return []
    step = 10 ** math.floor(math.log10((high - low) / count))
    step *= next((m for m in (1, 2, 5, 10) if (high - low) / (step * m) <= count + 1), 10)
    first = math.ceil(low / step) * step
    return [math.log10(first + i * step) for i in range(int((high - first) / step) + 1)]


class Smoother:
    """Debiased exponential moving average (as TensorBoard smooths), one value at a time."""

    def __init__(self, weight: float) -> None:
        self.weight, self.last, self.count = weight, 0.0, 0

    def __call__(self, value: float) -> float:
        if math.isfinite(value):
            self.last = self.weight * self.last + (1 - self.weight) * value
            self.count += 1
        return self.last / (1 - self.weight**self.count) if self.count else math.nan


@dataclass
class StepCurve:
    """One named loss, step by step: raw values and their moving average."""

    smoother: Smoother
    x: array = field(default_factory=lambda: array("d"))
    raw: array = field(default_factory=lambda: array("d"))
    smooth: array = field(default_factory=lambda: array("d"))

    def add(self, x: float, value: float) -> None:
        self.x.append(x)
        self.raw.append(value)
        self.smooth.append(self.smoother(value))

    def resmooth(self, weight: float) -> None:
        self.smoother = Smoother(weight)
        self.smooth = array("d", (self.smoother(v) for v in self.raw))


@dataclass
class RunSeries:
    """Every point of one run the plots know."""

    key: str
    name: str
    colour: QColor
    live: bool = False
    step_x: array = field(default_factory=lambda: array("d"))
    step_loss: array = field(default_factory=lambda: array("d"))
    step_lr: array = field(default_factory=lambda: array("d"))
    step_smooth: array = field(default_factory=lambda: array("d"))
    smoother: Smoother = field(default_factory=lambda: Smoother(0.8))
    epochs: list[dict[str, float]] = field(default_factory=list)
    speed: list[tuple[float, float]] = field(default_factory=list)  # (epoch, samples/s)
    parts: dict[str, StepCurve] = field(default_factory=dict)  # named losses besides the total, by name
    items: dict[str, pg.PlotDataItem] = field(default_factory=dict)
    drawn: dict[str, tuple] = field(default_factory=dict)
    labelled: set[str] = field(default_factory=set)  # items named in the loss plot's legend

    def epoch_values(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [(r["epoch"], r[key]) for r in self.epochs if key in r]
        return (np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float))

    def metric_keys(self) -> list[str]:
        keys = dict.fromkeys(k for r in self.epochs for k in r if k.startswith("val_") and not k.startswith("val_loss"))
        return list(keys)

    def loss_names(self) -> list[str]:
        """The named losses besides the total (``generator``, ...), from steps and epoch metrics."""
        epochs = (k.partition("/")[2] for r in self.epochs for k in r if k.startswith(("train_loss/", "val_loss/")))
        return list(dict.fromkeys([*self.parts, *epochs]))

    def part_colour(self, index: int) -> QColor:
        hue, saturation, value, _ = self.colour.getHsv()
        return QColor.fromHsv((max(hue, 0) + PART_HUES[index % len(PART_HUES)]) % 360, saturation, value)


class PlotsPanel(QWidget):
    """Four plots over the runs shown; :meth:`write_png` and :meth:`write_csv` export them."""

    export_png_requested = Signal()
    export_csv_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training_plots")
        self.runs: dict[str, RunSeries] = {}
        self.hidden: dict[str, RunSeries] = {}  # runs of graphs not open now: they keep their points
        self.smoothing = 0.8
        self.epochs = 1
        self.views: list[pg.PlotWidget] = []
        self._metrics_title = ""
        self._dirty: set[tuple[str, str]] = set()  # (run, plot)
        self._drawn_at: dict[str, float] = {}
        self._turn = 0
        self._timer = QTimer(self, singleShot=True, interval=TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._build()
        self.restyle()

    # ----- construction ------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(self._controls())
        self.legend = LegendStrip("solid: training, smoothed (faint: each step) · dashed: validation")
        layout.addWidget(self.legend)
        grid = QGridLayout()
        grid.setSpacing(6)
        # one view per plot: new points repaint only the plots they change
        self.loss = self._plot(grid, 0, 0, "Loss")
        self.metrics = self._plot(grid, 0, 1, "Validation metrics")
        self.lr = self._plot(grid, 1, 0, "Learning rate")
        self.speed = self._plot(grid, 1, 1, "Throughput (samples / s)")
        self.loss.setLogMode(y=True)
        layout.addLayout(grid, 1)

    def _controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(QLabel("Smoothing"))
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(int(self.smoothing * 100))
        self.smooth_slider.setMaximumWidth(140)
        self.smooth_slider.setToolTip("Weight of the moving average drawn over the training loss")
        self.smooth_slider.valueChanged.connect(self._smoothing_changed)
        row.addWidget(self.smooth_slider)
        self.log_box = QCheckBox("Log loss")
        self.log_box.setChecked(True)
        self.log_box.toggled.connect(self._log_toggled)
        row.addWidget(self.log_box)
        row.addStretch(1)
        for text, signal in (("PNG…", self.export_png_requested), ("CSV…", self.export_csv_requested)):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(f"Export the plots {'as an image' if text == 'PNG…' else 'data as CSV'}")
            button.clicked.connect(signal.emit)
            row.addWidget(button)
        return row

    def _log_toggled(self, on: bool) -> None:
        self.loss.setLogMode(y=on)
        self._fit_y(self.loss, force=True)

    def _plot(self, grid: QGridLayout, row: int, col: int, title: str) -> pg.PlotItem:
        view = pg.PlotWidget(axisItems={"left": LossAxis("left")})
        view.setMinimumSize(160, 110)
        grid.addWidget(view, row, col)
        self.views.append(view)
        plot = view.getPlotItem()
        plot.setTitle(title, size="9pt")
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "epoch")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.getViewBox().setMouseEnabled(x=True, y=False)
        plot.getViewBox().enableAutoRange(x=False, y=False)
        plot.setXRange(0, 1, padding=0.02)
        for side in ("left", "bottom", "top", "right"):  # axes repaint from a pixmap until their range moves
            plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # A fixed width: otherwise a wider tick label ("0.5" -> "0.25") re-lays out the plot, and a
        # re-laid-out plot repaints everything in it.
        plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
        return plot

    def set_epochs(self, epochs: int) -> None:
        """Fix the x axis at 0..epochs (the longest run shown), so ticks stay put while points arrive."""
        self.epochs = max(self.epochs, epochs)
        for plot in (self.loss, self.metrics, self.lr, self.speed):
            plot.setXRange(0, self.epochs, padding=0.02)

    def restyle(self) -> None:
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        for view in self.views:
            view.setBackground(base)
        muted = QColor(text)
        muted.setAlpha(170)
        for plot in (self.loss, self.metrics, self.lr, self.speed):
            plot.titleLabel.setText(plot.titleLabel.text, color=text, size="9pt")
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(muted))
                axis.setTextPen(pg.mkPen(muted))
        self._style_legend()

    def _loss_legend(self) -> pg.LegendItem:
        """The loss plot's legend of named losses (made on first need), on the plot's background."""
        legend = self.loss.legend
        if legend is None:
            legend = self.loss.addLegend(offset=(-10, 10), labelTextSize="8pt")
            self._style_legend()
        return legend

    def _style_legend(self) -> None:
        if self.loss.legend is not None:
            background = QColor(self.palette().color(QPalette.ColorRole.Base))
            background.setAlpha(210)
            self.loss.legend.setBrush(background)
            self.loss.legend.setLabelTextColor(self.palette().color(QPalette.ColorRole.Text))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() == QEvent.Type.PaletteChange:
            self.restyle()
        super().changeEvent(event)

    # ----- runs ------------------------------------------------------------------------------------

    def add_run(self, key: str, name: str, live: bool = False) -> RunSeries:
        """A run to draw (replacing one of the same key); colours cycle through the palette."""
        self.remove_run(key)
        used = {r.colour.name() for r in self.runs.values()}
        colour = next((c for c in PALETTE if QColor(c).name() not in used), PALETTE[len(self.runs) % len(PALETTE)])
        series = RunSeries(key, name, QColor(colour), live, smoother=Smoother(self.smoothing))
        self.runs[key] = series
        self._mark(key)
        self._update_legend()
        return series

    def remove_run(self, key: str) -> None:
        self.hidden.pop(key, None)
        series = self.runs.pop(key, None)
        if series is None:
            return
        for item in series.items.values():
            for plot in (self.loss, self.metrics, self.lr, self.speed):
                if item in plot.listDataItems():
                    plot.removeItem(item)
        self._dirty = {d for d in self._dirty if d[0] != key}
        self._update_legend()

    def hide_runs(self) -> None:
        """Take every run off the plots (another graph is open); a live one goes on collecting."""
        for key, series in list(self.runs.items()):
            self.remove_run(key)
            series.items.clear()
            series.drawn.clear()
            self.hidden[key] = series
        self.epochs = 1
        self.set_epochs(1)

    def show_hidden(self, key: str) -> bool:
        """Draw a hidden run again, with every point it collected meanwhile; False if none."""
        series = self.hidden.pop(key, None)
        if series is None:
            return False
        self.runs[key] = series
        if series.epochs:
            self.set_epochs(int(max(r["epoch"] for r in series.epochs)))
        self._mark(key)
        self._update_legend()
        return True

    def _series(self, key: str) -> RunSeries:
        return self.runs[key] if key in self.runs else self.hidden[key]

    def load_history(self, key: str, name: str, records: list[dict[str, Any]]) -> RunSeries:
        """A past run from its metric log (one record per epoch)."""
        series = self.add_run(key, name)
        series.epochs = [{k: float(v) for k, v in r.items() if _finite_number(v)} for r in records]
        if series.epochs:
            self.set_epochs(int(max(r["epoch"] for r in series.epochs)))
        return series

    def add_steps(self, key: str, steps: list[Any]) -> None:
        series = self._series(key)
        for s in steps:
            x = s.epoch - 1 + s.batch / max(s.batches, 1)
            series.step_x.append(x)
            series.step_loss.append(s.loss)
            series.step_lr.append(s.lr)
            series.step_smooth.append(series.smoother(s.loss))
            for name, value in loss_parts(s.losses).items():
                if name not in series.parts:
                    series.parts[name] = StepCurve(Smoother(self.smoothing))
                series.parts[name].add(x, value)
        self._mark(key, "loss", "lr")

    def add_epoch(self, key: str, epoch: int, metrics: dict[str, float], lr: float | None = None) -> None:
        record = {"epoch": float(epoch), **{k: float(v) for k, v in metrics.items()}}
        if lr is not None:
            record["lr"] = lr
        series = self._series(key)
        series.epochs = [r for r in series.epochs if r["epoch"] != epoch] + [record]
        self._mark(key, "loss", "metrics", "lr")

    def add_throughput(self, key: str, epoch: int, samples_per_s: float) -> None:
        self._series(key).speed.append((float(epoch), samples_per_s))
        self._mark(key, "speed")

    def _update_legend(self) -> None:
        self.legend.set_entries([(r.colour, r.name) for r in self.runs.values()])

    def _title_metrics(self, keys: list[str]) -> None:
        names = [k.removeprefix("val_") for k in keys]
        if not names:
            return
        title = "Validation " + (names[0] if len(names) == 1 else
                                 f"{names[0]} (solid), " + ", ".join(names[1:]) + " (dashed)")
        if title != self._metrics_title:
            self._metrics_title = title
            self.metrics.setTitle(title, size="9pt", color=self.palette().color(QPalette.ColorRole.Text))

    def _mark(self, key: str, *plots: str) -> None:
        if key not in self.runs:
            return
        for plot in plots or PLOTS:
            self._dirty.add((key, plot))
        if not self._timer.isActive():
            self._timer.start()

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing = value / 100
        for key, series in self.runs.items():
            series.smoother = Smoother(self.smoothing)
            series.step_smooth = array("d", (series.smoother(v) for v in series.step_loss))
            for part in series.parts.values():
                part.resmooth(self.smoothing)
            self._mark(key, "loss")

    # ----- drawing -----------------------------------------------------------------------------------

    def redraw(self) -> None:
        """Bring every plot up to date now."""
        for name in PLOTS:
            self._draw_plot(name)

    def _tick(self) -> None:
        """Redraw one plot whose data changed and whose pause is over (the next in turn).

        One plot per tick keeps each event-loop pass short: a new point never costs the UI
        four repaints at once.
        """
        now = time.monotonic()
        for _ in PLOTS:
            name = PLOTS[self._turn % len(PLOTS)]
            self._turn += 1
            if any(d[1] == name for d in self._dirty) and now - self._drawn_at.get(name, 0.0) >= MIN_PAUSE_S[name]:
                self._draw_plot(name)
                break
        if self._dirty:
            self._timer.start()

    def _draw_plot(self, name: str) -> None:
        self._drawn_at[name] = time.monotonic()
        for key in [d[0] for d in self._dirty if d[1] == name]:
            self._dirty.discard((key, name))
            if key in self.runs:
                self._draw(self.runs[key], name)
        self._fit_y(getattr(self, name))

    @staticmethod
    def _fit_y(plot: pg.PlotItem, force: bool = False) -> None:
        """Move the y range only when the data leaves it or fills less than 40% of it: a range
        that follows every point makes the axis lay out and repaint at every point."""
        view = plot.getViewBox()
        bounds = view.childrenBounds()[1]
        if bounds is None or not all(math.isfinite(b) for b in bounds):
            return
        low, high = bounds
        shown_low, shown_high = view.viewRange()[1]
        span = max(high - low, abs(high) * 0.05, 1e-9)  # a constant (an unscheduled LR) gets a sane range
        if force or low < shown_low or high > shown_high or span < 0.4 * (shown_high - shown_low):
            view.setYRange(low - 0.25 * span, high + 0.1 * span, padding=0)  # room below: losses fall

    def _curve(self, series: RunSeries, name: str, plot: pg.PlotItem, x: np.ndarray, y: np.ndarray,
               alpha: int = 255, width: float = 2.0, dashed: bool = False, symbol: str | None = None,
               colour: QColor | None = None, label: str | None = None) -> None:
        """Draw one curve of a run (created on first use); a ``label`` names it in the plot's legend."""
        item = series.items.get(name)
        if item is None:
            base = QColor(colour if colour is not None else series.colour)
            pen_colour = QColor(base)
            pen_colour.setAlpha(alpha)
            pen = pg.mkPen(pen_colour, width=width, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            item = pg.PlotDataItem(pen=pen, symbol=symbol, symbolSize=5,
                                   symbolBrush=base, symbolPen=None, connect="finite",
                                   antialias=width > 1.5)
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            plot.addItem(item)
            series.items[name] = item
        if label is not None and name not in series.labelled:
            series.labelled.add(name)
            self._loss_legend().addItem(item, label)
        signature = (len(x), float(y[-1]) if len(y) else None, self.smoothing)
        if series.drawn.get(name) != signature:  # an unchanged curve must not repaint its plot
            series.drawn[name] = signature
            item.setData(x, y)

    def _draw(self, series: RunSeries, plot: str) -> None:
        before = series.step_x[0] if series.step_x else math.inf  # a resumed run's earlier epochs
        earlier = any(r["epoch"] <= before and "train_loss" in r for r in series.epochs)
        if plot == "loss":
            self._draw_losses(series, before, earlier)
        elif plot == "lr":
            if series.step_x:
                self._curve(series, "lr_step", self.lr, np.array(series.step_x, dtype=float),
                            np.array(series.step_lr, dtype=float))
            if earlier:
                lx, ly = series.epoch_values("lr")
                self._curve(series, "lr", self.lr, lx[lx <= before], ly[lx <= before], symbol="o")
        elif plot == "metrics":
            for index, key in enumerate(series.metric_keys()):
                self._curve(series, key, self.metrics, *series.epoch_values(key), dashed=index > 0, symbol="o")
            self._title_metrics(series.metric_keys())
        elif series.speed:
            xs, ys = zip(*series.speed, strict=True)
            self._curve(series, "samples_per_s", self.speed, np.array(xs), np.array(ys), symbol="o")

    def _draw_losses(self, series: RunSeries, before: float, earlier: bool) -> None:
        """The total loss as ever; with several losses, each named one too, and a legend."""
        names = series.loss_names()
        total = "total" if names else None
        if series.step_x:
            x = np.array(series.step_x, dtype=float)  # copies: the arrays keep growing
            self._curve(series, "train_loss_step", self.loss, x, np.array(series.step_loss, dtype=float),
                        alpha=70, width=1.0)
            self._curve(series, "train_loss_smoothed", self.loss, x, np.array(series.step_smooth, dtype=float),
                        label=total)
        self._epoch_losses(series, "", before, earlier, series.colour, None if series.step_x else total)
        for index, name in enumerate(names):
            colour = series.part_colour(index)
            part = series.parts.get(name)
            if part is not None:
                self._curve(series, f"train_loss_smoothed/{name}", self.loss, np.array(part.x, dtype=float),
                            np.array(part.smooth, dtype=float), colour=colour, label=name)
            self._epoch_losses(series, f"/{name}", before, earlier, colour, None if part is not None else name)

    def _epoch_losses(self, series: RunSeries, suffix: str, before: float, earlier: bool, colour: QColor,
                      label: str | None) -> None:
        """``train_loss<suffix>`` for epochs before the steps shown, and ``val_loss<suffix>`` dashed."""
        train, val = f"train_loss{suffix}", f"val_loss{suffix}"
        if earlier and any(train in r for r in series.epochs):
            ex, ey = series.epoch_values(train)
            self._curve(series, train, self.loss, ex[ex <= before], ey[ex <= before], symbol="o", colour=colour,
                        label=label)
            label = None
        if any(val in r for r in series.epochs):
            self._curve(series, val, self.loss, *series.epoch_values(val), dashed=True, symbol="o", colour=colour,
                        label=label)

    # ----- export ------------------------------------------------------------------------------------

    def rows(self) -> list[tuple[str, str, float, float]]:
        """Every point: (run, series, epoch, value), raw values (no smoothing)."""
        out: list[tuple[str, str, float, float]] = []
        for series in self.runs.values():
            out += [(series.name, "train_loss_step", x, y) for x, y in zip(series.step_x, series.step_loss, strict=True)]
            out += [(series.name, "lr_step", x, y) for x, y in zip(series.step_x, series.step_lr, strict=True)]
            for name, part in series.parts.items():
                out += [(series.name, f"train_loss_step/{name}", x, y) for x, y in zip(part.x, part.raw, strict=True)]
            for record in series.epochs:
                out += [(series.name, k, record["epoch"], v) for k, v in record.items() if k != "epoch"]
            out += [(series.name, "samples_per_s", x, y) for x, y in series.speed]
        return out

    def write_csv(self, path: Path) -> int:
        """Write the plotted data as CSV (one row per point); returns the number of rows."""
        rows = self.rows()
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["run", "series", "epoch", "value"])
            writer.writerows(rows)
        return len(rows)

    def write_png(self, path: Path) -> bool:
        self.redraw()
        return self.grab().save(str(path), "PNG")


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
