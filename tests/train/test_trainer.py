"""The trainer: event order, stop and pause, divergence, determinism and exact resume."""

from __future__ import annotations

import json
import math
import threading

import pytest
import torch
from safetensors.torch import load_file

from dlstudio.core.errors import NodeRuntimeError
from dlstudio.train import (
    ActivationRequest,
    ActivationSample,
    Callback,
    CheckpointSaved,
    EpochEnd,
    Failed,
    Finished,
    LearningRate,
    Recorder,
    RunDir,
    RunStarted,
    StepEnd,
    Throughput,
    Trainer,
)
from dlstudio.train.checkpoint import latest_checkpoint, load_state
from dlstudio.train.errors import ConfigError, RunDirError
from tests.train.helpers import dropout_mlp, graph_of, mlp


def fit(doc, callbacks=(), **options):
    recorder = Recorder()
    trainer = Trainer(graph_of(doc), callbacks=[recorder, *callbacks], **options)
    return trainer, trainer.fit(), recorder


def test_events_arrive_in_order_with_the_documented_metrics():
    _, result, rec = fit(mlp(epochs=2, metrics=["accuracy", "f1", "top2_accuracy"]))
    assert isinstance(result, Finished) and result.reason == "completed"
    kinds = [type(e) for e in rec.events]
    assert kinds[0] is RunStarted and kinds[-1] is Finished
    per_epoch = [LearningRate] + [StepEnd] * 8 + [Throughput, EpochEnd]
    assert kinds[1:-1] == per_epoch * 2
    steps = rec.of_type(StepEnd)
    assert [s.step for s in steps] == list(range(1, 17)) and steps[-1].batch == steps[-1].batches == 8
    metrics = rec.of_type(EpochEnd)[-1].metrics
    assert set(metrics) == {"train_loss", "val_loss", "val_accuracy", "val_f1", "val_top2_accuracy"}
    assert 0 <= metrics["val_accuracy"] <= metrics["val_top2_accuracy"] <= 1


def test_same_seed_gives_a_bit_identical_loss_curve():
    doc = dropout_mlp(epochs=2, deterministic=True)
    curves = [[s.loss for s in fit(doc)[2].of_type(StepEnd)] for _ in range(2)]
    assert curves[0] == curves[1]
    other = [s.loss for s in fit(dropout_mlp(epochs=2, seed=1))[2].of_type(StepEnd)]
    assert other != curves[0]


