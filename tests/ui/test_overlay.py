"""The canvas overlay: nodes coloured by export readiness for a target, or by sparsity, as the
user sees them (tints, tooltips, the inspector, the legend)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF
from safetensors.numpy import save_file

from dlstudio.core.compiler import compile_graph
from dlstudio.core.readiness import Readiness
from dlstudio.ui.overlay import NO_WEIGHTS, CanvasOverlay
from tests.conftest import GRAPHS
from tests.ui.windows import open_window

MAMBA = {"mamba1", "mamba2"}


@pytest.fixture
def window(qtbot, tmp_path):
    win = open_window(qtbot, tmp_path)
    assert win.files.open_path(GRAPHS / "mamba_sequence.json", ask=False)
    return win


def states(win) -> dict[str, Readiness | None]:
    return {node: item.overlay.state if item.overlay else None for node, item in win.scene.nodes.items()}


def test_choosing_a_target_in_the_view_menu_tints_the_nodes_that_do_not_export(window):
    overlay = window.overlay
    assert all(item.overlay is None for item in window.scene.nodes.values())
    overlay.actions["torchscript"].trigger()
    assert overlay.box.currentText() == "Export readiness: TorchScript"
    found = states(window)
    assert {n for n, s in found.items() if s is Readiness.NOT_READY} == MAMBA
    assert {n for n, s in found.items() if s is Readiness.NOT_APPLICABLE} == {"tokens", "logits"}
    assert all(s is Readiness.READY for n, s in found.items() if n not in MAMBA | {"tokens", "logits"})
    style = window.scene.style
    assert window.scene.nodes["mamba1"].style.family("State space") == style.error
    assert window.scene.nodes["embed"].style.family("Sequence") == style.valid
    legend = overlay.legend
    assert legend.isVisible()
    assert legend.plain_text().splitlines()[:4] == ["Export readiness: TorchScript", "ready (7)",
                                                   "not ready (2)", "not applicable (2)"]
    overlay.actions["onnx"].trigger()  # the scan exports to ONNX at any length
    assert not {n for n, s in states(window).items() if s is Readiness.NOT_READY}
    assert legend.plain_text().splitlines()[:4] == ["Export readiness: ONNX", "ready (9)", "not ready (0)",
                                                   "not applicable (2)"]


def test_the_tooltip_and_the_inspector_give_the_reason_and_the_fix(window):
    window.overlay.set_mode("torchscript")
    tip = window.scene.nodes["mamba1"].tooltip_text()
    assert "TorchScript export: not ready\n• MambaBlock does not export to torchscript: its selective scan" in tip
    assert "Fix: give the Input a fixed length" in tip
    assert "TorchScript export: not applicable: an Input is an argument" in window.scene.nodes["tokens"].tooltip_text()
    window.view.select_node("mamba1")
    note = window.inspector.page.note
    assert note.isVisible() and note.text() == window.overlay.marks()["mamba1"].tooltip
    assert window.scene.nodes["mamba1"].overlay.badge == "not ready for TorchScript"
    window.overlay.set_mode("int8")  # int8 starts from the ONNX export, which the scan has
    assert states(window)["mamba1"] is Readiness.READY


def test_an_edit_that_makes_the_graph_export_turns_the_nodes_ready(window):
    window.overlay.set_mode("torchscript")
    window.document.set_param("tokens", "shape", [16])
    window.document.reanalyse()
    assert states(window)["mamba1"] is Readiness.READY and states(window)["mamba2"] is Readiness.READY
    assert "not ready (0)" in window.overlay.legend.plain_text()
    window.document.undo_stack.undo()
    window.document.reanalyse()
    assert states(window)["mamba1"] is Readiness.NOT_READY


def test_a_block_node_is_not_ready_naming_the_inner_node_and_the_opened_block_shows_it(qtbot, tmp_path):
    win = open_window(qtbot, tmp_path)
    assert win.files.open_path(GRAPHS / "mamba_130m.json", ask=False)
    win.overlay.set_mode("torchscript")
    layers = win.scene.nodes["layers"]
    assert layers.overlay.state is Readiness.NOT_READY
    assert "• layers.mixer: MambaBlock does not export to torchscript" in layers.tooltip_text()
    win.document.open_block("layers")
    assert states(win)["mixer"] is Readiness.NOT_READY and states(win)["norm"] is Readiness.READY


def test_none_takes_every_mark_off_and_the_mode_stays_when_another_graph_opens(window):
    window.overlay.set_mode("torchscript")
    assert window.files.open_path(GRAPHS / "mamba_130m.json", ask=False)
    assert window.overlay.box.currentText() == "Export readiness: TorchScript"
    assert {n for n, s in states(window).items() if s is Readiness.NOT_READY} == {"layers"}
    window.overlay.box.activated.emit(0)  # the user picks "None" in the combo
    assert window.overlay.actions["none"].isChecked()
    assert all(item.overlay is None and item.style is window.scene.style for item in window.scene.nodes.values())
    assert not window.overlay.legend.isVisible()


def pruned_weights(tmp_path):
    """cnn_digits' weights with the first half of conv1's weight and all of fc2's zero."""
    state = {k: v.numpy().copy() for k, v in compile_graph(GRAPHS / "cnn_digits.json").state_dict().items()}
    state["conv1.weight"].reshape(-1)[: state["conv1.weight"].size // 2] = 0
    state["conv1.bias"][:] = 1.0
    state["fc2.weight"][:] = 0
    state["fc2.bias"][:] = 0
    path = tmp_path / "pruned.safetensors"
    save_file(state, str(path))
    conv1 = (state["conv1.weight"].size // 2) / state["conv1.weight"].size
    return path, conv1


def test_sparsity_from_loaded_weights_shows_each_layers_share_of_zeros(qtbot, tmp_path):
    win = open_window(qtbot, tmp_path)
    assert win.files.open_path(GRAPHS / "cnn_digits.json", ask=False)
    path, conv1 = pruned_weights(tmp_path)
    assert win.overlay.open_weights(path)
    assert win.overlay.box.currentText() == "Sparsity"
    nodes = win.scene.nodes
    assert nodes["conv1"].overlay.fraction == pytest.approx(conv1)
    assert nodes["conv1"].overlay.badge == f"{conv1:.0%} zero"
    assert nodes["fc2"].overlay.badge == "100% zero"
    assert "Sparsity: 100.0% of its weights are zero (pruned.safetensors)" in nodes["fc2"].tooltip_text()
    assert nodes["relu1"].overlay.veiled and "it has no weights" in nodes["relu1"].tooltip_text()
    assert "pruned.safetensors: 4 layers" in win.overlay.legend.plain_text()
    assert win.files.open_path(GRAPHS / "mamba_sequence.json", ask=False)  # weights of another graph are dropped
    assert win.overlay.mode == "sparsity" and NO_WEIGHTS in win.overlay.legend.plain_text()
    layer = next(n for n, count in win.document.analysis.param_counts.items() if count)
    assert "Sparsity: no weights to read: load some" in win.scene.nodes[layer].tooltip_text()
    assert win.overlay.open_weights(path)  # cnn_digits' weights hold none of its layers
    assert "pruned.safetensors holds no weights of the layers shown" in win.overlay.legend.plain_text()
    assert "pruned.safetensors holds no weights for it" in win.scene.nodes[layer].tooltip_text()
    assert not win.overlay.open_weights(tmp_path / "missing.safetensors")


def test_sparsity_reads_the_current_runs_weights_when_none_are_loaded(qtbot, tmp_path):
    win = open_window(qtbot, tmp_path)
    assert win.files.open_path(GRAPHS / "cnn_digits.json", ask=False)
    path, conv1 = pruned_weights(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    overlay = CanvasOverlay(win.view, win.inspector, lambda: run)
    overlay.set_mode("sparsity")  # the run has not written its weights yet
    assert NO_WEIGHTS in overlay.legend.plain_text() and win.scene.nodes["conv1"].overlay.veiled
    path.rename(run / "model.safetensors")
    overlay.refresh()
    assert win.scene.nodes["conv1"].overlay.fraction == pytest.approx(conv1)
    assert "run/model.safetensors" in overlay.legend.plain_text()


def test_a_not_ready_node_is_painted_in_the_error_colour(window, qtbot):
    window.overlay.set_mode("torchscript")
    view, item = window.view, window.scene.nodes["mamba1"]
    view.set_zoom(1.0)
    view.centerOn(item)
    qtbot.wait(50)
    image = view.viewport().grab().toImage()
    strip = view.mapFromScene(item.mapToScene(QPointF(item.width / 2, 1.5)))
    assert image.pixelColor(strip).name() == window.scene.style.error.name()
    window.overlay.set_mode("none")
    qtbot.wait(50)
    image = view.viewport().grab().toImage()
    assert image.pixelColor(strip).name() == window.scene.style.family(item.view.family).name()


def test_zoomed_out_the_overview_blocks_take_the_overlay_colours(window):
    window.overlay.set_mode("torchscript")
    _, blocks, _ = window.scene._overview_shapes()
    assert len(blocks[window.scene.style.error.name()]) == 2
    assert len(blocks[window.scene.style.valid.name()]) == 7


def test_the_sparsity_view_follows_a_run_as_it_writes_its_weights(qtbot, tmp_path):
    import json

    from tests.train.helpers import mlp

    win = open_window(qtbot, tmp_path)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(mlp(epochs=2)))
    assert win.files.open_path(path, ask=False)
    win.overlay.set_mode("sparsity")
    assert win.scene.nodes["fc1"].overlay.veiled  # no run, no weights
    assert win.training.start()
    qtbot.waitUntil(lambda: not win.training.running, timeout=120_000)
    mark = win.scene.nodes["fc1"].overlay  # no edit since: the run's end put its weights on
    assert not mark.veiled and mark.fraction == 0.0 and mark.badge == "0% zero"
