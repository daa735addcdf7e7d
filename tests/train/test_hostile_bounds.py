"""Hostile data and runs are refused before anything large is allocated: one-hot widths, a
zip-bomb .npz, a huge text, a model that would not fit in memory, negative class labels, an
edited checkpoint. Each refusal is one line naming the file and the limit, with the right exit
code; the ones where memory is the risk run in a subprocess under an address-space limit."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlstudio.cli import main
from dlstudio.core.memory import gib
from dlstudio.core.training import DatasetConfig
from dlstudio.train.data import files, load_arrays
from dlstudio.train.data.files import MAX_CATEGORIES, MAX_TEXT_BYTES, character_windows
from dlstudio.train.errors import DataError
from tests.hostile import assert_plain, run_limited
from tests.train.helpers import adaptive_pool, graph_of, mlp


def _graph(tmp_path, dataset: dict, name: str = "g.json", **changes) -> str:
    doc = mlp(**changes)
    doc["training"]["dataset"] = {**dataset, "inputs": {"x": "x"}}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def _npz_lying_about_its_size(path, shape=(10**10,)) -> None:
    """An .npz whose .npy header claims ``shape`` (80 GB of float64) over 8 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(8))
        archive.writestr("y.npy", header.getvalue() + bytes(8))


# --- data --------------------------------------------------------------------------------------------


def test_a_text_column_with_too_many_values_is_not_one_hot_encoded(tmp_path):
    rows = "\n".join(f"name{i},{i % 3}" for i in range(MAX_CATEGORIES + 1))
    (tmp_path / "t.csv").write_text("who,y\n" + rows)
    config = DatasetConfig(name="csv", params={"path": "t.csv", "target": "y"})
    with pytest.raises(DataError, match=rf"t\.csv: column 'who' holds 1,001 distinct texts, over the limit of "
                                        rf"{MAX_CATEGORIES} \(MAX_CATEGORIES\)"):
        load_arrays(config, 0, tmp_path)


