"""Looking inside a training network: probes, the insight callback, run listing, the worker process."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from dlstudio.core.analysis import analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.io import graph_to_json, load_graph
from dlstudio.train import Recorder, RunDir, Trainer
from dlstudio.train.events import ConfusionReport, Finished, NodeStats, ProbeReport, StepEnd
from dlstudio.train.insight import InsightTap
from dlstudio.train.probes import ProbeCapture, gradient_warnings
from dlstudio.train.rundir import network_hash
from dlstudio.train.runlist import list_runs
from tests.conftest import GRAPHS
from tests.train.helpers import dropout_mlp, graph_of, mlp


def capture_of(graph_name: str, samples: int = 4) -> tuple[ProbeCapture, torch.nn.Module, list[torch.Tensor]]:
    """A probe of a fresh example network on random data shaped as the example's dataset."""
    from dlstudio.train.components import Objective

    analysis = analyze(load_graph(GRAPHS / graph_name))
    plan = plan_module(analysis)
    torch.manual_seed(0)
    module = build_module(plan)
    if graph_name == "cnn_digits.json":
        inputs, target = [torch.randn(samples, 1, 8, 8)], torch.randint(0, 10, (samples,))
    else:
        inputs, target = [torch.randint(0, 12, (samples, 12))], torch.randint(0, 12, (samples, 12))
    loss = Objective(analysis.graph.training.loss, torch.device("cpu"))
    return ProbeCapture(module, plan, analysis, inputs, target, loss, None, True, samples), module, inputs


def test_the_recording_forward_computes_what_the_module_computes() -> None:
    capture, module, inputs = capture_of("cnn_digits.json")
    report = capture.run(0, 0, ("conv1", "fc1", "relu2"))
    module.eval()
    with torch.no_grad():
        expected = module(*inputs)
    recorded = capture.recorder(module, *inputs)
    assert torch.allclose(recorded["fc2"]["output"], expected)
    assert set(report.stats) == {"image", "conv1", "relu1", "conv2", "relu2", "pool", "flatten", "drop", "fc1",
                                 "relu3", "fc2"}
    assert report.stats["conv1"].shape == (4, 32, 8, 8)
    assert report.details["conv1"].kind == "maps" and report.details["conv1"].values.shape == (32, 8, 8)
    assert report.details["fc1"].kind == "vector" and report.details["fc1"].values.shape == (128,)
    relu = report.stats["relu2"]
    assert relu.min >= 0 and 0 <= relu.dead_fraction <= relu.zero_fraction <= 1
    assert sum(relu.histogram) == 4 * 64 * 8 * 8


def test_probing_changes_neither_gradients_nor_the_random_stream() -> None:
    """A probed run ends with exactly the weights of an unprobed one (Dropout draws random numbers)."""
    doc = dropout_mlp(epochs=2)
    plain = Trainer(graph_of(doc), max_steps=12)
    plain.fit()
    reports = Recorder()
    probed = Trainer(graph_of(doc), callbacks=[reports], max_steps=12)
    tap = InsightTap(reports, interval=0.0, budget=1e9).attach(probed)  # a probe after every step
    probed.emit.add(tap)
    probed.fit()
    assert len(reports.of_type(ProbeReport)) == 12
    for name, value in plain.parts.module.state_dict().items():
        assert torch.equal(value, probed.parts.module.state_dict()[name]), name


