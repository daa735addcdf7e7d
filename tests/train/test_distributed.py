"""Two CPU processes (gloo, DDP, DistributedSampler) train the same weights as one process
with the same global batch."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from dlstudio.cli import main
from dlstudio.core.io import save_graph
from tests.train.helpers import graph_of, mlp


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, capsys):
    graph = tmp_path / "g.json"
    save_graph(graph_of(mlp(epochs=2, batch_size=20, metrics=["accuracy", "f1"])), graph)
    assert main(["run", str(graph), "--out", str(tmp_path / "one"), "--json"]) == 0
    assert main(["run", str(graph), "--out", str(tmp_path / "two"), "--json", "--nproc", "2"]) == 0
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert set(one) == set(two)
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6)
    record = json.loads((tmp_path / "two" / "graph.json").read_text())
    assert record["world_size"] == 2
    first, second = (json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[-1])
                     for run in ("one", "two"))
    assert first["step"] == second["step"] == 12
    for key in ("val_loss", "val_accuracy", "val_f1", "train_loss"):
        assert abs(first[key] - second[key]) < 1e-5
