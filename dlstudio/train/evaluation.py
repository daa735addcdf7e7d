"""A finished labelled run's data, fed to a trained network (PyTorch or ONNX) for its metrics.

Post-training steps (int8 quantization, channel pruning) measure what they changed on the run's
own validation split, with the run's loss and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from dlstudio.core.analysis import Analysis
from dlstudio.core.codegen import plan_module
from dlstudio.core.training import DEFAULT_TASK, TrainingConfig
from dlstudio.train.components import Objective
from dlstudio.train.data import DataSplit
from dlstudio.train.errors import ConfigError
from dlstudio.train.metrics import Metrics
from dlstudio.train.parts import check_graph
from dlstudio.train.rundir import RunDir
from dlstudio.train.tasks import task_class

#: Tasks whose runs bind every Input to a dataset field and compare one Output with a target.
LABELLED_TASKS = ("supervised", "distillation")
#: Samples per batch when calibrating and validating.
CHUNK = 64


class Feeds:
    """How the run's data reaches the network: each argument's dataset field (in the order the
    module takes them), and which output the loss compares with the target."""

    def __init__(self, analysis: Analysis, config: TrainingConfig) -> None:
        bound = config.dataset.inputs
        arguments = plan_module(analysis).arguments
        unbound = [node_id for _, node_id in arguments if node_id not in bound]
        if unbound:
            raise ConfigError(f"Input '{unbound[0]}' reads no dataset field, so the run's data cannot feed it")
        self.fields = {name: bound[node_id] for name, node_id in arguments}
        outputs = [node.id for node in analysis.graph.nodes_of_type("Output")]
        self.output = outputs.index(config.loss.output) if config.loss.output in outputs else 0
        self.target = config.loss.target

    def batches(self, split: dict[str, torch.Tensor], index: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
        """The inputs of the samples at ``index``, ``CHUNK`` at a time, by argument name."""
        for start in range(0, len(index), CHUNK):
            part = torch.from_numpy(index[start:start + CHUNK])
            yield {name: split[field][part].numpy() for name, field in self.fields.items()}


def labelled_run(analysis: Analysis, run_dir: RunDir, base_dir: Path | None) -> tuple[TrainingConfig, DataSplit]:
    """The run's resolved training configuration and its data, split as the run split it."""
    config = run_dir.recorded_config(analysis.graph)
    if (config.task or DEFAULT_TASK) not in LABELLED_TASKS:
        raise ConfigError(f"measuring a network needs a labelled run; this one is a {config.task} run",
                          f"use a run of a {' or '.join(LABELLED_TASKS)} task")
    config = check_graph(analysis.graph, config)[1]
    return config, task_class(config.task or DEFAULT_TASK).load_data(config, base_dir)


def validation_metrics(run: Callable[[dict[str, np.ndarray]], np.ndarray | torch.Tensor], feeds: Feeds,
                       data: DataSplit, config: TrainingConfig) -> dict[str, float]:
    """The run's loss and metrics over the validation split, of ``run`` (inputs by argument name
    to the scored output)."""
    cpu = torch.device("cpu")
    objective = Objective(config.loss, cpu)
    metrics = Metrics(config.metrics, config.loss.type, config.loss.params.get("ignore_index", -100))
    targets = data.val[feeds.target]
    index = np.arange(data.val_size)
    for start, feed in zip(range(0, len(index), CHUNK), feeds.batches(data.val, index), strict=True):
        output = torch.as_tensor(run(feed))
        target = targets[start:start + CHUNK]
        metrics.update(output, target, objective(output, target))
    return metrics.compute()


def torch_runner(module: torch.nn.Module, output: int, outputs: int) -> Callable[[dict[str, np.ndarray]], torch.Tensor]:
    """A module in eval mode as a function of named inputs to its scored output."""
    module.eval()

    @torch.no_grad()
    def run(feed: dict[str, np.ndarray]) -> torch.Tensor:
        result = module(*[torch.from_numpy(v) for v in feed.values()])
        return result[output] if outputs > 1 else result

    return run