class LoadedClock:
    """A machine so loaded that every reading of the clock finds another second gone (a step, a
    probe's start and its end each cost a second): scheduling that follows the probe's cost alone
    would wait 100 s between probes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_probes_follow_the_wall_clock_and_never_starve_however_slow() -> None:
    clock = LoadedClock()
    probes: list[tuple[float, ProbeReport]] = []
    trainer = Trainer(graph_of(mlp(epochs=20)), max_steps=60)
    tap = InsightTap(lambda e: probes.append((clock.now, e)) if isinstance(e, ProbeReport) else None,
                     clock=clock).attach(trainer)
    chosen_at: list[float] = []

    def choose(event: object) -> None:  # the user selects fc1 at step 30, between two probes
        if isinstance(event, StepEnd) and event.step == 30:
            tap.want(("fc1",))
            chosen_at.append(clock.now)

    trainer.emit.add(choose)
    trainer.emit.add(tap)
    trainer.fit()
    times = [t for t, _ in probes]
    assert len(times) >= 10 and max(b - a for a, b in zip(times, times[1:], strict=False)) <= 5.0
    first = next((t, r) for t, r in probes if "fc1" in r.details)
    assert first[0] - chosen_at[0] == 3.0  # probed as that step ends (three readings: due, start, end)
    assert first[1].step == 30 and first[1].requested == ("fc1",)
    assert all("fc1" not in r.details and r.requested == () for t, r in probes if t < chosen_at[0])


def test_probing_keeps_to_its_share_of_the_time_up_to_the_longest_wait() -> None:
    tap = InsightTap(lambda e: None)  # 0.5 s at least, 1% of the time, 2 s at most
    assert tap.gap(0.001) == 0.5  # cheap probes: at most twice a second
    assert tap.gap(0.015) == pytest.approx(1.5)  # 15 ms is 1% of 1.5 s
    assert tap.gap(0.6) == 2.0  # a slow probe (a loaded machine) waits 2 s, not a minute


def test_every_output_port_of_a_recurrent_node_is_recorded() -> None:
    capture, _module, _inputs = capture_of("lstm_sequence.json")
    report = capture.run(0, 0, ("lstm", "embed"))
    assert report.stats["lstm"].shape == (4, 12, 64)
    assert report.details["lstm"].kind == "heatmap" and report.details["lstm"].values.shape == (12, 64)
    assert report.details["embed"].kind == "heatmap"
    assert all(s.grad_norm is not None for n, s in report.stats.items() if n != "tokens")


def test_image_classifiers_get_predictions_with_saliency() -> None:
    capture, _module, _inputs = capture_of("cnn_digits.json", samples=8)
    report = capture.run(0, 0)
    assert len(report.predictions) == 8
    first = report.predictions[0]
    assert first.image.shape == (8, 8) and first.saliency.shape == (8, 8)
    assert math.isclose(float(first.probabilities.sum()), 1.0, rel_tol=1e-5)
    assert first.predicted == int(np.argmax(first.probabilities))
    assert 0.0 <= first.saliency.min() and first.saliency.max() == pytest.approx(1.0)


def test_attention_weights_show_as_a_heat_map() -> None:
    from dlstudio.train.probes import detail

    weights = torch.softmax(torch.randn(2, 4, 5, 7), -1)  # [N, heads, L, S]
    shown = detail("mha", {"attn_output": torch.randn(2, 5, 16), "attn_output_weights": weights})
    assert shown.kind == "heatmap" and shown.port == "attn_output_weights"
    assert np.allclose(shown.values, weights[0].mean(0).numpy(), atol=1e-6)


def stats(node: str, grad: float | None, param_grad: float | None = None) -> NodeStats:
    return NodeStats(node, (2, 3), 0.0, 1.0, -1.0, 1.0, 0.0, 0.0, (1, 1), grad, param_grad)


def test_gradient_warnings_compare_each_node_with_the_output() -> None:
    found = gradient_warnings({"out": stats("out", 1.0), "ok": stats("ok", 0.3), "deep": stats("deep", 1e-6),
                               "wild": stats("wild", 1e5), "nan": stats("nan", 1.0, math.nan)}, "out")
    assert set(found) == {"deep", "wild", "nan"}
    assert found["deep"].startswith("vanishing") and found["wild"].startswith("exploding")
    assert "NaN" in found["nan"]
    assert gradient_warnings({"out": stats("out", 0.0), "a": stats("a", 0.0)}, "out") == {}


def test_a_deep_sigmoid_stack_warns_of_vanishing_gradients() -> None:
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [8]}}]
    edges, last = [], "x"
    for i in range(12):
        nodes += [{"id": f"fc{i}", "type": "Linear", "params": {"out_features": 8}}, {"id": f"s{i}", "type": "Sigmoid"}]
        edges += [{"source": last, "target": f"fc{i}"}, {"source": f"fc{i}", "target": f"s{i}"}]
        last = f"s{i}"
    nodes.append({"id": "out", "type": "Output"})
    edges.append({"source": last, "target": "out"})
    analysis = analyze(load_graph({"format": "dlstudio.graph", "version": 1, "name": "deep", "nodes": nodes,
                                   "edges": edges}))
    plan = plan_module(analysis)
    torch.manual_seed(0)
    module = build_module(plan)
    capture = ProbeCapture(module, plan, analysis, [torch.randn(16, 8)], torch.randn(16, 8),
                           torch.nn.MSELoss(), None, False)
    warnings = capture.run(0, 0).warnings
    assert "fc0" in warnings and warnings["fc0"].startswith("vanishing")
    assert "s11" not in warnings


def test_the_tap_reports_a_confusion_matrix_of_the_validation_data() -> None:
    recorder = Recorder()
    trainer = Trainer(graph_of(mlp(epochs=2)), callbacks=[recorder])
    trainer.emit.add(InsightTap(recorder).attach(trainer))
    trainer.fit()
    matrices = recorder.of_type(ConfusionReport)
    assert [m.epoch for m in matrices] == [1, 2]
    last = matrices[-1].matrix
    assert last.shape == (3, 3) and last.sum() == trainer.parts.data.val_size
    accuracy = trainer.state.history[-1]["val_accuracy"]
    assert np.trace(last) / last.sum() == pytest.approx(accuracy)


def test_runs_are_listed_from_the_runs_folder(tmp_path) -> None:
    graph = graph_of(mlp(epochs=1))
    Trainer(graph, run_dir=RunDir(tmp_path / "runs" / "test-mlp-1")).fit()
    (tmp_path / "runs" / "not-a-run").mkdir()
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "graph.json").write_text("{", encoding="utf-8")
    [run] = list_runs(tmp_path / "runs", graph)
    assert run.complete and run.resumable and run.same_network and run.status == "finished"
    assert run.epochs_done == 1 and "val_loss" in run.metrics
    changed = graph_of(mlp(epochs=1, hidden=8))
    assert not list_runs(tmp_path / "runs", changed)[0].same_network
    assert list_runs(tmp_path / "runs", graph_of({**mlp(), "name": "other"})) == []


def test_runs_of_other_graphs_cost_no_network_hash(tmp_path, monkeypatch) -> None:
    """The hash serialises the whole graph (a tenth of a second at 16k nodes, on every open):
    it is computed once, and only when a run of the graph's name is there."""
    import dlstudio.train.runlist as runlist

    graph = graph_of(mlp(epochs=1))
    for name in ("test-mlp-1", "test-mlp-2"):
        Trainer(graph, run_dir=RunDir(tmp_path / "runs" / name)).fit()
    hashed: list[str] = []
    monkeypatch.setattr(runlist, "network_hash", lambda g: hashed.append(g.name) or network_hash(g))
    assert list_runs(tmp_path / "runs", graph_of({**mlp(), "name": "other"})) == [] and hashed == []
    assert len(list_runs(tmp_path / "runs", graph)) == 2 and hashed == [graph.name]


