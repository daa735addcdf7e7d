"""Training from the app as a user meets it: the Training panel, runs, curves, the Inside view, exports."""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from safetensors.torch import load_file, save_file

from dlstudio.core.training import KEY_MAPS
from dlstudio.train import RunDir, Trainer
from dlstudio.ui.main_window import MainWindow
from dlstudio.ui.training.insight import WAITING
from tests.conftest import GRAPHS
from tests.train.helpers import graph_of, mlp
from tests.ui.windows import open_window

LONG = 60_000


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)
    win = open_window(qtbot, tmp_path, (1500, 950))
    win.training.runs_root_override = tmp_path / "runs"
    win.training.mode = "thread"  # fast; one test below trains in the worker process the app uses
    yield win
    win.training.shutdown()
    win.document.undo_stack.setClean()


def open_graph(window: MainWindow, tmp_path: Path, doc: dict[str, Any], name: str = "g.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert window.files.open_path(path, ask=False)
    window.document.reanalyse()
    return path


def open_example(window: MainWindow, tmp_path: Path, name: str, **training: Any) -> Path:
    doc = json.loads((GRAPHS / name).read_text(encoding="utf-8"))
    doc["training"].update(training)
    return open_graph(window, tmp_path, doc, name)


def finish(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.training.running, timeout=LONG)


# ----- running --------------------------------------------------------------------------------------


def test_a_run_in_the_worker_process_draws_curves_and_stops(qtbot, window, tmp_path) -> None:
    ws = window.training
    ws.mode = "process"
    open_graph(window, tmp_path, mlp(epochs=2000))
    assert ws.start()
    qtbot.waitUntil(lambda: len(ws.plots.runs.get(ws.live_key).step_x) >= 3 if ws.live_key in ws.plots.runs else False,
                    timeout=LONG)
    ws.plots.redraw()
    curve = ws.plots.runs[ws.live_key].items["train_loss_smoothed"]
    assert len(curve.xData) >= 3
    assert ws.stop_action.isEnabled() and not ws.start_action.isEnabled()
    ws.stop()
    finish(qtbot, window)
    assert ws.session.state == "stopped"
    assert ws.session.outcome.reason == "stopped" and ws.session.outcome.epoch < 2000
    assert "checkpoint saved" in ws.panel.message.text()
    [run] = ws.runs.runs.values()
    assert run.resumable and run.status == f"stopped at epoch {run.epochs_done}, resumable"
    rows = ws.plots.write_csv(tmp_path / "curves.csv")
    with (tmp_path / "curves.csv").open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert rows == len(table) and {"train_loss_step", "lr_step"} <= {r["series"] for r in table}
    assert ws.plots.write_png(tmp_path / "curves.png") and (tmp_path / "curves.png").stat().st_size > 1000


def test_every_plot_shows_the_whole_run_as_soon_as_it_ends(qtbot, window, tmp_path) -> None:
    ws = window.training
    open_graph(window, tmp_path, mlp(epochs=6))
    assert ws.start()
    finish(qtbot, window)  # no waiting out the pause between redraws a plot keeps while training
    series = ws.plots.runs[ws.live_key]
    for name in ("samples_per_s", "train_loss_smoothed", "lr_step", "val_loss", "val_accuracy"):
        shown = series.items[name].xData
        assert shown is not None and max(shown) >= 5.99, name


def test_stop_takes_effect_within_one_batch(qtbot, window, tmp_path) -> None:
    ws = window.training
    open_graph(window, tmp_path, mlp(epochs=2000))
    assert ws.start()
    qtbot.waitUntil(lambda: ws.session.trainer.state.step >= 5, timeout=LONG)
    asked_at = ws.session.trainer.state.step
    ws.stop()
    finish(qtbot, window)
    assert ws.session.outcome.step <= asked_at + 1


def test_pause_holds_the_run_and_resume_continues_it(qtbot, window, tmp_path) -> None:
    ws = window.training
    open_graph(window, tmp_path, mlp(epochs=2000))
    ws.start()
    qtbot.waitUntil(lambda: ws.session.trainer.state.step >= 3, timeout=LONG)
    ws.toggle_pause()
    assert ws.session.state == "paused" and ws.pause_action.text() == "Resume"
    qtbot.wait(300)
    held = ws.session.trainer.state.step
    qtbot.wait(400)
    assert ws.session.trainer.state.step <= held + 1
    ws.toggle_pause()
    qtbot.waitUntil(lambda: ws.session.trainer.state.step > held + 3, timeout=LONG)
    ws.stop()
    finish(qtbot, window)


def test_editing_during_a_run_leaves_the_run_alone(qtbot, window, tmp_path) -> None:
    ws = window.training
    open_graph(window, tmp_path, mlp(epochs=2000))
    ws.start()
    qtbot.waitUntil(lambda: ws.session.trainer.state.step >= 2, timeout=LONG)
    window.document.set_param("fc1", "out_features", 5)
    window.document.set_graph_field("training", {**window.document.graph.training.model_dump(
        mode="json", exclude_none=True), "batch_size": 4})
    assert ws.session.graph.node("fc1").params["out_features"] == 16
    assert ws.session.config.batch_size == 16
    step = ws.session.trainer.state.step
    qtbot.waitUntil(lambda: ws.session.trainer.state.step > step + 3, timeout=LONG)
    ws.stop()
    finish(qtbot, window)
    assert ws.session.state == "stopped"


def test_closing_the_window_stops_the_run_with_a_checkpoint(qtbot, window, tmp_path) -> None:
    ws = window.training
    open_graph(window, tmp_path, mlp(epochs=2000))
    ws.start()
    qtbot.waitUntil(lambda: ws.session.trainer.state.step >= 3, timeout=LONG)
    window.document.undo_stack.setClean()
    assert window.close()
    assert not ws.running and ws.session.outcome.reason == "stopped"
    assert any((Path(ws.session.run_dir) / "checkpoints").glob("*.json"))


def test_divergence_is_shown_and_the_app_stays_up(qtbot, window, tmp_path) -> None:
    doc = mlp(epochs=50, optimizer={"type": "SGD", "params": {"lr": 1e6}})
    doc["nodes"][2]["type"] = "ReLU"  # unbounded activations: a huge step overflows to NaN
    open_graph(window, tmp_path, doc)
    assert window.training.start()
    finish(qtbot, window)
    ws = window.training
    assert ws.session.state == "failed" and ws.session.outcome.kind == "diverged"
    assert "diverged" in ws.panel.message.text() and "lower the learning rate" in ws.panel.message.text()
    assert window.isVisible() and ws.start_action.isEnabled()
    window.training.panel.lr.setText("0.01")
    window.training.panel.lr.setModified(True)
    window.training.panel.lr.editingFinished.emit()
    assert window.document.graph.training.optimizer.params["lr"] == 0.01
    assert ws.start(max_steps=3)
    finish(qtbot, window)
    assert ws.session.state == "finished"


def test_bad_data_is_shown_as_a_message(qtbot, window, tmp_path) -> None:
    doc = mlp(dataset={"name": "csv", "params": {"path": "missing.csv", "target": "y"}, "inputs": {"x": "x"}})
    open_graph(window, tmp_path, doc)
    assert window.training.start()
    finish(qtbot, window)
    assert window.training.session.state == "failed"
    assert "missing.csv" in window.training.panel.message.text()


# ----- looking inside --------------------------------------------------------------------------------


def test_a_convolution_shows_its_feature_maps_and_the_canvas_its_statistics(qtbot, window, tmp_path) -> None:
    ws = window.training
    open_example(window, tmp_path, "cnn_digits.json", epochs=1, batch_size=256)
    window.view.select_node("conv1")
    assert ws.start()
    finish(qtbot, window)
    qtbot.waitUntil(lambda: ws.insight.report is not None and "conv1" in ws.insight.report.details, timeout=LONG)
    page = ws.insight.activations
    # the view redraws at most twice a second: the newest report may wait for its turn
    qtbot.waitUntil(lambda: page.title.text().startswith("conv1 · Conv2d · output [16, 32, 8, 8]")
                    and page.caption.text().startswith("32 maps"))
    assert ws.insight.report.details["conv1"].kind == "maps"
    assert page.picture.image is not None and page.picture.image.width() > 8 * 5
    assert page.caption.text().startswith("32 maps")
    assert sum(page.histogram.heights) == 16 * 32 * 8 * 8
    indicator = window.scene.nodes["conv1"].indicator
    assert indicator.startswith("μ ") and "σ " in indicator
    assert "dead" in window.scene.nodes["relu1"].indicator
    # predictions and the confusion matrix of the epoch
    assert len(ws.insight.predictions.predictions) == 8
    assert ws.insight.predictions.image.image is not None
    assert ws.insight.confusion.matrix.sum() == ws.session.run_started.val_samples
    # selecting another node after the run probes the trained network again
    window.view.select_node("fc1")
    qtbot.waitUntil(lambda: "fc1" in ws.insight.report.details, timeout=LONG)
    assert ws.insight.report.details["fc1"].kind == "vector"
    qtbot.waitUntil(lambda: page.title.text().startswith("fc1 · Linear"))


def test_a_node_selected_during_a_run_shows_its_picture_while_the_run_goes_on(qtbot, window, tmp_path) -> None:
    """The app's worker process, a convolution chosen mid-run: its maps come with the next step's
    probe (not after Stop), and later probes keep replacing them."""
    ws = window.training
    ws.mode = "process"
    open_example(window, tmp_path, "cnn_digits.json", epochs=1000, batch_size=16)
    assert ws.start()
    qtbot.waitUntil(lambda: ws.insight.report is not None, timeout=LONG)  # probed with nothing selected
    window.view.select_node("conv2")
    page = ws.insight.activations
    assert page.picture.image is None and page.picture.hint == WAITING  # not "No picture for this output"
    chosen = time.monotonic()
    qtbot.waitUntil(lambda: page.caption.text().startswith("64 maps"), timeout=LONG)
    waited = time.monotonic() - chosen
    assert ws.session.state == "running" and ws.session.outcome is None  # before Finished
    assert page.picture.image is not None and waited < 15  # the starved view waited about a minute
    first_step = ws.insight.report.step
    qtbot.waitUntil(lambda: ws.insight.report.step > first_step and "conv2" in ws.insight.report.details,
                    timeout=LONG)
    qtbot.waitUntil(lambda: not page.caption.text().endswith(f"step {first_step}"), timeout=LONG)
    assert ws.session.state == "running"
    ws.stop()
    finish(qtbot, window)


def test_gradient_warnings_appear_on_the_canvas(qtbot, window, tmp_path) -> None:
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [4]}}]
    edges, last = [], "x"
    for i in range(12):
        nodes += [{"id": f"fc{i}", "type": "Linear", "params": {"out_features": 8}},
                  {"id": f"s{i}", "type": "Sigmoid"}]
        edges += [{"source": last, "target": f"fc{i}"}, {"source": f"fc{i}", "target": f"s{i}"}]
        last = f"s{i}"
    nodes += [{"id": "head", "type": "Linear", "params": {"out_features": 3}}, {"id": "out", "type": "Output"}]
    edges += [{"source": last, "target": "head"}, {"source": "head", "target": "out"}]
    doc = {**mlp(epochs=1), "nodes": nodes, "edges": edges}
    open_graph(window, tmp_path, doc)
    window.training.start(max_steps=2)
    finish(qtbot, window)
    qtbot.waitUntil(lambda: "fc0" in window.training.indicators.warnings, timeout=LONG)
    assert window.scene.nodes["fc0"].extra_warning.startswith("vanishing gradient")
    assert window.scene.nodes["head"].extra_warning is None


