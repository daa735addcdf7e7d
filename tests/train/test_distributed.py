"""Two CPU processes (gloo, DDP, DistributedSampler) train the same weights as one process
with the same global batch."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dlstudio.cli import main
from dlstudio.core.io import save_graph
from dlstudio.train.distributed import World
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


def test_a_divergence_every_process_sees_ends_the_run_with_exit_3(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    x[5, 1] = math.nan
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(40) % 3)
    doc = mlp(dataset={"name": "npz", "params": {"path": "bad.npz"}, "inputs": {"x": "x"}},
              validation_split=0, batch_size=40)
    graph = tmp_path / "g.json"
    save_graph(graph_of(doc), graph)
    assert main(["run", str(graph), "--out", str(tmp_path / "run"), "--nproc", "2"]) == 3


def test_a_validation_split_smaller_than_the_process_count_is_refused():
    from dlstudio.core.training import DatasetConfig
    from dlstudio.train.data import load_data
    from dlstudio.train.errors import ConfigError
    from dlstudio.train.setup import _batching

    data = load_data(DatasetConfig(name="iris"), 0.005, seed=0)
    assert data.val_size == 1
    with pytest.raises(ConfigError, match="holds 1 samples, fewer than the 2 processes"):
        _batching(graph_of(mlp()).training, World(0, 0, 2), data, torch.device("cpu"))


def _parts_trained_apart(task: str) -> dict:
    """A GAN (WGAN-GP) or a VAE without BatchNorm or Dropout, whose steps on two processes'
    halves of a batch give what one process gives on the whole batch."""
    from tests.train.test_gan import DISCRIMINATOR, GENERATOR, tiny_gan
    from tests.train.test_vae import tiny_vae

    if task == "vae":
        return tiny_vae(epochs=1, batch_size=32)
    plain = [*DISCRIMINATOR[:4], *DISCRIMINATOR[5:]]  # no Dropout
    return tiny_gan({"loss": "wgan_gp"}, chains=(GENERATOR, plain), epochs=1, batch_size=32)


@pytest.mark.parametrize("task", ["gan", "vae"])
def test_a_task_with_parts_trained_apart_runs_on_two_processes_as_on_one(tmp_path, capsys, task):
    """The gan and vae tasks average each optimizer's gradients themselves (no DDP wrapper):
    the weights, the losses and the validation metrics on two processes are one process's."""
    graph = str(tmp_path / f"{task}.json")
    save_graph(graph_of(_parts_trained_apart(task)), graph)
    assert main(["run", graph, "--out", str(tmp_path / "one"), "--json"]) == 0
    assert main(["run", graph, "--out", str(tmp_path / "two"), "--json", "--nproc", "2"]) == 0
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert set(one) == set(two)
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
    first, second = ([json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
                     for run in ("one", "two"))
    assert [m["step"] for m in first] == [m["step"] for m in second] == [45]
    for a, b in zip(first, second, strict=True):
        for key in a:
            if key.startswith(("train_loss", "val_loss")):
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    assert (tmp_path / "two" / "samples" / "epoch-001.png").exists()


def test_the_diffusion_task_runs_on_two_processes_as_on_one(tmp_path):
    """Each process keeps its share of the global batch's timesteps and noise and the gradients
    are averaged: two processes train the weights (and the moving average) one process does."""
    from tests.train.test_diffusion import tiny_diffusion

    graph = str(tmp_path / "diffusion.json")
    save_graph(graph_of(tiny_diffusion(epochs=1, batch_size=32)), graph)
    assert main(["run", graph, "--out", str(tmp_path / "one"), "--json"]) == 0
    assert main(["run", graph, "--out", str(tmp_path / "two"), "--json", "--nproc", "2"]) == 0
    for name in ("model.safetensors", "ema.safetensors"):
        one, two = (load_file(str(tmp_path / run / name)) for run in ("one", "two"))
        assert set(one) == set(two)
        for key in one:
            torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)
    first, second = ([json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
                     for run in ("one", "two"))
    assert [m["step"] for m in first] == [m["step"] for m in second]
    assert second[-1]["val_loss"] == pytest.approx(first[-1]["val_loss"], rel=1e-4, abs=1e-5)
