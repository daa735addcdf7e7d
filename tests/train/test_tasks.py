"""The task interface: supervised training is one task among others, and the outer loop
(checkpoints of every optimizer, resume, named losses, distributed agreement) serves any task."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dlstudio import analyze
from dlstudio.core import training as core_training
from dlstudio.core.io import graph_to_json
from dlstudio.train import EpochEnd, Recorder, RunDir, StepEnd, Trainer
from dlstudio.train.checkpoint import latest_checkpoint, load_state
from dlstudio.train.distributed import World
from dlstudio.train.errors import ConfigError
from dlstudio.train.setup import prepare, start_task
from dlstudio.train.tasks import TASKS, Task
from dlstudio.train.tasks.base import TOTAL, OptimizerPlan
from dlstudio.train.tasks.supervised import SupervisedTask
from tests.train.helpers import dropout_mlp, graph_of, mlp


class TwoPartsTask(SupervisedTask):
    """A task with two optimizers over named parts, stepped one after the other (as a GAN's)."""

    name = "test_two_parts"

    def optimizers(self) -> dict[str, OptimizerPlan]:
        module, config = self.parts.module, self.parts.config
        first = list(module.fc1.parameters())
        rest = [p for n, p in module.named_parameters() if not n.startswith("fc1.")]
        slower = config.optimizer.model_copy(update={"params": {"lr": 0.001}})
        return {"first": OptimizerPlan(config.optimizer, first), "rest": OptimizerPlan(slower, rest)}

    def step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.parts
        inputs, target = [x[index] for x in p.train_inputs], p.train_target[index]
        _, first = self.objective(p.model(*inputs), target)
        self.optimize(first, "first")
        _, rest = self.objective(p.model(*inputs), target)
        self.optimize(rest, "rest")
        return {TOTAL: rest.detach(), "first": first.detach(), "rest": rest.detach()}


@pytest.fixture
def two_parts(monkeypatch):
    monkeypatch.setitem(core_training.TASKS, TwoPartsTask.name, "test task")
    return TwoPartsTask.name


def run(doc, **options):
    recorder = Recorder()
    trainer = Trainer(graph_of(doc), callbacks=[recorder], **options)
    return trainer, trainer.fit(), recorder


def test_supervised_is_the_default_task_and_a_file_without_the_key_saves_without_it():
    graph = graph_of(mlp())
    assert graph.training.task is None and '"task"' not in graph_to_json(graph)
    parts = prepare(graph, graph.training, World(), None)
    assert isinstance(start_task(parts), SupervisedTask) and list(parts.optimizers) == ["model"]
    assert TASKS["supervised"] is SupervisedTask
    explicit = graph_of(mlp(task="supervised"))
    assert explicit.training.task == "supervised" and '"task": "supervised"' in graph_to_json(explicit)


def test_every_task_named_in_core_is_implemented_and_the_other_way_round():
    implemented = {name for name in TASKS if not name.startswith("test_")}
    assert implemented == set(core_training.TASKS)


def test_an_unknown_task_is_a_diagnostic_with_the_known_ones_and_refused_by_the_trainer():
    graph = graph_of(mlp(task="gann"))
    [problem] = [d for d in analyze(graph).errors if d.param == "training.task"]
    assert problem.message == "training task 'gann' is not known" and "supervised" in problem.fix
    with pytest.raises(ConfigError, match="gann"):
        prepare(graph, graph.training, World(), None)


def test_a_step_reports_named_losses_and_epochs_their_means(two_parts):
    _, result, rec = run(mlp(task=two_parts, epochs=2))
    assert result.reason == "completed"
    step = rec.of_type(StepEnd)[0]
    assert set(step.losses) == {"loss/total", "loss/first", "loss/rest"}
    assert step.loss == step.losses["loss/total"] == step.losses["loss/rest"]
    metrics = rec.of_type(EpochEnd)[-1].metrics
    assert {"train_loss", "train_loss/first", "train_loss/rest", "val_loss"} <= set(metrics)
    assert metrics["train_loss"] == pytest.approx(metrics["train_loss/rest"])


def test_a_supervised_step_names_its_one_loss_total():
    _, _, rec = run(mlp(epochs=1))
    assert all(set(s.losses) == {"loss/total"} and s.losses["loss/total"] == s.loss for s in rec.of_type(StepEnd))
    assert not [k for k in rec.of_type(EpochEnd)[0].metrics if k.startswith("train_loss/")]


def test_each_optimizer_updates_only_its_part_at_its_own_rate(two_parts):
    trainer, _, _ = run(mlp(task=two_parts, epochs=1))
    first, rest = trainer.parts.optimizers["first"], trainer.parts.optimizers["rest"]
    assert first.param_groups[0]["lr"] == 0.01 and rest.param_groups[0]["lr"] == 0.001
    module = trainer.parts.module
    assert {id(t) for t in first.param_groups[0]["params"]} == {id(t) for t in module.fc1.parameters()}


def test_checkpoints_hold_every_optimizer_and_resume_is_bit_exact(tmp_path, two_parts):
    doc = dropout_mlp(task=two_parts, epochs=3, deterministic=True, scheduler={"type": "StepLR"})
    run(doc, run_dir=RunDir(tmp_path / "whole"))
    run(doc, run_dir=RunDir(tmp_path / "split"), max_steps=11)
    state = load_state(latest_checkpoint(tmp_path / "split" / "checkpoints"))
    assert set(state["optimizers"]) == {"first", "rest"} and set(state["schedulers"]) == {"first", "rest"}
    _, result, rec = run(doc, run_dir=RunDir(tmp_path / "split"), resume=True)
    assert result.reason == "completed" and rec.of_type(StepEnd)[0].step == 12
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    without_time = lambda r: [{k: v for k, v in m.items() if "seconds" not in k} for m in r.read_metrics()]
    assert without_time(RunDir(tmp_path / "split")) == without_time(RunDir(tmp_path / "whole"))


def test_resuming_with_another_task_names_the_missing_optimizer(tmp_path, two_parts):
    run(mlp(task=two_parts, epochs=2), run_dir=RunDir(tmp_path / "run"), max_steps=3)
    trainer, result, _ = run(mlp(epochs=2), run_dir=RunDir(tmp_path / "run"), resume=True)
    assert result.kind == "config" and "no optimizer named 'model'" in result.message


def test_a_task_that_cannot_sample_says_so():
    parts = prepare(graph_of(mlp()), graph_of(mlp()).training, World(), None)
    with pytest.raises(ConfigError, match="nothing to sample"):
        start_task(parts).sample(4, seed=0)


def test_a_task_name_is_registered_once():
    with pytest.raises(ValueError, match="declared twice"):
        type("Again", (Task,), {"name": "supervised"})


def test_a_checkpoint_from_before_tasks_resumes(tmp_path):
    """Checkpoints written before optimizers were named held one ``optimizer`` and ``scheduler``."""
    from dlstudio.train.checkpoint import save_state

    doc = dropout_mlp(epochs=2, deterministic=True, scheduler={"type": "StepLR"})
    run(doc, run_dir=RunDir(tmp_path / "whole"))
    run(doc, run_dir=RunDir(tmp_path / "split"), max_steps=5)
    folder = tmp_path / "split" / "checkpoints"
    path = latest_checkpoint(folder)
    state = load_state(path)
    state["optimizer"] = state.pop("optimizers")["model"]
    state["scheduler"] = state.pop("schedulers")["model"]
    for old in folder.iterdir():
        old.unlink()
    save_state(folder, path.stem, state)
    _, result, _ = run(doc, run_dir=RunDir(tmp_path / "split"), resume=True)
    assert result.reason == "completed"
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)
