"""Runnable from the start: graph templates for File > New, and a training section that fits a
graph's Input and Output (the Training panel's "Add training").

A suggestion tries the bundled datasets (those that need no file) in :data:`CANDIDATES` order
and keeps the first whose ``x`` field fits the first Input node and whose ``y`` field fits the
first Output node: class indices against logits (cross-entropy), values against values (MSE).
No Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.catalogue import BUILTINS
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.tensor import Dim, TensorType
from dlstudio.core.training import DATASETS, FieldInfo, TrainingConfig
from dlstudio.core.wiring import end_name, first_ports

#: Datasets (with arguments) a suggestion may pick, most familiar first.
CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("digits", {"layout": "image"}), ("digits", {"layout": "flat"}), ("iris", {}), ("wine", {}),
    ("breast_cancer", {}), ("moons", {}), ("spirals", {}), ("timeseries", {}), ("copy", {}),
    ("reverse", {}),
)
FALLBACK = ("digits", {"layout": "image"})


def suggest_training(graph: Graph, analysis: Analysis | None = None) -> dict[str, Any]:
    """A training section (as saved in the file) whose dataset and loss fit the graph; with no
    fit, the digits and the default loss, so the Training panel can say what does not match."""
    analysis = analysis if analysis is not None else analyze(graph)
    inputs = [n.id for n in graph.nodes if n.type == "Input"]
    outputs = [n.id for n in graph.nodes if n.type == "Output"]
    given = analysis.ports.get((inputs[0], "output")) if inputs else None
    produced = analysis.ports.get((outputs[0], "output")) if outputs else None
    for name, params in CANDIDATES:
        fields = DATASETS[name].fields(DATASETS[name].args.model_validate(params))
        if not fields or given is None or not _fits_input(fields["x"], given):
            continue
        loss = _loss_for(fields["y"], produced)
        if loss is not None:
            return _section(name, params, inputs, outputs, loss)
    return _section(*FALLBACK, inputs, outputs, None)


def _section(name: str, params: dict[str, Any], inputs: list[str], outputs: list[str],
             loss: str | None) -> dict[str, Any]:
    section: dict[str, Any] = {"dataset": {"name": name, "params": dict(params)},
                               "optimizer": {"type": "Adam", "params": {"lr": 0.001}},
                               "epochs": 10, "batch_size": 32}
    if inputs:
        section["dataset"]["inputs"] = {inputs[0]: "x"}
    if loss is not None:
        section["loss"] = {"type": loss, "target": "y", **({"output": outputs[0]} if outputs else {})}
        section["metrics"] = ["accuracy"] if loss == "CrossEntropyLoss" else ["mae"]
    return section


def _fits_input(field: FieldInfo, given: TensorType) -> bool:
    integer = given.dtype.startswith("int")
    return field.shape is not None and integer == field.dtype.startswith("int") \
        and _same_dims(field.shape, given.shape[1:])


def _loss_for(target: FieldInfo, produced: TensorType | None) -> str | None:
    """The loss comparing ``produced`` (batch first) with a dataset's target, or None."""
    if produced is None or target.shape is None:
        return None
    sample = produced.shape[1:]
    if target.classes is not None and sample and sample[-1] == target.classes:
        return "CrossEntropyLoss" if _same_dims(target.shape, sample[:-1]) else None
    if not target.dtype.startswith("int") and _same_dims(target.shape, sample):
        return "MSELoss"
    return None


def _same_dims(wanted: tuple[int | None, ...], actual: tuple[Dim, ...]) -> bool:
    """Equal ranks, and every size equal where both are numbers (a named or None dim: any)."""
    return len(wanted) == len(actual) and all(
        w is None or isinstance(a, str) or w == a for w, a in zip(wanted, actual, strict=True))


#: Distinct characters of the bundled Shakespeare text (the char tokenizer's vocabulary).
SHAKESPEARE_CHARACTERS = 70


# --- templates ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """A starting graph for File > New: its layers in a chain, then a training section."""

    title: str
    summary: str
    layers: tuple[tuple[str, str, dict[str, Any]], ...]  # (id, type, params), in data-flow order
    #: the training section, for a task no suggestion picks (default: :func:`suggest_training`)
    training: dict[str, Any] | None = None

    def graph(self) -> Graph:
        """The template as a new graph, with a training section that fits it."""
        nodes = [Node(id=node_id, type=type_name, params=dict(params)) for node_id, type_name, params in self.layers]
        edges = [Edge(source=_end(a, True), target=_end(b, False)) for a, b in zip(nodes, nodes[1:], strict=False)]
        graph = Graph(name=self.title.lower(), description=self.summary, nodes=nodes, edges=edges)
        section = self.training if self.training is not None else suggest_training(graph)
        graph.training = TrainingConfig.model_validate(section)
        return graph


def _end(node: Node, is_source: bool) -> str:
    """``node`` as an edge end: its first port, named when it has several (templates use
    built-in layers only)."""
    first_in, first_out = first_ports(node.type, BUILTINS)
    port = first_out if is_source else first_in
    assert port is not None, node.type
    return end_name(node.type, node.id, port, is_source, BUILTINS)


TEMPLATES: dict[str, Template] = {
    "digits_classifier": Template(
        "Digits classifier", "A convolutional classifier of scikit-learn's 8x8 handwritten digits.",
        (("image", "Input", {"shape": [1, 8, 8]}),
         ("conv", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
         ("relu1", "ReLU", {}), ("pool", "MaxPool2d", {"kernel_size": 2}), ("flatten", "Flatten", {}),
         ("fc", "Linear", {"out_features": 64}), ("relu2", "ReLU", {}),
         ("head", "Linear", {"out_features": 10}), ("logits", "Output", {}))),
    "sequence_model": Template(
        "Sequence model", "An LSTM that learns to copy a token sequence a few steps later.",
        (("tokens", "Input", {"shape": ["T"], "dtype": "int64"}),
         ("embed", "Embedding", {"num_embeddings": 12, "embedding_dim": 32}),
         ("lstm", "LSTM", {"hidden_size": 64}), ("head", "Linear", {"out_features": 12}),
         ("logits", "Output", {}))),
    "character_language_model": Template(
        "Character language model",
        "A small causal Transformer that learns Shakespeare character by character; sample it "
        "with dlstudio sample.",
        (("tokens", "Input", {"shape": ["T"], "dtype": "int64"}),
         ("embed", "Embedding", {"num_embeddings": SHAKESPEARE_CHARACTERS, "embedding_dim": 64}),
         ("position", "LearnedPositionalEmbedding", {"max_len": 64}),
         ("block", "TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 256, "dropout": 0.0,
                                              "causal": True, "norm_first": True}),
         ("norm", "LayerNorm", {}), ("head", "Linear", {"out_features": SHAKESPEARE_CHARACTERS}),
         ("logits", "Output", {})),
        {"task": "language_model",
         "dataset": {"name": "shakespeare", "params": {"length": 64}, "inputs": {"tokens": "x"}},
         "loss": {"type": "CrossEntropyLoss", "output": "logits", "target": "y"},
         "optimizer": {"type": "AdamW", "params": {"lr": 0.002}},
         "epochs": 4, "batch_size": 64, "validation_split": 0.1, "grad_clip": 1.0}),
}
