"""Pretrained weights: matched by key, fresh where the file has nothing, clear errors otherwise."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from dlstudio import compile_graph, load_graph
from dlstudio.cli import main
from dlstudio.train.errors import ConfigError, DataError
from dlstudio.train.pretrained import load_pretrained
from tests.train.helpers import mlp


def module_of(doc: dict) -> torch.nn.Module:
    return compile_graph(load_graph(doc))


def with_new_head(doc: dict, classes: int = 3) -> dict:
    """The same network whose last Linear is a new node ``head`` (so it starts fresh)."""
    doc = copy.deepcopy(doc)
    for node in doc["nodes"]:
        if node["id"] == "fc2":
            node["id"], node["params"] = "head", {"out_features": classes}
    for edge in doc["edges"]:
        for end in ("source", "target"):
            edge[end] = "head" if edge[end] == "fc2" else edge[end]
    return doc


def saved(module: torch.nn.Module, path) -> str:
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return str(path)


def test_matching_keys_load_and_the_rest_keep_their_fresh_start(tmp_path):
    source = module_of(mlp())
    target = module_of(with_new_head(mlp()))
    fresh_head = target.head.weight.detach().clone()
    report = load_pretrained(target, saved(source, tmp_path / "w.safetensors"))
    assert torch.equal(target.fc1.weight, source.fc1.weight)
    assert torch.equal(target.fc1.bias, source.fc1.bias)
    assert torch.equal(target.head.weight, fresh_head)
    assert report.loaded == ("fc1.weight", "fc1.bias")
    assert set(report.missing) == {"head.weight", "head.bias"}
    assert set(report.unused) == {"fc2.weight", "fc2.bias"}
    assert report.summary().startswith(f"2 weights from {tmp_path / 'w.safetensors'}")
    assert "keep their fresh start (nodes head)" in report.summary()


def test_a_relative_path_is_read_from_the_graph_folder(tmp_path):
    source = module_of(mlp())
    saved(source, tmp_path / "w.safetensors")
    target = module_of(mlp())
    report = load_pretrained(target, "w.safetensors", base_dir=tmp_path)
    assert report.missing == () and report.unused == ()
    x = torch.randn(4, 4)
    assert torch.equal(target(x), source(x))


def test_a_run_folder_gives_its_final_weights(tmp_path):
    source = module_of(mlp())
    (tmp_path / "run").mkdir()
    saved(source, tmp_path / "run" / "model.safetensors")
    target = module_of(mlp())
    load_pretrained(target, str(tmp_path / "run"))
    assert torch.equal(target.fc2.weight, source.fc2.weight)


def test_a_linear_pretrained_under_the_adapters_id_loads_into_the_frozen_lora_weight(tmp_path):
    doc = mlp()
    doc["nodes"][3] = {"id": "fc2", "type": "LoRALinear", "params": {"out_features": 3, "r": 2}}
    source = module_of(mlp())
    target = module_of(doc)
    report = load_pretrained(target, saved(source, tmp_path / "w.safetensors"))
    assert torch.equal(target.fc2.weight, source.fc2.weight)
    assert set(report.missing) == {"fc2.lora_A", "fc2.lora_B"}
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))  # B starts at zero: the pretrained function


def test_a_shape_that_does_not_fit_names_the_weight_node_and_fix(tmp_path):
    path = saved(module_of(mlp()), tmp_path / "w.safetensors")
    wider = mlp(hidden=8)
    with pytest.raises(ConfigError) as caught:
        load_pretrained(module_of(wider), path)
    message = str(caught.value)
    assert "weight 'fc1.weight' has shape [16, 4] but node 'fc1' needs [8, 4]" in message
    assert "\n" not in message and "rename it so it starts fresh" in caught.value.advice


def test_a_file_whose_keys_match_nothing_is_refused(tmp_path):
    save_file({"backbone.layer1.weight": torch.zeros(2, 2)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(ConfigError, match="none of its 1 weights matches a node"):
        load_pretrained(module_of(mlp()), str(tmp_path / "w.safetensors"))


@pytest.mark.parametrize("content", [None, b"", b"garbage", b"\x10" + b"\x00" * 7 + b'{"a":1}'])
def test_a_missing_or_unreadable_file_is_a_one_line_data_error(tmp_path, content):
    path = tmp_path / "w.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        load_pretrained(module_of(mlp()), str(path))
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_an_empty_run_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(Exception, match="neither model.safetensors nor a complete checkpoint"):
        load_pretrained(module_of(mlp()), str(tmp_path / "run"))


# -- through `dlstudio run` ---------------------------------------------------------------------


def _write(tmp_path, doc: dict, name: str) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_fine_tuning_a_new_head_on_a_frozen_pretrained_layer(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")  # rich wraps the console lines at the terminal's width
    base = _write(tmp_path, mlp(epochs=2), "base.json")
    assert main(["run", base, "--out", str(tmp_path / "base_run"), "--json"]) == 0
    tuned = with_new_head(mlp(epochs=1, init_weights="base_run"))
    tuned["nodes"][1]["frozen"] = True  # fc1
    graph = _write(tmp_path, tuned, "tuned.json")
    capsys.readouterr()
    assert main(["run", graph, "--out", str(tmp_path / "tuned_run")]) == 0
    err = capsys.readouterr().err
    assert f"pretrained: 2 weights from {tmp_path / 'base_run'}" in err
    assert "(80 frozen)" in err and "keep their fresh start (nodes head)" in err
    before = load_file(str(tmp_path / "base_run" / "model.safetensors"))
    after = load_file(str(tmp_path / "tuned_run" / "model.safetensors"))
    assert torch.equal(after["fc1.weight"], before["fc1.weight"])
    assert torch.equal(after["fc1.bias"], before["fc1.bias"])
    record = json.loads((tmp_path / "tuned_run" / "graph.json").read_text())
    assert record["init_weights"]["loaded"] == 2
    assert record["init_weights"]["missing"] == ["head.weight", "head.bias"]


def test_the_command_line_flag_names_the_weights(tmp_path, capsys):
    source = module_of(mlp())
    weights = saved(source, tmp_path / "w.safetensors")
    graph = _write(tmp_path, mlp(epochs=1), "g.json")
    assert main(["run", graph, "--out", str(tmp_path / "run"), "--init-weights", weights,
                 "--max-steps", "1", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    started = next(e for e in events if e["event"] == "run_started")
    assert started["init_weights"].startswith(f"4 weights from {weights}")


def test_a_missing_weights_file_is_one_line_and_exit_2(tmp_path, capsys):
    graph = _write(tmp_path, mlp(epochs=1), "g.json")
    code = main(["run", graph, "--out", str(tmp_path / "run"), "--init-weights", "nowhere.safetensors"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nowhere.safetensors: no such weights file" in err[0]


def test_with_every_layer_frozen_there_is_nothing_to_train(tmp_path, capsys):
    doc = mlp(epochs=1)
    for node in doc["nodes"]:
        node["frozen"] = node["type"] == "Linear"
    assert main(["run", _write(tmp_path, doc, "g.json"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "nothing to train: every layer with parameters is frozen (unfreeze a layer)" in err
