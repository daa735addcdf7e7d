"""The distillation task: a frozen teacher's softened outputs as a second target, a student-only
checkpoint, and the figures of the cnn_digits student."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from dlstudio import compile_graph
from dlstudio.cli import main
from dlstudio.core.io import load_graph, save_graph
from dlstudio.train.checkpoint import load_state
from dlstudio.train.tasks.distillation import soft_loss
from dlstudio.train.trainer import Trainer
from tests.conftest import GRAPHS
from tests.train.helpers import graph_of, mlp


def test_the_soft_loss_is_the_tempered_kl_and_vanishes_when_the_student_agrees():
    torch.manual_seed(0)
    student, teacher, target = torch.randn(6, 5), torch.randn(6, 5), torch.zeros(6, dtype=torch.long)
    expected = (F.softmax(teacher / 3, 1) * (F.log_softmax(teacher / 3, 1) - F.log_softmax(student / 3, 1))).sum(1)
    assert torch.allclose(soft_loss(student, teacher, target, 3.0), expected.mean())
    assert float(soft_loss(teacher, teacher, target, 3.0)) == pytest.approx(0.0, abs=1e-6)
    sequence = torch.randn(2, 4, 5)  # class-last [N, T, C] against a [N, T] target: one row per token
    assert torch.allclose(soft_loss(sequence, sequence.flip(0), torch.zeros(2, 4, dtype=torch.long), 1.0),
                          soft_loss(sequence.reshape(8, 5), sequence.flip(0).reshape(8, 5), torch.zeros(8), 1.0))


def teacher_and_student(tmp_path, **distillation):
    """An iris teacher trained for a few epochs, and a smaller student that distils from it."""
    teacher = tmp_path / "teacher.json"
    save_graph(graph_of(mlp(hidden=32, epochs=5)), teacher)
    assert main(["run", str(teacher), "--out", str(tmp_path / "teacher_run"), "--json", "--device", "cpu"]) == 0
    doc = mlp(hidden=6, epochs=2, task="distillation",
              distillation={"teacher": "teacher.json", "teacher_weights": "teacher_run", **distillation})
    student = tmp_path / "student.json"
    save_graph(graph_of(doc), student)
    return student


def test_a_distilled_student_saves_only_itself_and_logs_both_losses(tmp_path, capsys):
    student = teacher_and_student(tmp_path)
    out = tmp_path / "student_run"
    assert main(["run", str(student), "--out", str(out), "--json", "--device", "cpu"]) == 0
    own = set(compile_graph(load_graph(student)).state_dict())
    assert set(load_file(str(out / "model.safetensors"))) == own
    checkpoints = sorted((out / "checkpoints").glob("*.json"))
    assert checkpoints
    for path in checkpoints:
        assert set(load_state(path)["model"]) == own
        shapes = {tuple(t.shape) for t in load_file(str(path.with_suffix(".safetensors"))).values()}
        assert (32, 4) not in shapes  # the teacher's first layer (the student's is 6 x 4)
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train_loss/label", "train_loss/teacher", "val_accuracy"} <= set(record)


def test_the_teacher_is_frozen_in_eval_mode_and_unchanged_by_training(tmp_path):
    student = teacher_and_student(tmp_path, alpha=1.0)
    before = load_file(str(tmp_path / "teacher_run" / "model.safetensors"))
    trainer = Trainer(load_graph(student), base_dir=tmp_path)
    trainer.fit()
    teacher = trainer.task.teacher
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not any(p is q for p in teacher.parameters() for q in trainer.parts.module.parameters())


def test_distillation_without_a_teacher_says_what_to_add(tmp_path, capsys):
    doc = mlp(epochs=1, task="distillation")
    path = tmp_path / "g.json"
    save_graph(graph_of(doc), path)
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "distillation needs training.distillation to name the teacher's graph and weights" in err


@pytest.mark.slow
def test_the_cnn_digits_student_with_and_without_its_teacher(tmp_path, capsys):
    """The README's figures: the student distilled, the same student on labels alone, and the teacher."""
    graph = load_graph(GRAPHS / "cnn_digits_student.json")
    plain = graph.copy_deep()
    plain.training.task = None
    plain.training.distillation = None
    save_graph(plain, tmp_path / "plain.json")
    figures = {}
    for name, path in (("distilled", GRAPHS / "cnn_digits_student.json"), ("labels only", tmp_path / "plain.json"),
                       ("teacher", GRAPHS / "cnn_digits.json")):
        out = tmp_path / name.replace(" ", "_")
        assert main(["run", str(path), "--out", str(out), "--json", "--device", "cpu"]) == 0
        accuracy = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["val_accuracy"]
        params = sum(t.numel() for t in load_file(str(out / "model.safetensors")).values())
        figures[name] = (accuracy, params)
    capsys.readouterr()
    with capsys.disabled():
        print("\n" + "\n".join(f"{name}: {acc:.2%} with {params:,} parameters" for name, (acc, params) in figures.items()))
    assert figures["distilled"][1] < figures["teacher"][1] / 10
    assert figures["distilled"][0] >= figures["teacher"][0] - 0.04
