"""Small graphs with training sections for the training tests."""

from __future__ import annotations

import copy
from typing import Any

from dlstudio import load_graph
from dlstudio.core.graph import Graph


def mlp(data: str = "iris", features: int = 4, classes: int = 3, hidden: int = 16,
        **training: Any) -> dict[str, Any]:
    """Input -> Linear -> Tanh -> Linear -> Output, trained on ``dataset``."""
    section: dict[str, Any] = {
        "dataset": {"name": data, "inputs": {"x": "x"}},
        "loss": {"type": "CrossEntropyLoss", "output": "out", "target": "y"},
        "optimizer": {"type": "Adam", "params": {"lr": 0.01}},
        "epochs": 2, "batch_size": 16, "validation_split": 0.2, "seed": 0,
    }
    section.update(training)
    return {
        "format": "dlstudio.graph", "version": 1, "name": "test mlp",
        "nodes": [
            {"id": "x", "type": "Input", "params": {"shape": [features]}},
            {"id": "fc1", "type": "Linear", "params": {"out_features": hidden}},
            {"id": "act", "type": "Tanh"},
            {"id": "fc2", "type": "Linear", "params": {"out_features": classes}},
            {"id": "out", "type": "Output"},
        ],
        "edges": [
            {"source": "x", "target": "fc1"}, {"source": "fc1", "target": "act"},
            {"source": "act", "target": "fc2"}, {"source": "fc2", "target": "out"},
        ],
        "training": section,
    }


def dropout_mlp(**training: Any) -> dict[str, Any]:
    """The iris MLP with a Dropout, so the random number stream matters for determinism."""
    doc = mlp(**training)
    doc["nodes"].insert(3, {"id": "drop", "type": "Dropout", "params": {"p": 0.2}})
    doc["edges"][2] = {"source": "act", "target": "drop"}
    doc["edges"].insert(3, {"source": "drop", "target": "fc2"})
    return doc


def adaptive_pool(layer: str) -> dict[str, Any]:
    """An adaptive pool of a variable length T to 3: a max pool has no ONNX function then, and
    an average pool's ONNX windows are fixed to the traced T."""
    return {
        "format": "dlstudio.graph", "version": 1, "name": "tiny pool",
        "nodes": [
            {"id": "x", "type": "Input", "params": {"shape": [4, "T"]}},
            {"id": "pool", "type": layer, "params": {"output_size": 3}},
            {"id": "out", "type": "Output"},
        ],
        "edges": [{"source": "x", "target": "pool"}, {"source": "pool", "target": "out"}],
    }


def graph_of(doc: dict[str, Any]) -> Graph:
    return load_graph(copy.deepcopy(doc))


def block_examples() -> Any:
    """scripts/block_examples.py as a module: the generators of graphs/ at any size."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "block_examples.py"
    spec = importlib.util.spec_from_file_location("block_examples", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
