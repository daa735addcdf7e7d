"""Training a graph with frozen nodes: their weights stay as they started."""

from __future__ import annotations

import torch

from dlstudio.train import Callback, RunStarted, Trainer
from tests.core.test_frozen import frozen_mlp
from tests.train.helpers import graph_of


class _Snapshot(Callback):
    """The model's weights as the run starts."""

    def __init__(self, box: list) -> None:
        self.box = box
        self.weights: dict[str, torch.Tensor] = {}

    def __call__(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.weights = {k: v.clone() for k, v in self.box[0].parts.module.state_dict().items()}


def test_training_keeps_frozen_weights_and_trains_the_rest():
    box: list = []
    snapshot = _Snapshot(box)
    trainer = Trainer(graph_of(frozen_mlp("fc1", epochs=2)), callbacks=[snapshot])
    box.append(trainer)
    assert trainer.fit().reason == "completed"
    final = trainer.parts.module.state_dict()
    assert snapshot.weights
    assert torch.equal(final["fc1.weight"], snapshot.weights["fc1.weight"])
    assert torch.equal(final["fc1.bias"], snapshot.weights["fc1.bias"])
    assert not torch.equal(final["fc2.weight"], snapshot.weights["fc2.weight"])