# ----- the Training panel -----------------------------------------------------------------------------


def test_training_section_edits_are_undoable(qtbot, window, tmp_path) -> None:
    open_graph(window, tmp_path, mlp(epochs=2))
    panel = window.training.panel
    panel.epochs.setValue(7)
    panel.epochs.editingFinished.emit()
    assert window.document.graph.training.epochs == 7
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("SGD"))
    panel.optimizer.activated.emit(panel.optimizer.currentIndex())
    assert window.document.graph.training.optimizer.type == "SGD"
    panel.schedule.activated.emit(panel.schedule.findData("StepLR"))
    assert window.document.graph.training.scheduler.type == "StepLR"
    window.document.undo_stack.undo()
    window.document.undo_stack.undo()
    window.document.undo_stack.undo()
    window.document.reanalyse()
    assert window.document.graph.training == graph_of(mlp(epochs=2)).training
    assert panel.epochs.value() == 2


def test_a_graph_without_training_gets_a_fitting_section(qtbot, window, tmp_path) -> None:
    doc = mlp()
    del doc["training"]
    open_graph(window, tmp_path, doc)
    panel = window.training.panel
    assert not panel.can_start and panel.add_button.isVisible()
    assert not window.training.start()
    panel.add_button.click()
    window.document.reanalyse()
    assert window.document.graph.training.dataset.name == "iris"  # 4 features, as the Input
    assert panel.can_start and not panel.add_button.isVisible()


