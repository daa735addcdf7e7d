"""Templates and suggested training sections: a new graph is runnable without writing JSON."""

from __future__ import annotations

import pytest

from dlstudio.core.analysis import analyze
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import load_graph
from dlstudio.core.starter import TEMPLATES, suggest_training
from dlstudio.core.training import TrainingConfig
from dlstudio.core.training_checks import check_training
from tests.conftest import GRAPHS


def problems(graph: Graph) -> list[str]:
    analysis = analyze(graph)
    found = list(analysis.errors)
    if graph.training is not None:
        found += [d for d in check_training(graph.training, analysis) if d.severity == "error"]
    return [d.one_line() for d in found]


def hand_built_mlp(features: int, classes: int) -> Graph:
    return Graph(name="mine", nodes=[
        Node(id="x", type="Input", params={"shape": [features]}),
        Node(id="fc1", type="Linear", params={"out_features": 32}), Node(id="act", type="ReLU"),
        Node(id="fc2", type="Linear", params={"out_features": classes}), Node(id="y", type="Output"),
    ], edges=[Edge(source=a, target=b) for a, b in (("x", "fc1"), ("fc1", "act"), ("act", "fc2"), ("fc2", "y"))])


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_validates_with_its_training_section(key):
    graph = TEMPLATES[key].graph()
    assert graph.training is not None and graph.training.loss.output is not None
    assert problems(graph) == []


@pytest.mark.parametrize(("features", "classes", "dataset"), [(64, 10, "digits"), (4, 3, "iris"), (2, 2, "moons")])
def test_add_training_on_a_hand_built_mlp_picks_a_dataset_and_loss_that_fit(features, classes, dataset):
    graph = hand_built_mlp(features, classes)
    section = suggest_training(graph)
    graph.training = TrainingConfig.model_validate(section)
    assert section["dataset"]["name"] == dataset and section["dataset"]["inputs"] == {"x": "x"}
    assert section["loss"] == {"type": "CrossEntropyLoss", "target": "y", "output": "y"}
    assert problems(graph) == []


@pytest.mark.parametrize(("name", "dataset"), [("cnn_digits", "digits"), ("mlp_iris", "iris"), ("lstm_sequence", "copy")])
def test_the_examples_get_the_dataset_they_were_built_for(name, dataset):
    graph = load_graph(GRAPHS / f"{name}.json").model_copy(update={"training": None})
    graph.training = TrainingConfig.model_validate(suggest_training(graph))
    assert graph.training.dataset.name == dataset
    assert problems(graph) == []


def test_a_graph_that_fits_no_dataset_still_gets_a_section_to_edit():
    section = suggest_training(hand_built_mlp(7, 5))
    assert section["dataset"]["name"] == "digits" and "loss" not in section
    TrainingConfig.model_validate(section)
