"""``dlstudio run`` and ``dlstudio export --weights``: outputs, exit codes, resume, Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch
from safetensors.torch import load_file

from dlstudio import compile_graph
from dlstudio.cli import main
from dlstudio.core.io import load_graph, save_graph
from dlstudio.exits import EXIT_DIVERGED, EXIT_INVALID, EXIT_USAGE
from dlstudio.train.errors import (
    ConfigError,
    DataError,
    Diverged,
    OutOfMemory,
    RunDirError,
    TrainError,
)
from tests.conftest import GRAPHS, ROOT
from tests.train.helpers import graph_of, mlp

TRAINED_EXAMPLES = sorted(p for p in GRAPHS.glob("*.json") if load_graph(p).training is not None)


def write(tmp_path, doc, name="g.json"):
    path = tmp_path / name
    save_graph(graph_of(doc), path)
    return str(path)


@pytest.mark.parametrize("path", TRAINED_EXAMPLES, ids=[p.stem for p in TRAINED_EXAMPLES])
def test_every_example_trains_for_a_few_steps(path, tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(path), "--max-steps", "3", "--out", str(out), "--json"]) == 0
    assert (out / "model.safetensors").exists() and (out / "model.py").exists()
    assert json.loads((out / "graph.json").read_text())["config"]["epochs"] >= 1


def test_json_lines_and_overrides(tmp_path, capsys):
    graph = write(tmp_path, mlp())
    code = main(["run", graph, "--epochs", "1", "--batch-size", "40", "--lr", "0.05", "--seed", "7",
                 "--out", str(tmp_path / "run"), "--json"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "finished"
    assert [e["batch"] for e in events if e["event"] == "step_end"] == [1, 2, 3]
    record = json.loads((tmp_path / "run" / "graph.json").read_text())
    assert record["seed"] == 7 and record["config"]["optimizer"]["params"]["lr"] == 0.05


def test_progress_output_and_final_table(tmp_path, capsys):
    assert main(["run", write(tmp_path, mlp()), "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "val_accuracy" in err and "completed after 2 epochs (16 steps)" in err and "best (epoch)" in err


def test_resume_extends_the_run_up_to_the_new_epoch_count(tmp_path, capsys):
    graph, out = write(tmp_path, mlp()), str(tmp_path / "run")
    assert main(["run", graph, "--out", out, "--json"]) == 0
    assert main(["run", graph, "--resume", out, "--epochs", "3", "--json"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]


@pytest.mark.parametrize(("args", "message"), [
    (["--resume", "RUN", "--lr", "0.1"], "--lr cannot change"),
    (["--out", "RUN"], "already holds a run"),
    (["--epochs", "0"], "--epochs must be at least 1"),
])
def test_usage_errors_exit_2(tmp_path, capsys, args, message):
    graph, out = write(tmp_path, mlp(epochs=1)), str(tmp_path / "run")
    assert main(["run", graph, "--out", out, "--json"]) == 0
    capsys.readouterr()
    assert main(["run", graph, *[out if a == "RUN" else a for a in args]]) == 2
    assert message in capsys.readouterr().err


def test_resume_of_a_changed_graph_is_refused(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["run", write(tmp_path, mlp(epochs=1)), "--out", out, "--json"]) == 0
    changed = write(tmp_path, mlp(epochs=1, hidden=8), "changed.json")
    assert main(["run", changed, "--resume", out]) == 2
    assert "has changed since run run started" in capsys.readouterr().err


def test_invalid_graph_exits_1_and_missing_files_exit_2(tmp_path, capsys):
    assert main(["run", write(tmp_path, mlp(classes=2)), "--out", str(tmp_path / "a")]) == 1
    assert "gives 2 class scores but dataset 'iris' has 3 classes" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.json")]) == 2
    csv = mlp(dataset={"name": "csv", "params": {"path": "missing.csv", "target": "y"}, "inputs": {"x": "x"}})
    assert main(["run", write(tmp_path, csv), "--out", str(tmp_path / "b")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


def test_diverged_run_exits_3(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    x[5, 1] = math.nan
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(40) % 3)
    doc = mlp(dataset={"name": "npz", "params": {"path": "bad.npz"}, "inputs": {"x": "x"}},
              validation_split=0, batch_size=40)
    assert main(["run", write(tmp_path, doc), "--out", str(tmp_path / "run")]) == 3
    assert "the loss became nan at epoch 1, step 1" in capsys.readouterr().err


def test_training_errors_exit_with_the_codes_the_command_line_documents():
    codes = {error: error.exit_code for error in (TrainError, ConfigError, DataError, RunDirError,
                                                   Diverged, OutOfMemory)}
    assert codes == {TrainError: EXIT_INVALID, ConfigError: EXIT_INVALID, DataError: EXIT_USAGE,
                     RunDirError: EXIT_USAGE, Diverged: EXIT_DIVERGED, OutOfMemory: EXIT_INVALID}
    assert f"{EXIT_DIVERGED} diverged" in sys.modules[main.__module__].__doc__


def test_tensorboard_without_the_package_says_so_and_trains(tmp_path, capsys):
    args = ["run", write(tmp_path, mlp(epochs=1)), "--out", str(tmp_path / "r"), "--tensorboard"]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert main(args) == 0
        assert "--tensorboard needs the tensorboard package" in capsys.readouterr().err
    else:
        assert main(args) == 0
        assert any((tmp_path / "r" / "tensorboard").iterdir())


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    graph, out = write(tmp_path, mlp(epochs=10_000)), tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "dlstudio", "run", graph, "--out", str(out), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stdout:
        if json.loads(line)["event"] == "step_end":
            break
    process.send_signal(signal.SIGINT)
    remaining, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert json.loads(remaining.splitlines()[-1])["reason"] == "interrupted"
    assert any(p.suffix == ".json" for p in (out / "checkpoints").iterdir())


def test_export_with_weights_to_python_onnx_and_torchscript(tmp_path, capsys, monkeypatch):
    graph, out = write(tmp_path, mlp(epochs=1)), str(tmp_path / "run")
    assert main(["run", graph, "--out", out, "--json"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["export", graph, "--weights", out, "--to", "python", "-o", "mlp_model.py"]) == 0
    snippet = capsys.readouterr().out
    assert len(snippet.strip().splitlines()) == 2
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {}
    exec(snippet, namespace)
    module = compile_graph(graph_of(mlp())).eval()
    module.load_state_dict(load_file(str(tmp_path / "run" / "model.safetensors")))
    x = torch.randn(3, 4)
    assert torch.equal(namespace["model"](x), module(x))
    assert main(["export", graph, "--weights", out, "--to", "torchscript", "-o", "m.pt"]) == 0
    assert main(["export", graph, "--weights", out, "--to", "onnx", "-o", "m.onnx"]) == 0
    assert "largest difference from PyTorch" in capsys.readouterr().err
    session = onnxruntime.InferenceSession("m.onnx")
    with torch.no_grad():
        expected = module(x).numpy()
    assert np.abs(session.run(None, {"x": x.numpy()})[0] - expected).max() <= 1e-4


def test_export_refuses_weights_of_another_network(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["run", write(tmp_path, mlp(epochs=1)), "--out", out, "--json"]) == 0
    other = write(tmp_path, mlp(hidden=5), "other.json")
    assert main(["export", other, "--weights", out, "--to", "onnx", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "has changed since run" in capsys.readouterr().err


def test_one_cycle_schedule_cannot_be_stretched_on_resume(tmp_path, capsys):
    graph, out = write(tmp_path, mlp(epochs=1, scheduler={"type": "OneCycleLR"})), str(tmp_path / "run")
    assert main(["run", graph, "--out", out, "--json"]) == 0
    capsys.readouterr()
    assert main(["run", graph, "--resume", out, "--epochs", "3"]) == 1
    assert "OneCycleLR planned 8 steps when the run started" in capsys.readouterr().err
