"""Training tasks in the app: the task picker and each task's own settings, the pictures and texts a
run draws after each epoch, and Sample on a finished run."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt

from dlstudio.train import sampling
from dlstudio.train.data.bundled import shakespeare_text
from dlstudio.train.tasks import language_model
from dlstudio.ui.training.runs_panel import run_label
from tests.train.helpers import mlp
from tests.train.test_gan import tiny_gan
from tests.ui.test_training_ui import LONG, finish, open_example, open_graph, window  # noqa: F401  (a fixture)


def pick_task(win, task: str) -> None:
    """Choose ``task`` in the Task box as a user does."""
    combo = win.training.panel.task
    combo.setCurrentIndex(combo.findData(task))
    combo.activated.emit(combo.currentIndex())
    win.document.reanalyse()


def problem_lines(panel) -> list[str]:
    return [p.one_line() for p in panel.problems]


def test_the_task_picker_shows_each_tasks_own_settings_and_is_one_undo_step(qtbot, window, tmp_path) -> None:  # noqa: F811
    open_example(window, tmp_path, "gan_digits.json")
    panel, doc = window.training.panel, window.document
    gan = doc.graph.training.gan
    assert panel.task.currentData() == "gan" and panel.task.currentText() == "gan"
    editors = panel.task_args.editors
    assert list(editors)[:5] == ["generator", "discriminator", "noise", "real", "loss"]
    assert [editors[n].currentText() for n in ("generator", "discriminator", "noise", "real")] == \
        ["fake", "score", "noise", "image"]
    assert [editors["discriminator"].itemText(i) for i in range(editors["discriminator"].count())] == \
        ["not set", "fake", "score"]  # the graph's Outputs
    assert not panel.loss.isVisibleTo(panel) and not panel.lr.isVisibleTo(panel)  # the GAN's own replace them
    assert "betas" not in panel.optimizer_args.editors and "eps" in panel.optimizer_args.editors

    pick_task(window, "language_model")
    training = doc.graph.training
    assert training.task == "language_model" and training.gan is None
    assert list(panel.task_args.editors) == ["tokenizer", "sample_temperature", "sample_top_k"]
    assert [panel.task_args.editors[n].placeholderText() for n in ("sample_temperature", "sample_top_k")] == \
        ["1", "all"]
    assert panel.loss.isVisibleTo(panel) and panel.lr.isVisibleTo(panel) and "betas" in panel.optimizer_args.editors
    assert any("a language model learns from text, and dataset 'digits' is not a text" in p
               for p in problem_lines(panel))

    doc.undo_stack.undo()
    doc.reanalyse()
    assert doc.graph.training.task == "gan" and doc.graph.training.gan == gan
    assert panel.task.currentData() == "gan" and not panel.loss.isVisibleTo(panel)
    assert problem_lines(panel) == []

    pick_task(window, "supervised")
    assert doc.graph.training.task is None and not panel.task_args.isVisibleTo(panel)
    assert panel.loss.isVisibleTo(panel)


def test_a_gans_settings_edit_the_file_and_a_missing_part_is_a_problem_before_the_run(qtbot, window,  # noqa: F811
                                                                                        tmp_path) -> None:
    open_example(window, tmp_path, "gan_digits.json")
    panel, doc = window.training.panel, window.document
    discriminator = panel.task_args.editors["discriminator"]
    discriminator.activated.emit(discriminator.findData(""))  # "not set"
    doc.reanalyse()
    assert doc.graph.training.gan.discriminator is None
    assert any("discriminator" in p for p in problem_lines(panel)) and not panel.can_start
    lr = panel.task_args.editors["generator_lr"]
    lr.setText("0.001")
    lr.setModified(True)
    lr.editingFinished.emit()
    doc.reanalyse()
    assert doc.graph.training.gan.generator_lr == 0.001
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    doc.reanalyse()
    assert doc.graph.training.gan.discriminator == "score" and panel.can_start


def test_a_language_model_whose_output_is_not_vocabulary_sized_shows_it_on_the_output(qtbot, window,  # noqa: F811
                                                                                        tmp_path) -> None:
    open_example(window, tmp_path, "char_gpt.json")
    window.document.set_param("head", "out_features", 60)
    window.document.reanalyse()
    panel = window.training.panel
    [item] = [panel.problem_list.item(i) for i in range(panel.problem_list.count())
              if "vocabulary-sized" in panel.problem_list.item(i).text()]
    assert item.data(Qt.ItemDataRole.UserRole) == "logits" and not panel.can_start


def test_a_gan_run_shows_its_grid_after_each_epoch_and_sample_draws_from_the_finished_run(qtbot, window,  # noqa: F811
                                                                                           tmp_path) -> None:
    open_graph(window, tmp_path, tiny_gan(epochs=2))  # gan_digits' convolutions take long on a busy CPU
    ws = window.training
    assert ws.start()
    shown_while_training: list[tuple[int, str]] = []
    ws.session.sampled.connect(lambda e: shown_while_training.append((e.epoch, ws.samples.shown().header)))
    finish(qtbot, window)
    assert shown_while_training == [(1, "samples after epoch 1"), (2, "samples after epoch 2")]
    samples, run = ws.samples, ws.last_run
    assert ws.samples_dock.isVisible() and samples.current_source() == "samples"
    assert samples.shown().png == (run / "samples" / "epoch-002.png").read_bytes()
    assert samples.image.image.size().toTuple() == (4 * (4 * 9 + 1),) * 2  # 16 8x8 digits, 4x
    samples.slider.setValue(0)
    assert samples.header.text() == "samples after epoch 1"

    ws.runs.select(run)
    assert ws.runs.sample_button.isEnabled()
    qtbot.mouseClick(ws.runs.sample_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: samples.current_source() == "drawn", timeout=LONG)
    assert samples.header.text() == f"drawn from run {run_label(run)} · seed 1"
    assert not samples.image.image.isNull() and samples.stack.currentWidget() is samples.image


def test_a_language_model_run_shows_a_text_after_each_epoch_and_sample_draws_texts(qtbot, window,  # noqa: F811
                                                                                    tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(language_model, "EPOCH_LENGTH", 24)  # short texts: the test trains on its own thread
    monkeypatch.setattr(sampling, "VIEW_LENGTH", 12)
    alphabet = "".join(sorted(set(shakespeare_text())))  # char_gpt's 70 tokens
    text = tmp_path / "text.txt"
    text.write_text(alphabet * 40, encoding="utf-8")
    open_example(window, tmp_path, "char_gpt.json", epochs=1,
                 dataset={"name": "text", "params": {"path": str(text), "length": 64}, "inputs": {"tokens": "x"}})
    ws = window.training
    assert ws.start()
    finish(qtbot, window)
    assert ws.session.state == "finished"
    samples, run = ws.samples, ws.last_run
    assert samples.stack.currentWidget() is samples.text and samples.header.text() == "samples after epoch 1"
    shown = samples.text.toPlainText()
    assert len(shown) == 24 and shown == (run / "samples" / "epoch-001.txt").read_text(encoding="utf-8")
    ws.runs.select(run)
    ws.runs.sample_button.click()
    qtbot.waitUntil(lambda: samples.current_source() == "drawn", timeout=LONG)
    headers = re.findall(r"^--- sample (\d) ---$", samples.text.toPlainText(), re.MULTILINE)
    assert headers == ["1", "2", "3"]


def test_sample_is_off_with_a_reason_for_a_supervised_run_and_for_the_run_in_training(qtbot, window,  # noqa: F811
                                                                                      tmp_path) -> None:
    open_graph(window, tmp_path, mlp(epochs=1))
    ws = window.training
    assert ws.start()
    finish(qtbot, window)
    ws.runs.select(ws.last_run)
    button = ws.runs.sample_button
    assert not button.isEnabled() and "a supervised run has nothing to sample" in button.toolTip()
    ws.runs.set_busy(True, Path(ws.last_run))
    assert "still training" in button.toolTip()