def test_stop_request_ends_before_the_next_batch_with_a_checkpoint(tmp_path):
    class StopAtStep(Callback):
        def on_step_end(self, event):
            if event.step == 3:
                trainer.request_stop()

    trainer = Trainer(graph_of(mlp(epochs=5)), callbacks=[rec := Recorder(), StopAtStep()],
                      run_dir=RunDir(tmp_path / "run"))
    result = trainer.fit()
    assert isinstance(result, Finished) and result.reason == "stopped" and result.step == 3
    assert len(rec.of_type(StepEnd)) == 3
    state = load_state(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert state["loop"]["step"] == 3 and state["loop"]["batch"] == 3


def test_pause_holds_the_loop_until_resumed():
    paused_at = []

    class PauseOnce(Callback):
        def on_step_end(self, event):
            if event.step == 2 and not paused_at:
                trainer.request_pause()
                paused_at.append(event.step)
                threading.Timer(0.3, trainer.request_resume).start()

    trainer = Trainer(graph_of(mlp(epochs=1)), callbacks=[PauseOnce()])
    result = trainer.fit()
    assert result.reason == "completed" and paused_at == [2] and not trainer.paused


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    class Poison(Callback):
        def on_step_end(self, event):
            if event.step == 10:
                with torch.no_grad():
                    trainer.parts.module.fc1.weight.fill_(math.nan)

    trainer = Trainer(graph_of(mlp(epochs=3)), callbacks=[rec := Recorder(), Poison()],
                      run_dir=RunDir(tmp_path / "run"))
    result = trainer.fit()
    assert isinstance(result, Failed) and result.kind == "diverged" and trainer.error.exit_code == 3
    assert "the loss became nan at epoch 2, step 11" in result.message
    assert rec.of_type(Failed) == [result]
    good = load_state(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert good["loop"]["epoch"] == 1 and torch.isfinite(good["model"]["fc1.weight"]).all()
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_diverging_epoch_is_logged_as_strict_json(tmp_path):
    class PoisonAtEpochEnd(Callback):
        def on_throughput(self, event):
            with torch.no_grad():
                trainer.parts.module.fc2.bias.fill_(math.inf)

    trainer = Trainer(graph_of(mlp(epochs=2)), callbacks=[PoisonAtEpochEnd()], run_dir=RunDir(tmp_path / "run"))
    result = trainer.fit()
    assert result.kind == "diverged" and "val_loss became nan after epoch 1" in result.message
    [line] = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl"))["val_loss"] is None


def test_run_folder_holds_record_metrics_checkpoints_and_model(tmp_path):
    run = RunDir(tmp_path / "run")
    _, _, rec = fit(mlp(epochs=3), run_dir=run)
    assert [c.step for c in rec.of_type(CheckpointSaved)] == [8, 16, 24]
    record = json.loads((run.path / "graph.json").read_text())
    assert record["format"] == "dlstudio.run" and record["seed"] == 0
    assert record["config"]["optimizer"]["params"]["betas"] == [0.9, 0.999]
    assert {"torch", "numpy", "safetensors", "python"} <= set(record["versions"])
    assert len(record["network_sha256"]) == 64 and record["graph"]["name"] == "test mlp"
    lines = run.read_metrics()
    assert [r["epoch"] for r in lines] == [1, 2, 3] and [r["step"] for r in lines] == [8, 16, 24]
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(lines[0])
    names = sorted(p.name for p in run.checkpoints.iterdir())
    assert names == ["step-000000016.json", "step-000000016.safetensors",
                     "step-000000024.json", "step-000000024.safetensors"]
    weights = load_file(str(run.weights))
    assert set(weights) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert "class TestMlp(nn.Module)" in (run.path / "model.py").read_text()


def stop_after_epoch(trainer_box, epoch):
    class Stop(Callback):
        def on_epoch_end(self, event):
            if event.epoch == epoch:
                trainer_box[0].request_stop()

    return Stop()


@pytest.mark.parametrize("scheduler", [{"type": "CosineAnnealingLR"}, {"type": "OneCycleLR"}])
def test_stop_halfway_then_resume_equals_an_uninterrupted_run(tmp_path, scheduler):
    doc = dropout_mlp(epochs=4, deterministic=True, scheduler=scheduler,
                      optimizer={"type": "AdamW", "params": {"lr": 0.01}})
    fit(doc, run_dir=RunDir(tmp_path / "whole"))
    box: list = []
    first = Trainer(graph_of(doc), callbacks=[stop_after_epoch(box, 2)], run_dir=RunDir(tmp_path / "split"))
    box.append(first)
    assert first.fit().reason == "stopped"
    _, result, rec = fit(doc, run_dir=RunDir(tmp_path / "split"), resume=True)
    assert result.reason == "completed" and rec.of_type(RunStarted)[0].start_epoch == 2
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    without_time = lambda run: [{k: v for k, v in r.items() if "seconds" not in k} for r in run.read_metrics()]
    assert without_time(RunDir(tmp_path / "split")) == without_time(RunDir(tmp_path / "whole"))


def test_resume_from_the_middle_of_an_epoch_continues_exactly(tmp_path):
    doc = dropout_mlp(epochs=2, deterministic=True)
    fit(doc, run_dir=RunDir(tmp_path / "whole"))
    fit(doc, run_dir=RunDir(tmp_path / "split"), max_steps=5)
    _, result, rec = fit(doc, run_dir=RunDir(tmp_path / "split"), resume=True)
    assert rec.of_type(StepEnd)[0].step == 6 and result.step == 16
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def test_resume_refuses_a_changed_graph(tmp_path):
    fit(mlp(epochs=1), run_dir=RunDir(tmp_path / "run"))
    changed = mlp(epochs=1, hidden=17)
    with pytest.raises(RunDirError, match="has changed since run run started"):
        RunDir(tmp_path / "run").check_graph(graph_of(changed))
    moved = mlp(epochs=9)
    moved["nodes"][1]["position"] = [10, 20]
    RunDir(tmp_path / "run").check_graph(graph_of(moved))


def test_early_stopping_ends_the_run_when_the_monitor_stalls():
    doc = mlp(epochs=50, early_stopping={"monitor": "val_loss", "patience": 2, "min_delta": 10.0})
    _, result, rec = fit(doc)
    assert result.reason == "early_stopping" and result.epoch == 3


def test_activation_samples_when_asked_for():
    _, _, rec = fit(mlp(epochs=1), activations=ActivationRequest(nodes=("fc1", "act"), every=4))
    samples = rec.of_type(ActivationSample)
    assert [(s.step, s.node) for s in samples] == [(4, "fc1"), (4, "act"), (8, "fc1"), (8, "act")]
    act = samples[1]
    assert act.shape == (8, 16) and -1 <= act.min <= act.max <= 1 and sum(act.histogram) == 128
    assert len(act.values) == 16


def test_graph_errors_fail_before_training():
    with pytest.raises(ConfigError, match="has no training section"):
        doc = mlp()
        del doc["training"]
        Trainer(graph_of(doc))
    _, result, _ = fit(mlp(classes=2))
    assert isinstance(result, Failed) and result.kind == "config"
    assert "gives 2 class scores but dataset 'iris' has 3 classes" in result.message


def test_checkpoints_hold_no_pickle(tmp_path):
    fit(mlp(epochs=1, scheduler={"type": "ReduceLROnPlateau"}), run_dir=RunDir(tmp_path / "run"))
    for path in (tmp_path / "run" / "checkpoints").iterdir():
        data = path.read_bytes()
        assert b"\x80\x04" not in data[:2] and not data.startswith(b"PK")
    state = load_state(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    scheduler = state["schedulers"]["model"]  # one schedule per optimizer, by name
    assert scheduler["best"] < math.inf and scheduler["mode_worse"] == math.inf


def test_out_of_memory_is_reported_with_advice():
    class Exhaust(Callback):
        def on_step_end(self, event):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    _, result, _ = fit(mlp(batch_size=64), callbacks=[Exhaust()])
    assert isinstance(result, Failed) and result.kind == "out_of_memory"
    assert result.message == "the device ran out of memory with batch size 64"
    assert "--batch-size 32" in result.advice


def test_bf16_autocast_trains_on_the_cpu():
    _, result, rec = fit(mlp(epochs=3, precision="bf16"))
    losses = [s.loss for s in rec.of_type(StepEnd)]
    assert result.reason == "completed" and all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) < sum(losses[:4])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_a_configuration_error():
    _, result, _ = fit(mlp(device="cuda"))
    assert result.kind == "config" and "sees no CUDA GPU" in result.message and result.advice


def test_loaded_data_that_does_not_fit_the_input_is_one_line(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,c,label\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(20)))
    doc = mlp(dataset={"name": "csv", "params": {"path": "t.csv", "target": "label"}, "inputs": {"x": "x"}})
    trainer = Trainer(graph_of(doc), base_dir=tmp_path)
    result = trainer.fit()
    assert result.kind == "config"
    assert result.message == ("dataset 'csv' does not fit the graph: x: Input 'x' has shape [N, 4] but "
                              "dataset field 'x' holds [N, 3] (set the Input shape to [3])")


def test_an_error_inside_the_graph_names_its_node():
    """Sizes that meet only at run time (13 wine features into a symbolic Input, then a Linear
    set to take 4) fail in the first step; the message the user sees names the node."""
    doc = mlp(data="wine")
    doc["nodes"][0]["params"]["shape"] = ["T"]
    doc["nodes"][1]["params"]["in_features"] = 4
    recorder = Recorder()
    trainer = Trainer(graph_of(doc), callbacks=[recorder])
    with pytest.raises(NodeRuntimeError):
        trainer.fit()
    [failed] = recorder.of_type(Failed)
    assert failed.message == ("node 'fc1' (Linear): mat1 and mat2 shapes cannot be "
                              "multiplied (16x13 and 4x16)")
    assert str(trainer.error) == failed.message
