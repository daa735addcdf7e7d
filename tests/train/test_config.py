"""The training section: file round trip, resolution, and checks reported as diagnostics."""

from __future__ import annotations

import pytest

from dlstudio import analyze
from dlstudio.core.errors import GraphFileError
from dlstudio.core.io import graph_to_json, load_graph
from dlstudio.core.training import (
    DATASETS,
    FILE_DATASETS,
    TrainingConfig,
    dataset_fields,
    resolve_training,
)
from tests.train.helpers import graph_of, mlp


def messages(doc):
    return [d.one_line() for d in analyze(graph_of(doc)).diagnostics]


def test_valid_section_has_no_diagnostics_and_round_trips():
    graph = graph_of(mlp())
    assert analyze(graph).diagnostics == []
    text = graph_to_json(graph)
    assert graph_to_json(load_graph(__import__("json").loads(text))) == text
    assert text.index('"training"') < text.index('"nodes"')


def test_graph_without_training_section_is_unchanged():
    doc = mlp()
    del doc["training"]
    graph = graph_of(doc)
    assert graph.training is None and '"training"' not in graph_to_json(graph)


def test_structural_errors_refuse_the_file_with_the_path():
    doc = mlp(epochs=0)
    with pytest.raises(GraphFileError, match="training.epochs"):
        load_graph(doc)


def test_unknown_optimizer_argument_names_the_known_ones():
    doc = mlp(optimizer={"type": "Adam", "params": {"momentum": 0.9}})
    assert messages(doc) == [
        "optimizer Adam: unknown argument 'momentum' (arguments: lr, betas, eps, weight_decay, amsgrad) "
        "(change or remove the value)"]


def test_nesterov_without_momentum_is_refused():
    doc = mlp(optimizer={"type": "SGD", "params": {"nesterov": True}})
    assert "nesterov needs momentum > 0" in messages(doc)[0]


def test_dataset_field_that_does_not_fit_the_input_is_reported_on_the_input():
    doc = mlp(features=5)
    [problem] = analyze(graph_of(doc)).errors
    assert problem.node == "x"
    assert problem.one_line() == ("x: Input 'x' has shape [N, 5] but dataset field 'x' holds [N, 4] "
                                  "(set the Input shape to [4])")


def test_integer_field_into_a_float_input_names_the_dtype():
    doc = mlp(dataset={"name": "reverse", "params": {"length": 4}, "inputs": {"x": "x"}})
    found = messages(doc)
    assert any("dataset field 'x' holds int64" in m and "set the Input dtype to int64" in m for m in found)


def test_loss_bound_to_output_with_too_few_classes():
    [problem] = analyze(graph_of(mlp(classes=2))).errors
    assert problem.node == "out"
    assert "gives 2 class scores but dataset 'iris' has 3 classes" in problem.message
    assert problem.fix == "make the last layer produce 3 outputs"


def test_regression_loss_against_class_labels_of_another_shape():
    doc = mlp(classes=3, loss={"type": "MSELoss", "output": "out", "target": "y"}, metrics=["mse"])
    [problem] = analyze(graph_of(doc)).errors
    assert problem.node == "out" and "of another shape" in problem.message


def test_loss_bound_to_a_node_that_is_not_an_output():
    doc = mlp(loss={"type": "CrossEntropyLoss", "output": "fc1"})
    assert messages(doc) == ["the loss is bound to 'fc1', which is not an Output node "
                             "(set training.loss.output to an Output node id)"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"dataset": {"name": "mnist"}}, "unknown dataset 'mnist'"),
    ({"metrics": ["recall"]}, "unknown metric 'recall'"),
    ({"metrics": ["top5_accuracy"]}, "asks for more than the 3 classes"),
    ({"device": "tpu"}, "training device 'tpu' is not known"),
    ({"scheduler": {"type": "StepLR", "params": {"gamma": -1}}}, "gamma=-1 is not valid"),
    ({"early_stopping": {"monitor": "val_f1"}}, "cannot monitor 'val_f1'"),
    ({"validation_split": 0, "early_stopping": {"monitor": "val_loss"}}, "needs validation data"),
    ({"loss": {"type": "KLDivergence"}}, "unknown loss 'KLDivergence'"),
])
def test_each_problem_gives_one_diagnostic(change, expected):
    found = messages(mlp(**change))
    assert len([m for m in found if expected in m]) == 1, found


def test_unknown_keys_in_the_section_are_kept_and_warned():
    doc = mlp()
    doc["training"]["future_option"] = 1
    graph = graph_of(doc)
    [warning] = analyze(graph).diagnostics
    assert warning.severity == "warning" and "training.future_option" in warning.message
    assert '"future_option": 1' in graph_to_json(graph)


def test_resolution_writes_every_default_out():
    doc = mlp(scheduler={"type": "OneCycleLR"})
    del doc["training"]["dataset"]["inputs"]
    config = TrainingConfig.model_validate(doc["training"])
    resolved = resolve_training(config, ["x"], ["out"])
    assert resolved.dataset.inputs == {"x": "x"}
    assert resolved.loss.output == "out"
    assert resolved.optimizer.params["betas"] == [0.9, 0.999]
    assert resolved.scheduler.params["pct_start"] == 0.3
    assert resolved.metrics == ["accuracy"]


@pytest.mark.parametrize("name", [n for n in DATASETS if n not in FILE_DATASETS])
def test_every_builtin_dataset_declares_its_fields(name):
    fields = dataset_fields(TrainingConfig.model_validate({"dataset": {"name": name}}).dataset)
    assert set(fields) == {"x", "y"}


def test_the_file_datasets_are_those_that_read_a_path():
    assert set(FILE_DATASETS) == {n for n, decl in DATASETS.items() if "path" in decl.args.model_fields}