def test_a_worker_process_trains_reports_and_stops(tmp_path) -> None:
    from dlstudio.train.events import Job, Ready, RunEnded, SetDetails, StartRun, Stop
    from dlstudio.train.worker import start_worker

    graph = graph_of(mlp(epochs=500))
    worker = start_worker()
    try:
        job = Job(graph_json=graph_to_json(graph), config=graph.training.model_dump(mode="json"),
                  run_dir=str(tmp_path / "run"), details=("fc1",))
        assert worker.send(StartRun(job))
        seen: list = []
        deadline = time.monotonic() + 90
        while not any(isinstance(e, StepEnd) for e in seen) and time.monotonic() < deadline:
            seen += worker.poll()
            time.sleep(0.05)
        assert isinstance(seen[0], Ready) and any(isinstance(e, StepEnd) for e in seen)
        worker.send(Stop())
        while not any(isinstance(e, RunEnded) for e in seen) and time.monotonic() < deadline:
            seen += worker.poll()
            time.sleep(0.05)
        [finished] = [e for e in seen if isinstance(e, Finished)]
        assert finished.reason == "stopped" and finished.epoch < 500
        assert any(isinstance(e, ProbeReport) and "fc1" in e.details for e in seen)
        worker.send(SetDetails(("act",)))  # after the run it probes again at once
        while not any(isinstance(e, ProbeReport) and "act" in e.details for e in seen) and time.monotonic() < deadline:
            seen += worker.poll()
            time.sleep(0.05)
        assert any(isinstance(e, ProbeReport) and "act" in e.details for e in seen)
    finally:
        worker.close()
    assert not worker.alive


def test_worker_events_travel_in_batches_and_nothing_waits_long() -> None:
    import queue

    from dlstudio.train.events import Finished
    from dlstudio.train.worker import BATCH_S, _Batcher

    sent: queue.Queue = queue.Queue()
    batcher = _Batcher(sent)
    batcher("before a run")  # outside a run: at once
    assert sent.get(timeout=1) == ["before a run"]
    batcher.training = True
    steps = [StepEnd(1, i, i, 10, 0.5, 0.1) for i in range(1, 4)]
    for step in steps:
        batcher(step)
    first = sent.get(timeout=10 * BATCH_S)  # the sending thread: a paused run's steps still arrive
    assert first == steps[:len(first)] and len(first) >= 1
    batcher(steps[0])
    end = Finished("completed", 1, 3, {}, 1.0)
    batcher(end)  # an ending is sent at once, after what was waiting
    rest = [e for _ in range(3) if not sent.empty() for e in sent.get_nowait()]
    assert rest[-1] is end and steps[0] in rest