def test_a_configuration_problem_is_listed_and_blocks_the_start(qtbot, window, tmp_path) -> None:
    open_example(window, tmp_path, "cnn_digits.json", device="cuda:7")
    panel = window.training.panel
    panel.refresh_devices()
    assert not panel.can_start
    texts = [panel.problem_list.item(i).text() for i in range(panel.problem_list.count())]
    assert any("cuda:7 is not available" in t for t in texts)
    assert not window.training.start()
    assert "Cannot start" in panel.message.text()
    labels = [panel.device.itemText(i) for i in range(panel.device.count())]
    assert any(label.startswith("CPU") for label in labels)


def test_start_from_pretrained_weights_with_a_frozen_layer(qtbot, window, tmp_path) -> None:
    trained = Trainer(graph_of(mlp(epochs=1)), run_dir=RunDir(tmp_path / "base"))
    assert trained.fit().reason == "completed"
    doc = mlp(epochs=1)
    doc["nodes"][1]["frozen"] = True  # fc1
    open_graph(window, tmp_path, doc)
    panel = window.training.panel
    panel.init_weights.setText("nowhere")
    panel.init_weights.editingFinished.emit()
    assert window.document.graph.training.init_weights == "nowhere"
    window.document.reanalyse()
    texts = [panel.problem_list.item(i).text() for i in range(panel.problem_list.count())]
    assert any("pretrained weights 'nowhere' are not there" in t for t in texts) and not panel.can_start
    panel.init_weights.setText("base")  # relative to the graph's folder
    panel.init_weights.editingFinished.emit()
    window.document.reanalyse()
    assert panel.can_start
    assert window.training.start()
    finish(qtbot, window)
    pretrained = load_file(str(tmp_path / "base" / "model.safetensors"))
    run = next(p for p in (tmp_path / "runs").iterdir() if (p / "model.safetensors").exists())
    tuned = load_file(str(run / "model.safetensors"))
    assert torch.equal(tuned["fc1.weight"], pretrained["fc1.weight"])
    assert not torch.equal(tuned["fc2.weight"], pretrained["fc2.weight"])
    window.document.undo_stack.undo()
    assert window.document.graph.training.init_weights == "nowhere"


