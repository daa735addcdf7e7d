"""Unstructured magnitude pruning: exact thresholds, the cubic schedule, masks that hold through
training, gradual pruning in a run and its bit-exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from dlstudio.core.analysis import analyze
from dlstudio.core.training import PruningConfig
from dlstudio.train import RunDir
from dlstudio.train.magnitude import GradualPruning, apply_masks, cubic_sparsity, magnitude_masks
from tests.train.generative import assert_resume_is_bit_exact, fit, problems
from tests.train.helpers import graph_of, mlp

A = torch.tensor([[1.0, -2.0], [3.0, -4.0]])
B = torch.tensor([[0.5, 10.0, -20.0], [30.0, -0.25, 40.0]])


def kept(masks):
    return {name: mask.flatten().tolist() for name, mask in masks.items()}


def test_layer_scope_zeroes_the_same_share_of_each_tensor_by_magnitude():
    masks = magnitude_masks({"a": A, "b": B}, 0.5, "layer")
    assert kept(masks) == {"a": [False, False, True, True], "b": [False, False, True, True, False, True]}


def test_global_scope_zeroes_below_one_threshold_over_all_tensors():
    masks = magnitude_masks({"a": A, "b": B}, 0.5, "global")  # the 5 smallest of 10: -0.25 0.5 1 -2 3
    assert kept(masks) == {"a": [False, False, False, True], "b": [False, True, True, True, False, True]}


def test_ties_are_broken_by_position_so_the_count_is_exact():
    masks = magnitude_masks({"w": torch.ones(2, 3)}, 0.5, "layer")
    assert kept(masks) == {"w": [False, False, False, True, True, True]}
    assert kept(magnitude_masks({"w": torch.ones(2, 3)}, 0.0, "global")) == {"w": [True] * 6}


def test_the_schedule_rises_as_a_cubic_from_begin_to_end():
    assert [cubic_sparsity(step, 10, 20, 0.8) for step in (0, 10)] == [0.0, 0.0]
    assert cubic_sparsity(15, 10, 20, 0.8) == pytest.approx(0.8 * (1 - 0.5**3))
    assert cubic_sparsity(12, 10, 20, 0.8) == pytest.approx(0.8 * (1 - 0.8**3))
    assert [cubic_sparsity(step, 10, 20, 0.8) for step in (20, 25)] == [0.8, 0.8]


def tiny_pruning(**settings):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.Adam(module.parameters(), lr=0.1)
    config = PruningConfig(**{"sparsity": 0.75, "start_epoch": 2, "end_epoch": 3, **settings})
    analysis = analyze(graph_of(mlp(features=6, classes=2, hidden=8)))
    return module, optimizer, GradualPruning(config, analysis, module, [optimizer], steps_per_epoch=4, epochs=5)


def test_pruning_is_due_every_frequency_steps_of_its_epochs_and_at_their_end():
    _, _, every_epoch = tiny_pruning()
    assert [s for s in range(1, 30) if every_epoch.due(s)] == [8, 12]
    _, _, often = tiny_pruning(frequency=3)
    assert [s for s in range(1, 30) if often.due(s)] == [7, 10, 12]


def test_masks_keep_the_pruned_weights_at_zero_through_optimizer_steps():
    module, optimizer, pruning = tiny_pruning(scope="layer")
    pruning.on_step_end(type("Step", (), {"step": 12})())  # the end of pruning: the full target
    zeros = {name: (w == 0).clone() for name, w in pruning.weights.items()}
    assert [int(z.sum()) for z in zeros.values()] == [36, 12]  # 75% of 48 and of 16
    for _ in range(5):
        optimizer.zero_grad()
        module(torch.randn(4, 6)).square().sum().backward()
        optimizer.step()
    for name, weight in pruning.weights.items():
        assert bool((weight[zeros[name]] == 0).all()) and bool((weight[~zeros[name]] != 0).all())
    assert module[0].bias.count_nonzero() == 8  # biases are never pruned


def test_a_weight_pruned_once_stays_pruned_when_the_target_rises():
    module, _, pruning = tiny_pruning(frequency=1)
    pruning.on_step_end(type("Step", (), {"step": 6})())
    first = {name: mask.clone() for name, mask in pruning.masks.items()}
    with torch.no_grad():
        module[0].weight.add_(torch.where(first["0.weight"], 0.0, 100.0))  # the pruned weights become large
    pruning.on_step_end(type("Step", (), {"step": 7})())
    assert all(bool((~first[name] <= ~mask).all()) for name, mask in pruning.masks.items())


def pruned_mlp(**pruning):
    return mlp(epochs=4, pruning={"sparsity": 0.6, "start_epoch": 1, "end_epoch": 3, **pruning})


def test_a_run_prunes_gradually_to_its_target_and_records_each_nodes_sparsity(tmp_path):
    _, result, _ = fit(pruned_mlp(scope="layer"), run_dir=RunDir(tmp_path))
    assert result.reason == "completed"
    levels = [m["sparsity"] for m in RunDir(tmp_path).read_metrics()]
    assert 0 < levels[0] < levels[1] < levels[2] == levels[3] == pytest.approx(0.6, abs=0.01)
    record = json.loads((tmp_path / "sparsity.json").read_text())
    assert record["nodes"] == {"fc1": 38 / 64, "fc2": 29 / 48}  # round(0.6 * n) of each layer's n weights
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert int((weights["fc1.weight"] == 0).sum()) == round(0.6 * 64)
    assert int((weights["fc1.bias"] == 0).sum()) == 0


def test_resume_with_pruning_is_bit_exact(tmp_path):
    assert_resume_is_bit_exact(pruned_mlp(frequency=3), tmp_path, 10, ["model.safetensors"], ["sparsity.json"])


def test_a_pruning_section_that_ends_after_training_or_starts_after_it_ends_is_refused():
    found = problems(pruned_mlp(end_epoch=6))
    assert any("pruning ends after epoch 6, but training has 4 epochs" in p and "end_epoch to 4" in p for p in found)
    found = problems(pruned_mlp(start_epoch=4))
    assert any("pruning starts at epoch 4, after it ends (epoch 3)" in p for p in found)
    assert problems(pruned_mlp()) == []


def test_apply_masks_zeroes_in_place_what_a_mask_leaves_out():
    weights = {"a": A.clone()}
    apply_masks(weights, {"a": torch.tensor([[True, False], [False, True]])})
    assert weights["a"].tolist() == [[1.0, 0.0], [0.0, -4.0]]


@pytest.mark.slow
def test_cnn_digits_at_half_its_weights_keeps_its_accuracy_one_shot_and_gradually(tmp_path, capsys):
    """The README's figures: global magnitude pruning of cnn_digits to 50%, once after training
    and gradually over epochs 1-8 of 15, each within a point of the dense run."""
    from dlstudio.cli import main
    from tests.conftest import GRAPHS

    base, gradual = GRAPHS / "cnn_digits.json", tmp_path / "gradual.json"
    doc = json.loads(base.read_text())
    doc["training"]["pruning"] = {"sparsity": 0.5, "scope": "global", "start_epoch": 1, "end_epoch": 8}
    gradual.write_text(json.dumps(doc))
    for graph, run in ((base, "dense"), (gradual, "gradual")):
        assert main(["run", str(graph), "--out", str(tmp_path / run), "--json", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["prune", str(base), "--weights", str(tmp_path / "dense"), "--sparsity", "0.5",
                 "-o", str(tmp_path / "once.json")]) == 0
    once = float(capsys.readouterr().out.split("val_accuracy")[1].split()[1].rstrip("%")) / 100
    dense, pruned = (RunDir(tmp_path / run).read_metrics()[-1] for run in ("dense", "gradual"))
    with capsys.disabled():
        print(f"\ncnn_digits dense {dense['val_accuracy']:.2%}; 50% zero weights: one-shot {once:.2%}, "
              f"gradual {pruned['val_accuracy']:.2%}")
    assert pruned["sparsity"] == pytest.approx(0.5, abs=1e-5)
    assert min(once, pruned["val_accuracy"]) >= dense["val_accuracy"] - 0.01
