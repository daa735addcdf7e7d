"""A run folder is data, not instructions: checkpoints name weights beside them only, special
files are refused, a broken metric log's tail is dropped on resume, and saving keeps permissions."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from dlstudio.core.errors import GraphFileError
from dlstudio.core.io import load_graph, save_graph, write_atomic
from dlstudio.train import Recorder, RunDir, RunStarted, Trainer
from dlstudio.train.checkpoint import latest_checkpoint, load_state
from dlstudio.train.errors import RunDirError
from tests.train.helpers import dropout_mlp, graph_of, mlp


def _run(doc, **options):
    recorder = Recorder()
    trainer = Trainer(graph_of(doc), callbacks=[recorder], **options)
    return trainer.fit(), recorder


@pytest.fixture
def checkpoint(tmp_path):
    _run(mlp(epochs=1), run_dir=RunDir(tmp_path / "run"))
    return latest_checkpoint(tmp_path / "run" / "checkpoints")


def _rename_weights(path, name):
    document = json.loads(path.read_text())
    document["weights"] = name
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("name", ["../../graph.json", "/etc/passwd", "..", "sub/x.safetensors", "a\\b"])
def test_a_checkpoint_naming_weights_outside_its_folder_is_refused(checkpoint, name):
    _rename_weights(checkpoint, name)
    with pytest.raises(RunDirError, match="not a file name in its folder"):
        load_state(checkpoint)
    assert latest_checkpoint(checkpoint.parent) != checkpoint


def test_a_checkpoint_whose_weights_are_a_link_is_refused(checkpoint, tmp_path):
    weights = checkpoint.with_suffix(".safetensors")
    target = tmp_path / "elsewhere.safetensors"
    weights.rename(target)
    weights.symlink_to(target)
    with pytest.raises(RunDirError, match="not a regular file"):
        load_state(checkpoint)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipes_are_refused_by_every_reader_without_blocking(tmp_path, checkpoint):
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    found: list[str] = []

    def read_all() -> None:
        with pytest.raises(GraphFileError, match="named pipe"):
            load_graph(pipe)
        found.append("graph")
        with pytest.raises(RunDirError, match="named pipe"):
            load_state(pipe)
        found.append("checkpoint")
        text = mlp(epochs=1, dataset={"name": "npz", "params": {"path": str(pipe)}, "inputs": {"x": "x"}})
        result, _ = _run(text)
        assert result.kind == "data" and "named pipe" in result.message
        found.append("data")

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(60)
    assert found == ["graph", "checkpoint", "data"], "a reader blocked on a named pipe"


def test_a_partial_last_metrics_line_is_dropped_on_resume_and_said(tmp_path):
    doc = dropout_mlp(epochs=3, deterministic=True)
    _run(doc, run_dir=RunDir(tmp_path / "run"), max_steps=20)
    metrics = tmp_path / "run" / "metrics.jsonl"
    with metrics.open("a") as handle:
        handle.write('{"epoch": 3, "step": 2')  # a crash in the middle of a line
    result, rec = _run(doc, run_dir=RunDir(tmp_path / "run"), resume=True)
    assert result.reason == "completed"
    [started] = rec.of_type(RunStarted)
    assert len(started.notes) == 1 and "dropped 1 unreadable line" in started.notes[0]
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]


def test_reading_metrics_stops_at_a_corrupt_line(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "step": 5}\n[1, 2]\n{"epoch": 2, "step": 10}\n')
    assert run.read_metrics() == [{"epoch": 1, "step": 5}]


def test_data_paths_that_are_devices_are_refused(tmp_path):
    text = mlp(epochs=1, dataset={"name": "npz", "params": {"path": "/dev/zero"}, "inputs": {"x": "x"}})
    result, _ = _run(text)
    assert result.kind == "data" and "is a device" in result.message


def test_saving_keeps_the_umask_and_the_file_mode(tmp_path):
    old = os.umask(0o027)
    try:
        path = tmp_path / "new.json"
        save_graph(graph_of(mlp()), path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        path.chmod(0o604)
        save_graph(graph_of(mlp(epochs=3)), path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o604
    finally:
        os.umask(old)


def test_saving_through_a_symlink_writes_its_target(tmp_path):
    target = tmp_path / "real" / "graph.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_atomic(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"




def test_resume_refuses_a_record_edited_to_read_another_file(tmp_path):
    from dlstudio.cli import main

    graph = tmp_path / "g.json"
    save_graph(graph_of(mlp(epochs=2)), graph)
    assert main(["run", str(graph), "--out", str(tmp_path / "run"), "--max-steps", "3", "--json"]) == 0
    record_path = tmp_path / "run" / "graph.json"
    record = json.loads(record_path.read_text())
    record["config"]["init_weights"] = "/etc/passwd"
    record_path.write_text(json.dumps(record))
    with pytest.raises(RunDirError, match="pretrained weights '/etc/passwd' but the graph's training section"):
        RunDir(tmp_path / "run").recorded_config(load_graph(graph))
    assert main(["run", str(graph), "--resume", str(tmp_path / "run"), "--json"]) == 2
