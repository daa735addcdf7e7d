"""The judge of generated digits: a CNN trained here on scikit-learn's 8x8 digits
(``graphs/cnn_digits.json``, four epochs, over 95% validation accuracy) that says which
samples it recognises, shared by the gan_digits and vae_digits example tests."""

from __future__ import annotations

import numpy as np
import torch

from dlstudio.core.io import load_graph
from dlstudio.train import Trainer
from tests.conftest import GRAPHS


def digits_classifier() -> torch.nn.Module:
    """The trained CNN in eval mode; it takes images scaled to [0, 1]."""
    graph = load_graph(GRAPHS / "cnn_digits.json")
    trainer = Trainer(graph, graph.training.model_copy(update={"epochs": 4}))
    assert trainer.fit().metrics["val_accuracy"] > 0.95
    return trainer.parts.module.eval()


def recognised(classifier: torch.nn.Module, samples: np.ndarray) -> list[int]:
    """The digits the classifier gives with confidence over 0.5, one per such sample of
    ``samples`` (N x 1 x 8 x 8 in the data's range, 0..16)."""
    with torch.no_grad():
        confidence, digit = classifier(torch.from_numpy(samples) / 16).softmax(dim=1).max(dim=1)
    return digit[confidence > 0.5].tolist()
