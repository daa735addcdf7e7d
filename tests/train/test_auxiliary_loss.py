"""Auxiliary losses: scalar Outputs named in ``training.loss.auxiliary`` are added, weighted, to
the objective; bad names and shapes are diagnostics; files without the key are unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from torch import nn

from dlstudio import analyze, load_graph
from dlstudio.core.io import graph_to_json
from dlstudio.train import EpochEnd, Finished, Recorder, StepEnd, Trainer
from dlstudio.train.distributed import World
from dlstudio.train.setup import prepare
from tests.conftest import GRAPHS
from tests.train.helpers import graph_of, mlp

WEIGHT = 0.01


def moe(auxiliary: dict[str, Any] | None = None, **training: Any) -> dict[str, Any]:
    """The iris MLP with a MixtureOfExperts in the middle, its aux_loss on Output 'balance'."""
    doc = mlp(hidden=8, **training)
    doc["nodes"][2] = {"id": "experts", "type": "MixtureOfExperts",
                       "params": {"num_experts": 3, "top_k": 2, "hidden_dim": 8}}
    doc["nodes"].append({"id": "balance", "type": "Output"})
    doc["edges"][1:3] = [{"source": "fc1", "target": "experts.input"},
                         {"source": "experts.output", "target": "fc2"},
                         {"source": "experts.aux_loss", "target": "balance"}]
    doc["training"]["loss"]["auxiliary"] = {"balance": WEIGHT} if auxiliary is None else auxiliary
    return doc


def by_hand(module: nn.Module, inputs: list[torch.Tensor], target: torch.Tensor) -> tuple[float, float]:
    """(cross-entropy of the logits, the aux_loss) of one batch."""
    with torch.no_grad():
        logits, aux = module(*inputs)
        return float(nn.functional.cross_entropy(logits, target)), float(aux)


def test_a_moe_graph_with_a_weighted_balance_loss_trains():
    recorder = Recorder()
    result = Trainer(graph_of(moe(epochs=3)), callbacks=[recorder]).fit()
    assert isinstance(result, Finished) and result.reason == "completed"
    losses = [e.metrics["train_loss"] for e in recorder.of_type(EpochEnd)]
    assert losses[-1] < losses[0]
    assert all(torch.isfinite(torch.tensor(loss)) for loss in losses)


def test_the_first_step_optimises_the_main_loss_plus_the_weighted_aux_loss():
    graph = graph_of(moe())
    parts = prepare(graph, graph.training, World(), None)
    assert parts.output_index == 0 and parts.auxiliary == ((1, WEIGHT),)
    index = parts.batches.epoch(0, parts.train_target.device)[0]
    main, aux = by_hand(parts.module, [x[index] for x in parts.train_inputs], parts.train_target[index])
    assert 1.0 < aux < 3.0  # between top_k (balanced) and num_experts (collapsed)
    recorder = Recorder()
    Trainer(graph_of(moe()), callbacks=[recorder], max_steps=1).fit()
    (step,) = recorder.of_type(StepEnd)
    assert step.loss == pytest.approx(main + WEIGHT * aux, rel=1e-6)
    assert step.loss != pytest.approx(main, rel=1e-6)


def test_val_loss_is_the_same_objective_and_the_metrics_look_at_the_main_output():
    trainer = Trainer(graph_of(moe()), max_steps=3)
    trainer.fit()
    parts = trainer.parts
    total = correct = objective = 0.0
    for index in parts.val_batches:
        target = parts.val_target[index]
        main, aux = by_hand(parts.module.eval(), [x[index] for x in parts.val_inputs], target)
        objective += (main + WEIGHT * aux) * len(index)
        with torch.no_grad():
            correct += float((parts.module(*[x[index] for x in parts.val_inputs])[0].argmax(1) == target).sum())
        total += len(index)
    metrics = trainer.validate()
    assert metrics["val_loss"] == pytest.approx(objective / total, rel=1e-6)
    assert metrics["val_accuracy"] == pytest.approx(correct / total)


def test_a_zero_weight_leaves_the_aux_loss_out():
    graph = graph_of(moe({"balance": 0.0}))
    assert prepare(graph, graph.training, World(), None).auxiliary == ()


def errors_of(doc: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    analysis = analyze(load_graph(copy.deepcopy(doc)))
    return [(d.node, d.message, d.fix) for d in analysis.errors if d.param == "training.loss.auxiliary"]


@pytest.mark.parametrize(
    ("auxiliary", "node", "message", "fix"),
    [
        ({"nowhere": 0.1}, None, "the auxiliary loss 'nowhere' is not an Output node",
         "connect the scalar loss to an Output node and name that Output's id in training.loss.auxiliary"),
        ({"experts": 0.1}, "experts", "the auxiliary loss 'experts' is not an Output node",
         "connect the scalar loss to an Output node and name that Output's id in training.loss.auxiliary"),
        ({"out": 0.1}, "out", "Output 'out' is the main loss's output, so it cannot also be an auxiliary loss",
         "give the auxiliary loss an Output node of its own, or bind the main loss to another Output "
         "(training.loss.output)"),
        ({"balance": -0.1}, "balance", "the auxiliary loss 'balance' has the weight -0.1, which would make "
         "training push it up", "use a weight of 0 or more (0.01 is usual for a load-balancing loss)"),
    ],
)
def test_a_bad_auxiliary_loss_is_a_diagnostic_with_a_fix(auxiliary, node, message, fix):
    assert errors_of(moe(auxiliary)) == [(node, message, fix)]


def test_an_auxiliary_output_that_is_not_a_scalar_is_a_diagnostic():
    doc = moe({"balance": 0.1, "hidden": 0.5})
    doc["nodes"].append({"id": "hidden", "type": "Output"})
    doc["edges"].append({"source": "fc1", "target": "hidden"})
    assert errors_of(doc) == [(
        "hidden", "the auxiliary loss 'hidden' must be one floating-point number, but its Output gets "
        "float32 [N, 8]", "connect a scalar loss to it, such as a MixtureOfExperts' aux_loss port")]


def test_every_bad_entry_is_reported_and_a_run_refuses_to_start():
    doc = moe({"nowhere": 0.1, "out": 0.1, "balance": -1.0})
    assert [node for node, _, _ in errors_of(doc)] == [None, "out", "balance"]
    result = Trainer(graph_of(doc)).fit()
    assert result.kind == "config" and "nowhere" in result.message


def test_the_main_loss_defaulting_to_the_auxiliary_output_is_explained():
    doc = moe()
    doc["training"]["loss"].pop("output")
    doc["nodes"].insert(0, doc["nodes"].pop())  # 'balance' is now the first Output
    assert [node for node, _, _ in errors_of(doc)] == ["balance"]


def test_a_file_without_the_key_saves_byte_identically_and_one_with_it_keeps_it():
    for path in sorted(GRAPHS.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert graph_to_json(load_graph(path)) == text, path.name
    doc = graph_of(mlp())
    assert '"auxiliary"' not in graph_to_json(doc) and doc.training.loss.auxiliary is None
    saved = graph_to_json(graph_of(moe()))
    assert json.loads(saved)["training"]["loss"]["auxiliary"] == {"balance": WEIGHT}
    assert graph_to_json(load_graph(json.loads(saved))) == saved