def test_start_from_weights_renamed_by_a_key_map_file(qtbot, window, tmp_path) -> None:
    trained = Trainer(graph_of(mlp(epochs=1)), run_dir=RunDir(tmp_path / "base"))
    assert trained.fit().reason == "completed"
    pretrained = load_file(str(tmp_path / "base" / "model.safetensors"))
    save_file({f"net.{k}": v for k, v in pretrained.items()}, str(tmp_path / "theirs.safetensors"))
    (tmp_path / "map.json").write_text(json.dumps({"rename": {"^net\\.": ""}}))
    doc = mlp(epochs=1)
    doc["nodes"][1]["frozen"] = True  # fc1
    open_graph(window, tmp_path, doc)
    panel = window.training.panel
    panel.init_weights.setText("theirs.safetensors")
    panel.init_weights.editingFinished.emit()
    assert [panel.key_map.itemText(i) for i in range(panel.key_map.count())] == ["automatic", *KEY_MAPS]
    panel.key_map.setEditText("nomap.json")
    panel.key_map.lineEdit().editingFinished.emit()
    assert window.document.graph.training.init_weights_map == "nomap.json"
    window.document.reanalyse()
    texts = [panel.problem_list.item(i).text() for i in range(panel.problem_list.count())]
    assert any("key map 'nomap.json' is neither a built-in map nor a file" in t for t in texts)
    panel.key_map.setEditText("map.json")  # relative to the graph's folder
    panel.key_map.lineEdit().editingFinished.emit()
    window.document.reanalyse()
    assert panel.can_start
    assert window.training.start()
    finish(qtbot, window)
    run = next(p for p in (tmp_path / "runs").iterdir() if (p / "model.safetensors").exists())
    assert torch.equal(load_file(str(run / "model.safetensors"))["fc1.weight"], pretrained["fc1.weight"])
    panel.key_map.setCurrentIndex(0)
    panel.key_map.activated.emit(0)
    assert window.document.graph.training.init_weights_map is None