def test_encoded_csv_columns_over_the_data_limit_are_refused_before_they_are_built(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_DATA_BYTES", 1000)
    (tmp_path / "t.csv").write_text("a,b,y\n" + "\n".join(f"{i},{i},{i % 2}" for i in range(100)))
    config = DatasetConfig(name="csv", params={"path": "t.csv", "target": "y"})
    with pytest.raises(DataError, match=r"t\.csv: 100 rows of 2 encoded columns .* \(MAX_DATA_BYTES\)"):
        load_arrays(config, 0, tmp_path)


def test_a_csv_with_only_the_target_column_says_so(tmp_path):
    (tmp_path / "t.csv").write_text("y\n1\n2\n")
    with pytest.raises(DataError, match="t.csv: has no column besides the target 'y'"):
        load_arrays(DatasetConfig(name="csv", params={"path": "t.csv", "target": "y"}), 0, tmp_path)


def test_an_npz_whose_headers_claim_80_gb_is_refused_in_little_memory(tmp_path):
    _npz_lying_about_its_size(tmp_path / "bomb.npz")
    result = run_limited(["run", _graph(tmp_path, {"name": "npz", "params": {"path": "bomb.npz"}}),
                          "--max-steps", "1", "--out", str(tmp_path / "run"), "--device", "cpu"],
                         memory_gib=3, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "bomb.npz: array 'x.npy' claims 80,000,000,000 bytes but holds" in result.stderr
    assert_plain(result.stderr)


def test_an_npz_over_the_data_limit_is_refused_from_its_zip_headers(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_DATA_BYTES", 2**20)
    np.savez_compressed(tmp_path / "zeros.npz", x=np.zeros((2**18, 2)), y=np.zeros(2**18, np.int64))
    assert (tmp_path / "zeros.npz").stat().st_size < 2**16  # compresses well: the headers tell
    with pytest.raises(DataError, match=r"zeros\.npz: its arrays take .* GiB unpacked, over the limit of .*"
                                        r"\(MAX_DATA_BYTES\)"):
        load_arrays(DatasetConfig(name="npz", params={"path": "zeros.npz"}), 0, tmp_path)


@pytest.mark.parametrize("content", [b"PK\x03\x04 not a zip", b"hello", b""])
def test_an_npz_that_is_not_a_zip_is_one_data_error(tmp_path, content):
    (tmp_path / "bad.npz").write_bytes(content)
    with pytest.raises(DataError, match=r"bad\.npz: not a readable \.npz file"):
        load_arrays(DatasetConfig(name="npz", params={"path": "bad.npz"}), 0, tmp_path)


def test_a_text_over_the_limit_is_refused_by_its_size(tmp_path):
    with (tmp_path / "big.txt").open("wb") as handle:
        handle.truncate(MAX_TEXT_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(DataError, match=f"big.txt: larger than {MAX_TEXT_BYTES // 2**20} MB"):
        load_arrays(DatasetConfig(name="text", params={"path": "big.txt"}), 0, tmp_path)


@settings(max_examples=80, deadline=None)
@given(text=st.text(min_size=10, max_size=200), length=st.integers(2, 4))
def test_character_ids_are_the_positions_in_the_sorted_vocabulary(text, length):
    vocab = sorted(set(text))
    windows = (len(text) - 1) // length
    arrays = character_windows(text, length, "t.txt")
    ids = [vocab.index(ch) for ch in text[: windows * length + 1]]
    assert arrays.info["vocab"] == "".join(vocab)
    assert arrays.fields["x"].ravel().tolist() == ids[:-1]
    assert arrays.fields["y"].ravel().tolist() == ids[1:]


# --- runs --------------------------------------------------------------------------------------------


def test_a_model_that_does_not_fit_in_memory_is_refused_before_allocation(tmp_path):
    """Two billion parameters (under MAX_PARAMETERS, so it validates) against a 6 GiB cap (Adam: four copies)."""
    doc = mlp()
    doc["nodes"][1]["params"]["out_features"] = 20_000
    doc["nodes"].insert(2, {"id": "wide", "type": "Linear", "params": {"out_features": 100_000}})
    doc["edges"] = [{"source": "x", "target": "fc1"}, {"source": "fc1", "target": "wide"},
                    {"source": "wide", "target": "act"}, *doc["edges"][2:]]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    result = run_limited(["run", str(path), "--max-steps", "1", "--out", str(tmp_path / "run"), "--device", "cpu"],
                         memory_gib=6)
    assert result.returncode == 1, result.stderr
    assert "needs about 29.8 GiB" in result.stderr and "GiB free; nothing was allocated" in result.stderr
    assert "(use smaller layers, a smaller batch size" in result.stderr
    assert_plain(result.stderr)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_gpu_without_room_for_the_estimate_refuses_the_run_and_one_with_room_passes(device):
    """The GPU branch, on any machine: the device's free bytes are told to the check."""
    from dlstudio import analyze
    from dlstudio.core.memory import training_memory
    from dlstudio.train.errors import ConfigError
    from dlstudio.train.memory import check_memory, free_memory

    graph = graph_of(mlp(batch_size=64))
    analysis = analyze(graph)
    needed = training_memory(analysis, graph.training).total
    asked: list[torch.device] = []

    def free(gpu: torch.device) -> int:
        asked.append(gpu)
        return needed - 1

    with pytest.raises(ConfigError) as refused:
        check_memory(analysis, graph.training, torch.device(device), gpu_free=free)
    assert asked == [torch.device(device)]
    message = f"{refused.value} ({refused.value.advice})"
    assert message.startswith(f"training 'test mlp' needs about {gib(needed)} (")
    assert f"at batch size 64), but {device} has {gib(needed - 1)} free; nothing was allocated" in message
    assert message.endswith("(use smaller layers, a smaller batch size, or a device with more memory)")
    assert_plain(message)
    check_memory(analysis, graph.training, torch.device(device), gpu_free=lambda gpu: needed)  # fits exactly
    assert free_memory(torch.device(device), lambda gpu: 123) == 123


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_real_gpu_reports_its_free_memory():
    from dlstudio.train.memory import free_memory

    total = torch.cuda.get_device_properties(0).total_memory
    assert 0 < free_memory(torch.device("cuda", 0)) <= total


def test_negative_class_labels_are_refused_before_training(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((20, 4), np.float32), y=np.arange(20) % 3 - 1)
    graph = _graph(tmp_path, {"name": "npz", "params": {"path": "d.npz"}})
    assert main(["run", graph, "--max-steps", "1", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "target 'y' holds the class label -1, but class labels count from 0" in err
    assert "ignore_index=-100" in err
    assert_plain(err)


def test_a_graph_without_a_training_section_is_an_invalid_configuration(tmp_path, capsys):
    doc = mlp()
    del doc["training"]
    (tmp_path / "g.json").write_text(json.dumps(doc))
    assert main(["run", str(tmp_path / "g.json")]) == 1
    assert "has no training section (add one in the app's Training panel)" in capsys.readouterr().err


def _edit_checkpoint(run_dir, change) -> None:
    [path] = (run_dir / "checkpoints").glob("*.json")
    doc = json.loads(path.read_text())
    change(doc["state"])
    path.write_text(json.dumps(doc))


def _drop_param_groups(state: dict) -> None:
    del state["optimizers"]["model"]["param_groups"][0]["params"]


def _swap_buffers(state: dict) -> None:
    items = state["optimizers"]["model"]["state"]["__items__"]
    items[0][1], items[1][1] = items[1][1], items[0][1]


@pytest.mark.parametrize("change", [_drop_param_groups, _swap_buffers, lambda state: state.pop("loop")])
def test_an_edited_checkpoint_state_is_a_run_folder_error(tmp_path, capsys, change):
    graph, out = _graph(tmp_path, {"name": "iris"}, epochs=2), tmp_path / "run"
    doc = json.loads((tmp_path / "g.json").read_text())
    doc["training"]["optimizer"] = {"type": "SGD", "params": {"lr": 0.1, "momentum": 0.9}}
    (tmp_path / "g.json").write_text(json.dumps(doc))
    assert main(["run", graph, "--max-steps", "1", "--out", str(out)]) == 0
    _edit_checkpoint(out, change)
    capsys.readouterr()
    assert main(["run", graph, "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "its saved state does not fit this run" in err and "(resume from an earlier checkpoint" in err
    assert_plain(err)


def test_an_onnx_model_that_fails_at_other_sizes_is_one_line(tmp_path, capsys):
    """An adaptive average pool of a variable length to 3 is exported for the traced length
    only; onnxruntime's own error class (``Fail``) stays out of the message."""
    (tmp_path / "pool.json").write_text(json.dumps(adaptive_pool("AdaptiveAvgPool1d")))
    assert main(["export", str(tmp_path / "pool.json"), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "the ONNX model fails on other sizes than it was traced with" in err
    assert "(export --to torchscript, or give the Input fixed sizes)" in err
    assert "Fail:" not in err and "ONNXRuntimeError" not in err


@pytest.mark.parametrize(("edit", "message"), [
    (lambda record: record["config"]["dataset"].update(params="N"),
     "its training configuration is not valid (dataset.params: Input should be a valid dictionary)"),
    (lambda record: record.update(config=None), "its training configuration is not valid"),
])
def test_sampling_from_a_run_with_an_edited_record_is_a_run_folder_error(tmp_path, capsys, edit, message):
    graph, out = _graph(tmp_path, {"name": "iris"}), tmp_path / "run"
    assert main(["run", graph, "--max-steps", "1", "--out", str(out)]) == 0
    record = json.loads((out / "graph.json").read_text())
    edit(record)
    (out / "graph.json").write_text(json.dumps(record))
    (out / "deep").mkdir()
    (out / "deep" / "graph.json").write_text('{"format": "dlstudio.run", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    capsys.readouterr()
    assert main(["sample", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "(start a new run)" in err
    assert_plain(err)
    assert main(["sample", str(out / "deep")]) == 2
    assert "unreadable run record (nested too deeply)" in capsys.readouterr().err