def test_the_dataset_form_follows_the_dataset(qtbot, window, tmp_path) -> None:
    open_graph(window, tmp_path, mlp(data="spirals", features=2, classes=3))
    form = window.training.panel.dataset_args
    assert set(form.editors) == {"samples", "classes", "noise", "turns"}
    form.editors["samples"].setText("500")
    form.editors["samples"].setModified(True)
    form.editors["samples"].editingFinished.emit()
    assert window.document.graph.training.dataset.params == {"samples": 500}


# ----- runs and exports ---------------------------------------------------------------------------------


def test_runs_panel_lists_headless_runs_reopens_curves_and_resumes(qtbot, window, tmp_path) -> None:
    ws = window.training
    open_graph(window, tmp_path, mlp(epochs=2))
    run = tmp_path / "runs" / "test-mlp-20240101-120000"
    Trainer(copy.deepcopy(window.document.graph), run_dir=RunDir(run)).fit()
    ws.refresh_runs()
    assert list(ws.runs.runs) == [run]
    ws.show_run_curves(run, True)
    assert [r["epoch"] for r in ws.plots.runs[str(run)].epochs] == [1.0, 2.0]
    assert [x for x, _ in ws.plots.runs[str(run)].speed] == [1.0, 2.0]
    assert ws.resume_run(run, 3)
    finish(qtbot, window)
    assert ws.session.state == "finished"
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == [1, 2, 3]


@pytest.mark.parametrize("kind", ["weights", "python", "onnx", "torchscript"])
def test_exports_from_a_trained_run(qtbot, window, tmp_path, kind) -> None:
    ws = window.training
    open_graph(window, tmp_path, mlp(epochs=1))
    run = tmp_path / "runs" / "r1"
    Trainer(copy.deepcopy(window.document.graph), run_dir=RunDir(run)).fit()
    suffix = {"weights": ".safetensors", "python": ".py", "onnx": ".onnx", "torchscript": ".pt"}[kind]
    output = tmp_path / f"exported{suffix}"
    ws.ask_save_path = lambda _kind, _default: output
    job = ws.export(kind, run)
    with qtbot.waitSignal(job.done, timeout=LONG) as blocker:
        pass
    result = blocker.args[0]
    assert result.ok, result.message
    assert output.is_file() and output.stat().st_size > 100
    if kind == "python":
        assert output.with_suffix(".safetensors").is_file() and "load_state_dict" in result.snippet
    if kind == "onnx":
        assert "onnxruntime" in result.message
        difference = float(result.message.rsplit(" ", 1)[-1].rstrip("."))
        assert difference <= 1e-4
    assert ws.panel.message.text() == result.message



# ----- switching graphs -----------------------------------------------------------------------------------


def named(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return {**doc, "name": name}


def test_opening_another_graph_shows_its_runs_and_back_again_the_first_ones(qtbot, window, tmp_path) -> None:
    ws = window.training
    first = open_graph(window, tmp_path, named(mlp(epochs=2), "graph a"), "a.json")
    window.view.select_node("fc1")
    assert ws.start()
    finish(qtbot, window)
    run_a = ws.last_run
    qtbot.waitUntil(lambda: ws.insight.report is not None and "fc1" in ws.insight.report.details, timeout=LONG)
    b = named(mlp(epochs=3), "graph b")  # a run of B made on the command line
    run_b = tmp_path / "runs" / "graph-b-20240101-120000"
    Trainer(graph_of(b), run_dir=RunDir(run_b)).fit()
    open_graph(window, tmp_path, b, "b.json")
    assert list(ws.runs.runs) == [run_b]  # only B's runs: A's stay listed under A
    assert ws.plots.runs == {} and ws.plots.legend.entries == []
    assert ws.insight.report is None and ws.insight.confusion.matrix is None
    assert ws.indicators.texts == {} and window.scene.nodes["fc1"].indicator is None
    assert ws.panel.progress.format() == "ready" and ws.panel.message.text() == ""
    ws.show_run_curves(run_b, True)
    assert list(ws.plots.runs) == [str(run_b)]
    assert window.files.open_path(first, ask=False)
    assert list(ws.runs.runs) == [run_a]
    assert list(ws.plots.runs) == [str(run_a)]  # the run's curves, every point kept
    series = ws.plots.runs[str(run_a)]
    assert len(series.step_x) == ws.session.outcome.step and [r["epoch"] for r in series.epochs] == [1.0, 2.0]
    assert ws.insight.report is not None and ws.insight.confusion.matrix is not None
    assert window.scene.nodes["fc1"].indicator.startswith("μ ")
    assert ws.panel.message.text().startswith("Finished after 2 epochs")
    assert ws.panel.progress.format().startswith("epoch 2/2")
    window.files.open_path(tmp_path / "b.json", ask=False)
    assert list(ws.plots.runs) == [str(run_b)]  # B's ticked run comes back with B


def test_a_run_goes_on_while_another_graph_is_open(qtbot, window, tmp_path) -> None:
    ws = window.training
    first = open_graph(window, tmp_path, named(mlp(epochs=2000), "graph a"), "a.json")
    assert ws.start()
    qtbot.waitUntil(lambda: ws.live_step is not None, timeout=LONG)
    open_graph(window, tmp_path, named(mlp(epochs=2), "graph b"), "b.json")
    assert ws.plots.runs == {} and ws.runs.runs == {}
    assert "Training 'graph a'" in ws.panel.message.text() and ws.panel.progress.format() == "ready"
    left_at = ws.live_step.step
    qtbot.waitUntil(lambda: ws.live_step.step > left_at + 5, timeout=LONG)  # the run goes on unseen
    assert ws.plots.runs == {} and ws.insight.report is None
    assert not ws.start_action.isEnabled()  # one run at a time
    window.files.open_path(first, ask=False)
    assert list(ws.plots.runs) == [ws.live_key] and ws.session.state == "running"
    assert len(ws.plots.runs[ws.live_key].step_x) >= left_at + 5  # the steps made while B was open
    assert ws.panel.progress.format().startswith("epoch ") and ws.panel.message.text() == ""
    ws.stop()
    finish(qtbot, window)
    assert ws.panel.message.text().startswith("Stopped after")


def test_quitting_does_not_wait_for_a_spare_worker_to_import_torch(qtbot, window) -> None:
    from dlstudio.train.worker import start_worker

    window.training.spare = spare = start_worker()  # what the app starts after its first paint
    start = time.monotonic()
    window.training.shutdown()
    took = time.monotonic() - start
    assert not spare.alive and window.training.spare is None
    assert took < 2.0, f"quitting took {took:.2f} s"


def test_clicking_the_epochs_box_and_typing_replaces_the_number(qtbot, window, tmp_path) -> None:
    """Every field of the app selects its content on focus, the Training panel's too (a click
    into Epochs showing 15 and typing 80 gave 1580)."""
    open_graph(window, tmp_path, mlp(epochs=15))
    window.training.train_dock.show()
    window.training.train_dock.raise_()
    epochs = window.training.panel.epochs
    qtbot.waitUntil(lambda: epochs.isVisible() and epochs.value() == 15)
    qtbot.mouseClick(epochs.lineEdit(), Qt.MouseButton.LeftButton, pos=epochs.lineEdit().rect().center())
    qtbot.waitUntil(lambda: epochs.lineEdit().selectedText() == "15")
    qtbot.keyClicks(epochs, "80")
    qtbot.keyClick(epochs, Qt.Key.Key_Return)
    assert window.document.graph.training.epochs == 80
